"""Structural pictures of equations and graphs, equal where they compute the same way: what
loop lifting (``lift.py``) compares iterations by, and what the rewrite of a body that branches
(``branches.py``) compares the sides of the iterations that took one side by.

A picture names a value by where it comes from, never by the Var itself: an equation reading the
same places with the same primitive, parameters (the graphs among them as pictures), result
type and source line has the same picture in every iteration. A guard's index is left out: each
iteration's guard has its own.

>>> import jitgrad
>>> from jitgrad.transforms.replay import trace_graph
>>> def f(x):
...     return x.sin() * 2
>>> a = trace_graph(f, (jitgrad.ones(3),)).graph
>>> b = trace_graph(f, (jitgrad.zeros(3),)).graph
>>> graph_sig(a) == graph_sig(b), a.eqns[0].out is b.eqns[0].out
(True, False)
"""

from __future__ import annotations

from jitgrad.ir.graph import Eqn, Graph, Lit
from jitgrad.ops.control import guard_p


def ref_lit(a: Lit) -> tuple:
    """A literal's picture: its dtype and value."""
    return ("lit", a.aval.dtype, repr(a.value))


def _params_sig(e: Eqn) -> tuple:
    items = []
    for k, v in e.params.items():
        if e.prim is guard_p and k == "index":
            continue  # each iteration's guard has its own index
        items.append((k, graph_sig(v) if isinstance(v, Graph) else v))
    return tuple(items)


def graph_sig(g: Graph) -> tuple:
    """A structural picture of a graph: equal for graphs that compute the same way."""
    ref: dict = {id(v): ("in", i) for i, v in enumerate(g.inputs)}
    ref.update({id(v): ("const", i, arr.tobytes()) for i, (v, arr) in enumerate(g.consts)})
    eqns = []
    for q, e in enumerate(g.eqns):
        eqns.append(eqn_sig(e, lambda a: ref_lit(a) if isinstance(a, Lit) else ref[id(a)]))
        if e.out is not None:
            ref[id(e.out)] = ("loc", q)
    outs = tuple(ref_lit(o) if isinstance(o, Lit) else ref[id(o)] for o in g.outputs)
    return (tuple(eqns), outs)


def eqn_sig(e: Eqn, ref) -> tuple:
    """An equation's picture, ``ref(atom)`` naming where each input comes from: (primitive,
    parameters, result type, source line, inputs)."""
    return (e.prim, _params_sig(e), e.out.aval if e.out is not None else None, e.src,
            tuple(ref(a) for a in e.inputs))
