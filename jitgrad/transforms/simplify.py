"""Simplification passes: named pure functions ``Graph -> Graph``.

- ``fold``: equations whose inputs are all literals or constants are evaluated now (scalars
  become literals, arrays constants); identities (``stop_gradient``, ``x * 1``, reshape/expand to
  the same shape) forward their input. Nothing that could change NaN/inf or signed-zero results
  (``x * 0``, ``x + 0``) is rewritten.
- ``cse``: identical equations (same primitive, operands and params) computed once.
- ``transpose_products``: ``(a @ b).T`` becomes ``b.T @ a.T`` where the product is used only
  there, so no transposed copy of the result is made; likewise the permute of a broadcast
  elementwise product (``vmap``'s per-example outer products) permutes its small operands.
- ``dce``: equations whose results are never used are dropped; guards always stay.
"""

from __future__ import annotations

import numpy as np

from jitgrad.errors import GuardFailure
from jitgrad.ir.graph import Eqn, Graph, Lit, Var
from jitgrad.ops.control import custom_vjp_p, stop_gradient_p
from jitgrad.ops.elementwise import mul_p, pow_scalar_p
from jitgrad.ops.linalg import matmul_p
from jitgrad.ops.shape import expand_p, permute_p, reshape_p

# Identities once the gradient is taken: no backend ever sees them.
ERASED = frozenset({stop_gradient_p, custom_vjp_p})

_FOLD_LIMIT = 1 << 16  # elements; larger constant results stay computed at run time


def _rename(a, alias: dict):
    return alias.get(id(a), a) if isinstance(a, Var) else a


def _identity_source(e: Eqn, bcast: dict):
    """The operand ``e`` merely passes on, or None. ``x * 1`` is exactly ``x`` (NaN and -0.0
    included), also when the 1 is a broadcast literal."""
    prim = e.prim
    ins = e.inputs
    if prim in ERASED:
        return ins[0]
    if prim in (reshape_p, expand_p) and tuple(ins[0].aval.shape) == tuple(e.out.aval.shape):
        return ins[0]
    if prim is pow_scalar_p and e.params["p"] == 1:
        return ins[0]
    if prim is mul_p:
        for one, other in ((ins[0], ins[1]), (ins[1], ins[0])):
            lit = _lit_of(one, bcast)
            if lit is not None and lit.value == 1 and other.aval == e.out.aval:
                return other
    return None


def _lit_of(a, bcast: dict):
    """The literal that ``a`` is (or is a broadcast of), else None."""
    if isinstance(a, Lit):
        return a
    return bcast.get(id(a))


def _scalar_eval(e: Eqn, lits: list) -> Lit | None:
    vals = [np.array(x.value, dtype=x.aval.dtype.np) for x in lits]
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(e.prim.impl(*vals, **e.params))
    except (GuardFailure, ValueError, IndexError, TypeError):
        return None
    return Lit(out.astype(e.out.aval.dtype.np).reshape(()).item(), e.out.aval.dtype)


