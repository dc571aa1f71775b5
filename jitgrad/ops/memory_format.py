"""torch's memory formats (``jitgrad.contiguous_format``, ``preserve_format``,
``channels_last``), accepted wherever torch takes ``memory_format=``: ``clone``,
``contiguous``, ``to`` and the dtype casts, the ``*_like`` factories. A format decides only the
strides of an eager result (which ``view`` reads), never its values; compiled code has no
layouts, so inside a trace a format is accepted and changes nothing.

>>> import jitgrad
>>> x = jitgrad.ones(2, 3).t()
>>> x.clone().is_contiguous(), x.clone(memory_format=jitgrad.contiguous_format).is_contiguous()
(False, True)
"""

from __future__ import annotations

import numpy as np


class memory_format:  # noqa: N801  (torch.memory_format)
    """One memory layout of a tensor's elements; compare by identity, as torch's."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"jitgrad.{self.name}"

    def __reduce__(self):
        return self.name  # pickles as the module-level singleton


contiguous_format = memory_format("contiguous_format")
preserve_format = memory_format("preserve_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
_FORMATS = (contiguous_format, preserve_format, channels_last, channels_last_3d)


def check(fmt, op: str):
    """``fmt`` itself if it is a memory format (or None: preserve), else a TypeError."""
    if fmt is None or any(fmt is f for f in _FORMATS):
        return fmt
    raise TypeError(f"{op}(): argument 'memory_format' must be a jitgrad.memory_format "
                    f"(jitgrad.contiguous_format, jitgrad.preserve_format, "
                    f"jitgrad.channels_last), not {type(fmt).__name__}")


def dense(arr: np.ndarray) -> np.ndarray:
    """``arr`` as a C-contiguous array: itself where it is one, else a copy (not
    ``np.ascontiguousarray``, which makes a 0-d array 1-d)."""
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


def laid_out(arr: np.ndarray, fmt) -> np.ndarray:
    """``arr``'s values with the strides ``fmt`` gives a new tensor (``arr`` itself where they
    are already so); None and ``preserve_format`` keep ``arr``'s own."""
    if fmt is None or fmt is preserve_format:
        return arr
    if fmt is contiguous_format:
        return dense(arr)
    dims = {channels_last: 4, channels_last_3d: 5}[fmt]
    if arr.ndim != dims:
        raise RuntimeError(f"required rank {dims} tensor to use {fmt.name} format, got a tensor "
                           f"of {arr.ndim} dimensions")
    last = (0,) + tuple(range(2, dims)) + (1,)  # N, spatial..., C: channels fastest
    back = tuple(int(i) for i in np.argsort(last))
    return np.ascontiguousarray(arr.transpose(last)).transpose(back)
