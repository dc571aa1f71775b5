"""The rules of the loop primitives (``primitives.py``) in every transform: reverse mode
(``transforms/autodiff.py``), forward mode (``transforms/forward.py``) and batching
(``transforms/batching.py``), in tables keyed by the primitive like every other primitive's.

Each of ``while``, ``while_vjp`` and ``cond`` becomes one equation of the same kind whose graphs
are transformed in turn, so a loop stays one loop at every order and a compiled caller compiles
it once for every trip count:

- the reverse of a ``while`` is a ``while_vjp`` that runs the body's VJP for each iteration,
  last first, over a tape of the values each iteration started from (none when the VJP reads
  none); the reverse of a ``cond`` is a ``cond`` of the two sides' VJPs; the reverse of that
  ``while_vjp`` is a JVP'd loop and a JVP'd reverse loop (``second_reverse.py``);
- the JVP of a ``while`` carries the tangents of its floating values beside them (the body's
  JVP is the new body), and the JVP of a ``while_vjp`` is the reverse of that JVP'd loop, with
  the cotangents and their tangents swapped (``_reverse_of_loop_jvp``), so that it can be
  reversed again (any order; a reversed loop's floating invariants get zero tangents where
  none flows in, so that the two line up); where they do not (the reverse of a ``jacrev``'s
  rows), it runs the JVP of the body's VJP over the tape of that loop, whose entries then
  hold tangents too;
- a batched ``while`` whose condition differs between examples runs until every example is
  done, holding the values of the finished ones (as JAX's batched ``while_loop``): an ``active``
  mask is carried and kept on the tape, and the batched ``while_vjp`` passes a finished
  example's cotangent through its iterations unchanged; when every example stops together
  (the condition reads no batched value) the loop is the batched body, run as often as before;
  if a ``while_vjp`` reverses it, the floating values its rows share are broadcast to them, so
  that it is a loop of independent rows whose reverse can be reversed again (``grad`` of
  ``hessian``).

A transformed loop's results are laid out differently from the original's (tangents after the
values, the mask after the carries): ``LiftedLoop`` says where each original result now is, for
the ``tuple_get`` equations that read it and the ``while_vjp`` that reverses it.

These rules are graph-level (``GraphRule``): a loop's rule transforms its body with the pass that
is transforming the loop, so it is handed that pass. This package sits below ``transforms/`` and
imports nothing from it.

>>> import jitgrad
>>> from jitgrad.loops.primitives import while_p
>>> from jitgrad.transforms.forward import JVP_RULES
>>> isinstance(JVP_RULES[while_p], GraphRule)
True
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes
from jitgrad._settings import config
from jitgrad.errors import TraceError
from jitgrad.ir.graph import Eqn, Graph, Var
from jitgrad.ir.primitive import Aval
from jitgrad.loops.primitives import (add_wanted, bind, cond_p, full, reads_carry, same_operand,
                                      tuple_get_p, while_p, while_vjp_p)
from jitgrad.loops.second_reverse import reverse_while_vjp
from jitgrad.ops import logical_and, logical_not, where


class GraphRule:
    """A rule that transforms equation ``e`` as a whole: ``rule(tx, e, *read) -> bool``.

    ``tx`` is the pass at work, which a rule reads from and writes to, and which transforms the
    graphs inside ``e`` (a loop's body, a cond's sides) in turn: ``autodiff.Sweep`` in reverse
    mode (``read`` is empty), ``forward.JVPReplay`` in forward mode (``read``: ``e``'s inputs and
    their tangents, None: zero), ``batching.BatchReplay`` when batching (``read``: the inputs and
    whether each carries the batch). The rule returns whether it transformed ``e``; when it did
    not, the pass runs ``e`` as it is. ``tx.held`` keeps what a rule leaves for another equation
    (a transformed loop, for the ``tuple_get`` equations that read it).
    """

    __slots__ = ("fn",)

    def __init__(self, fn) -> None:
        self.fn = fn

    def __call__(self, tx, e, *read) -> bool:
        return self.fn(tx, e, *read)

    def __repr__(self) -> str:
        return f"<graph rule {self.fn.__name__}>"


class LiftedLoop:
    """A lifted loop (a ``while``, its reverse, a ``cond``) as a transform rewrote it: its results
    ``w``: original result ``i`` is ``w[index[i]]``; ``tc``: the carried values whose tangents
    follow them (``tangent[i]`` is where each is); ``batched[i]``: whether result ``i`` carries
    the batch; ``masked``: the batched loop carries an ``active`` mask right after its own
    carried values."""

    __slots__ = ("w", "index", "tangent", "tc", "batched", "masked", "jvp", "body", "inv")

    def __init__(self, w, index: dict, *, tangent: dict | None = None, tc: tuple = (),
                 batched: dict | None = None, masked: bool = False,
                 jvp: tuple | None = None, body: Graph | None = None,
                 inv: tuple | None = None) -> None:
        self.w, self.index, self.tangent, self.tc = w, index, tangent or {}, tc
        self.batched, self.masked = batched or {}, masked
        self.body = body  # a batched while's body
        # a batched while's invariants as the replay handed them, and as the loop reads them
        # (a shared one broadcast to the examples: ``_batch_while``)
        self.inv = inv
        # a while's JVP: (its body, its invariants, which of them have tangents, those
        # tangents, whether it keeps a tape, which of those tangents are zeros it made)
        self.jvp = jvp

    def get(self, i: int):
        return bind(tuple_get_p, (self.w,), {"index": self.index[i]})

    def get_tangent(self, i: int):
        k = self.tangent.get(i)
        return None if k is None else bind(tuple_get_p, (self.w,), {"index": k})


def _floating(v) -> bool:
    return v.aval.dtype.is_floating_point


def _held(tx, e, loop: LiftedLoop) -> bool:
    """``e`` transformed into ``loop``: its tuple is the loop's, which ``tx`` holds for the
    ``tuple_get`` equations that read it."""
    tx.held[id(e.out)] = loop
    tx.set(e.out, loop.w)
    return True


def _reversed(g: Graph, e) -> bool:
    """Whether a ``while_vjp`` of ``g`` reverses loop equation ``e``."""
    return any(x.prim is while_vjp_p and x.inputs[0] is e.out for x in g.eqns)


def _tape_limit(carried) -> int:
    """How many iterations' carried values the tape may hold (``config.loop_tape_budget``;
    0: no limit)."""
    budget = config.loop_tape_budget
    if budget is None:
        return 0
    per = sum(max(1, a.aval.dtype.np.itemsize * int(np.prod(a.aval.shape))) for a in carried)
    return max(2, budget // max(1, per))


# -- reverse mode ---------------------------------------------------------------------------
def _reverse_tuple_get(sw, e) -> bool:
    """A loop's result's cotangent, held for the loop (the sweep meets it first)."""
    ct = sw.pop(e.out)
    if ct is not None:
        sw.held.setdefault(id(e.inputs[0]), {})[e.params["index"]] = ct
    return True


def _reverse_while(sw, e) -> bool:
    """The reverse loop of ``while`` equation ``e``, given the cotangents of its results: one
    ``while_vjp`` that runs the body's VJP for each iteration, last first, reading the values
    each iteration started from off a tape (none when the VJP reads none, as for ``y * 2``)."""
    got = sw.held.pop(id(e.out), None)
    if not got:
        return True
    b, tr = sw.b, sw.tr
    nc = e.params["n_carry"]
    body = e.params["body"]
    init, inv = e.inputs[1:1 + nc], e.inputs[1 + nc:]
    fc = tuple(q for q in range(nc) if _floating(body.inputs[q]))
    fi = tuple(j for j, a in enumerate(inv) if _floating(a))
    if not any(q in got for q in fc) or not any(
            tr(a)._rg for a in init + inv if isinstance(a, Var)):
        return True
    bvjp = sw.body_vjp(body, nc, fc, fi)
    tape = reads_carry(bvjp, nc)
    if tape:  # the forward loop keeps what each iteration started from, within the budget
        at = b.eqns.index(e)
        b.eqns[at] = Eqn(e.prim, e.inputs, e.out, dict(e.params, tape=True,
                                                       tape_limit=_tape_limit(init)), e.src)
    with b.at(e.src):  # (restored on an exception too)
        args = [tr(e.out)]
        for q in fc:
            c = got.get(q)
            # (zeros for a carried value whose result nothing differentiates)
            args.append(c if c is not None else sw.zeros(body.inputs[q].aval))
        args += [tr(a) for a in inv]
        res = b.bind(while_vjp_p, tuple(args), {"bvjp": bvjp, "n_carry": nc, "fc": fc, "fi": fi,
                                               "tape": tape, "reverses": "loop"})
        add_wanted(sw, [init[q] for q in fc] + [inv[j] for j in fi],
                   lambda k: b.bind(tuple_get_p, (res,), {"index": k}))
    return True


def _reverse_cond(sw, e) -> bool:
    """The reverse of ``cond`` equation ``e``, given the cotangents of its results: a ``cond``
    on the same predicate of the two sides' VJPs (each recomputes its side)."""
    got = sw.held.pop(id(e.out), None)
    if not got:
        return True
    b, tr = sw.b, sw.tr
    ops = e.inputs[1:]
    act = tuple(i for i, a in enumerate(ops) if isinstance(a, Var) and _floating(a)
                and tr(a)._rg)
    if not act:
        return True
    true, false = e.params["true"], e.params["false"]
    seeds = []
    for k, o in enumerate(true.outputs):
        c = got.get(k)
        seeds.append(c if c is not None and _floating(o) else sw.zeros(o.aval))
    sides = {k: sw.side_vjp(g, act) for k, g in (("true", true), ("false", false))}
    with b.at(e.src):  # (restored on an exception too)
        res = b.bind(cond_p, (tr(e.inputs[0]), *[tr(a) for a in ops], *seeds), sides)
        for k, i in enumerate(act):
            sw.add(ops[i], b.bind(tuple_get_p, (res,), {"index": k}))
    return True


