"""The differentiation pass: a reverse sweep over the forward IR that applies each primitive's
VJP rule in an IR-emitting context, producing one joint forward+backward graph.

VJP rules are the registry's, written with jitgrad ops; here they run on abstract tracers (shape
and dtype, no value) whose ``requires_grad`` says whether a cotangent is wanted, so the same rule
that serves eager backward emits the adjoint IR. Fan-out is summed, broadcasting is reduced back
to each input's shape, and inputs that receive nothing get zeros.
"""

from __future__ import annotations

from jitgrad.autograd import grad_mode
from jitgrad.autograd.graph import _fit_cotangents
from jitgrad.ir.graph import Graph, Lit, Var
from jitgrad.ops import registry
from jitgrad.trace.builder import Builder


def _active(g: Graph, wrt: tuple) -> set:
    """Ids of the Vars that depend on the inputs being differentiated."""
    active = {id(g.inputs[i]) for i in wrt}
    for e in g.eqns:
        if e.out is not None and e.prim.vjp is not None and any(
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
    active = _active(g, wrt)
    tracers: dict[int, object] = {}

    def tr(a):
        if isinstance(a, Lit):
            return b.tracer(a, None)
        t = tracers.get(id(a))
        if t is None:
            t = tracers[id(a)] = b.tracer(a, None)
            t._rg = id(a) in active
        return t

    state = registry.trace_state
    state.push(b)
    prev_grad = grad_mode.state.enabled
    grad_mode.state.enabled = True
    try:
        cts: dict[int, object] = {}
        if isinstance(out0, Var) and id(out0) in active:
            cts[id(out0)] = b.literal(1.0, out0.aval.dtype)
        for e in reversed(g.eqns):
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
                if c is None:
                    continue
                prev = cts.get(id(a))
                cts[id(a)] = c if prev is None else prev + c
        b.src_override = None
        grads = []
        for i in wrt:
            v = g.inputs[i]
            c = cts.get(id(v))
            if c is None:
                c = b.literal(0.0, v.aval.dtype).expand(*v.aval.shape) if v.aval.shape \
                    else b.literal(0.0, v.aval.dtype)
            grads.append(c._ir)
    finally:
        grad_mode.state.enabled = prev_grad
        state.pop()
    outs = tuple(g.outputs) + tuple(grads)
    return Graph(b.consts, b.inputs, b.eqns, outs)
