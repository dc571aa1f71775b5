"""Connectionist temporal classification: ``nn.functional.ctc_loss`` and ``nn.CTCLoss``.

The loss is the log-space forward (alpha) recursion over each target's extended label sequence
(a blank before, between and after the labels), written with jitgrad ops and vectorised over
the batch and the extended labels, one step per time frame; autograd differentiates it.

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> log_probs = jitgrad.zeros(3, 1, 2).log_softmax(2)   # T=3 frames, N=1, C=2 (blank 0)
>>> round(F.ctc_loss(log_probs, jitgrad.tensor([[1]]), [3], [1], reduction="sum").item(), 4)
0.2877
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes, factories, ops
from jitgrad.autograd.function import Function
from jitgrad.autograd.graph import rename
from jitgrad.errors import ShapeError
from jitgrad.nn.losses import _Loss
from jitgrad.tensor import Tensor

# log(0) stand-in: finite, so that the recursion's unreachable states carry no NaN into the
# gradient (logsumexp of all -inf has a NaN derivative); a log-likelihood below half of it
# means no alignment exists, and the loss is inf as torch's.
_NEG = -1e30


def _lengths(x, name: str, n: int) -> np.ndarray:
    """``input_lengths``/``target_lengths`` (a Tensor or a sequence of ints) as int64 (n,)."""
    if isinstance(x, Tensor):
        if x.dtype.is_floating_point or x.dtype.name == "bool":
            raise TypeError(f"ctc_loss(): {name} must be integral, got a {x.dtype.name} tensor")
        v = np.asarray(x.tolist(), dtype=np.int64).reshape(-1)  # (guarded when traced)
    elif isinstance(x, (list, tuple)):
        if not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in x):
            raise TypeError(f"ctc_loss(): {name} must be a Tensor or a sequence of ints, got "
                            f"{[type(i).__name__ for i in x]}")
        v = np.asarray(x, dtype=np.int64).reshape(-1)
    else:
        raise TypeError(f"ctc_loss(): {name} must be a Tensor or a tuple/list of ints, got "
                        f"{type(x).__name__}")
    if v.shape[0] != n:
        raise RuntimeError(f"ctc_loss: {name} must be of size batch_size ({n}), got {v.shape[0]}")
    return v


def _padded_targets(targets: Tensor, tl: np.ndarray, n: int) -> np.ndarray:
    """The labels as an (N, max target length) int64 array (past each length: 0), checked
    against ``target_lengths`` the way torch checks them."""
    if targets.ndim not in (1, 2):
        raise ShapeError(f"ctc_loss: expected targets of 1 (concatenated) or 2 (N, S) "
                         f"dimensions, got a {targets.ndim}-dimensional tensor")
    bad = np.flatnonzero(tl < 0)
    if bad.size:
        raise RuntimeError(f"ctc_loss: expected target_lengths to have value at least 0, but "
                           f"got value {tl[bad[0]]}")
    tv = np.asarray(targets.tolist()).astype(np.int64).reshape(targets.shape)
    smax = int(tl.max()) if n else 0
    out = np.zeros((n, smax), np.int64)
    if targets.ndim == 1:
        total = int(tl.sum())
        if tv.shape[0] != total:
            raise ShapeError(f"ctc_loss: concatenated targets must have sum(target_lengths) = "
                             f"{total} elements, got {tv.shape[0]}")
        starts = np.concatenate([[0], np.cumsum(tl)[:-1]]).astype(np.int64)
        for b in range(n):
            out[b, :tl[b]] = tv[starts[b]:starts[b] + tl[b]]
    else:
        if tv.shape[0] != n:
            raise ShapeError(f"ctc_loss: expected targets to have size {n} (the batch size) at "
                             f"dimension 0, got size {tv.shape[0]}")
        if tv.shape[1] < smax:
            raise ShapeError(f"ctc_loss: expected targets to have size at least {smax} (the "
                             f"largest target_lengths) at dimension 1, got size {tv.shape[1]}")
        for b in range(n):  # what lies past a target's length is never read
            out[b, :tl[b]] = tv[b, :tl[b]]
    return out


class _NanGrad(Function):
    """Zeros (N,), whose backward gives ``log_probs`` (T, N, C) a NaN gradient where ``mask``
    (T, N, 1) is true, and 0 elsewhere: torch's gradient on the frames of an impossible
    alignment, whose loss is inf (without ``zero_infinity``)."""

    @staticmethod
    def forward(ctx, log_probs, mask):
        ctx.mask, ctx.shape, ctx.dtype = mask, tuple(log_probs.shape), log_probs.dtype
        return factories.zeros(ctx.shape[1], dtype=ctx.dtype)

    @staticmethod
    def backward(ctx, g):
        return ops.where(ctx.mask, float("nan"), factories.zeros(ctx.shape, dtype=ctx.dtype)), None


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False):
    """The CTC loss of ``log_probs`` (T, N, C), or unbatched (T, C), log-probabilities over C
    classes (``blank`` among them) against ``targets``: padded (N, S) or all concatenated
    (sum(target_lengths),). ``input_lengths`` and ``target_lengths`` (Tensors or sequences of
    ints, one per sample) say how many frames and labels each sample has. ``reduction``
    ``"mean"`` divides each loss by its target length (at least 1) and averages; ``"sum"`` adds
    them; ``"none"`` gives the (N,) losses. An impossible alignment (too few frames) has an
    infinite loss, which ``zero_infinity`` turns into 0 with a zero gradient.

    The gradient with respect to ``log_probs`` is torch's: ``exp(log_probs)`` minus the
    alignment posterior on each sample's frames, i.e. the gradient torch's fused kernel gives,
    which assumes ``log_probs`` come from ``log_softmax`` (the extra ``exp(log_probs)`` cancels
    through it).

    >>> import jitgrad
    >>> import jitgrad.nn.functional as F
    >>> lp = jitgrad.zeros(4, 2, 3).log_softmax(2).requires_grad_()
    >>> loss = F.ctc_loss(lp, jitgrad.tensor([[1, 2], [1, 1]]), [4, 4], [2, 2])
    >>> round(loss.item(), 4)
    1.1179
    >>> loss.backward()
    >>> lp.grad.shape
    jitgrad.Size([4, 2, 3])
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    for name, x in (("log_probs", log_probs), ("targets", targets)):
        if not isinstance(x, Tensor):
            raise TypeError(f"ctc_loss(): argument '{name}' must be Tensor, not "
                            f"{type(x).__name__}")
    if log_probs.ndim not in (2, 3):
        raise ShapeError(f"ctc_loss: expected log_probs of shape (T, N, C), or (T, C) unbatched, "
                         f"got a {log_probs.ndim}-dimensional tensor of shape "
                         f"{list(log_probs.shape)}")
    if not log_probs.dtype.is_floating_point:
        raise TypeError(f"ctc_loss: log_probs must be a floating-point tensor, got "
                        f"{log_probs.dtype.name}")
    batched = log_probs.ndim == 3
    lp = log_probs if batched else log_probs.unsqueeze(1)
    t_max, n, c = (int(s) for s in lp.shape)
    if lp.numel() == 0:
        raise RuntimeError("ctc_loss: log_probs tensor must not be empty")
    if not 0 <= blank < c:
        raise RuntimeError(f"ctc_loss: blank must be in label range [0, {c}), got {blank}")
    il = _lengths(input_lengths, "input_lengths", n)
    tl = _lengths(target_lengths, "target_lengths", n)
    labels = _padded_targets(targets, tl, n)
    for b in range(n):
        if not 0 <= il[b] <= t_max:
            raise RuntimeError(f"ctc_loss: expected input_lengths to have value in [0, {t_max}] "
                               f"(the {t_max} frames of log_probs), but got value {il[b]}")
        row = labels[b, :tl[b]]
        if ((row < 0) | (row >= c)).any():
            raise IndexError(f"ctc_loss: targets value {int(row[(row < 0) | (row >= c)][0])} "
                             f"is out of bounds: labels must lie in [0, {c})")

    nll = _neg_log_likelihood(lp, labels, il, tl, blank)
    infeasible = nll > -_NEG / 2
    # torch's gradient adds exp(log_probs) on each sample's frames (see the docstring): a term
    # of value 0 carries it
    frames = factories.tensor(np.arange(t_max)[:, None, None] < il[None, :, None])
    e = ops.where(frames, ops.exp(lp), 0.0).sum((0, 2))
    loss = nll + (e - e.detach())
    if zero_infinity:
        loss = ops.where(infeasible, 0.0, loss)
    else:
        loss = ops.where(infeasible, float("inf"), loss)
        loss = loss + _NanGrad.apply(lp, frames & infeasible[:, None])
        loss = rename(loss, "CtcLossBackward0")
    if reduction == "mean":
        return (loss / factories.tensor(np.maximum(tl, 1), dtype=lp.dtype)).mean()
    if reduction == "sum":
        return loss.sum()
    return loss if batched else loss.squeeze(0)