# -- forward mode ---------------------------------------------------------------------------
def _jvp_tuple_get(jx, e, args: list, ts: list) -> bool:
    """A result of a transformed loop, and its tangent."""
    loop = jx.held.get(id(e.inputs[0]))
    if loop is None:
        return False
    i = e.params["index"]
    jx.set(e.out, loop.get(i), loop.get_tangent(i))
    return True


def _jvp_while(jx, e, args: list, ts: list) -> bool:
    """The JVP of ``while`` equation ``e`` (``args``, their tangents ``ts``, None: zero): one
    ``while`` over the values and the tangents of the floating ones. A loop that a
    ``while_vjp`` reverses gets its JVP whenever any tangent flows in the replay: the reverse's
    JVP reads the tangents of the values on its tape (zeros, if they are)."""
    rev = _reversed(jx.graph, e)
    if all(t is None for t in ts) and not (jx.seeded and rev):
        return False
    nc, body = e.params["n_carry"], e.params["body"]
    pred, carry, inv = args[0], args[1:1 + nc], args[1 + nc:]
    tcs, tis = ts[1:1 + nc], ts[1 + nc:]
    tc = tuple(q for q in range(nc) if _floating(body.inputs[q]))
    # a reversed loop's floating invariants each get a tangent (zeros where none flows in), so
    # that the JVP of its reverse lines up with the reverse of this JVP (hessian's invariants)
    ti = tuple(j for j in range(len(inv)) if tis[j] is not None
               or (rev and _floating(body.inputs[nc + j])))
    zero = frozenset(j for j in ti if tis[j] is None)
    ni = len(inv)

    def fn(ins):
        c, tcar = ins[:nc], ins[nc:nc + len(tc)]
        iv, tiv = ins[nc + len(tc):nc + len(tc) + ni], ins[nc + len(tc) + ni:]
        tans = [None] * (nc + ni)
        for k, q in enumerate(tc):
            tans[q] = tcar[k]
        for k, j in enumerate(ti):
            tans[nc + j] = tiv[k]
        outs, touts = jx.jvp(body, list(c) + list(iv), tans)
        return (outs[:nc] + [touts[q] if touts[q] is not None else jx.zeros_like(outs[q])
                             for q in tc] + [outs[nc]])

    avals = ([v.aval for v in body.inputs[:nc]] + [body.inputs[q].aval for q in tc]
             + [v.aval for v in body.inputs[nc:]] + [body.inputs[nc + j].aval for j in ti])
    jbody = jx.abstract_graph(fn, avals)
    init_t = [tcs[q] if tcs[q] is not None else jx.zeros_like(carry[q]) for q in tc]
    params = dict(e.params, body=jbody, n_carry=nc + len(tc))
    if params.get("tape"):  # the tape holds the tangents too: the budget is over both
        params["tape_limit"] = _tape_limit(list(body.inputs[:nc])
                                           + [body.inputs[q] for q in tc])
    tinv = [tis[j] if j not in zero else jx.zeros_like(inv[j]) for j in ti]
    w = bind(while_p, (pred, *carry, *init_t, *inv, *tinv), params)
    return _held(jx, e, LiftedLoop(w, {q: q for q in range(nc)}, tc=tc,
                                   tangent={q: nc + k for k, q in enumerate(tc)},
                                   jvp=(jbody, list(inv), ti, tinv,
                                        bool(params.get("tape")), zero)))


