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
from jitgrad.ops import log_softmax, relu, sigmoid, softmax, tanh  # noqa: F401
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
    return out if bias is None else out + bias


def leaky_relu(x, negative_slope: float = 0.01):
    return ops.where(x > 0, x, x * negative_slope)


def gelu(x, approximate: str = "none"):
    """GELU, as torch: ``x * Phi(x)`` with the exact normal CDF (``approximate="none"``), or
    the tanh approximation (``approximate="tanh"``)."""
    if approximate == "tanh":
        return 0.5 * x * (1 + ops.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1 + ops.erf(x * 0.7071067811865476))


def softplus(x, beta: float = 1.0, threshold: float = 20.0):
    return ops.softplus(x, beta, threshold)


def mse_loss(input, target, reduction: str = "mean"):
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"mse_loss: input shape {tuple(input.shape)} and target shape "
                         f"{tuple(target.shape)} differ")
    d = input - target
    return _reduce(d * d, reduction, "MseLossBackward0")


def l1_loss(input, target, reduction: str = "mean"):
    return _reduce(ops.abs(input - target), reduction)


def _same_shape(input, target, op: str) -> None:
    if tuple(input.shape) != tuple(target.shape):
        raise ShapeError(f"{op}: input shape {tuple(input.shape)} and target shape "
                         f"{tuple(target.shape)} differ")


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0):
    """``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (torch's)."""
    _same_shape(input, target, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    d = ops.abs(input - target)
    if beta == 0:
        return _reduce(d, reduction, "SmoothL1LossBackward0")
    return _reduce(ops.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta), reduction,
                   "SmoothL1LossBackward0")


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0):
    """``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)`` (torch's)."""
    _same_shape(input, target, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    d = ops.abs(input - target)
    return _reduce(ops.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta)), reduction,
                   "HuberLossBackward0")


def kl_div(input, target, reduction: str = "mean", log_target: bool = False):
    """KL divergence with ``input`` holding log-probabilities, as torch: pointwise
    ``target (log target - input)`` (0 where target is 0); ``reduction="batchmean"`` divides
    the sum by the batch size, the mathematically right mean."""
    if log_target:
        loss = ops.exp(target) * (target - input)
    else:
        safe = ops.where(target > 0, target, 1.0)
        loss = ops.where(target > 0, target * (ops.log(safe) - input), -(target * input) * 0.0)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction)


def silu(x):
    return x * ops.sigmoid(x)


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


def nll_loss(log_probs, target, weight=None, reduction: str = "mean"):
    """Negative log-likelihood of integer class ``target`` under ``log_probs`` (N, C)."""
    if log_probs.ndim != 2:
        raise ShapeError(f"nll_loss: expected input of shape (N, C), got {tuple(log_probs.shape)}")
    if target.dtype.is_floating_point or target.ndim != 1 or target.shape[0] != log_probs.shape[0]:
        raise ShapeError(f"nll_loss: expected an integer target of shape ({log_probs.shape[0]},), "
                         f"got {target.dtype.name}{list(target.shape)}")
    _check_targets(target, log_probs.shape[1])
    picked = log_probs[ops.arange(log_probs.shape[0]), target]
    if weight is not None:
        w = weight[target]
        loss = -picked * w
        if reduction == "mean":
            return rename(loss.sum() / w.sum(), "NllLossBackward0")
        return _reduce(loss, reduction, "NllLossBackward0")
    return _reduce(-picked, reduction, "NllLossBackward0")


def cross_entropy(input, target, weight=None, reduction: str = "mean",
                  label_smoothing: float = 0.0):
    """Softmax cross-entropy of logits ``input`` (N, C) against class indices or probabilities."""
    if not isinstance(input, Tensor) or not isinstance(target, Tensor):
        raise TypeError("cross_entropy(): input and target must be Tensors")
    lp = log_softmax(input, dim=1)
    if target.dtype.is_floating_point:
        if tuple(target.shape) != tuple(input.shape):
            raise ShapeError(f"cross_entropy: probability targets must have the input's shape "
                             f"{tuple(input.shape)}, got {tuple(target.shape)}")
        return _reduce(-(target * lp).sum(1), reduction)
    if label_smoothing:
        n = input.shape[1]
        nll = nll_loss(lp, target, weight, reduction="none")
        smooth = -lp.mean(1)
        return _reduce((1 - label_smoothing) * nll + label_smoothing * smooth, reduction) \
            if n else nll
    return nll_loss(lp, target, weight, reduction)


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean"):
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


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean",
                                     pos_weight=None):
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


def one_hot(target, num_classes: int = -1):
    n = int(target.max().item()) + 1 if num_classes < 0 else num_classes
    return (target.unsqueeze(-1) == ops.arange(n)).long()


from jitgrad.nn.norm import batch_norm, dropout, embedding, layer_norm  # noqa: E402,F401
from jitgrad.nn.conv import avg_pool2d, conv1d, conv2d, max_pool2d  # noqa: E402,F401
