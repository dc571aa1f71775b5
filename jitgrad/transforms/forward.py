"""Forward mode: a JVP rule per primitive, and the pass that pushes tangents through a graph.

A rule is ``rule(out, primals, tangents, **params) -> tangent of out``: ``primals`` and ``out``
are tensors (eager, or tracers of the active trace), ``tangents`` has None where an input's
tangent is zero. The table is keyed by the ``Primitive`` object, as the lowerings are:

- elementwise primitives take theirs from their VJP rule: the Jacobian of an elementwise map is
  diagonal, so it is its own transpose, and the VJP applied to the tangent broadcast to the
  output's shape is the JVP;
- linear primitives (movement, indexing, sums) apply themselves to the tangents;
- the rest (matmul, pow, the reductions that are not sums) have rules of their own;
- the loop primitives have graph-level rules (``jitgrad.loops.rules.GraphRule``:
  ``rule(replay, e, primals, tangents) -> bool``), which transform the graphs inside an
  equation with this pass (``JVPReplay``).

>>> import jitgrad
>>> from jitgrad.transforms.forward import JVP_RULES
>>> from jitgrad.ops import PRIMITIVES
>>> PRIMITIVES["matmul"] in JVP_RULES
True
"""

from __future__ import annotations

from jitgrad.errors import TraceError
from jitgrad.ir.graph import Graph, Lit
from jitgrad.ops import PRIMITIVES, registry
from jitgrad.ops.control import guard_p
from jitgrad.loops.rules import JVP_RULES as _LOOP_JVP, GraphRule
from jitgrad.transforms.replay import (abstract_graph, attributed, body_vjp, const, emit, zeros,
                                      zeros_like)
from jitgrad.ops.special import HOST_PRIMS as _SPECIAL
from jitgrad.ops.linalg import JVP_RULES as _LINALG_JVP
from jitgrad.ops.pointwise_more import PRIMS as _POINTWISE_MORE

P = PRIMITIVES


def _bind(prim, args, params):
    return registry.bind(prim, tuple(args), params)


def _elementwise(prim):
    def rule(out, primals, tangents, **params):
        acc = None
        for i, t in enumerate(tangents):
            if t is None or i in prim.nondiff_inputs:
                continue
            tb = t if tuple(t.shape) == tuple(out.shape) else t.expand(*out.shape)
            r = prim.vjp(tb, out, *primals, **params)[i]
            if r is None:
                continue
            if tuple(r.shape) != tuple(out.shape):
                r = r.expand(*out.shape)
            acc = r if acc is None else acc + r
        return acc
    return rule


def _linear(diff: tuple | None = None):
    """A primitive linear in the inputs ``diff`` (all of them when None): itself applied to
    their tangents, zeros standing for those that have none."""
    def rule(out, primals, tangents, prim, **params):
        idx = range(len(primals)) if diff is None else diff
        if all(tangents[i] is None for i in idx if i < len(tangents)):
            return None
        args = list(primals)
        for i in idx:
            if i < len(args):
                t = tangents[i]
                args[i] = t if t is not None else zeros(tuple(primals[i].shape), primals[i].dtype)
        return _bind(prim, args, params)
    rule.linear = True
    return rule


def _astype(out, primals, tangents, dtype):
    t = tangents[0]
    return t.to(dtype) if t is not None and dtype.is_floating_point else None


def _pow(out, primals, tangents):
    x, y = primals
    tx, ty = tangents
    acc = None
    if tx is not None:
        acc = tx * y * x ** (y - 1)
    if ty is not None:
        from jitgrad.ops.elementwise import log, where
        d = where((x == 0) & (y >= 0), 0.0, out * log(x)) * ty
        acc = d if acc is None else acc + d
    return acc if acc is None or tuple(acc.shape) == tuple(out.shape) else acc.expand(*out.shape)


def _matmul(out, primals, tangents):
    a, b = primals
    ta, tb = tangents
    acc = None
    if ta is not None:
        acc = _bind(P["matmul"], (ta, b), {})
    if tb is not None:
        d = _bind(P["matmul"], (a, tb), {})
        acc = d if acc is None else acc + d
    return acc


def _kept(v, x, axes, keepdims):
    if keepdims:
        return v
    shape = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
    return v.reshape(*shape)


def _sum(v, axes, keepdims):
    return _bind(P["sum"], (v,), {"axes": axes, "keepdims": keepdims})


def _extreme(out, primals, tangents, axes, keepdims):
    # The derivative of the VJP's rule: ties share evenly (torch's amax/amin).
    (x,), (t,) = primals, tangents
    if t is None:
        return None
    hit = (x == _kept(out, x, axes, keepdims)).to(x.dtype)
    w = hit / _sum(hit, axes, True)
    return _sum(t * w, axes, keepdims)


def _prod(out, primals, tangents, axes, keepdims):
    (x,), (t,) = primals, tangents
    if t is None:
        return None
    return _sum(t * _bind(P["prod_others"], (x,), {"axes": axes}), axes, keepdims)


def _norm(out, primals, tangents, axes, keepdims):
    (x,), (t,) = primals, tangents
    if t is None:
        return None
    from jitgrad.ops.elementwise import where
    safe = where(out == 0, 1.0, out)
    return where(out == 0, 0.0, _sum(x * t, axes, keepdims) / safe)


def _softmax(out, primals, tangents, axis):
    t = tangents[0]
    if t is None:
        return None
    return out * (t - (out * t).sum(dim=axis, keepdim=True))