def _jvp_while_vjp(jx, e, args: list, ts: list) -> bool:
    """The JVP of ``while_vjp`` equation ``e``: a ``while_vjp`` of the JVP of the body's VJP,
    over the tape of the forward loop's JVP (none: the loop's tangents are zero)."""
    if id(e.inputs[0]) not in jx.held and all(t is None for t in ts):
        return False
    fwd = jx.held.get(id(e.inputs[0]))
    p = e.params
    nc, fc, fi, bvjp = p["n_carry"], p["fc"], p["fi"], p["bvjp"]
    w = fwd.w if fwd is not None else args[0]
    tc = fwd.tc if fwd is not None else ()
    if any(q not in tc for q in fc):  # (jvp_replay gives every reversed loop its JVP first)
        raise TraceError(f"forward mode through the reverse of a loop whose forward loop has "
                         f"no JVP here (at {e.src})")
    nf = len(fc)
    cts, inv = args[1:1 + nf], args[1 + nf:]
    tcts, tinv = ts[1:1 + nf], ts[1 + nf:]
    ni = len(inv)
    if p.get("reverses") == "loop" and fwd is not None:
        loop = _reverse_of_loop_jvp(jx, e, fwd, cts, tcts, inv, tinv)
        if loop is not None:
            return _held(jx, e, loop)
    # every invariant whose cotangent is summed gets a tangent slot (zeros where it has none):
    # the tangent of that sum is summed there
    tj = tuple(j for j in range(ni) if tinv[j] is not None or j in fi)

    def fn(ins):
        c, tcar = ins[:nc], ins[nc:nc + len(tc)]
        rest = ins[nc + len(tc):]
        iv, tiv, ct, tct = (rest[:ni], rest[ni:ni + len(tj)], rest[ni + len(tj):ni + len(tj) + nf],
                            rest[ni + len(tj) + nf:])
        tans = [None] * (nc + ni + nf)
        for k, q in enumerate(tc):
            tans[q] = tcar[k]
        for k, j in enumerate(tj):
            tans[nc + j] = tiv[k]
        for k in range(nf):
            tans[nc + ni + k] = tct[k]
        outs, touts = jx.jvp(bvjp, list(c) + list(iv) + list(ct), tans)
        tz = [t if t is not None else jx.zeros_like(o) for o, t in zip(outs, touts)]
        return outs[:nf] + tz[:nf] + outs[nf:] + tz[nf:]

    bin_ = bvjp.inputs
    avals = ([v.aval for v in bin_[:nc]] + [bin_[q].aval for q in tc]
             + [v.aval for v in bin_[nc:nc + ni]] + [bin_[nc + j].aval for j in tj]
             + [v.aval for v in bin_[nc + ni:]] * 2)
    jb = jx.abstract_graph(fn, avals)
    tct_args = [t if t is not None else jx.zeros_like(c) for c, t in zip(cts, tcts)]
    tinv_args = [tinv[j] if tinv[j] is not None else jx.zeros_like(inv[j]) for j in tj]
    fc2 = tuple(fc) + tuple(nc + tc.index(q) for q in fc)
    fi2 = tuple(fi) + tuple(ni + tj.index(j) for j in fi)
    out = bind(while_vjp_p, (w, *cts, *tct_args, *inv, *tinv_args),
                dict(p, bvjp=jb, n_carry=nc + len(tc), fc=fc2, fi=fi2, reverses=None))
    nfi = len(fi)
    index = {i: (i if i < nf else i + nf) for i in range(nf + nfi)}
    tangent = {i: (nf + i if i < nf else nf + nfi + i) for i in range(nf + nfi)}
    return _held(jx, e, LiftedLoop(out, index, tangent=tangent))


