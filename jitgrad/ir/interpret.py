"""The NumPy interpreter of the IR: the living spec every backend is tested against.

It runs equations in order with each primitive's NumPy body; a guard whose observed value differs
from the one the trace was built on raises ``GuardFailure`` carrying its index and the value.

A graph runs as a Python function generated from it once (graphs are immutable), that does
exactly what a loop over the equations would: read each operand (a literal as a fresh array), call
the primitive's body, and hold its result as an array of the equation's dtype. The generated
function does without the loop's lookups, which were most of the time a loop body of small
arrays took (a lifted ``while`` runs its body's graph once per iteration).

>>> import numpy as np, jitgrad
>>> from jitgrad.ir import Var, Graph, Eqn
>>> from jitgrad.ops import PRIMITIVES, Aval
>>> a, b = Var(Aval((2,), jitgrad.float64)), Var(Aval((2,), jitgrad.float64))
>>> g = Graph((), (a,), (Eqn(PRIMITIVES["sin"], (a,), b, {}, None),), (b,))
>>> interpret(g, [np.zeros(2)])
[array([0., 0.])]
>>> print(source(g), end="")
def run(args):
    a0, = args
    v0 = f0(a0)
    if type(v0) is not ndarray: v0 = asarray(v0)
    if v0.dtype != t0: v0 = v0.astype(t0)
    return [v0]
"""

from __future__ import annotations

import numpy as np

from jitgrad._pysource import define
from jitgrad.ir.graph import Graph, Lit
from jitgrad.ir.primitive import TupleAval


def interpret(g: Graph, args: list) -> list:
    """Run ``g`` on NumPy arrays ``args``; returns the output arrays."""
    run = g._run
    if run is None:
        run = g._run = _generate(g)[1]
    return run(args)


def source(g: Graph) -> str:
    """The Python source of the function that runs ``g`` (names bound in its namespace: ``fK``
    the primitive body of equation K, ``pK`` its params, ``tK`` its dtype, ``cK`` constants)."""
    return _generate(g)[0]


def _generate(g: Graph):
    ns: dict = {"ndarray": np.ndarray, "asarray": np.asarray, "array": np.array}
    names: dict[int, str] = {}
    for i, (v, arr) in enumerate(g.consts):
        ns[f"c{i}"] = arr
        names[id(v)] = f"c{i}"
    lines = []
    if g.inputs:
        ins = [f"a{i}" for i in range(len(g.inputs))]
        names.update((id(v), n) for v, n in zip(g.inputs, ins))
        lines.append(f"{', '.join(ins)}, = args")

    def read(a, where: str) -> str:
        if isinstance(a, Lit):  # a fresh array per read, as no body may keep or change it
            ns[where], ns[where + "d"] = a.value, a.aval.dtype.np
            return f"array({where}, {where}d)"
        return names[id(a)]

    for k, e in enumerate(g.eqns):
        ns[f"f{k}"] = e.prim.impl
        operands = [read(a, f"l{k}_{j}") for j, a in enumerate(e.inputs)]
        if e.params:
            ns[f"p{k}"] = e.params
            operands.append(f"**p{k}")
        call = f"f{k}({', '.join(operands)})"
        if e.out is None:
            lines.append(call)
            continue
        v = names[id(e.out)] = f"v{k}"
        lines.append(f"{v} = {call}")
        if type(e.out.aval) is not TupleAval:
            ns[f"t{k}"] = e.out.aval.dtype.np
            lines.append(f"if type({v}) is not ndarray: {v} = asarray({v})")
            lines.append(f"if {v}.dtype != t{k}: {v} = {v}.astype(t{k})")
    outs = [read(o, f"o{j}") for j, o in enumerate(g.outputs)]
    lines.append(f"return [{', '.join(outs)}]")
    src = "def run(args):\n" + "".join(f"    {line}\n" for line in lines)
    return src, define(src, "run", ns, "graph")
