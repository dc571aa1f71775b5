"""torch-style tensor printing: ``tensor([1., 2.])``, ``tensor(0.5000)``, dtype and grad suffixes.

The layout follows torch's printer, so that logs and doctests read the same under jitgrad:
every element is padded to the width of the widest one (a bool tensor pads ``True`` to
``' True'`` only when a ``False`` is there to line up with); a row holds as many elements as
fit in 80 columns after its indent; a tensor of more than 1000 elements shows its first and
last 3 along each dimension; and a suffix (``dtype=``, ``requires_grad=True``) that would pass
the 80th column starts a new line.

>>> import jitgrad
>>> jitgrad.tensor([True, True]), jitgrad.tensor([True, False])
(tensor([True, True]), tensor([ True, False]))
>>> jitgrad.arange(12.).reshape(1, 12) / 7
tensor([[0.0000, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1.0000, 1.1429,
         1.2857, 1.4286, 1.5714]])
"""

from __future__ import annotations

import math

import numpy as np

from jitgrad import dtypes

_PREFIX = "tensor("
_LINEWIDTH, _THRESHOLD, _EDGEITEMS, _PRECISION = 80, 1000, 3, 4


class _Formatter:
    """One format for every element of a tensor, chosen from its (summarized) values."""

    def __init__(self, values: np.ndarray, floating: bool) -> None:
        self.floating, self.int_mode, self.sci_mode, self.width = floating, True, False, 1
        flat = values.reshape(-1)
        if not floating:
            self.width = max((len(str(v)) for v in flat.tolist()), default=1)
            return
        # zeros, inf and nan neither choose the mode nor widen the column
        finite = flat[np.isfinite(flat) & (flat != 0)].astype(np.float64)
        if finite.size == 0:
            return
        absf = np.abs(finite)
        lo, hi = absf.min(), absf.max()
        self.int_mode = bool(np.all(finite == np.ceil(finite)))
        self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or (not self.int_mode and lo < 1.0e-4)
        if self.sci_mode:
            self.width = max(len(f"{v:.{_PRECISION}e}") for v in finite.tolist())
        elif self.int_mode:
            self.width = max(len(f"{v:.0f}") + 1 for v in finite.tolist())  # with its "."
        else:
            self.width = max(len(f"{v:.{_PRECISION}f}") for v in finite.tolist())

    def __call__(self, v) -> str:
        if not self.floating:
            text = str(v)
        elif self.sci_mode:
            text = f"{v:.{_PRECISION}e}"
        elif self.int_mode:
            text = f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
        else:
            text = f"{v:.{_PRECISION}f}"
        return text.rjust(self.width)


def _summarized(arr: np.ndarray) -> np.ndarray:
    """The elements a summarized print shows: the first and last few along each dimension."""
    if arr.ndim == 0:
        return arr
    if arr.shape[0] > 2 * _EDGEITEMS:
        arr = np.concatenate([arr[:_EDGEITEMS], arr[-_EDGEITEMS:]])
    return np.stack([_summarized(x) for x in arr]) if arr.ndim > 1 else arr


def _vector(arr: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    per_line = max(1, (_LINEWIDTH - indent) // (fmt.width + 2))  # ", " after each element
    if summarize and arr.shape[0] > 2 * _EDGEITEMS:
        items = ([fmt(v) for v in arr[:_EDGEITEMS].tolist()] + [" ..."]
                 + [fmt(v) for v in arr[-_EDGEITEMS:].tolist()])
    else:
        items = [fmt(v) for v in arr.tolist()]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested(arr: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if arr.ndim == 0:
        return fmt(arr.item())
    if arr.ndim == 1:
        return _vector(arr, indent, summarize, fmt)
    rows = range(arr.shape[0])
    if summarize and arr.shape[0] > 2 * _EDGEITEMS:
        rows = [*range(_EDGEITEMS), None, *range(arr.shape[0] - _EDGEITEMS, arr.shape[0])]
    parts = ["..." if i is None else _nested(arr[i], indent + 1, summarize, fmt) for i in rows]
    # a blank line between blocks of 3-D and higher, as torch
    return "[" + ("," + "\n" * (arr.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def _with_suffixes(text: str, suffixes: list[str]) -> str:
    # torch's rule: a suffix goes on a new line when it would pass the line width (the "+ 1"
    # and "+ 2" mirror how torch counts the current line and the ", " before the suffix)
    line = len(text) - text.rfind("\n") + 1
    for s in suffixes:
        if line + len(s) + 2 > _LINEWIDTH:
            text += ",\n" + " " * len(_PREFIX) + s
            line = len(_PREFIX) + len(s)
        else:
            text += ", " + s
            line += len(s) + 2
    return text + ")"


def format_tensor(arr: np.ndarray, dtype: dtypes.DType, suffix: str = "") -> str:
    suffixes = []
    if arr.size == 0:
        body = "[]"
        if arr.ndim != 1:
            suffixes.append(f"size={tuple(arr.shape)}")
        if dtype is not dtypes.float32:  # nothing printed shows an empty tensor's dtype
            suffixes.append(f"dtype={dtype!r}")
    else:
        summarize = arr.size > _THRESHOLD
        fmt = _Formatter(_summarized(arr) if summarize else arr, dtype.is_floating_point)
        body = _nested(arr, len(_PREFIX), summarize, fmt)
        if dtype not in (dtypes.float32, dtypes.int64, dtypes.bool_):
            suffixes.append(f"dtype={dtype!r}")
    if suffix:
        suffixes.append(suffix.removeprefix(", "))
    return _with_suffixes(_PREFIX + body, suffixes)
