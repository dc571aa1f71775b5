"""Forward mode and batching through lifted loops: the ``while``, ``while_vjp`` and ``cond``
equations of a graph that ``jvp`` or ``vmap`` replays (``forward.py``, ``batching.py``).

Each becomes one equation of the same kind whose graphs are transformed in turn, so a loop stays
one loop at every order and a compiled caller compiles it once for every trip count:

- the JVP of a ``while`` carries the tangents of its floating values beside them (the body's
  JVP is the new body), and the JVP of a ``while_vjp`` runs the JVP of the body's VJP over the
  tape of that loop, whose entries then hold tangents too: ``jacfwd(jacrev(f))`` (``hessian``);
- a batched ``while`` whose condition differs between examples runs until every example is
  done, holding the values of the finished ones (as JAX's batched ``while_loop``): an ``active``
  mask is carried and kept on the tape, and the batched ``while_vjp`` passes a finished
  example's cotangent through its iterations unchanged; when every example stops together
  (the condition reads no batched value) the loop is the batched body, run as often as before.

A transformed loop's results are laid out differently from the original's (tangents after the
values, the mask after the carries): ``Loop`` says where each original result now is, for
the ``tuple_get`` equations that read it and the ``while_vjp`` that reverses it.
"""

from __future__ import annotations

from jitgrad.errors import TraceError
from jitgrad.ir.graph import Graph
from jitgrad.ops import registry
from jitgrad.ops.loops import cond_p, tuple_get_p, while_p, while_vjp_p
from jitgrad.trace.builder import Builder
from jitgrad.transforms.replay import zeros


class Loop:
    """A transformed loop's results ``w``: original result ``i`` is ``w[index[i]]``; ``tc``:
    the carried values whose tangents follow them (``tangent[i]`` is where each is);
    ``batched[i]``: whether result ``i`` carries the batch; ``masked``: the batched loop
    carries an ``active`` mask right after its own carried values."""

    __slots__ = ("w", "index", "tangent", "tc", "batched", "masked")

    def __init__(self, w, index: dict, *, tangent: dict | None = None, tc: tuple = (),
                 batched: dict | None = None, masked: bool = False) -> None:
        self.w, self.index, self.tangent, self.tc = w, index, tangent or {}, tc
        self.batched, self.masked = batched or {}, masked

    def get(self, i: int):
        return _bind(tuple_get_p, (self.w,), {"index": self.index[i]})

    def get_tangent(self, i: int):
        k = self.tangent.get(i)
        return None if k is None else _bind(tuple_get_p, (self.w,), {"index": k})


def _bind(prim, args, params):
    return registry.bind(prim, tuple(args), params)


def _floating(v) -> bool:
    return v.aval.dtype.is_floating_point


def abstract_graph(fn, avals: list) -> Graph:
    """The graph of ``fn`` applied to abstract tensors of ``avals`` (shape and dtype only):
    ``fn`` takes the list of inputs and returns the list of outputs."""
    from jitgrad.transforms.autodiff import _emitting
    b = Builder(concrete=False)
    ins = [b.new_input(None, a) for a in avals]
    with _emitting(b):
        atoms = tuple(b.atom(o) for o in fn(ins))
    return Graph(b.consts, b.inputs, b.eqns, atoms)


def _zeros_like(x):
    return zeros(tuple(x.shape), x.dtype)


# -- forward mode ---------------------------------------------------------------------------
def _jvp(g: Graph, prim: list, tans: list):
    from jitgrad.transforms.forward import jvp_replay
    return jvp_replay(g, prim, tans)


