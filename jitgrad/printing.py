"""torch-style tensor printing: ``tensor([1., 2.])``, ``tensor(0.5000)``, dtype and grad suffixes."""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes

_PREFIX = "tensor("


def _float_formatter(arr: np.ndarray):
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        return lambda v: _special(v) or f"{v:.4f}"
    absf = np.abs(finite)
    if np.all(finite == np.round(finite)) and absf.max() < 1e8:
        return lambda v: _special(v) or f"{v:.0f}."
    nz = absf[absf > 0]
    if absf.max() >= 1e8 or (nz.size and (nz.min() < 1e-4 or absf.max() / nz.min() > 1e3
                                            and nz.min() < 1e-2)):
        return lambda v: _special(v) or f"{v:.4e}"
    return lambda v: _special(v) or f"{v:.4f}"


def _special(v) -> str | None:
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


def format_tensor(arr: np.ndarray, dtype: dtypes.DType, suffix: str = "") -> str:
    if dtype.is_floating_point:
        base = _float_formatter(arr)
        sample = arr if arr.size <= 1000 else np.concatenate(
            [arr.reshape(-1)[:3], arr.reshape(-1)[-3:]])
        # As torch: the width of the finite values; inf and nan are not padded out to theirs
        width = max((len(base(v)) for v in sample.reshape(-1) if np.isfinite(v)), default=0)
        fmt = {"float_kind": lambda v: base(v).rjust(width)}
    else:
        fmt = None
    if arr.size == 0:
        body = "[]" if arr.ndim == 1 else f"[], size={tuple(arr.shape)}"
    else:
        body = np.array2string(arr, separator=", ", prefix=_PREFIX, formatter=fmt,
                               threshold=1000, edgeitems=3, max_line_width=80)
    extra = ""
    if dtype not in (dtypes.float32, dtypes.int64, dtypes.bool_):
        extra = f", dtype={dtype!r}"
    return f"{_PREFIX}{body}{extra}{suffix})"