def _reverse_of_loop_jvp(jx, e, fwd: LiftedLoop, cts, tcts, inv, tinv) -> LiftedLoop | None:
    """The JVP of a loop's reverse ``e`` as the reverse of the loop's JVP ``fwd`` (None where
    the two do not line up). A reverse loop computes ``V(x, lam) = J(x)^T lam``; the loop's JVP
    computes ``(L(x), J(x) dx)``, and its reverse with cotangents ``(dlam, lam)`` gives ``J^T
    lam`` on ``dx``'s slots and ``J^T dlam + d<lam, J(x) dx>/dx`` on ``x``'s: ``V`` and its
    tangent in the direction ``(dx, dlam)``. So forward mode through a reverse loop is a reverse
    loop again (``reverses="loop"``), which ``second_reverse`` reverses in turn: a third
    reverse, a fourth, stay one loop."""
    if fwd.jvp is None:
        return None
    p = e.params
    nc, fc, fi = p["n_carry"], p["fc"], p["fi"]
    jbody, finv, ti, ftinv, w_tape, zero = fwd.jvp
    # the reverse reads the very invariants (and tangents) the loop's JVP runs on (a zero
    # tangent the loop's JVP made: none here)
    if len(finv) != len(inv) or not all(map(same_operand, inv, finv)) or \
            any(j not in ti for j in fi) or \
            not all(same_operand(tinv[j], t) or (tinv[j] is None and j in zero)
                    for j, t in zip(ti, ftinv)):
        return None
    tc, ni = fwd.tc, len(inv)
    nc2 = nc + len(tc)
    fc2 = tuple(fc) + tuple(nc + tc.index(q) for q in fc)
    fi2 = tuple(fi) + tuple(ni + ti.index(j) for j in fi)
    bvjp = jx.body_vjp(jbody, nc2, fc2, fi2)
    if reads_carry(bvjp, nc2) and not w_tape:
        return None
    tct_args = [t if t is not None else jx.zeros_like(c) for c, t in zip(cts, tcts)]
    # x's slots take lam's tangent, dx's slots lam itself
    out = bind(while_vjp_p, (fwd.w, *tct_args, *cts, *inv, *ftinv),
               dict(p, bvjp=bvjp, n_carry=nc2, fc=fc2, fi=fi2, tape=w_tape, reverses="loop"))
    nf, nfi = len(fc), len(fi)
    index = {i: (nf + i if i < nf else nf + nfi + i) for i in range(nf + nfi)}
    tangent = {i: (i if i < nf else nf + i) for i in range(nf + nfi)}
    return LiftedLoop(out, index, tangent=tangent)


