"""The NumPy interpreter of the IR: the living spec every backend is tested against.

It runs equations in order with each primitive's NumPy body; a guard whose observed value differs
from the one the trace was built on raises ``GuardFailure`` carrying its index and the value.
"""

from __future__ import annotations

import numpy as np

from jitgrad.ir.graph import Graph, Lit


def interpret(g: Graph, args: list) -> list:
    """Run ``g`` on NumPy arrays ``args``; returns the output arrays."""
    env: dict[int, np.ndarray] = {}
    for v, arr in g.consts:
        env[id(v)] = arr
    for v, a in zip(g.inputs, args):
        env[id(v)] = a

    def read(a):
        if isinstance(a, Lit):
            return np.array(a.value, dtype=a.aval.dtype.np)
        return env[id(a)]

    for e in g.eqns:
        vals = [read(a) for a in e.inputs]
        out = e.prim.impl(*vals, **e.params)
        if e.out is not None and type(out) is tuple:  # a loop's results (read by tuple_get)
            env[id(e.out)] = out
        elif e.out is not None:
            if type(out) is not np.ndarray:
                out = np.asarray(out)
            if out.dtype != e.out.aval.dtype.np:
                out = out.astype(e.out.aval.dtype.np)
            env[id(e.out)] = out
    return [read(o) for o in g.outputs]
