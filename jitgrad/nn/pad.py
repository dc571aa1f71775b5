"""Padding as ``torch.nn.functional.pad``, and the ``*Pad*d`` Modules. Constant padding is a
``cat`` with filled blocks (a negative amount crops with ``narrow``); reflect, replicate and
circular padding are one ``index_select`` per padded dim with an index computed from the shapes
(a constant of the trace), so the gradient is the matching scatter-add.

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> F.pad(jitgrad.tensor([[1.0, 2.0, 3.0]]), (2, 1), mode="reflect").tolist()
[[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]
"""

from __future__ import annotations

import numpy as np

from jitgrad import factories, ops
from jitgrad.nn.module import Module

_MODES = ("constant", "reflect", "replicate", "circular")


def take(x, dim: int, index: np.ndarray):
    """``x.index_select(dim, index)`` for a constant NumPy ``index``, written as a gather on
    the leading dim (between two ``movedim``s): the compiled backends lower that form in the
    kernel, where a gather on an inner dim would run on the host."""
    at = factories.tensor(np.asarray(index, dtype=np.int64).reshape(-1))
    if dim == 0:
        return x[at]
    return ops.movedim(ops.movedim(x, dim, 0)[at], 0, dim)


def _source_index(n: int, before: int, after: int, mode: str, dim: int, shape) -> np.ndarray:
    """For each output position along a dim of length ``n`` padded by ``before``/``after``
    (negative: cropped), the input position it copies."""
    if n + before + after < 1:
        raise RuntimeError(f"pad: input (size {n} of dimension {dim}) is too small for the "
                           f"padding ({before}, {after}): the output would have size "
                           f"{n + before + after}")
    pos = np.arange(-before, n + after)
    if mode == "reflect":
        if before >= n or after >= n:
            raise RuntimeError(f"pad: reflect padding ({before}, {after}) must be less than the "
                             f"size {n} of dimension {dim} of the input of shape {list(shape)}")
        period = 2 * (n - 1) if n > 1 else 1
        pos = np.abs(pos) % period
        return np.where(pos >= n, period - pos, pos)
    if mode == "replicate":
        if n == 0:
            raise RuntimeError(f"pad: replicate padding needs a non-empty dimension {dim} "
                               f"(input shape {list(shape)})")
        return np.clip(pos, 0, n - 1)
    # as torch: a negative amount crops first, and the padding wraps around what is left
    kept = np.arange(max(-before, 0), n - max(-after, 0))
    m = len(kept)
    if before > m or after > m:
        raise RuntimeError(f"pad: circular padding ({before}, {after}) wraps around more than "
                           f"once: it must be at most the size {m} of dimension {dim} of the "
                           f"input of shape {list(shape)}")
    return kept[np.arange(-max(before, 0), m + max(after, 0)) % m]


def _pad_constant(x, pairs, value: float):
    grown = False
    for dim, (lo, hi) in pairs:
        n = x.shape[dim]
        if lo < 0 or hi < 0:  # crop first
            start, stop = max(-lo, 0), n - max(-hi, 0)
            if stop < start:
                raise ValueError(f"pad: the negative padding ({lo}, {hi}) removes more than the "
                                 f"{n} elements of dimension {dim}")
            x = ops.narrow(x, dim, start, stop - start)
        parts = []
        for amount in (lo, hi):
            shape = list(x.shape)
            shape[dim] = max(amount, 0)
            parts.append(factories.full(tuple(shape), value, dtype=x.dtype))
        if lo > 0 or hi > 0:
            grown = True
            x = ops.cat([parts[0], x, parts[1]] if lo > 0 and hi > 0 else
                        ([parts[0], x] if lo > 0 else [x, parts[1]]), dim)
    # torch's pad always makes a new tensor: no padding, or cropping only, is not a view of
    # the input that a write would go through
    return x if grown else ops.clone(x)