def _jvp_cond(jx, e, args: list, ts: list) -> bool:
    """The JVP of ``cond`` equation ``e``: a ``cond`` of the two sides' JVPs."""
    if all(t is None for t in ts[1:]):
        return False
    ops, tops = args[1:], ts[1:]
    act = tuple(i for i, t in enumerate(tops) if t is not None)
    true, false = e.params["true"], e.params["false"]
    fl = tuple(k for k, o in enumerate(true.outputs) if o.aval.dtype.is_floating_point)

    def side(g):
        def fn(ins):
            tans = [None] * len(ops)
            for k, i in enumerate(act):
                tans[i] = ins[len(ops) + k]
            outs, touts = jx.jvp(g, list(ins[:len(ops)]), tans)
            return outs + [touts[k] if touts[k] is not None else jx.zeros_like(outs[k])
                           for k in fl]
        return jx.abstract_graph(fn, [v.aval for v in g.inputs]
                                 + [g.inputs[i].aval for i in act])

    no = len(true.outputs)
    w = bind(cond_p, (args[0], *ops, *[tops[i] for i in act]),
              {"true": side(true), "false": side(false)})
    return _held(jx, e, LiftedLoop(w, {k: k for k in range(no)},
                                   tangent={k: no + j for j, k in enumerate(fl)}))


