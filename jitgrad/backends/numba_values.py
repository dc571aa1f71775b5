"""How generated Numba code names and holds IR values, and the small text helpers codegen
shares."""

from __future__ import annotations

import math
import re
from collections import Counter

from jitgrad import dtypes
from jitgrad.ir.graph import Lit
from jitgrad.backends.kernel_ir import Alias
from jitgrad.ops import elementwise as _ew

PARALLEL_MIN = 1 << 17  # elements; smaller loops run on one thread

# A kernel returns (status, value seen, outputs): the index of the guard that failed, or one
# of these.
STATUS_OK = -1
STATUS_LIBM = -2  # a sin/cos argument beyond the vectorized range: run the libm twin

_NP = {d: f"np.{d.np.name}" for d in dtypes.ALL}
_NP[dtypes.bool_] = "np.bool_"


# Templates whose Python result type may differ from the operands' (int results, helpers).
_RETYPES = frozenset({_ew.sign_p, _ew.floor_p, _ew.clamp_p, _ew.relu_p, _ew.astype_p,
                      _ew.pow_scalar_p, _ew.pow_p, _ew.abs_p})


class Unsupported(Exception):
    """The plan has something this backend does not generate code for."""


def literal(a: Lit) -> str:
    v, dt = a.value, a.aval.dtype
    if dt is dtypes.bool_:
        return repr(bool(v))
    if dt.category == 1:
        return f"{_NP[dt]}({int(v)})"
    if math.isnan(v):
        text = "np.nan"
    elif math.isinf(v):
        text = "np.inf" if v > 0 else "-np.inf"
    else:
        text = repr(float(v))
    return f"np.float32({text})" if dt is dtypes.float32 else text


class _Val:
    """How generated code holds an IR value."""

    __slots__ = ("kind", "name", "shape", "src")

    def __init__(self, kind: str, name: str, shape: tuple = (), src=None) -> None:
        self.kind = kind      # scalar | array | temp | bcast (a broadcast of ``src``);
        #                       the CUDA backend's: dev (a flat device array) | lit | temp | bcast
        self.name = name
        self.shape = tuple(shape)
        self.src = src




def _root(v: _Val) -> _Val:
    while v.kind == "bcast":
        v = v.src
    return v


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def unused_flat_aliases(lines: list[str]) -> set:
    """Indices of the flat aliases (``kernel_ir.Alias``) nothing reads (an alias read nowhere
    occurs once: where it is bound). One count of every ``name_f`` token: linear in the
    source."""
    uses = Counter(_FLAT_NAME.findall("\n".join(lines)))
    return {i for i, line in enumerate(lines) if isinstance(line, Alias) and uses[line.flat] == 1}


_FLAT_NAME = re.compile(r"\b(\w+_f)\b")


def _shape(shape) -> str:
    shape = tuple(int(s) for s in shape)
    return f"({shape[0]},)" if len(shape) == 1 else repr(shape)


