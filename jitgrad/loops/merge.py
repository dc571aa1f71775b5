"""Branch merging: two traces that agree up to a guard on a bool and went the two ways there
become one graph with a ``cond`` (``primitives.py``), so a Python ``if`` on data compiles into one
kernel that takes either side, instead of a trace and a compile per side.

The traces must compute the same way before the guard (the same equations on the same values,
constants equal), read the same outside tensors, and end in results of the same shapes and
dtypes. That is all soundness asks: each side is a trace of the rest of the function as the
Python ran it on that side, so the merged graph does what the trace tree did with the two
traces, in one kernel. Guards after the ``if`` stay in their side.

>>> import jitgrad
>>> def f(x):
...     y = x.sin() if x.sum() > 0 else x.cos() * 2
...     return (y * y).sum()
>>> g = jitgrad.grad(f, target="reference")
>>> [round(v, 4) for v in g(jitgrad.tensor([1.0])).tolist() + g(jitgrad.tensor([-1.0])).tolist()]
[0.9093, 3.6372]
>>> g.cache_info().traces, " cond " in g.lower(jitgrad.tensor([1.0])).as_text("forward")
(2, True)
"""

from __future__ import annotations

from jitgrad.ir.graph import Eqn, Graph, Lit, Var
from jitgrad.ir.primitive import TupleAval
from jitgrad.ops.control import guard_p
from jitgrad.loops.primitives import cond_p, tuple_get_p


def merge(p: Graph, c: Graph, index: int, n_sites: int) -> Graph | None:
    """``p`` and ``c`` (traced on the same inputs, ``c`` after guard ``index`` of ``p`` failed)
    as one graph that branches on that guard's value, or None when they cannot be. ``c``'s
    guards after the branch are renumbered from ``n_sites`` (``p`` has that many)."""
    ip = _top_guard(p, index)
    ic = _top_guard(c, index)
    if ip is None or ic is None or ip != ic or len(p.inputs) != len(c.inputs):
        return None
    expect = p.eqns[ip].params["expect"]
    if not isinstance(expect, bool) or c.eqns[ic].params["expect"] is not (not expect):
        return None
    ren: dict = {id(cv): pv for cv, pv in zip(c.inputs, p.inputs)}
    if any(cv.aval != pv.aval for cv, pv in zip(c.inputs, p.inputs)):
        return None
    extra = []  # c's constants p lacks: constants of the merged graph too
    for v, arr in c.consts:
        same = next((pv for pv, parr in p.consts if pv.aval == v.aval
                     and parr.tobytes() == arr.tobytes()), None)
        if same is not None:
            ren[id(v)] = same
        else:
            extra.append((v, arr))
            ren[id(v)] = v

    def same_atom(a, b) -> bool:
        if isinstance(a, Lit) or isinstance(b, Lit):
            return isinstance(a, Lit) and isinstance(b, Lit) and a.key() == b.key()
        return ren.get(id(b)) is a

    for ep, ec in zip(p.eqns[:ip + 1], c.eqns[:ic + 1]):
        if ep.prim is not ec.prim or len(ep.inputs) != len(ec.inputs) or \
                not all(same_atom(a, b) for a, b in zip(ep.inputs, ec.inputs)):
            return None
        if ep.prim is guard_p:
            if ep.params["index"] != ec.params["index"]:
                return None
        elif ep.params != ec.params:
            return None
        if (ep.out is None) != (ec.out is None):
            return None
        if ep.out is not None:
            if ep.out.aval != ec.out.aval:
                return None
            ren[id(ec.out)] = ep.out
    if len(p.outputs) != len(c.outputs) or any(
            a.aval != b.aval for a, b in zip(p.outputs, c.outputs)):
        return None
    pred = p.eqns[ip].inputs[0]
    shift = n_sites - index - 1
    side_p = _side(p.eqns[ip + 1:], p.outputs, {})
    side_c = _side([_renumber(e, index, shift) for e in c.eqns[ic + 1:]], c.outputs, ren)
    # Both sides read the same operands: what either reads from before the branch.
    operands: list = []
    for side in (side_p, side_c):
        for a in side[1]:
            if all(a is not b for b in operands):
                operands.append(a)
    true, false = (side_p, side_c) if expect else (side_c, side_p)
    branches = [_close(s[0], s[2], operands) for s in (true, false)]
    w = Var(TupleAval(tuple(o.aval for o in branches[0].outputs)))
    src = p.eqns[ip].src
    outs, gets = [], []
    for i, o in enumerate(p.outputs):
        v = Var(o.aval)
        gets.append(Eqn(tuple_get_p, (w,), v, {"index": i}, src))
        outs.append(v)
    eqns = (*p.eqns[:ip], Eqn(cond_p, (pred, *operands), w,
                              {"true": branches[0], "false": branches[1]}, src), *gets)
    return Graph(tuple(p.consts) + tuple(extra), p.inputs, eqns, tuple(outs))


def _top_guard(g: Graph, index: int) -> int | None:
    for i, e in enumerate(g.eqns):
        if e.prim is guard_p and e.params["index"] == index:
            return i
    return None


def _renumber(e: Eqn, index: int, shift: int) -> Eqn:
    """``e`` with the guards after guard ``index`` (nested ones too) moved by ``shift``."""
    params = e.params
    if e.prim is guard_p and params["index"] > index:
        return Eqn(e.prim, e.inputs, e.out, dict(params, index=params["index"] + shift), e.src)
    if any(isinstance(v, Graph) for v in params.values()):
        params = {k: Graph(v.consts, v.inputs, tuple(_renumber(x, index, shift) for x in v.eqns),
                           v.outputs) if isinstance(v, Graph) else v for k, v in params.items()}
        return Eqn(e.prim, e.inputs, e.out, params, e.src)
    return e


def _side(eqns, outputs, ren: dict):
    """One side after the branch: its equations (renamed into the merged graph's values), the
    values from before it that it reads, and its results."""
    made: set = set()
    reads: list = []
    out_eqns = []

    def atom(a):
        if isinstance(a, Lit):
            return a
        a = ren.get(id(a), a)
        if id(a) not in made and all(a is not r for r in reads):
            reads.append(a)
        return a

    for e in eqns:
        ins = tuple(atom(a) for a in e.inputs)
        if e.out is not None:
            made.add(id(e.out))
        out_eqns.append(Eqn(e.prim, ins, e.out, e.params, e.src))
    results = [atom(o) for o in outputs]
    return out_eqns, reads, results


def _close(eqns, results, operands: list) -> Graph:
    """A side as a graph of its own: fresh inputs for the operands."""
    fresh = {id(a): Var(a.aval) for a in operands}

    def atom(a):
        return fresh.get(id(a), a) if isinstance(a, Var) else a

    body = [Eqn(e.prim, tuple(atom(a) for a in e.inputs), e.out, e.params, e.src) for e in eqns]
    return Graph((), tuple(fresh[id(a)] for a in operands), tuple(body),
                 tuple(atom(o) for o in results))
