"""More of torch's losses: Poisson and Gaussian negative log-likelihood, margin, hinge,
soft-margin, cosine-embedding and triplet losses, with their Modules. Each is a composition of
jitgrad ops, reduced as torch reduces it.

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> x, y = jitgrad.tensor([0.5, -1.0]), jitgrad.tensor([1.0, -1.0])
>>> round(F.soft_margin_loss(x, y).item(), 4)
0.3937
"""

from __future__ import annotations

import math

from jitgrad import factories, ops
from jitgrad.errors import ShapeError
from jitgrad.nn.distance import pairwise_distance
from jitgrad.nn.functional import _legacy_reduction, _reduce
from jitgrad.nn.module import Module
from jitgrad.tensor import Tensor


def _stable_log1p_exp(z):
    """``log(1 + exp(z))`` without overflow for large ``z``."""
    return ops.relu(z) + ops.log1p(ops.exp(-ops.abs(z)))


def _zero(x):
    return factories.tensor(0.0, dtype=x.dtype)


def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False,  # noqa: A002
                     size_average=None, eps: float = 1e-8, reduce=None,
                     reduction: str = "mean"):
    """Poisson negative log-likelihood: ``exp(input) - target * input`` (``log_input``) or
    ``input - target * log(input + eps)``; ``full`` adds Stirling's term where target > 1.

    >>> import jitgrad
    >>> round(jitgrad.nn.functional.poisson_nll_loss(jitgrad.tensor([0.0]),
    ...                                              jitgrad.tensor([2.0])).item(), 4)
    1.0
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if log_input:
        loss = ops.exp(input) - target * input
    else:
        loss = input - target * ops.log(input + eps)
    if full:
        safe = ops.where(target > 1, target, 1.0)
        stirling = safe * ops.log(safe) - safe + 0.5 * ops.log(2 * math.pi * safe)
        loss = loss + ops.where(target > 1, stirling, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6,  # noqa: A002
                      reduction: str = "mean"):
    """Gaussian negative log-likelihood ``0.5 (log var + (input - target)**2 / var)`` with
    ``var`` clamped below at ``eps`` (the clamp passes the gradient through, as torch's)."""
    if not isinstance(var, Tensor):
        var = factories.full(tuple(input.shape), float(var), dtype=input.dtype)
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if bool((var.detach() < 0).any()):
        raise ValueError("var has negative entry/entries")
    var = var + (ops.clamp(var, min=eps) - var).detach()
    d = input - target
    loss = 0.5 * (ops.log(var) + d * d / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                        reduce=None, reduction: str = "mean"):
    """``max(0, -target * (input1 - input2) + margin)``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if not input1.ndim == input2.ndim == target.ndim:
        raise ShapeError(f"margin_ranking_loss : All input tensors should have same dimension "
                         f"but got sizes: input1: {list(input1.shape)}, input2: "
                         f"{list(input2.shape)}, target: {list(target.shape)} ")
    return _reduce(ops.relu(-target * (input1 - input2) + margin), reduction)


def hinge_embedding_loss(input, target, margin: float = 1.0, size_average=None,  # noqa: A002
                         reduce=None, reduction: str = "mean"):
    """``input`` where target is 1, ``max(0, margin - input)`` where it is -1 (other target
    values get both terms, as torch)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    z = _zero(input)
    hinge = ops.where(target != 1, ops.relu(margin - input), z)
    keep = ops.where(target != -1, input, z)
    return _reduce(hinge + keep, reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None,  # noqa: A002
                     reduction: str = "mean"):
    """``log(1 + exp(-target * input))``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _reduce(_stable_log1p_exp(-target * input), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None,  # noqa: A002
                                reduce=None, reduction: str = "mean"):
    """Per-class logistic loss averaged over the classes (the last dim) of each sample."""
    from jitgrad.nn.activations import logsigmoid
    reduction = _legacy_reduction(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    loss = loss.sum(input.ndim - 1) / input.shape[-1]
    return _reduce(loss, reduction)


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0, size_average=None,
                          reduce=None, reduction: str = "mean"):
    """``1 - cos(x1, x2)`` where target is 1, ``max(0, cos(x1, x2) - margin)`` where it is -1."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if input1.ndim not in (1, 2) or tuple(input1.shape) != tuple(input2.shape):
        raise ShapeError(f"cosine_embedding_loss: expected 1-D or 2-D inputs of the same shape, "
                         f"got {list(input1.shape)} and {list(input2.shape)}")
    if target.ndim != input1.ndim - 1:
        raise ShapeError(f"{input1.ndim}D target tensor expects {input1.ndim - 1}D input "
                         f"tensors, but found inputs with sizes {list(input1.shape)} and "
                         f"{list(input2.shape)}.")
    d = input1.ndim - 1
    eps = 1e-12  # torch's: it keeps a zero vector's cosine finite
    prod = (input1 * input2).sum(d)
    denom = ops.sqrt(((input1 * input1).sum(d) + eps) * ((input2 * input2).sum(d) + eps))
    cos = prod / denom
    z = _zero(cos)
    loss = ops.where(target == 1, 1 - cos, z) + ops.where(target == -1, ops.relu(cos - margin), z)
    return _reduce(loss, reduction)


def _check_triplet(anchor, positive, negative) -> None:
    a, p, n = anchor.ndim, positive.ndim, negative.ndim
    if not a == p == n:
        raise ShapeError(f"The anchor, positive, and negative tensors are expected to have the "
                         f"same number of dimensions, but got: anchor {a}D, positive {p}D, and "
                         f"negative {n}D inputs")


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean"):
    """``max(0, margin + d(anchor, positive) - d(anchor, negative))`` with the
    ``pairwise_distance`` d; ``swap`` uses the smaller of d(a, n) and d(p, n)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_triplet(anchor, positive, negative)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = ops.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce(ops.relu(margin + d_pos - d_neg), reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin: float = 1.0, swap: bool = False,
                                      reduction: str = "mean"):
    """``triplet_margin_loss`` with any ``distance_function`` (``pairwise_distance`` by
    default)."""
    if margin <= 0:
        raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, "
                         f"got {margin} instead")
    _check_triplet(anchor, positive, negative)
    dist = distance_function if distance_function is not None else pairwise_distance
    d_pos, d_neg = dist(anchor, positive), dist(anchor, negative)
    if swap:
        d_neg = ops.minimum(d_neg, dist(positive, negative))
    return _reduce(ops.relu(margin + d_pos - d_neg), reduction)


def _class_targets(input, target, op: str):  # noqa: A002
    # (a 0-d input is one sample's score of one class, as torch takes it)
    if input.ndim not in (0, 1, 2):
        raise ShapeError(f"{op}: expected a 0-D, 1-D or 2-D input, got shape "
                         f"{list(input.shape)}")
    x = input.reshape(1, -1) if input.ndim <= 1 else input
    return x, target.reshape(x.shape[0], -1)


def multi_margin_loss(input, target, p: int = 1, margin: float = 1.0, weight=None,  # noqa: A002
                      size_average=None, reduce=None, reduction: str = "mean"):
    """Multi-class hinge loss: ``sum over j != y of max(0, margin - x[y] + x[j]) ** p / C``
    (times ``weight[y]``)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    x, t = _class_targets(input, target, "multi_margin_loss")
    n, c = x.shape
    if t.shape[1] != 1:
        raise ShapeError(f"multi_margin_loss: expected a target of shape [{n}], got "
                         f"{list(target.shape)}")
    if bool(((t < 0) | (t >= c)).any()):
        raise IndexError(f"multi_margin_loss: target out of range: class indices must lie in "
                         f"[0, {c})")
    picked = x.take_along_dim(t, 1)
    h = ops.relu(margin - picked + x)
    if p == 2:
        h = h * h
    if weight is not None:
        h = h * weight[t.reshape(-1)].reshape(n, 1)
    h = ops.where(ops.arange(c).reshape(1, c) == t, _zero(h), h)
    loss = h.sum(1) / c
    loss = loss.reshape(()) if input.ndim <= 1 else loss
    return _reduce(loss, reduction)


def multilabel_margin_loss(input, target, size_average=None, reduce=None,  # noqa: A002
                           reduction: str = "mean"):
    """Multi-label hinge loss: ``target`` lists each sample's classes, ended by the first -1;
    ``sum over listed j, unlisted k of max(0, 1 - (x[j] - x[k])) / C``."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    x, t = _class_targets(input, target, "multilabel_margin_loss")
    n, c = x.shape
    if tuple(t.shape) != (n, c):
        raise ShapeError(f"multilabel_margin_loss: target must have the input's shape "
                         f"{list(input.shape)}, got {list(target.shape)}")
    listed = (t == -1).long().cumsum(1) == 0  # entries before the first -1
    safe = ops.where(listed, t, 0)
    is_target = ((safe.unsqueeze(2) == ops.arange(c).reshape(1, 1, c)) & listed.unsqueeze(2))
    is_target = is_target.any(1)  # (n, c)
    xj = x.take_along_dim(safe, 1)  # (n, c): the listed classes' scores
    h = ops.relu(1 - xj.unsqueeze(2) + x.unsqueeze(1))  # (n, j, k)
    mask = listed.unsqueeze(2) & ops.logical_not(is_target).unsqueeze(1)
    loss = ops.where(mask, h, _zero(h)).sum((1, 2)) / c
    loss = loss.reshape(()) if input.ndim <= 1 else loss
    return _reduce(loss, reduction)


def linear_cross_entropy(input, linear_weight, target, *, linear_bias=None,  # noqa: A002
                         weight=None, reduction: str = "mean", ignore_index: int | None = None,
                         label_smoothing: float = 0.0, options=None):
    """``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``, as torch's:
    ``input`` (N, in) or unbatched (in); ``linear_weight`` (C, in), or (C, d1, ..., dK, in) for
    a K-dimensional loss, whose logits are laid out (N, C, d1, ..., dK). ``options`` (torch's
    chunking of the product) changes no value and is accepted as such.

    >>> import jitgrad
    >>> x, w = jitgrad.ones(2, 3), jitgrad.zeros(4, 3)
    >>> round(jitgrad.nn.functional.linear_cross_entropy(x, w, jitgrad.tensor([0, 3])).item(), 4)
    1.3863
    """
    from jitgrad.nn.functional import cross_entropy, linear
    if input.ndim not in (1, 2):
        raise ShapeError(f"linear_cross_entropy: expected an input of 1 or 2 dimensions, got "
                         f"shape {list(input.shape)}")
    if linear_weight.ndim < 2 or linear_weight.shape[-1] != input.shape[-1]:
        raise ShapeError(f"linear_cross_entropy: linear_weight must be (C, ..., in_features) "
                         f"with in_features {input.shape[-1]} as the input's, got shape "
                         f"{list(linear_weight.shape)}")
    classes, extra = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (classes, *extra):
        raise ShapeError(f"linear_cross_entropy: expected linear_bias of shape "
                         f"{[classes, *extra]}, got {list(linear_bias.shape)}")
    if extra and input.ndim == 1:
        raise ShapeError(f"linear_cross_entropy: a K-dimensional loss (linear_weight of shape "
                         f"{list(linear_weight.shape)}) needs a batched input (N, "
                         f"{input.shape[-1]}), got shape {list(input.shape)}")
    outs = math.prod(extra)
    logits = linear(input, linear_weight.reshape(classes * outs, -1),
                    None if linear_bias is None else linear_bias.reshape(-1))
    logits = logits.reshape(*input.shape[:-1], classes, *extra)
    probabilities = tuple(target.shape) == tuple(logits.shape)
    if probabilities and ignore_index is not None:
        raise ValueError("linear_cross_entropy: ignore_index cannot be given when the target "
                         "holds class probabilities")
    return cross_entropy(logits, target, weight=weight, reduction=reduction,
                         ignore_index=-100 if ignore_index is None else ignore_index,
                         label_smoothing=label_smoothing)


# --- Modules ---------------------------------------------------------------------------------

class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _legacy_reduction(size_average, reduce, reduction)


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.weight = weight


class PoissonNLLLoss(_Loss):
    def __init__(self, log_input: bool = True, full: bool = False, size_average=None,
                 eps: float = 1e-8, reduce=None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input, target):
        return poisson_nll_loss(log_input, target, self.log_input, self.full, eps=self.eps,
                                reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    def __init__(self, *, full: bool = False, eps: float = 1e-6,
                 reduction: str = "mean") -> None:
        super().__init__(None, None, reduction)
        self.full, self.eps = full, eps

    def forward(self, input, target, var):  # noqa: A002
        return gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)


class _MarginLoss(_Loss):
    _default = 0.0

    def __init__(self, margin: float | None = None, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = self._default if margin is None else margin


class MarginRankingLoss(_MarginLoss):
    def forward(self, input1, input2, target):
        return margin_ranking_loss(input1, input2, target, self.margin,
                                   reduction=self.reduction)


class CosineEmbeddingLoss(_MarginLoss):
    def forward(self, input1, input2, target):
        return cosine_embedding_loss(input1, input2, target, self.margin,
                                     reduction=self.reduction)


class HingeEmbeddingLoss(_MarginLoss):
    _default = 1.0

    def forward(self, input, target):  # noqa: A002
        return hinge_embedding_loss(input, target, self.margin, reduction=self.reduction)


class SoftMarginLoss(_Loss):
    def forward(self, input, target):  # noqa: A002
        return soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    def forward(self, input, target):  # noqa: A002
        return multilabel_soft_margin_loss(input, target, self.weight,
                                           reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    def forward(self, input, target):  # noqa: A002
        return multilabel_margin_loss(input, target, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    def __init__(self, p: int = 1, margin: float = 1.0, weight=None, size_average=None,
                 reduce=None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if p not in (1, 2):
            raise ValueError("only p == 1 and p == 2 supported")
        self.p, self.margin = p, margin

    def forward(self, input, target):  # noqa: A002
        return multi_margin_loss(input, target, self.p, self.margin, self.weight,
                                 reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """``torch.nn.TripletMarginLoss``.

    >>> import jitgrad
    >>> a = jitgrad.zeros(2, 3)
    >>> jitgrad.nn.TripletMarginLoss(margin=0.5)(a, a, a + 1).item()
    0.0
    """

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6,
                 swap: bool = False, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got "
                             f"{margin} instead")
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor, positive, negative):
        return triplet_margin_loss(anchor, positive, negative, self.margin, self.p, self.eps,
                                   self.swap, reduction=self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
    def __init__(self, *, distance_function=None, margin: float = 1.0, swap: bool = False,
                 reduction: str = "mean") -> None:
        super().__init__(None, None, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater "
                             f"than 0, got {margin} instead")
        self.distance_function = distance_function
        self.margin, self.swap = margin, swap

    def forward(self, anchor, positive, negative):
        return triplet_margin_with_distance_loss(
            anchor, positive, negative, distance_function=self.distance_function,
            margin=self.margin, swap=self.swap, reduction=self.reduction)
