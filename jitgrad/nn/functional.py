"""``nn.functional``: activations and losses written with jitgrad ops (so they trace too).

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> logits = jitgrad.tensor([[2.0, 0.0, -1.0]])
>>> round(F.cross_entropy(logits, jitgrad.tensor([0])).item(), 4)
0.1698
"""

from __future__ import annotations

from jitgrad import ops
from jitgrad.autograd.graph import rename
from jitgrad.errors import ShapeError
from jitgrad.ops import sigmoid, tanh  # noqa: F401
from jitgrad.tensor import Tensor


def _reduce(x, reduction: str, name: str | None = None):
    """``x`` reduced as ``reduction`` says; ``name`` is the grad_fn torch's fused loss has."""
    if reduction == "mean":
        out = x.mean()
    elif reduction == "sum":
        out = x.sum()
    elif reduction == "none":
        out = x
    else:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return out if name is None else rename(out, name)


def linear(x, weight, bias=None):
    out = ops.matmul(x, weight.t())
    if bias is None:
        return out
    # torch fuses a 2-D input's product and bias into one addmm: its grad_fn says so
    return rename(out + bias, "AddmmBackward0") if x.ndim == 2 else out + bias


def gelu(x, approximate: str = "none"):
    """GELU, as torch: ``x * Phi(x)`` with the exact normal CDF (``approximate="none"``), or
    the tanh approximation (``approximate="tanh"``)."""
    if approximate == "tanh":
        return 0.5 * x * (1 + ops.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1 + ops.erf(x * 0.7071067811865476))


def _weighted_reduce(loss, weight, reduction: str, input, name: str | None):  # noqa: A002
    """torch's ``weight=`` of the regression losses: the pointwise loss times ``weight``, and
    a ``"mean"`` that divides by the sum of the weights."""
    if weight is None:
        return _reduce(loss, reduction, name)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")
    loss = loss * weight
    return loss.sum() / weight.sum() if reduction == "mean" else _reduce(loss, reduction)


def mse_loss(input, target, size_average=None, reduce=None,  # noqa: A002
             reduction: str = "mean", weight=None):
    """Mean squared error (``weight`` scales each element; the mean is then over the weights)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"mse_loss: input shape {tuple(input.shape)} and target shape "
                         f"{tuple(target.shape)} differ")
    d = input - target
    return _weighted_reduce(d * d, weight, reduction, input, "MseLossBackward0")


def l1_loss(input, target, size_average=None, reduce=None,  # noqa: A002
            reduction: str = "mean", weight=None):
    """Mean absolute error (``weight`` as ``mse_loss``'s)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _weighted_reduce(ops.abs(input - target), weight, reduction, input, None)


def _same_shape(input, target, op: str) -> None:
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"{op}: input shape {tuple(input.shape)} and target shape "
                         f"{tuple(target.shape)} differ")