def pad(input, pad, mode: str = "constant", value: float | None = None):  # noqa: A002
    """Pad the last ``len(pad) // 2`` dims of ``input``: ``pad`` lists (before, after) amounts
    starting from the last dim. ``mode`` is ``"constant"`` (filled with ``value``, 0 by
    default; negative amounts crop), ``"reflect"``, ``"replicate"`` or ``"circular"`` (those
    pad the last 1, 2 or 3 dims of a batched or unbatched input, as torch).

    >>> import jitgrad
    >>> x = jitgrad.tensor([[1.0, 2.0]])
    >>> jitgrad.nn.functional.pad(x, (1, 1), value=9.0).tolist()
    [[9.0, 1.0, 2.0, 9.0]]
    >>> jitgrad.nn.functional.pad(x[None], (0, 0, 1, 0), mode="replicate").tolist()
    [[[1.0, 2.0], [1.0, 2.0]]]
    """
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise RuntimeError(f"pad: padding length must be divisible by 2, got {len(pad)}")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError(f"pad: padding length should be less than or equal to two times the "
                         f"input dimension but got padding length {len(pad)} and input of "
                         f"dimension {input.ndim}")
    if mode not in _MODES:
        raise NotImplementedError(f"pad: unrecognised padding mode {mode!r}: use one of "
                                  f"{', '.join(repr(m) for m in _MODES)}")
    pairs = [(input.ndim - 1 - i, (pad[2 * i], pad[2 * i + 1])) for i in range(len(pad) // 2)]
    if mode == "constant":
        return _pad_constant(input, pairs, 0.0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f"pad: padding mode {mode!r} doesn't take in value argument")
    k = len(pairs)
    if k > 3 or input.ndim not in (k + 1, k + 2):
        raise NotImplementedError(
            f"pad: {mode} padding of the last {k} dim(s) needs a {k + 1}-D or {k + 2}-D input "
            f"(only 1, 2 or 3 padded dims), got an input of shape {list(input.shape)}")
    x = input
    for dim, (lo, hi) in pairs:
        idx = _source_index(x.shape[dim], lo, hi, mode, dim, input.shape)
        x = take(x, dim, idx)
    return x


# --- Modules ---------------------------------------------------------------------------------

class _PadNd(Module):
    _n = 1
    _mode = "constant"

    def __init__(self, padding) -> None:
        super().__init__()
        if isinstance(padding, int):
            padding = (padding,) * (2 * self._n)
        padding = tuple(int(p) for p in padding)
        if len(padding) != 2 * self._n:
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple of "
                             f"{2 * self._n} ints, got {padding}")
        self.padding = padding

    def forward(self, input):  # noqa: A002
        return pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return str(self.padding)


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input):  # noqa: A002
        return pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


def _pad_class(name: str, n: int, mode: str, base=_PadNd):
    doc = f"``torch.nn.{name}``: {mode} padding of the last {n} dim(s)."
    return type(name, (base,), {"_n": n, "_mode": mode, "__doc__": doc,
                                "__module__": __name__})


ConstantPad1d = _pad_class("ConstantPad1d", 1, "constant", _ConstantPadNd)
ConstantPad2d = _pad_class("ConstantPad2d", 2, "constant", _ConstantPadNd)
ConstantPad3d = _pad_class("ConstantPad3d", 3, "constant", _ConstantPadNd)
ReflectionPad1d = _pad_class("ReflectionPad1d", 1, "reflect")
ReflectionPad2d = _pad_class("ReflectionPad2d", 2, "reflect")
ReflectionPad3d = _pad_class("ReflectionPad3d", 3, "reflect")
ReplicationPad1d = _pad_class("ReplicationPad1d", 1, "replicate")
ReplicationPad2d = _pad_class("ReplicationPad2d", 2, "replicate")
ReplicationPad3d = _pad_class("ReplicationPad3d", 3, "replicate")
CircularPad1d = _pad_class("CircularPad1d", 1, "circular")
CircularPad2d = _pad_class("CircularPad2d", 2, "circular")
CircularPad3d = _pad_class("CircularPad3d", 3, "circular")


class ZeroPad1d(ConstantPad1d):
    """``torch.nn.ZeroPad1d``.

    >>> import jitgrad
    >>> jitgrad.nn.ZeroPad2d(1)
    ZeroPad2d((1, 1, 1, 1))
    """

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return str(self.padding)


class ZeroPad2d(ZeroPad1d):
    _n = 2


class ZeroPad3d(ZeroPad1d):
    _n = 3