def fold(g: Graph) -> Graph:
    consts = dict((id(v), (v, arr)) for v, arr in g.consts)
    alias: dict[int, object] = {}
    bcast: dict[int, Lit] = {}  # Vars that are a literal broadcast to their shape
    permuted: dict[int, tuple] = {}  # Vars made by a permute: (its input, its perm)
    eqns = []

    def emit_broadcast(out: Var, lit: Lit, src) -> None:
        if not out.aval.shape:
            alias[id(out)] = lit
            return
        bcast[id(out)] = lit
        eqns.append(Eqn(expand_p, (lit,), out, {"shape": tuple(out.aval.shape)}, src))

    for e in g.eqns:
        ins = tuple(_rename(a, alias) for a in e.inputs)
        e = Eqn(e.prim, ins, e.out, e.params, e.src)
        if e.out is None:
            eqns.append(e)
            continue
        if e.prim is permute_p and id(ins[0]) in permuted:
            # A permute of a permute is one permute, and none at all when they cancel.
            inner, p0 = permuted[id(ins[0])]
            perm = tuple(p0[p] for p in e.params["perm"])
            if perm == tuple(range(len(perm))):
                alias[id(e.out)] = inner
                continue
            e = Eqn(e.prim, (inner,), e.out, {"perm": perm}, e.src)
            ins = e.inputs
        if e.prim is permute_p:
            permuted[id(e.out)] = (ins[0], e.params["perm"])
        src = _identity_source(e, bcast)
        if src is not None:
            alias[id(e.out)] = src
            continue
        lits = [_lit_of(a, bcast) for a in ins]
        if e.prim.kind == "elementwise" and len(ins) > 1 and any(x is None for x in lits):
            # A broadcast literal next to an operand of the full shape is just the literal.
            full = any(x is None and tuple(a.aval.shape) == tuple(e.out.aval.shape)
                       for a, x in zip(ins, lits))
            if full and any(x is not None and isinstance(a, Var) for a, x in zip(ins, lits)):
                ins = tuple(x if x is not None else a for a, x in zip(ins, lits))
                e = Eqn(e.prim, ins, e.out, e.params, e.src)
        if ins and all(x is not None for x in lits) and (
                e.prim.kind == "movement" and len(ins) == 1 or e.prim.kind == "elementwise"):
            # Arithmetic on literals and their broadcasts: one literal, broadcast once (fused
            # code reads it for free, and nothing is materialized).
            lit = lits[0] if e.prim.kind == "movement" else _scalar_eval(e, lits)
            if lit is not None and lit.aval.dtype is e.out.aval.dtype:
                emit_broadcast(e.out, lit, e.src)
                continue
        if e.prim.kind not in ("guard", "loop") and ins and all(
                isinstance(a, Lit) or id(a) in consts for a in ins) and \
                int(np.prod(e.out.aval.shape, dtype=np.int64)) <= _FOLD_LIMIT:
            vals = [np.array(a.value, dtype=a.aval.dtype.np) if isinstance(a, Lit)
                    else consts[id(a)][1] for a in ins]
            try:
                with np.errstate(all="ignore"):
                    out = np.asarray(e.prim.impl(*vals, **e.params)).astype(e.out.aval.dtype.np)
            except (GuardFailure, ValueError, IndexError):
                eqns.append(e)
                continue
            if out.ndim == 0:
                alias[id(e.out)] = Lit(out.item(), e.out.aval.dtype)
            else:
                consts[id(e.out)] = (e.out, np.ascontiguousarray(out))
            continue
        eqns.append(e)
    outs = tuple(_rename(o, alias) for o in g.outputs)
    return Graph(tuple(consts.values()), g.inputs, tuple(eqns), outs)


def _param_key(params: dict):
    key = tuple((k, type(v), v) for k, v in params.items())
    try:
        hash(key)
    except TypeError:
        return None
    return key


def cse(g: Graph) -> Graph:
    seen: dict[tuple, Var] = {}
    alias: dict[int, object] = {}
    eqns = []
    for e in g.eqns:
        ins = tuple(_rename(a, alias) for a in e.inputs)
        e = Eqn(e.prim, ins, e.out, e.params, e.src)
        if e.out is not None:
            pk = _param_key(e.params)
            if pk is not None:
                key = (e.prim, tuple(a.key() if isinstance(a, Lit) else id(a) for a in ins), pk)
                hit = seen.get(key)
                if hit is not None:
                    alias[id(e.out)] = hit
                    continue
                seen[key] = e.out
        eqns.append(e)
    outs = tuple(_rename(o, alias) for o in g.outputs)
    return Graph(g.consts, g.inputs, tuple(eqns), outs)


def dce(g: Graph) -> Graph:
    """``g`` without the equations nothing reads. Guards stay, and so does a loop or cond
    whose body holds one, even when its results are unused: the decisions the trace was built
    on must still be checked (a lifted loop whose carried values are dead after it)."""
    live = {id(o) for o in g.outputs if isinstance(o, Var)}
    kept = []
    for e in reversed(g.eqns):
        if e.out is None or id(e.out) in live or _guards_inside(e):
            kept.append(e)
            for a in e.inputs:
                if isinstance(a, Var):
                    live.add(id(a))
    consts = tuple((v, arr) for v, arr in g.consts if id(v) in live)
    return Graph(consts, g.inputs, tuple(reversed(kept)), g.outputs)


def _guards_inside(e: Eqn) -> bool:
    return any(isinstance(v, Graph) and v.guards for v in e.params.values())


