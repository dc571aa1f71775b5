"""The dtypes jitgrad speaks (torch's: bool, uint8, int8, int16, int32, int64, float32,
float64), and torch's type-promotion rule.

>>> import jitgrad
>>> jitgrad.tensor([1.0]).dtype
jitgrad.float32
"""

from __future__ import annotations

import numpy as np


class DType:
    """A jitgrad dtype: a name, the NumPy dtype behind it, and its category."""

    __slots__ = ("name", "np", "category", "is_floating_point", "itemsize")

    def __init__(self, name: str, np_dtype: type, category: int) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        # 0 bool < 1 integer < 2 floating: promotion climbs this ladder.
        self.category = category
        self.is_floating_point = category == 2
        self.itemsize = self.np.itemsize

    def __repr__(self) -> str:
        return f"jitgrad.{self.name}"

    def __reduce__(self):
        return (from_numpy_dtype, (self.np,))


bool_ = DType("bool", np.bool_, 0)
uint8 = DType("uint8", np.uint8, 1)
int8 = DType("int8", np.int8, 1)
int16 = DType("int16", np.int16, 1)
int32 = DType("int32", np.int32, 1)
int64 = DType("int64", np.int64, 1)
float32 = DType("float32", np.float32, 2)
float64 = DType("float64", np.float64, 2)

ALL = (bool_, uint8, int8, int16, int32, int64, float32, float64)
INTEGERS = (uint8, int8, int16, int32, int64)
_BY_NP = {d.np: d for d in ALL}
_BY_NAME = {d.name: d for d in ALL}
_BY_NAME.update({"float": float32, "double": float64, "long": int64, "int": int32,
                 "short": int16, "f32": float32, "f64": float64, "i64": int64, "i32": int32,
                 "i16": int16, "i8": int8, "u8": uint8})
_ORDER = {bool_: 0, uint8: 1, int8: 1, int16: 2, int32: 3, int64: 4, float32: 5, float64: 6}
# NumPy dtypes that have a lossless home among ours (torch has no uint16/uint32 arithmetic).
_NP_PROMOTE = {np.dtype(np.uint16): int32, np.dtype(np.uint32): int64,
               np.dtype(np.float16): float32}
_SUPPORTED = "bool, uint8, int8, int16, int32, int64, float32 and float64"

default_float = float32


def from_numpy_dtype(dt) -> DType:
    """Map a NumPy dtype onto ours; a dtype with no lossless home is a TypeError."""
    dt = np.dtype(dt)
    d = _BY_NP.get(dt) or _NP_PROMOTE.get(dt)
    if d is None:
        raise TypeError(f"unsupported dtype {dt}: jitgrad supports {_SUPPORTED}")
    return d


def as_dtype(d) -> DType:
    """Accept a jitgrad dtype, a NumPy dtype or type, a Python type, or a name."""
    if isinstance(d, DType):
        return d
    if d is float:
        return float32
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d]
    try:
        return from_numpy_dtype(d)
    except TypeError:
        raise
    except Exception:
        raise TypeError(f"unsupported dtype {d!r}: jitgrad supports {_SUPPORTED}") from None


def scalar_dtype(v) -> DType:
    """The category-default dtype of a Python scalar (as torch: float -> float32)."""
    if isinstance(v, (bool, np.bool_)):
        return bool_
    if isinstance(v, (int, np.integer)):
        return int64
    return float32


def wider(a: DType, b: DType) -> DType:
    if a.category == 1 and b.category == 1 and a is not b:
        # torch's integer lattice is NumPy's: uint8 with int8 is int16.
        return _BY_NP[np.promote_types(a.np, b.np)]
    return a if _ORDER[a] >= _ORDER[b] else b


def result_type(dims: list[DType], zerodims: list[DType], scalars: list[DType]) -> DType:
    """torch's rule: the highest category wins; within it, tensors with dimensions outrank 0-d
    tensors, which outrank Python scalars (which take the category's default dtype)."""
    cat = max(d.category for d in (*dims, *zerodims, *scalars))
    for tier in (dims, zerodims):
        best = None
        for d in tier:
            if d.category == cat:
                best = d if best is None else wider(best, d)
        if best is not None:
            return best
    return {0: bool_, 1: int64, 2: default_float}[cat]
