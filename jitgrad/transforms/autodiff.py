"""The differentiation pass: a reverse sweep over the forward IR that applies each primitive's
VJP rule in an IR-emitting context, producing one joint forward+backward graph.

VJP rules are the registry's, written with jitgrad ops; here they run on abstract tracers (shape
and dtype, no value) whose ``requires_grad`` says whether a cotangent is wanted, so the same rule
that serves eager backward emits the adjoint IR. Fan-out is summed, broadcasting is reduced back
to each input's shape, and inputs that receive nothing get zeros.
"""

from __future__ import annotations

import numpy as np

from jitgrad._settings import config
from jitgrad.autograd import grad_mode
from jitgrad.autograd.graph import _fit_cotangents
from jitgrad.errors import ReverseOfLoopReverse
from jitgrad.ir.graph import Graph, Lit, Var
from jitgrad.ops import registry
from jitgrad.trace.builder import Builder


def _active(g: Graph, active: set) -> set:
    """Ids of the Vars that depend on those in ``active`` (ids of inputs being differentiated)."""
    active = set(active)
    for e in g.eqns:
        if e.out is not None and (e.prim.vjp is not None or e.prim in LOOP_PRIMITIVES) and any(
                isinstance(a, Var) and id(a) in active for a in e.inputs):
            active.add(id(e.out))
    return active


def vjp_graph(g: Graph, wrt: tuple, n_outputs: int | None = None) -> Graph:
    """Joint graph of ``g``: its outputs followed by d(output 0)/d(input i) for i in ``wrt``.

    Output 0 must be a scalar of a floating dtype; the cotangent seed is 1.
    """
    out0 = g.outputs[0]
    b = Builder(concrete=False)
    b.consts = list(g.consts)
    b.inputs = list(g.inputs)
    b.eqns = list(g.eqns)
    active = _active(g, {id(g.inputs[i]) for i in wrt})
    with _emitting(b):
        tr = _tracers(b, active)
        cts: dict[int, object] = {}
        if isinstance(out0, Var) and id(out0) in active:
            cts[id(out0)] = b.literal(1.0, out0.aval.dtype)
        _sweep(b, g.eqns, cts, tr)
        grads = [_ct_or_zeros(b, cts, g.inputs[i]) for i in wrt]
    outs = tuple(g.outputs) + tuple(grads)
    return Graph(b.consts, b.inputs, b.eqns, outs)


def seeded_vjp_graph(g: Graph, wrt: tuple) -> Graph:
    """The VJP of ``g`` as a graph: from ``g``'s inputs followed by a cotangent per output to
    the cotangents of the inputs ``wrt`` (those of outputs that are not floating are ignored)."""
    b = Builder(concrete=False)
    b.consts = list(g.consts)
    b.inputs = list(g.inputs)
    b.eqns = list(g.eqns)
    seeds = [Var(o.aval) for o in g.outputs]
    b.inputs += seeds
    active = _active(g, {id(g.inputs[i]) for i in wrt})
    with _emitting(b):
        tr = _tracers(b, active)
        cts: dict[int, object] = {}
        for o, s in zip(g.outputs, seeds):
            if isinstance(o, Var) and id(o) in active and _floating(o):
                _accumulate(cts, o, b.tracer(s, None))
        _sweep(b, g.eqns, cts, tr)
        grads = [_ct_or_zeros(b, cts, g.inputs[i]) for i in wrt]
    return Graph(b.consts, b.inputs, b.eqns, tuple(grads))


class _emitting:
    """Ops go to builder ``b`` with gradients enabled (VJP rules build graphs of their own)."""

    def __init__(self, b: Builder) -> None:
        self.b = b

    def __enter__(self):
        registry.trace_state.push(self.b)
        self.prev = grad_mode.state.enabled
        grad_mode.state.enabled = True

    def __exit__(self, *exc) -> None:
        grad_mode.state.enabled = self.prev
        registry.trace_state.pop()
        self.b.src_override = None