# -- batching -------------------------------------------------------------------------------
def _batched_aval(v, batched: bool, size: int):
    a = v.aval
    return Aval((size, *a.shape), a.dtype) if batched else a


def _select(active, new, old):
    """``new`` where the example is ``active``, ``old`` elsewhere (batched on axis 0)."""
    a = active.reshape(active.shape[0], *((1,) * (new.ndim - 1)))
    return where(a, new, old)


def _body_flags(bx, body: Graph, nc: int, cb: list, ib: list, size: int) -> tuple[list, bool]:
    """The carried values that carry the batch (those that start so, and those the body makes
    so, to a fixed point), and whether the body's condition does."""
    cb = list(cb)
    while True:
        avals = [_batched_aval(v, f, size) for v, f in zip(body.inputs, cb + ib)]
        got: list = []

        def fn(ins):
            outs, flags = bx.batch(body, ins, cb + ib, size)
            got[:] = flags
            return outs
        bx.abstract_graph(fn, avals)
        new = [c or f for c, f in zip(cb, got[:nc])]
        if new == cb:
            return cb, got[nc]
        cb = new


def _any(mask):
    """Whether any example of a batched mask is set (a 0-d bool)."""
    return mask.to(dtypes.int64).sum() > 0


def _batching(bx, e, flags: list) -> bool:
    """Whether loop equation ``e`` is batched: an input carries the batch, or it reads the
    tuple of a loop that was."""
    return any(flags) or id(e.inputs[0]) in bx.held


def _batch_tuple_get(bx, e, args: list, flags: list) -> bool:
    """A result of a batched loop, and whether it carries the batch."""
    if not _batching(bx, e, flags):
        return False
    loop = bx.held[id(e.inputs[0])]
    i = e.params["index"]
    bx.set(e.out, loop.get(i), loop.batched[i])
    return True


def _batch_while(bx, e, args: list, flags: list) -> bool:
    """The batched ``while`` equation ``e``. When a ``while_vjp`` reverses it, a masked loop
    keeps its mask on the tape."""
    if not _batching(bx, e, flags):
        return False
    size, taped = bx.size, _reversed(bx.graph, e)
    nc, body, expect = e.params["n_carry"], e.params["body"], e.params["expect"]
    pred, carry, inv = args[0], args[1:1 + nc], args[1 + nc:]
    ib = list(flags[1 + nc:])
    cb, pred_b = _body_flags(bx, body, nc, list(flags[1:1 + nc]), ib, size)
    masked = flags[0] or pred_b
    if masked:
        cb = [True] * nc  # the examples stop at different iterations: every value differs
    inv0, shared = list(inv), False
    if taped:
        # A reversed loop whose floating values are all batched is a loop of independent rows
        # (a masked one too: each row's mask is its own), whose reverse can be reversed again
        # (grad of hessian: jacfwd batches a JVP'd loop whose own values are shared by the
        # rows; grad of vmap of grad). So a shared value is broadcast to the rows, each row
        # computing it again, and a condition that is the same in every row is read from the
        # first.
        wc = [b or _floating(v) for b, v in zip(cb, body.inputs[:nc])]
        wi = [b or _floating(v) for b, v in zip(ib, body.inputs[nc:])]
        shared = wc != cb or wi != ib
        if shared:
            inv, ib = [full(x, not w or b, size) for x, b, w in zip(inv, ib, wi)], wi
            # (a value made from a broadcast one, a mask say, carries the batch too)
            cb = _body_flags(bx, body, nc, wc, ib, size)[0]
    n = len(body.inputs)

    def fn(ins):
        c, rest = ins[:nc], ins[nc:]
        active = rest[0] if masked else None
        iv = rest[1:] if masked else rest
        outs, oflags = bx.batch(body, list(c) + list(iv), cb + ib, size)
        new = [full(o, f, size) if b else o for o, f, b in zip(outs[:nc], oflags, cb)]
        if not masked:
            return new + [outs[nc][0] if oflags[nc] else outs[nc]]
        p = full(outs[nc], oflags[nc], size)
        new = [_select(active, x, old) for x, old in zip(new, c)]
        still = logical_and(active, p if expect else logical_not(p))
        return new + [still, _any(still)]

    avals = [_batched_aval(v, f, size) for v, f in zip(body.inputs[:nc], cb)]
    if masked:
        avals.append(Aval((size,), dtypes.bool_))
    avals += [_batched_aval(v, f, size) for v, f in zip(body.inputs[nc:n], ib)]
    nb = bx.abstract_graph(fn, avals)
    init = [full(x, f0, size) if b else x for x, f0, b in zip(carry, flags[1:1 + nc], cb)]
    if masked:
        p0 = full(pred, flags[0], size)
        active = p0 if expect else logical_not(p0)
        w = bind(while_p, (_any(active), *init, active, *inv),
                  dict(e.params, body=nb, n_carry=nc + 1, expect=True,
                       tape=e.params["tape"] or taped))
    else:
        w = bind(while_p, (pred, *init, *inv), dict(e.params, body=nb))
    return _held(bx, e, LiftedLoop(w, {q: q for q in range(nc)}, batched=dict(enumerate(cb)),
                                   masked=masked, body=nb, inv=(inv0, inv, ib) if shared else None))