def _neg_log_likelihood(lp, labels: np.ndarray, il: np.ndarray, tl: np.ndarray, blank: int):
    """-log p(target | log_probs) per sample, (N,): the alpha recursion over the extended labels
    ``blank, l1, blank, l2, ..., blank`` (length L = 2 S + 1). Impossible alignments come out
    near ``-_NEG``."""
    n, smax = labels.shape
    length = 2 * smax + 1
    ext = np.full((n, length), blank, np.int64)
    ext[:, 1::2] = labels
    # a label may follow the label two states back (skipping the blank) unless they are equal
    skip = np.zeros((n, length), bool)
    skip[:, 3::2] = labels[:, 1:] != labels[:, :-1]
    # no frames: probability 1 for an empty target, 0 otherwise
    empty = factories.tensor(np.where(tl == 0, 0.0, _NEG), dtype=dtypes.float64)
    steps = int(il.max()) if n else 0
    if steps == 0:
        return (-empty).to(lp.dtype)
    # the emissions of every state at every frame, (T, N, L); log(0) clamped to _NEG. The
    # recursion runs in float64 (float32's rounding over T steps would reach 1e-5 in the
    # gradient): its result is cast back to log_probs' dtype
    emit = ops.maximum(lp[:steps, np.arange(n)[:, None], ext].to(dtypes.float64), _NEG)
    pos = np.arange(length)[None, :]
    alpha = ops.where(factories.tensor((pos < 2) & (il[:, None] > 0)), emit[0], _NEG)
    skip_t = factories.tensor(skip)
    pad = factories.full((n, 2), _NEG, dtype=dtypes.float64)
    for t in range(1, steps):
        shifted = ops.cat([pad, alpha], 1)
        prev = ops.where(skip_t, shifted[:, :length], _NEG)
        new = ops.logsumexp(ops.stack([alpha, shifted[:, 1:length + 1], prev]), 0) + emit[t]
        alpha = ops.where(factories.tensor(il[:, None] > t), new, alpha)
    # the path ends on the last label or the blank after it
    last = 2 * tl
    ends = alpha[np.arange(n)[:, None], np.stack([last, np.maximum(last - 1, 0)], 1)]
    ends = ops.where(factories.tensor(np.stack([np.ones(n, bool), tl > 0], 1)), ends, _NEG)
    ll = ops.logsumexp(ends, 1)
    ll = ops.where(factories.tensor(il == 0), empty, ll)
    return (-ll).to(lp.dtype)


class CTCLoss(_Loss):
    """``torch.nn.CTCLoss``: ``ctc_loss`` with ``blank``, ``reduction`` and ``zero_infinity``
    fixed at construction.

    >>> import jitgrad
    >>> lp = jitgrad.zeros(3, 2).log_softmax(1)       # unbatched: T=3, C=2
    >>> round(jitgrad.nn.CTCLoss(reduction="sum")(lp, jitgrad.tensor([1]), [3], [1]).item(), 4)
    0.2877
    """

    def __init__(self, blank: int = 0, reduction: str = "mean",
                 zero_infinity: bool = False) -> None:
        super().__init__(reduction=reduction)
        self.blank, self.zero_infinity = blank, zero_infinity

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank,
                        self.reduction, self.zero_infinity)