def _tracers(b: Builder, active: set):
    tracers: dict[int, object] = {}

    def tr(a):
        if isinstance(a, Lit):
            return b.tracer(a, None)
        t = tracers.get(id(a))
        if t is None:
            t = tracers[id(a)] = b.tracer(a, None)
            t._rg = id(a) in active
        return t
    return tr


def _zeros(b: Builder, aval):
    """A tracer of zeros of ``aval``: a broadcast literal."""
    z = b.literal(0.0, aval.dtype)
    return z.expand(*aval.shape) if aval.shape else z


def _ct_or_zeros(b: Builder, cts: dict, v):
    c = cts.get(id(v))
    return (c if c is not None else _zeros(b, v.aval))._ir


def _accumulate(cts: dict, a, c) -> None:
    prev = cts.get(id(a))
    cts[id(a)] = c if prev is None else prev + c


def _sweep(b: Builder, eqns, cts: dict, tr) -> None:
    """The reverse sweep over ``eqns``: the cotangents in ``cts`` (id(var) -> tracer) flow back
    through each equation's VJP rule, a loop's through its own reverse loop (``_while``)."""
    parts: dict[int, dict] = {}  # id(loop results) -> {index: cotangent of tuple_get[index]}
    for i in range(len(eqns) - 1, -1, -1):
        e = eqns[i]
        if e.prim is tuple_get_p:
            ct = cts.pop(id(e.out), None)
            if ct is not None:
                parts.setdefault(id(e.inputs[0]), {})[e.params["index"]] = ct
            continue
        if e.prim is while_p or e.prim is cond_p:
            got = parts.pop(id(e.out), None)
            if got:
                (_while if e.prim is while_p else _cond)(b, e, got, cts, tr)
            continue
        if e.prim is while_vjp_p and parts.get(id(e.out)):
            raise ReverseOfLoopReverse(f"reverse mode through the reverse of the loop at {e.src}")
        if e.out is None or e.prim.vjp is None:
            continue
        ct = cts.pop(id(e.out), None)
        if ct is None:
            continue
        ins = [tr(a) for a in e.inputs]
        if not any(t._rg for t in ins):
            continue
        b.src_override = e.src  # adjoint equations point at the forward line they undo
        out_t = tr(e.out)
        res = e.prim.vjp(ct, out_t, *ins, **e.params)
        edges = [True if (isinstance(a, Var) and t._rg and i not in e.prim.nondiff_inputs)
                 else None for i, (a, t) in enumerate(zip(e.inputs, ins))]
        fitted = _fit_cotangents(res, ins, edges, e.prim.name)
        for a, c in zip(e.inputs, fitted):
            if c is not None:
                _accumulate(cts, a, c)
    b.src_override = None


def _floating(a) -> bool:
    return a.aval.dtype.is_floating_point


def _while(b: Builder, e, got: dict, cts: dict, tr) -> None:
    """The reverse loop of ``while`` equation ``e``, given the cotangents of its results: one
    ``while_vjp`` that runs the body's VJP for each iteration, last first, reading the values
    each iteration started from off a tape (none when the VJP reads none, as for ``y * 2``)."""
    nc = e.params["n_carry"]
    body = e.params["body"]
    init, inv = e.inputs[1:1 + nc], e.inputs[1 + nc:]
    fc = tuple(q for q in range(nc) if _floating(body.inputs[q]))
    fi = tuple(j for j, a in enumerate(inv) if _floating(a))
    if not any(q in got for q in fc) or not any(
            tr(a)._rg for a in init + inv if isinstance(a, Var)):
        return
    bvjp = simplify_body(body_vjp(body, nc, fc, fi))
    reads = {id(a) for x in bvjp.eqns for a in x.inputs} | {id(o) for o in bvjp.outputs}
    tape = any(id(v) in reads for v in bvjp.inputs[:nc])
    if tape:  # the forward loop keeps what each iteration started from, within the budget
        at = b.eqns.index(e)
        b.eqns[at] = Eqn(e.prim, e.inputs, e.out, dict(e.params, tape=True,
                                                       tape_limit=_tape_limit(init)), e.src)
    b.src_override = e.src
    args = [tr(e.out)]
    for q in fc:
        c = got.get(q)
        # (zeros for a carried value whose result nothing differentiates)
        args.append(c if c is not None else _zeros(b, body.inputs[q].aval))
    args += [tr(a) for a in inv]
    res = b.bind(while_vjp_p, tuple(args), {"bvjp": bvjp, "n_carry": nc, "fc": fc, "fi": fi,
                                           "tape": tape})
    for k, q in enumerate(fc):
        a = init[q]
        if isinstance(a, Var) and tr(a)._rg:
            _accumulate(cts, a, b.bind(tuple_get_p, (res,), {"index": k}))
    for k, j in enumerate(fi):
        a = inv[j]
        if isinstance(a, Var) and tr(a)._rg:
            _accumulate(cts, a, b.bind(tuple_get_p, (res,), {"index": len(fc) + k}))
    b.src_override = None