def smooth_l1_loss(input, target, size_average=None, reduce=None,  # noqa: A002
                   reduction: str = "mean", beta: float = 1.0):
    """``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (torch's)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _same_shape(input, target, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    d = ops.abs(input - target)
    if beta == 0:
        return _reduce(d, reduction, "SmoothL1LossBackward0")
    return _reduce(ops.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction,
                   "SmoothL1LossBackward0")


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0,  # noqa: A002
               weight=None):
    """``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)`` (torch's); a
    ``weight`` scales each element and ``"mean"`` stays the plain mean, as torch."""
    _same_shape(input, target, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    d = ops.abs(input - target)
    loss = ops.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    if weight is not None:
        if tuple(weight.shape) != tuple(input.shape):
            raise ValueError("Weights and input must have the same size.")
        return _reduce(loss * weight, reduction)
    return _reduce(loss, reduction, "HuberLossBackward0")


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean",  # noqa: A002
           log_target: bool = False):
    """KL divergence with ``input`` holding log-probabilities, as torch: pointwise
    ``target (log target - input)`` (0 where target is 0); ``reduction="batchmean"`` divides
    the sum by the batch size, the mathematically right mean."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if log_target:
        loss = ops.exp(target) * (target - input)
    else:
        safe = ops.where(target > 0, target, 1.0)
        loss = ops.where(target > 0, target * (ops.log(safe) - input), -(target * input) * 0.0)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


def _check_targets(target, n_classes: int, ignore_index: int | None = None) -> None:
    if target._ir is not None:
        return  # a traced target's range is checked by the indexing itself
    v = target._value
    bad = (v < 0) | (v >= n_classes)
    if ignore_index is not None:
        bad &= v != ignore_index
    if bad.any():
        raise IndexError(f"Target {int(v[bad].reshape(-1)[0])} is out of bounds: class indices "
                         f"must lie in [0, {n_classes})")


def _class_last(x, target, op: str):
    """``x`` (N, C, d1, ...), (N, C) or unbatched (C,), and ``target`` (N, d1, ...), (N,) or
    0-d, checked and flattened to (M, C) and (M,)."""
    if not isinstance(x, Tensor) or not isinstance(target, Tensor):
        raise TypeError(f"{op}(): input and target must be Tensors")
    if x.ndim == 0:
        raise ShapeError(f"{op}: expected an input of shape (C,), (N, C) or (N, C, d1, ...), got "
                         f"a 0-d tensor")
    if target.dtype.is_floating_point or target.dtype.name == "bool":
        raise RuntimeError(f"{op}: expected an integer (class index) target, got "
                           f"{target.dtype.name}")
    want = (x.shape[:1] + x.shape[2:]) if x.ndim >= 2 else ()
    if tuple(target.shape) != tuple(want):
        raise ShapeError(f"{op}: expected target of shape {list(want)} for input of shape "
                         f"{list(x.shape)}, got {list(target.shape)}")
    c = x.shape[1] if x.ndim >= 2 else x.shape[0]
    flat = ops.movedim(x, 1, -1).reshape(-1, c) if x.ndim >= 2 else x.reshape(1, c)
    return flat, target.reshape(-1), c


def nll_loss(input, target, weight=None, size_average=None, ignore_index: int = -100,  # noqa: A002
             reduce=None, reduction: str = "mean"):
    """Negative log-likelihood of integer class ``target`` under log-probabilities ``input``:
    (N, C) with target (N,), (N, C, d1, ...) with target (N, d1, ...), or unbatched (C,) with
    a 0-d target. Targets equal to ``ignore_index`` add nothing and, for ``"mean"``, count
    nothing (the mean is over the weights of the others)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    lp, t, c = _class_last(input, target, "nll_loss")
    _check_targets(target, c, ignore_index)
    valid = t != ignore_index
    safe = ops.where(valid, t, 0)  # any class: the ignored rows' picks are masked out below
    picked = lp[ops.arange(lp.shape[0]), safe]
    w = ops.where(valid, weight[safe], 0.0) if weight is not None else valid.to(lp.dtype)
    loss = ops.where(valid, -picked * w, 0.0) if weight is not None else \
        ops.where(valid, -picked, 0.0)
    if reduction == "none":
        return rename(loss.reshape(tuple(target.shape)), "NllLossBackward0")
    if reduction == "mean":
        return rename(loss.sum() / w.sum(), "NllLossBackward0")
    return _reduce(loss, reduction, "NllLossBackward0")


def _legacy_reduction(size_average, reduce, reduction: str) -> str:
    """torch's deprecated ``size_average``/``reduce`` flags, as its ``legacy_get_string``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    return "none" if not reduce else ("mean" if size_average else "sum")


def cross_entropy(input, target, weight=None, size_average=None,  # noqa: A002
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0):
    """Softmax cross-entropy of logits ``input`` ((N, C), (N, C, d1, ...) or unbatched (C,))
    against class indices (``ignore_index`` skipped) or class probabilities of ``input``'s
    shape; ``label_smoothing`` mixes in the uniform distribution over the C classes, as
    torch."""
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError("cross_entropy(): input and target must be Tensors")
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    if input.ndim == 0:
        raise ShapeError("cross_entropy: expected an input of shape (C,), (N, C) or "
                         "(N, C, d1, ...), got a 0-d tensor")
    cdim = 1 if input.ndim >= 2 else 0
    lp = log_softmax(input, dim=cdim)
    c = input.shape[cdim]
    wb = None if weight is None else weight.reshape((c,) + (1,) * (input.ndim - cdim - 1))
    if target.dtype.is_floating_point:
        if tuple(target.shape) != tuple(input.shape):
            raise ShapeError(f"cross_entropy: probability targets must have the input's shape "
                             f"{tuple(input.shape)}, got {tuple(target.shape)}")
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / c
        per = -(target * lp if wb is None else target * lp * wb).sum(cdim)
        if reduction == "mean":
            return per.sum() / (input.numel() // c if c else 1)
        return _reduce(per, reduction)
    nll = nll_loss(lp, target, weight, ignore_index=ignore_index, reduction=reduction)
    if not label_smoothing:
        return nll
    # The uniform part: -sum_c w_c lp_c per position (0 where ignored), reduced as nll is.
    valid = target != ignore_index
    smooth = ops.where(valid, -(lp if wb is None else lp * wb).sum(cdim), 0.0)
    if reduction == "mean":
        if weight is None:
            smooth = smooth.sum() / valid.sum()
        else:
            smooth = smooth.sum() / ops.where(valid, weight[ops.where(valid, target, 0)],
                                              0.0).sum()
    elif reduction == "sum":
        smooth = smooth.sum()
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / c)


def binary_cross_entropy(input, target, weight=None, size_average=None,  # noqa: A002
                         reduce=None, reduction: str = "mean"):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"binary_cross_entropy: target shape {tuple(target.shape)} differs from "
                         f"input shape {tuple(input.shape)}")
    # torch clamps the logs at -100 so that p = 0 or 1 gives a finite loss.
    lp = ops.clamp(ops.log(input), min=-100.0)
    lq = ops.clamp(ops.log(1 - input), min=-100.0)
    loss = -(target * lp + (1 - target) * lq)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "BinaryCrossEntropyBackward0")


