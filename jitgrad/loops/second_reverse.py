"""The reverse of a loop's reverse: ``grad`` of ``grad``, ``jacrev`` of ``grad`` and ``jacrev``
of ``jacrev`` through a lifted loop, still one loop, so one compile for every trip count.

A ``while_vjp`` that reverses a ``while`` (``reverses="loop"``) computes ``V(x, lam) =
J(x)^T lam``: ``x`` is the loop's floating initial values and invariants, ``J`` the Jacobian
of its final floating values ``L(x)``, ``lam`` their cotangents. Given the cotangents ``u`` of
its results (shaped like ``x``), its reverse needs

- ``d<V, u>/d lam = J u``: the JVP of the forward loop in the direction ``u``;
- ``d<V, u>/dx = d<lam, J(x) u>/dx = d/de V(x + e u, lam)``, the second derivatives of
  ``<lam, L>`` being symmetric: the JVP of the reverse loop in the same direction.

Both are forward mode through the pair ``[while, while_vjp]`` with tangent ``u`` on ``x`` and
none on ``lam``, which the JVP rules already do (``hessian`` runs the same pair). So the
reverse of a reverse loop is a JVP'd forward loop and a JVP'd reverse loop over its tape: no
tape of cotangents, no new primitive, nothing new for a backend to run. The JVP of a reverse
loop is itself the reverse of the loop's JVP where the two line up (``rules.py``,
``_reverse_of_loop_jvp``), so this rule applies again to its result: a third reverse, a fourth,
stay one loop.

``jacrev`` batches a reverse loop's cotangents over the output's basis (``reverses="rows"``:
the forward loop is not batched, the summed invariants are broadcast to the rows): each row is
the pair above, batched, and ``x``'s cotangents are summed over the rows. A batched reversed
loop is one loop of independent rows (``hessian``'s ``jacfwd`` broadcasts the values its rows
share, and a ``vmap`` whose examples stop at different iterations holds each row with a mask
of its own: ``rules._batch_while``), so its reverse is the pair's. A reverse loop that a
transform changed otherwise (the JVP of ``jacrev``'s rows, ``reverses=None``: ``grad`` of
the ``hessian`` of a function with more than one output) has no rule:
``ReverseOfLoopReverse`` makes the runtime trace the transforms with their loops unrolled
(one trace per trip count, exact).

>>> import jitgrad
>>> from jitgrad import func as F
>>> def f(x):
...     y = x
...     while y.norm() < 10:
...         y = y * 1.5 + 0.1 * y.sin()
...     return (y * y).sum()
>>> g2 = jitgrad.jit(lambda x: F.grad(lambda a: F.grad(f)(a).sum())(x), target="reference")
>>> x = jitgrad.tensor([1.0, 2.0], dtype=jitgrad.float64)
>>> bool(((g2(x) - F.grad(lambda a: F.grad(f)(a).sum())(x)).abs() < 1e-9).all())
True
>>> _ = g2(x * 0.1)                     # another trip count: the same trace
>>> g2.cache_info().traces, g2.cache_info().loops[0].split(": ")[1][:6]
(1, 'lifted')
"""

from __future__ import annotations

from jitgrad.errors import ReverseOfLoopReverse
from jitgrad.ir.graph import Var
from jitgrad.ir.primitive import Aval
from jitgrad.loops.primitives import (add_wanted, bind, full, same_operand, tuple_get_p, while_p,
                                      while_vjp_p)
from jitgrad.ops import PRIMITIVES

_EXPAND = PRIMITIVES["expand"]


def _refuse(e, why: str):
    raise ReverseOfLoopReverse(f"reverse mode through the reverse of the loop at {e.src}: {why}")


def _producers(eqns) -> dict:
    return {id(x.out): x for x in eqns if x.out is not None}