def while_jvp(e, args: list, ts: list) -> Loop:
    """The JVP of ``while`` equation ``e`` (``args``, their tangents ``ts``, None: zero): one
    ``while`` over the values and the tangents of the floating ones."""
    nc, body = e.params["n_carry"], e.params["body"]
    pred, carry, inv = args[0], args[1:1 + nc], args[1 + nc:]
    tcs, tis = ts[1:1 + nc], ts[1 + nc:]
    tc = tuple(q for q in range(nc) if _floating(body.inputs[q]))
    ti = tuple(j for j in range(len(inv)) if tis[j] is not None)
    ni = len(inv)

    def fn(ins):
        c, tcar = ins[:nc], ins[nc:nc + len(tc)]
        iv, tiv = ins[nc + len(tc):nc + len(tc) + ni], ins[nc + len(tc) + ni:]
        tans = [None] * (nc + ni)
        for k, q in enumerate(tc):
            tans[q] = tcar[k]
        for k, j in enumerate(ti):
            tans[nc + j] = tiv[k]
        outs, touts = _jvp(body, list(c) + list(iv), tans)
        return (outs[:nc] + [touts[q] if touts[q] is not None else _zeros_like(outs[q])
                             for q in tc] + [outs[nc]])

    avals = ([v.aval for v in body.inputs[:nc]] + [body.inputs[q].aval for q in tc]
             + [v.aval for v in body.inputs[nc:]] + [body.inputs[nc + j].aval for j in ti])
    jbody = abstract_graph(fn, avals)
    init_t = [tcs[q] if tcs[q] is not None else _zeros_like(carry[q]) for q in tc]
    params = dict(e.params, body=jbody, n_carry=nc + len(tc))
    if params.get("tape"):  # the tape holds the tangents too: the budget is over both
        from jitgrad.transforms.autodiff import _tape_limit
        params["tape_limit"] = _tape_limit(list(body.inputs[:nc])
                                           + [body.inputs[q] for q in tc])
    w = _bind(while_p, (pred, *carry, *init_t, *inv, *[tis[j] for j in ti]), params)
    return Loop(w, {q: q for q in range(nc)}, tangent={q: nc + k for k, q in enumerate(tc)},
                tc=tc)


def while_vjp_jvp(e, args: list, ts: list, fwd: Loop | None) -> Loop:
    """The JVP of ``while_vjp`` equation ``e``: a ``while_vjp`` of the JVP of the body's VJP,
    over the tape of the forward loop's JVP ``fwd`` (None: the loop's tangents are zero)."""
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
        outs, touts = _jvp(bvjp, list(c) + list(iv) + list(ct), tans)
        tz = [t if t is not None else _zeros_like(o) for o, t in zip(outs, touts)]
        return outs[:nf] + tz[:nf] + outs[nf:] + tz[nf:]

    bin_ = bvjp.inputs
    avals = ([v.aval for v in bin_[:nc]] + [bin_[q].aval for q in tc]
             + [v.aval for v in bin_[nc:nc + ni]] + [bin_[nc + j].aval for j in tj]
             + [v.aval for v in bin_[nc + ni:]] * 2)
    jb = abstract_graph(fn, avals)
    tct_args = [t if t is not None else _zeros_like(c) for c, t in zip(cts, tcts)]
    tinv_args = [tinv[j] if tinv[j] is not None else _zeros_like(inv[j]) for j in tj]
    fc2 = tuple(fc) + tuple(nc + tc.index(q) for q in fc)
    fi2 = tuple(fi) + tuple(ni + tj.index(j) for j in fi)
    out = _bind(while_vjp_p, (w, *cts, *tct_args, *inv, *tinv_args),
                dict(p, bvjp=jb, n_carry=nc + len(tc), fc=fc2, fi=fi2))
    nfi = len(fi)
    index = {i: (i if i < nf else i + nf) for i in range(nf + nfi)}
    tangent = {i: (nf + i if i < nf else nf + nfi + i) for i in range(nf + nfi)}
    return Loop(out, index, tangent=tangent)


def cond_jvp(e, args: list, ts: list) -> Loop:
    """The JVP of ``cond`` equation ``e``: a ``cond`` of the two sides' JVPs."""
    ops, tops = args[1:], ts[1:]
    act = tuple(i for i, t in enumerate(tops) if t is not None)
    true, false = e.params["true"], e.params["false"]
    fl = tuple(k for k, o in enumerate(true.outputs) if o.aval.dtype.is_floating_point)

    def side(g):
        def fn(ins):
            tans = [None] * len(ops)
            for k, i in enumerate(act):
                tans[i] = ins[len(ops) + k]
            outs, touts = _jvp(g, list(ins[:len(ops)]), tans)
            return outs + [touts[k] if touts[k] is not None else _zeros_like(outs[k])
                           for k in fl]
        return abstract_graph(fn, [v.aval for v in g.inputs] + [g.inputs[i].aval for i in act])

    no = len(true.outputs)
    w = _bind(cond_p, (args[0], *ops, *[tops[i] for i in act]),
              {"true": side(true), "false": side(false)})
    return Loop(w, {k: k for k in range(no)}, tangent={k: no + j for j, k in enumerate(fl)})


