"""The body of a fused loop (``fusion.LoopNest``), one algorithm for every backend: the equations in
order, at one position of the iteration space; an elementwise one computed from its operands'
elements into a temporary, a reduction folding its operand's element in, and a value that is
needed outside the loop stored. The backends supply how to read an element, what an elementwise
equation's code is, how a reduction accumulates and where a value is stored (the CPU: nested or
flat loops, blocks and vector math; CUDA: grid-stride threads, block reductions and atomics).

>>> import jitgrad
>>> from jitgrad.transforms.fusion import fuse
>>> g = jitgrad.jit(lambda x: (x.sin() * 2).sum(), target="reference").lower(
...     jitgrad.ones(3)).optimized
>>> lines = []
>>> emit_body(fuse(g).steps[0], set(), read=lambda a: "x[i]",
...           value=lambda e, args: f"{e.prim.name}({', '.join(args)})",
...           reduce=lambda e, v: lines.append(f"acc += {v}"), store=None)
>>> lines
['acc += mul(sin(x[i]), x[i])']
"""

from __future__ import annotations

from typing import Callable

from jitgrad.ir.graph import Var


def emit_body(loop, materialize: set, read: Callable, value: Callable, reduce: Callable,
              store: Callable | None) -> None:
    """Walk ``loop``'s equations. ``read(a)``: the code of operand ``a``'s element (made
    outside this loop); ``value(e, args)``: emit elementwise equation ``e`` on its operands'
    codes and return the name (or code) of its result; ``reduce(e, v)``: fold element ``v`` into
    reduction ``e``; ``store(e, t)``: store ``t``, the element of ``e``'s result, which is used
    outside the loop (ids in ``materialize``)."""
    temps: dict[int, str] = {}

    def rd(a) -> str:
        if isinstance(a, Var) and id(a) in temps:
            return temps[id(a)]
        return read(a)

    for e in loop.eqns:
        if e.prim.reduction is not None:
            reduce(e, rd(e.inputs[0]))
            continue
        t = value(e, [rd(a) for a in e.inputs])
        temps[id(e.out)] = t
        if id(e.out) in materialize:
            store(e, t)