def reverse_while_vjp(sw, e) -> bool:
    """The reverse of ``while_vjp`` equation ``e`` in the sweep ``sw`` (``autodiff.Sweep``):
    the cotangents of its cotangent inputs and of the forward loop's floating initial values
    and invariants, from forward mode through the loop and its reverse (the module's note)."""
    got = sw.held.pop(id(e.out), None)
    if not got:
        return True
    p = e.params
    kind = p.get("reverses")
    if kind not in ("loop", "rows"):
        _refuse(e, "forward mode went through jacrev's rows of it, and that has no reverse")
    made = _producers(sw.b.eqns)
    fe = made.get(id(e.inputs[0]))
    if fe is None or fe.prim is not while_p:
        _refuse(e, "the loop it reverses is not in this graph")
    nc, fc, fi = p["n_carry"], p["fc"], p["fi"]
    nf, nfi = len(fc), len(fi)
    pred, init, inv = fe.inputs[0], fe.inputs[1:1 + nc], fe.inputs[1 + nc:]
    cts, einv = e.inputs[1:1 + nf], e.inputs[1 + nf:]
    if fe.params["n_carry"] != nc or len(einv) != len(inv) or (
            p["tape"] and not fe.params.get("tape")):
        _refuse(e, "it does not read the loop it follows")
    rows = kind == "rows"
    size = cts[0].aval.shape[0] if rows and cts else None
    for j, (a, f) in enumerate(zip(einv, inv)):
        # the reverse reads the loop's own invariants (jacrev's rows: broadcast to the rows)
        x = made.get(id(a)) if rows and j in fi else None
        broadcast = x is not None and x.prim is _EXPAND and x.inputs[0] is f and \
            tuple(a.aval.shape) == (size, *f.aval.shape)
        if not same_operand(a, f) and not broadcast:
            _refuse(e, "its invariants are not its loop's")
    if not any(sw.tr(a)._rg for a in (*cts, *init, *inv) if isinstance(a, Var)):
        return True
    body = fe.params["body"]
    bvjp = sw.body_vjp(body, nc, fc, fi) if rows else p["bvjp"]
    one = dict(p, bvjp=bvjp, reverses="loop")
    avals = ([pred.aval] + [a.aval for a in init] + [a.aval for a in inv]
             + [body.inputs[q].aval for q in fc])
    n_in = len(avals)

    def pair(ins):  # the loop and its reverse: (pred, init, inv, lam) -> (L(x), V(x, lam))
        w = bind(while_p, ins[:1 + nc + len(inv)], fe.params)
        r = bind(while_vjp_p, (w, *ins[1 + nc + len(inv):], *ins[1 + nc:1 + nc + len(inv)]),
                  one)
        return ([bind(tuple_get_p, (w,), {"index": q}) for q in fc]
                + [bind(tuple_get_p, (r,), {"index": k}) for k in range(nf + nfi)])

    g = sw.abstract_graph(pair, avals)

    def directional(ins):  # (pred, init, inv, lam, u) -> (J u, d/de V(x + e u, lam))
        tans = [None] * n_in
        for k, q in enumerate(fc):
            tans[1 + q] = ins[n_in + k]
        for k, j in enumerate(fi):
            tans[1 + nc + j] = ins[n_in + nf + k]
        outs, touts = sw.jvp(g, list(ins[:n_in]), tans)
        return [t if t is not None else sw.zeros_like(o) for o, t in zip(outs, touts)]

    tr = sw.tr
    b = sw.b
    with b.at(e.src):  # (restored on an exception too)
        u = [got.get(k) if got.get(k) is not None else sw.zeros(a)
             for k, a in enumerate(e.out.aval.avals)]
        lam = [tr(a) for a in cts]
        primal = [tr(pred)] + [tr(a) for a in init] + [tr(a) for a in inv]
        if rows:  # each row is the pair's JVP, batched; x's cotangents summed over the rows
            gj = sw.abstract_graph(directional, avals + [Aval(tuple(a.shape[1:]), a.dtype)
                                                         for a in e.out.aval.avals])
            res, flags = sw.batch(gj, primal + lam + u,
                                  [False] * len(primal) + [True] * (nf + nf + nfi), size)
            res = [full(r, f, size) for r, f in zip(res, flags)]
            res = res[:nf] + [r.sum(0) for r in res[nf:]]
        else:
            res = directional(primal + lam + u)
        # (res: the cotangents' then the initial values' then the invariants')
        add_wanted(sw, list(cts) + [init[q] for q in fc] + [inv[j] for j in fi],
                   res.__getitem__)
    return True