# -- batching -------------------------------------------------------------------------------
def _batch(g: Graph, ins: list, flags: list, size: int):
    from jitgrad.transforms.batching import batch_replay
    return batch_replay(g, ins, flags, size)


def _batched_aval(v, batched: bool, size: int):
    from jitgrad.ir.primitive import Aval
    a = v.aval
    return Aval((size, *a.shape), a.dtype) if batched else a


def full(x, batched: bool, size: int):
    """``x`` carrying the batch (broadcast along it when it does not)."""
    return x if batched else x.expand(size, *x.shape)


def _select(active, new, old):
    """``new`` where the example is ``active``, ``old`` elsewhere (batched on axis 0)."""
    from jitgrad.ops import where
    a = active.reshape(active.shape[0], *((1,) * (new.ndim - 1)))
    return where(a, new, old)


def _body_flags(body: Graph, nc: int, cb: list, ib: list, size: int) -> tuple[list, bool]:
    """The carried values that carry the batch (those that start so, and those the body makes
    so, to a fixed point), and whether the body's condition does."""
    cb = list(cb)
    while True:
        avals = [_batched_aval(v, f, size) for v, f in zip(body.inputs, cb + ib)]
        got: list = []

        def fn(ins):
            outs, flags = _batch(body, ins, cb + ib, size)
            got[:] = flags
            return outs
        abstract_graph(fn, avals)
        new = [c or f for c, f in zip(cb, got[:nc])]
        if new == cb:
            return cb, got[nc]
        cb = new


def _any(mask):
    """Whether any example of a batched mask is set (a 0-d bool)."""
    from jitgrad import dtypes
    return mask.to(dtypes.int64).sum() > 0


def while_batch(e, args: list, flags: list, size: int, taped: bool) -> Loop:
    """The batched ``while`` equation ``e``. ``taped``: a ``while_vjp`` reverses it (a masked
    loop then keeps its mask on the tape)."""
    from jitgrad.ops import logical_and, logical_not
    nc, body, expect = e.params["n_carry"], e.params["body"], e.params["expect"]
    pred, carry, inv = args[0], args[1:1 + nc], args[1 + nc:]
    ib = list(flags[1 + nc:])
    cb, pred_b = _body_flags(body, nc, list(flags[1:1 + nc]), ib, size)
    masked = flags[0] or pred_b
    if masked:
        cb = [True] * nc  # the examples stop at different iterations: every value differs
    n = len(body.inputs)

    def fn(ins):
        c, rest = ins[:nc], ins[nc:]
        active = rest[0] if masked else None
        iv = rest[1:] if masked else rest
        outs, oflags = _batch(body, list(c) + list(iv), cb + ib, size)
        new = [full(o, f, size) if b else o for o, f, b in zip(outs[:nc], oflags, cb)]
        if not masked:
            return new + [outs[nc]]
        p = full(outs[nc], oflags[nc], size)
        new = [_select(active, x, old) for x, old in zip(new, c)]
        still = logical_and(active, p if expect else logical_not(p))
        return new + [still, _any(still)]

    from jitgrad.ir.primitive import Aval
    from jitgrad import dtypes
    avals = [_batched_aval(v, f, size) for v, f in zip(body.inputs[:nc], cb)]
    if masked:
        avals.append(Aval((size,), dtypes.bool_))
    avals += [_batched_aval(v, f, size) for v, f in zip(body.inputs[nc:n], ib)]
    nb = abstract_graph(fn, avals)
    init = [full(x, f0, size) if b else x for x, f0, b in zip(carry, flags[1:1 + nc], cb)]
    if masked:
        p0 = full(pred, flags[0], size)
        active = p0 if expect else logical_not(p0)
        w = _bind(while_p, (_any(active), *init, active, *inv),
                  dict(e.params, body=nb, n_carry=nc + 1, expect=True,
                       tape=e.params["tape"] or taped))
    else:
        w = _bind(while_p, (pred, *init, *inv), dict(e.params, body=nb))
    return Loop(w, {q: q for q in range(nc)}, batched=dict(enumerate(cb)), masked=masked)


