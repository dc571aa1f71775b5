"""The fusion pass: group the joint graph into loop nests over shared iteration spaces.

A ``LoopNest`` runs over one shape and holds elementwise equations (computed per element into scalar
temporaries) and the reductions that consume them (accumulated in the same pass). Broadcasts and
reshapes of values that already exist are ``views``: loops read their source with broadcasting
and nothing is copied. Everything else (matmul, permute, gather, softmax, guards...) is a
``CallStep``. A value computed in a loop is materialized only when something outside that loop
needs it, so forward and backward elementwise work share loops wherever the dependencies allow.

>>> import jitgrad
>>> f = jitgrad.grad(lambda x: (jitgrad.sin(x) * jitgrad.exp(-x * x)).sum(), target="reference")
>>> g = f.lower(jitgrad.ones(4)).optimized
>>> [type(s).__name__ for s in fuse(g).steps]
['LoopNest']
"""

from __future__ import annotations

from jitgrad.ir.graph import Eqn, Graph, Var
from jitgrad.ops.shape import expand_p, reshape_p

VIEWS = frozenset({expand_p, reshape_p})


def is_reduction(e: Eqn) -> bool:
    """Whether a loop can fuse ``e`` as a reduction (its primitive has a ``Reduction``)."""
    return e.prim.reduction is not None


class LoopNest:
    """Elementwise equations and reductions over one iteration shape."""

    __slots__ = ("shape", "eqns", "reduced", "produced")

    def __init__(self, shape: tuple) -> None:
        self.shape = tuple(shape)
        self.eqns: list[Eqn] = []
        self.reduced: set[int] = set()   # outputs of reductions: complete only after the loop
        self.produced: set[int] = set()

    def add(self, e: Eqn) -> None:
        self.eqns.append(e)
        self.produced.add(id(e.out))
        if e.prim.reduction is not None:
            self.reduced.add(id(e.out))


class CallStep:
    """One equation run on its own (a library call or a dedicated loop)."""

    __slots__ = ("eqn",)

    def __init__(self, eqn: Eqn) -> None:
        self.eqn = eqn


class View:
    """A broadcast or reshape of an existing value: no code, loops read through it."""

    __slots__ = ("eqn",)

    def __init__(self, eqn: Eqn) -> None:
        self.eqn = eqn


class Plan:
    """The fused program: steps in order and the elementwise results each loop must store
    (reductions always produce their result)."""

    __slots__ = ("graph", "steps", "materialize")

    def __init__(self, graph: Graph, steps: list, materialize: set) -> None:
        self.graph = graph
        self.steps = steps
        self.materialize = materialize


def _is_elementwise(e: Eqn) -> bool:
    return e.prim.kind == "elementwise" and e.out is not None and len(e.out.aval.shape) > 0


def fuse(g: Graph) -> Plan:
    steps: list = []
    loop: LoopNest | None = None
    where: dict[int, object] = {}  # var id -> the LoopNest that computes it

    def close() -> None:
        nonlocal loop
        if loop is not None:
            steps.append(loop)
            loop = None

    def reads_unfinished(e: Eqn, lp: LoopNest) -> bool:
        return any(isinstance(a, Var) and id(a) in lp.reduced for a in e.inputs)

    for e in g.eqns:
        # An elementwise op iterates over its output, a reduction over its input.
        shape = tuple(e.out.aval.shape) if _is_elementwise(e) else (
            tuple(e.inputs[0].aval.shape) if is_reduction(e) and e.inputs[0].aval.shape
            else None)
        if shape is not None:
            if loop is None or loop.shape != shape or reads_unfinished(e, loop):
                close()
                loop = LoopNest(shape)
            loop.add(e)
            where[id(e.out)] = loop
            continue
        if e.prim in VIEWS:
            if loop is not None and isinstance(e.inputs[0], Var) and id(e.inputs[0]) in loop.produced:
                close()  # a view of a value this loop computes needs the whole value first
            steps.append(View(e))
            continue
        close()
        steps.append(CallStep(e))
    close()

    # Materialize what leaves its loop: read by another step, a view, or an output.
    materialize: set[int] = set()
    outputs = {id(o) for o in g.outputs if isinstance(o, Var)}
    for step in steps:
        eqns = step.eqns if isinstance(step, LoopNest) else [step.eqn]
        for e in eqns:
            for a in e.inputs:
                if isinstance(a, Var) and where.get(id(a)) is not None and where[id(a)] is not step:
                    materialize.add(id(a))
    for o in outputs:
        if o in where:
            materialize.add(o)
    return Plan(g, steps, materialize)