def _log_softmax(out, primals, tangents, axis):
    t = tangents[0]
    if t is None:
        return None
    from jitgrad.ops.elementwise import exp
    return t - (exp(out) * t).sum(dim=axis, keepdim=True)


def _custom(out, primals, tangents, ctx, index):
    raise TraceError(f"forward mode through the custom autograd Function "
                     f"{type(ctx).__name__.removesuffix('Backward')!s}: it defines backward "
                     "only; compute this derivative with reverse mode (jitgrad.func.vjp, jacrev)")


def _symmetric(prim):
    """A primitive of one input whose Jacobian is symmetric: the VJP of the tangent."""
    def rule(out, primals, tangents, **params):
        return None if tangents[0] is None else prim.vjp(tangents[0], out, *primals, **params)[0]
    return rule


def _zero(out, primals, tangents, **params):
    return None


JVP_RULES: dict = {}
for _p in PRIMITIVES.values():
    if _p.kind == "elementwise" and _p.vjp is not None:
        JVP_RULES[_p] = _elementwise(_p)
    elif _p.vjp is None and _p.kind != "loop":
        JVP_RULES[_p] = _zero  # comparisons, argmax, floor...: piecewise constant or integer
for _name in ("reshape", "permute", "expand", "cat", "sum", "mean", "cumsum", "clone"):
    JVP_RULES[P[_name]] = _linear()
JVP_RULES[P["getitem"]] = _linear((0,))
JVP_RULES[P["scatter_add"]] = _linear((0,))
JVP_RULES[P["index_update"]] = _linear((0, 1))
JVP_RULES.update({
    P["astype"]: _astype, P["pow"]: _pow, P["matmul"]: _matmul, P["max"]: _extreme,
    P["min"]: _extreme, P["prod"]: _prod, P["norm"]: _norm, P["softmax"]: _softmax,
    P["log_softmax"]: _log_softmax, P["custom_vjp"]: _custom,
    P["prod_others"]: _symmetric(P["prod_others"]),
})
JVP_RULES.update({_p: _elementwise(_p) for _p in _SPECIAL})
JVP_RULES.update({_p: _elementwise(_p) if _p.vjp is not None else _zero
                  for _p in _POINTWISE_MORE})
JVP_RULES.update(_LINALG_JVP)
JVP_RULES.update(_LOOP_JVP)


class JVPReplay:
    """A JVP replay under way, as a graph-level rule sees it: the ``graph`` replayed, the values
    (``env``) and tangents (``tan``) so far by id(var), whether tangents were given at all
    (``seeded``), and ``held``: what a rule leaves for a later equation (a transformed loop, for
    the tuple_gets that read it)."""

    __slots__ = ("graph", "env", "tan", "seeded", "held")

    def __init__(self, g: Graph, env: dict, tan: dict) -> None:
        self.graph, self.env, self.tan = g, env, tan
        self.seeded = bool(tan)
        self.held: dict = {}

    def set(self, v, value, tangent=None) -> None:
        """``v`` is ``value``, with ``tangent`` (None: zero)."""
        self.env[id(v)] = value
        if tangent is not None:
            self.tan[id(v)] = tangent

    @staticmethod
    def jvp(g: Graph, primals: list, tangents: list) -> tuple[list, list]:
        return jvp_replay(g, primals, tangents)

    body_vjp = staticmethod(body_vjp)

    abstract_graph = staticmethod(abstract_graph)
    zeros_like = staticmethod(zeros_like)


def jvp_replay(g: Graph, primals: list, tangents: list) -> tuple[list, list]:
    """Run ``g`` on ``primals`` through ``bind``, pushing ``tangents`` (None: zero) along:
    the outputs and their tangents (None where zero)."""
    env: dict[int, object] = {id(v): const(arr) for v, arr in g.consts}
    tan: dict[int, object] = {}
    for v, p, t in zip(g.inputs, primals, tangents):
        env[id(v)] = p
        if t is not None:
            tan[id(v)] = t

    def read(a):
        return registry.scalar(a.value, a.aval.dtype) if isinstance(a, Lit) else env[id(a)]

    rp = JVPReplay(g, env, tan)
    for e in g.eqns:
        args = [read(a) for a in e.inputs]
        ts = [None if isinstance(a, Lit) else tan.get(id(a)) for a in e.inputs]
        rule = JVP_RULES.get(e.prim)
        if isinstance(rule, GraphRule):
            with attributed(e.src):
                if rule(rp, e, args, ts):
                    continue
            rule = None  # (it left e as it is: e has no other rule)
        out = emit(e, args)
        if e.out is None:
            continue
        env[id(e.out)] = out
        if all(t is None for t in ts) or e.prim is guard_p:
            continue
        if rule is None:
            raise TraceError(f"forward mode has no rule for the primitive {e.prim.name!r}"
                             + (f" (at {e.src})" if e.src else ""))
        with attributed(e.src):
            if getattr(rule, "linear", False):
                t = rule(out, args, ts, e.prim, **e.params)
            else:
                t = rule(out, args, ts, **e.params)
        if t is not None:
            if t.dtype is not out.dtype:
                t = t.to(out.dtype)
            tan[id(e.out)] = t
    outs = [read(o) for o in g.outputs]
    return outs, [None if isinstance(o, Lit) else tan.get(id(o)) for o in g.outputs]