def _tape_limit(carried) -> int:
    """How many iterations' carried values the tape may hold (``config.loop_tape_budget``;
    0: no limit)."""
    budget = config.loop_tape_budget
    if budget is None:
        return 0
    per = sum(max(1, a.aval.dtype.np.itemsize * int(np.prod(a.aval.shape))) for a in carried)
    return max(2, budget // max(1, per))


def _cond(b: Builder, e, got: dict, cts: dict, tr) -> None:
    """The reverse of ``cond`` equation ``e``, given the cotangents of its results: a ``cond``
    on the same predicate of the two sides' VJPs (each recomputes its side)."""
    ops = e.inputs[1:]
    act = tuple(i for i, a in enumerate(ops) if isinstance(a, Var) and _floating(a)
                and tr(a)._rg)
    if not act:
        return
    true, false = e.params["true"], e.params["false"]
    seeds = []
    for k, o in enumerate(true.outputs):
        c = got.get(k)
        seeds.append(c if c is not None and _floating(o) else _zeros(b, o.aval))
    sides = {k: simplify_body(seeded_vjp_graph(g, act)) for k, g in (("true", true),
                                                                      ("false", false))}
    b.src_override = e.src
    res = b.bind(cond_p, (tr(e.inputs[0]), *[tr(a) for a in ops], *seeds), sides)
    for k, i in enumerate(act):
        _accumulate(cts, ops[i], b.bind(tuple_get_p, (res,), {"index": k}))
    b.src_override = None


def body_vjp(body: Graph, nc: int, fc: tuple, fi: tuple) -> Graph:
    """The VJP of a loop body ``(carry..., inv...) -> (carry'..., pred)``: a graph from
    ``(carry..., inv..., ct of carry'[q] for q in fc)`` to ``(ct of carry[q] for q in fc...,
    ct of inv[j] for j in fi...)``. It recomputes the body (its guards held when it ran)."""
    b = Builder(concrete=False)
    b.inputs = list(body.inputs)
    b.eqns = [x for x in body.eqns if x.out is not None]
    seeds = [Var(body.outputs[q].aval) for q in fc]
    b.inputs += seeds
    wrt = [body.inputs[q] for q in fc] + [body.inputs[nc + j] for j in fi]
    active = _active(body, {id(v) for v in wrt})
    with _emitting(b):
        tr = _tracers(b, active)
        cts: dict[int, object] = {}
        for q, s in zip(fc, seeds):
            o = body.outputs[q]
            if isinstance(o, Var) and id(o) in active:
                _accumulate(cts, o, b.tracer(s, None))
        _sweep(b, body.eqns, cts, tr)
        outs = [_ct_or_zeros(b, cts, v) for v in wrt]
    return Graph((), b.inputs, b.eqns, outs)


from jitgrad.ir.graph import Eqn  # noqa: E402
from jitgrad.ops.loops import (  # noqa: E402
    LOOP_PRIMITIVES, cond_p, tuple_get_p, while_p, while_vjp_p)
from jitgrad.transforms.simplify import simplify_body  # noqa: E402