def while_vjp_batch(e, args: list, flags: list, size: int, fwd: Loop | None) -> Loop:
    """The batched ``while_vjp`` equation ``e`` over the (batched or not) loop ``fwd``: the
    batched VJP of the body, all of whose cotangents carry the batch; over a masked loop, a
    finished example's cotangent passes through an iteration unchanged and adds nothing."""
    p = e.params
    nc, fc, fi, bvjp = p["n_carry"], p["fc"], p["fi"], p["bvjp"]
    nf = len(fc)
    w = args[0] if fwd is None else fwd.w
    cb = [False] * nc if fwd is None else [fwd.batched[q] for q in range(nc)]
    masked = fwd is not None and fwd.masked
    cts, inv = args[1:1 + nf], list(args[1 + nf:])
    ib = list(flags[1 + nf:])
    ni = len(inv)
    for j in fi:  # a summed cotangent carries the batch: so does the value it is shaped as
        inv[j], ib[j] = full(inv[j], ib[j], size), True

    def fn(ins):
        c = ins[:nc]
        active = ins[nc] if masked else None
        rest = ins[nc + (1 if masked else 0):]
        iv, ct = rest[:ni], rest[ni:]
        outs, oflags = _batch(bvjp, list(c) + list(iv) + list(ct),
                              cb + ib + [True] * nf, size)
        outs = [full(o, f, size) for o, f in zip(outs, oflags)]
        if not masked:
            return outs
        held = [_select(active, o, old) for o, old in zip(outs[:nf], ct)]
        summed = [_select(active, o, _zeros_like(o)) for o in outs[nf:]]
        return held + summed

    from jitgrad.ir.primitive import Aval
    from jitgrad import dtypes
    bin_ = bvjp.inputs
    avals = [_batched_aval(v, f, size) for v, f in zip(bin_[:nc], cb)]
    if masked:
        avals.append(Aval((size,), dtypes.bool_))
    avals += [_batched_aval(v, f, size) for v, f in zip(bin_[nc:nc + ni], ib)]
    avals += [_batched_aval(v, True, size) for v in bin_[nc + ni:]]
    nb = abstract_graph(fn, avals)
    full_ct = [full(c, f, size) for c, f in zip(cts, flags[1:1 + nf])]
    out = _bind(while_vjp_p, (w, *full_ct, *inv),
                dict(p, bvjp=nb, n_carry=nc + (1 if masked else 0),
                     tape=p["tape"] or masked))
    n_out = nf + len(fi)
    return Loop(out, {i: i for i in range(n_out)}, batched={i: True for i in range(n_out)})


def cond_batch(e, args: list, flags: list, size: int) -> Loop:
    """The batched ``cond`` equation ``e``: on a condition that differs between examples,
    both sides, each example's result taken from its own (as JAX's batched ``cond``); on one
    condition for the batch, a ``cond`` of the batched sides."""
    ops, of = args[1:], list(flags[1:])
    true, false = e.params["true"], e.params["false"]
    if flags[0]:
        t, tf = _batch(true, list(ops), of, size)
        f, ff = _batch(false, list(ops), of, size)
        return _Plain([_select(args[0], full(a, fa, size), full(b, fb, size))
                       for a, fa, b, fb in zip(t, tf, f, ff)])

    def side(g):
        def fn(ins):
            outs, fl = _batch(g, list(ins), of, size)
            return [full(o, f, size) for o, f in zip(outs, fl)]
        return abstract_graph(fn, [_batched_aval(v, f, size) for v, f in zip(g.inputs, of)])
    w = _bind(cond_p, (args[0], *ops), {"true": side(true), "false": side(false)})
    no = len(true.outputs)
    return Loop(w, {k: k for k in range(no)}, batched={k: True for k in range(no)})


class _Plain(Loop):
    """A transformed ``cond`` whose results are ordinary tensors (no tuple to read)."""

    def __init__(self, outs: list) -> None:
        super().__init__(None, {k: k for k in range(len(outs))},
                         batched={k: True for k in range(len(outs))})
        self.outs = outs

    def get(self, i: int):
        return self.outs[i]