def _batch_while_vjp(bx, e, args: list, flags: list) -> bool:
    """The batched ``while_vjp`` equation ``e`` over the (batched or not) loop it reverses: the
    batched VJP of the body, all of whose cotangents carry the batch; over a masked loop, a
    finished example's cotangent passes through an iteration unchanged and adds nothing."""
    if not _batching(bx, e, flags):
        return False
    size, fwd = bx.size, bx.held.get(id(e.inputs[0]))
    p = e.params
    nc, fc, fi, bvjp = p["n_carry"], p["fc"], p["fi"], p["bvjp"]
    nf = len(fc)
    w = args[0] if fwd is None else fwd.w
    cb = [False] * nc if fwd is None else [fwd.batched[q] for q in range(nc)]
    masked = fwd is not None and fwd.masked
    cts, inv = args[1:1 + nf], list(args[1 + nf:])
    ib = list(flags[1 + nf:])
    ni = len(inv)
    if fwd is not None and fwd.inv is not None and len(inv) == len(fwd.inv[0]) and \
            all(map(same_operand, inv, fwd.inv[0])):
        inv, ib = list(fwd.inv[1]), list(fwd.inv[2])  # (the loop's, broadcast to the rows)
    if fwd is not None and fwd.body is not None and p.get("reverses") == "loop" and \
            all(cb[q] for q in fc) and all(ib[j] for j in fi):
        # Each example has its own values and invariants: the batched loop is one loop of
        # independent rows (each row held once it is done, when the loop is masked), whose
        # reverse is this reverse batched (its Jacobian is block-diagonal), and it can be
        # reversed again (grad of vmap of grad)
        nm = nc + (1 if masked else 0)
        out = bind(while_vjp_p, (w, *[full(c, f, size) for c, f in zip(cts, flags[1:1 + nf])],
                                 *inv), dict(p, bvjp=bx.body_vjp(fwd.body, nm, fc, fi),
                                             n_carry=nm, tape=p["tape"] or masked))
        return _held(bx, e, LiftedLoop(out, {i: i for i in range(nf + len(fi))},
                                       batched={i: True for i in range(nf + len(fi))}))
    for j in fi:  # a summed cotangent carries the batch: so does the value it is shaped as
        inv[j], ib[j] = full(inv[j], ib[j], size), True

    def fn(ins):
        c = ins[:nc]
        active = ins[nc] if masked else None
        rest = ins[nc + (1 if masked else 0):]
        iv, ct = rest[:ni], rest[ni:]
        outs, oflags = bx.batch(bvjp, list(c) + list(iv) + list(ct),
                                cb + ib + [True] * nf, size)
        outs = [full(o, f, size) for o, f in zip(outs, oflags)]
        if not masked:
            return outs
        held = [_select(active, o, old) for o, old in zip(outs[:nf], ct)]
        summed = [_select(active, o, bx.zeros_like(o)) for o in outs[nf:]]
        return held + summed

    bin_ = bvjp.inputs
    avals = [_batched_aval(v, f, size) for v, f in zip(bin_[:nc], cb)]
    if masked:
        avals.append(Aval((size,), dtypes.bool_))
    avals += [_batched_aval(v, f, size) for v, f in zip(bin_[nc:nc + ni], ib)]
    avals += [_batched_aval(v, True, size) for v in bin_[nc + ni:]]
    nb = bx.abstract_graph(fn, avals)
    full_ct = [full(c, f, size) for c, f in zip(cts, flags[1:1 + nf])]
    # (over a loop that is not batched, each row of cotangents reverses that loop: jacrev)
    rows = "rows" if fwd is None and p.get("reverses") == "loop" else None
    out = bind(while_vjp_p, (w, *full_ct, *inv),
                dict(p, bvjp=nb, n_carry=nc + (1 if masked else 0),
                     tape=p["tape"] or masked, reverses=rows))
    n_out = nf + len(fi)
    return _held(bx, e, LiftedLoop(out, {i: i for i in range(n_out)},
                                   batched={i: True for i in range(n_out)}))