def transpose_products(g: Graph) -> Graph:
    """``(a @ b).T`` as ``b.T @ a.T`` for 2-D operands, when the product is used only there:
    reverse mode makes ``(x.T @ g).T`` for the weight of ``x @ w.T``, and this way no transposed
    copy of the result is made (transposed operands go to BLAS as views, and a transpose of a
    transpose cancels)."""
    uses: dict[int, int] = {}
    for e in g.eqns:
        for a in e.inputs:
            if isinstance(a, Var):
                uses[id(a)] = uses.get(id(a), 0) + 1
    for o in g.outputs:
        if isinstance(o, Var):
            uses[id(o)] = uses.get(id(o), 0) + 1
    producer = {id(e.out): e for e in g.eqns if e.out is not None}
    eqns = []
    for e in g.eqns:
        m = producer.get(id(e.inputs[0])) if e.inputs and isinstance(e.inputs[0], Var) else None
        if (e.prim is permute_p and e.params["perm"] == (1, 0) and m is not None
                and m.prim is matmul_p and uses.get(id(m.out)) == 1
                and all(len(a.aval.shape) == 2 for a in m.inputs)):
            a, b = m.inputs
            ta, tb = _transposed(b, producer, eqns, e.src), _transposed(a, producer, eqns, e.src)
            eqns.append(Eqn(matmul_p, (ta, tb), e.out, {}, e.src))
            continue
        if e.prim is permute_p and m is not None and _broadcast_product(m, uses):
            # The permute of a broadcast elementwise result (an outer product per example,
            # from vmap of a gradient): permute the small operands, and write the result once.
            ins = tuple(a if isinstance(a, Lit) else _permuted(a, e.params["perm"], producer,
                                                               eqns, e.src) for a in m.inputs)
            eqns.append(Eqn(m.prim, ins, e.out, m.params, m.src))
            continue
        eqns.append(e)
    return Graph(g.consts, g.inputs, tuple(eqns), g.outputs)


def _broadcast_product(m: Eqn, uses: dict) -> bool:
    """An elementwise equation used once whose operands, of its rank, are together smaller
    than its result."""
    if m.prim.kind != "elementwise" or m.prim.expr is None or uses.get(id(m.out)) != 1:
        return False
    rank = len(m.out.aval.shape)
    vs = [a for a in m.inputs if isinstance(a, Var)]
    if any(len(a.aval.shape) != rank for a in vs):
        return False
    size = int(np.prod(m.out.aval.shape, dtype=np.int64))
    return sum(int(np.prod(a.aval.shape, dtype=np.int64)) for a in vs) < size


def _permuted(v, perm: tuple, producer: dict, eqns: list, src):
    p = producer.get(id(v))
    if p is not None and p.prim is permute_p and tuple(
            p.params["perm"][i] for i in perm) == tuple(range(len(perm))):
        return p.inputs[0]  # a permute undone
    out = Var(type(v.aval)(tuple(v.aval.shape[i] for i in perm), v.aval.dtype))
    eqns.append(Eqn(permute_p, (v,), out, {"perm": tuple(perm)}, src))
    return out


def _transposed(v, producer: dict, eqns: list, src):
    p = producer.get(id(v))
    if p is not None and p.prim is permute_p and p.params["perm"] == (1, 0):
        return p.inputs[0]
    out = Var(type(v.aval)(tuple(reversed(v.aval.shape)), v.aval.dtype))
    eqns.append(Eqn(permute_p, (v,), out, {"perm": (1, 0)}, src))
    return out


PASSES = (fold, cse, transpose_products, dce)


def simplify(g: Graph, verify=None) -> Graph:
    """The passes of ``PASSES`` in order: fold, CSE, transpose_products, DCE (``verify`` runs
    after each pass when given); loop bodies get ``simplify_body``."""
    g = _bodies(g)
    for p in PASSES:
        g = p(g)
        if verify is not None:
            verify(g)
    return g


def simplify_body(g: Graph) -> Graph:
    """A loop body's passes: CSE, transpose_products and DCE. Not ``fold``, which may make
    constants, and a body takes everything it reads as its inputs."""
    g = _bodies(g)
    for p in (cse, transpose_products, dce):
        g = p(g)
    return g


def _bodies(g: Graph) -> Graph:
    if not any(isinstance(v, Graph) for e in g.eqns for v in e.params.values()):
        return g
    eqns = [Eqn(e.prim, e.inputs, e.out, {k: simplify_body(v) if isinstance(v, Graph) else v
                                         for k, v in e.params.items()}, e.src)
            if any(isinstance(v, Graph) for v in e.params.values()) else e for e in g.eqns]
    return Graph(g.consts, g.inputs, tuple(eqns), g.outputs)
