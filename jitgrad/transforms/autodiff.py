"""The differentiation pass: a reverse sweep over the forward IR that applies each primitive's
VJP rule in an IR-emitting context, producing one joint forward+backward graph.

VJP rules are the registry's, written with jitgrad ops; here they run on abstract tracers (shape
and dtype, no value) whose ``requires_grad`` says whether a cotangent is wanted, so the same rule
that serves eager backward emits the adjoint IR. Fan-out is summed, broadcasting is reduced back
to each input's shape, and inputs that receive nothing get zeros.

A primitive whose reverse is more than a function of tensors has a graph-level rule in
``VJP_RULES`` instead (``jitgrad.loops.rules.GraphRule``): the reverse of a ``while`` is a loop
built from the VJP of its body, which the rule asks the sweep for (``Sweep``).
"""

from __future__ import annotations

from jitgrad.autograd import grad_mode
from jitgrad.autograd.graph import _fit_cotangents
from jitgrad.ir.graph import Graph, Lit, Var
from jitgrad.loops.rules import VJP_RULES as _LOOP_VJP
from jitgrad.ops import registry
from jitgrad.trace.builder import Builder
from jitgrad.transforms.simplify import simplify_body

# Graph-level VJP rules by primitive (``GraphRule``: ``rule(sweep, e)``); every other
# primitive's VJP is its ``Primitive.vjp``.
VJP_RULES: dict = {**_LOOP_VJP}


def _active(g: Graph, active: set) -> set:
    """Ids of the Vars that depend on those in ``active`` (ids of inputs being differentiated)."""
    active = set(active)
    for e in g.eqns:
        if e.out is not None and (e.prim.vjp is not None or e.prim in VJP_RULES) and any(
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


class Sweep:
    """A reverse sweep under way, as a graph-level rule (``VJP_RULES``) sees it: ``b`` takes the
    adjoint equations, ``tr(var)`` is a var's tracer (``_rg``: whether its cotangent is wanted),
    and ``held`` keeps what a rule leaves for an earlier equation (the cotangents of a loop's
    results, for the loop)."""

    __slots__ = ("b", "cts", "tr", "held")

    def __init__(self, b: Builder, cts: dict, tr) -> None:
        self.b, self.cts, self.tr = b, cts, tr
        self.held: dict = {}

    def pop(self, v):
        """The cotangent of ``v`` (None: none), taken out of the sweep."""
        return self.cts.pop(id(v), None)

    def add(self, a, c) -> None:
        """Add ``c`` to the cotangent of ``a``."""
        _accumulate(self.cts, a, c)

    def zeros(self, aval):
        """A tracer of zeros of ``aval``."""
        return _zeros(self.b, aval)

    @staticmethod
    def body_vjp(body: Graph, nc: int, fc: tuple, fi: tuple) -> Graph:
        """The VJP of a loop body, simplified (``body_vjp``)."""
        return simplify_body(body_vjp(body, nc, fc, fi))

    @staticmethod
    def side_vjp(g: Graph, wrt: tuple) -> Graph:
        """The VJP of a cond's side, simplified (``seeded_vjp_graph``)."""
        return simplify_body(seeded_vjp_graph(g, wrt))

    # Forward mode and batching, for the reverse of a loop's reverse (``loops/second_reverse``).
    # (Imported when called: those passes replay graphs with this module's ``_emitting``.)
    @staticmethod
    def jvp(g: Graph, primals: list, tangents: list) -> tuple[list, list]:
        """``g``'s outputs and their tangents (``forward.jvp_replay``), into the active trace."""
        from jitgrad.transforms.forward import jvp_replay
        return jvp_replay(g, primals, tangents)

    @staticmethod
    def batch(g: Graph, inputs: list, batched: list, size: int) -> tuple[list, list]:
        """``g`` run over a batch (``batching.batch_replay``), into the active trace."""
        from jitgrad.transforms.batching import batch_replay
        return batch_replay(g, inputs, batched, size)

    @staticmethod
    def abstract_graph(fn, avals: list) -> Graph:
        """The graph of ``fn`` on abstract inputs of ``avals`` (``replay.abstract_graph``)."""
        from jitgrad.transforms.replay import abstract_graph
        return abstract_graph(fn, avals)

    @staticmethod
    def zeros_like(x):
        """Zeros shaped as tensor ``x``, in the active trace."""
        from jitgrad.transforms.replay import zeros_like
        return zeros_like(x)


def _sweep(b: Builder, eqns, cts: dict, tr) -> None:
    """The reverse sweep over ``eqns``: the cotangents in ``cts`` (id(var) -> tracer) flow back
    through each equation's VJP rule, a loop's through its graph-level rule (``VJP_RULES``)."""
    sweep = Sweep(b, cts, tr)
    for i in range(len(eqns) - 1, -1, -1):
        e = eqns[i]
        rule = VJP_RULES.get(e.prim)
        if rule is not None:
            rule(sweep, e)
            continue
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