def binary_cross_entropy_with_logits(input, target, weight=None,  # noqa: A002
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight=None):
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"binary_cross_entropy_with_logits: target shape {tuple(target.shape)} "
                         f"differs from input shape {tuple(input.shape)}")
    # log(1 + exp(-|x|)) keeps large logits finite.
    softplus_neg = ops.log1p(ops.exp(-ops.abs(input))) + ops.relu(-input)
    if pos_weight is not None:
        loss = (1 - target) * input + (1 + (pos_weight - 1) * target) * softplus_neg
    else:
        loss = (1 - target) * input + softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "BinaryCrossEntropyWithLogitsBackward0")


from jitgrad.nn.norm import batch_norm, dropout, embedding, layer_norm  # noqa: E402,F401
from jitgrad.nn.conv import avg_pool2d, conv1d, conv2d, max_pool2d  # noqa: E402,F401
from jitgrad.nn.attention import scaled_dot_product_attention  # noqa: E402,F401
from jitgrad.nn.activations import (  # noqa: E402,F401
    celu, celu_, elu, elu_, glu, hardshrink, hardsigmoid, hardswish, hardtanh, hardtanh_,
    leaky_relu, leaky_relu_, log_softmax, logsigmoid, mish, prelu, relu, relu6, relu_, rrelu, rrelu_, selu,
    selu_, silu, softmax, softmin, softplus, softshrink, softsign, tanhshrink, threshold, threshold_,
)
from jitgrad.nn.pad import pad  # noqa: E402,F401
from jitgrad.nn.resample import (  # noqa: E402,F401
    channel_shuffle, fold, interpolate, pixel_shuffle, pixel_unshuffle, unfold, upsample,
    upsample_bilinear, upsample_nearest,
)
from jitgrad.nn.pooling import (  # noqa: E402,F401
    adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d, adaptive_max_pool1d,
    adaptive_max_pool1d_with_indices, adaptive_max_pool2d, adaptive_max_pool2d_with_indices,
    adaptive_max_pool3d, avg_pool1d, avg_pool3d, lp_pool1d, lp_pool2d, max_pool1d,
    max_pool1d_with_indices, max_pool3d,
)
from jitgrad.nn.groupnorm import (  # noqa: E402,F401
    group_norm, instance_norm, local_response_norm, rms_norm,
)
from jitgrad.nn.conv_transpose import conv_transpose1d, conv_transpose2d  # noqa: E402,F401
from jitgrad.ops.scatter_more import conv3d, conv_transpose3d  # noqa: E402,F401
from jitgrad.nn.distance import (  # noqa: E402,F401
    cosine_similarity, normalize, one_hot, pairwise_distance, pdist,
)
from jitgrad.nn.losses import (  # noqa: E402,F401
    cosine_embedding_loss, gaussian_nll_loss, hinge_embedding_loss, linear_cross_entropy,
    margin_ranking_loss,
    multi_margin_loss, multilabel_margin_loss, multilabel_soft_margin_loss, poisson_nll_loss,
    soft_margin_loss, triplet_margin_loss, triplet_margin_with_distance_loss,
)
from jitgrad.nn.ctc import ctc_loss  # noqa: E402,F401
from jitgrad.nn.bilinear import bilinear  # noqa: E402,F401
from jitgrad.nn.embedding_bag import embedding_bag  # noqa: E402,F401
from jitgrad.nn.unpool import max_unpool1d, max_unpool2d, max_unpool3d  # noqa: E402,F401
from jitgrad.nn.grid_sample import affine_grid, grid_sample  # noqa: E402,F401
from jitgrad.nn.mha import multi_head_attention_forward  # noqa: E402,F401
from jitgrad.nn.dropout_more import (  # noqa: E402,F401
    alpha_dropout, dropout1d, dropout2d, dropout3d, feature_alpha_dropout,
)
from jitgrad.nn.fractional_pool import (  # noqa: E402,F401
    fractional_max_pool2d, fractional_max_pool2d_with_indices, fractional_max_pool3d,
    fractional_max_pool3d_with_indices,
)