def _batch_cond(bx, e, args: list, flags: list) -> bool:
    """The batched ``cond`` equation ``e``: on a condition that differs between examples,
    both sides, each example's result taken from its own (as JAX's batched ``cond``); on one
    condition for the batch, a ``cond`` of the batched sides."""
    if not _batching(bx, e, flags):
        return False
    size = bx.size
    ops, of = args[1:], list(flags[1:])
    true, false = e.params["true"], e.params["false"]
    if flags[0]:
        t, tf = bx.batch(true, list(ops), of, size)
        f, ff = bx.batch(false, list(ops), of, size)
        return _held(bx, e, _Plain([_select(args[0], full(a, fa, size), full(b, fb, size))
                                    for a, fa, b, fb in zip(t, tf, f, ff)]))

    def side(g):
        def fn(ins):
            outs, fl = bx.batch(g, list(ins), of, size)
            return [full(o, f, size) for o, f in zip(outs, fl)]
        return bx.abstract_graph(fn, [_batched_aval(v, f, size)
                                      for v, f in zip(g.inputs, of)])
    w = bind(cond_p, (args[0], *ops), {"true": side(true), "false": side(false)})
    no = len(true.outputs)
    return _held(bx, e, LiftedLoop(w, {k: k for k in range(no)},
                                   batched={k: True for k in range(no)}))


class _Plain(LiftedLoop):
    """A transformed ``cond`` whose results are ordinary tensors (no tuple to read)."""

    def __init__(self, outs: list) -> None:
        super().__init__(None, {k: k for k in range(len(outs))},
                         batched={k: True for k in range(len(outs))})
        self.outs = outs

    def get(self, i: int):
        return self.outs[i]


# The tables the transforms take in (``VJP_RULES`` is reverse mode's only table: every other
# primitive's VJP is its ``Primitive.vjp``).
VJP_RULES = {tuple_get_p: GraphRule(_reverse_tuple_get), while_p: GraphRule(_reverse_while),
             cond_p: GraphRule(_reverse_cond), while_vjp_p: GraphRule(reverse_while_vjp)}
JVP_RULES = {tuple_get_p: GraphRule(_jvp_tuple_get), while_p: GraphRule(_jvp_while),
             cond_p: GraphRule(_jvp_cond), while_vjp_p: GraphRule(_jvp_while_vjp)}
BATCH_RULES = {tuple_get_p: GraphRule(_batch_tuple_get), while_p: GraphRule(_batch_while),
               cond_p: GraphRule(_batch_cond), while_vjp_p: GraphRule(_batch_while_vjp)}
