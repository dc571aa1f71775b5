"""Equations a compiled kernel runs on the host: where the Numba CPU backend has no lowering for
an equation (integer matmul, mixed advanced indexing...), the kernel runs just that equation's
NumPy implementation in a ``numba.objmode`` block, and compiles everything around it. The rest
of the trace stays compiled, and ``cache_info().fallbacks`` names each such equation.

The generated source names an equation by a key (a digest of its primitive and parameters);
code generation registers the key in this process before the kernel is compiled or loaded, so a
kernel read back from the disk cache finds its equations too.
"""

from __future__ import annotations

import hashlib

import numpy as np

_EQNS: dict[str, tuple] = {}  # key -> (primitive, params, output dtype, output shape)


def register(e) -> str:
    """Register equation ``e`` for ``run_host`` and return its key."""
    text = repr((e.prim.name, sorted(e.params.items(), key=lambda kv: kv[0]),
                 e.out.aval.dtype.name, tuple(e.out.aval.shape)))
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    _EQNS[key] = (e.prim, dict(e.params), e.out.aval.dtype.np, tuple(e.out.aval.shape))
    return key


def run_host(key: str, args: tuple):
    """Run the registered equation ``key`` on ``args`` (in object mode, inside a kernel)."""
    prim, params, dtype, shape = _EQNS[key]
    with np.errstate(all="ignore"):
        out = prim.impl(*[np.asarray(a) for a in args], **params)
    out = np.ascontiguousarray(out, dtype=dtype).reshape(shape)
    return out if shape else out[()]


_NB = {"float32": "float32", "float64": "float64", "int64": "int64", "int32": "int32",
       "int16": "int16", "int8": "int8", "uint8": "uint8", "bool": "boolean"}


def numba_type(aval) -> str:
    """The ``numba.objmode`` type of an equation's output: a C-contiguous array or a scalar."""
    t = _NB[aval.dtype.name]
    nd = len(aval.shape)
    return t if not nd else f"{t}[{', '.join([':'] * (nd - 1) + ['::1'])}]"
