"""Batching: a rule per primitive, and the pass that runs a graph traced on one example over a
whole batch (``jitgrad.func.vmap``).

A batched value carries the batch as its leading axis; an unbatched one is the same for every
example. A rule is ``rule(prim, args, batched, size, **params) -> batched output`` (always
batched: a rule runs only when some input is). The table is keyed by the ``Primitive`` object:

- elementwise primitives broadcast: batched operands of lower rank get unit axes after the batch
  axis, unbatched ones broadcast from the right as they are;
- reductions, scans and softmaxes shift their axes past the batch axis; movement shifts its
  shape and permutation; basic indexing gets a leading full slice;
- matmul lifts vectors to matrices and lets batch broadcasting do the rest;
- what has no rule of its own (advanced indexing, custom Functions) runs once per example, and
  the results are stacked: slower, never wrong;
- the loop primitives have graph-level rules (``jitgrad.loops.rules.GraphRule``:
  ``rule(replay, e, args, batched) -> bool``), which batch the graphs inside an equation with
  this pass (``BatchReplay``).

A guard on a batched value (Python control flow on per-example data) cannot be one decision for
the batch: ``DataDependent`` tells ``vmap`` to run the function per example instead.

>>> import jitgrad
>>> from jitgrad.transforms.batching import BATCH_RULES
>>> from jitgrad.ops import PRIMITIVES
>>> PRIMITIVES["matmul"] in BATCH_RULES
True
"""

from __future__ import annotations

from jitgrad.ir.graph import Graph, Lit
from jitgrad.ops import PRIMITIVES, registry
from jitgrad.ops.control import guard_p
from jitgrad.ops.linalg import matmul_shape
from jitgrad.ops.shape import _dummy, np_index
from jitgrad.loops.rules import BATCH_RULES as _LOOP_BATCH, GraphRule, full
from jitgrad.transforms.replay import abstract_graph, attributed, body_vjp, const, emit, zeros_like
from jitgrad.ops.special import HOST_PRIMS as _SPECIAL
from jitgrad.ops.linalg import BATCH_RULES as _LINALG_BATCH
from jitgrad.ops.pointwise_more import PRIMS as _POINTWISE_MORE

P = PRIMITIVES


class DataDependent(Exception):
    """A guard tests a batched value: each example may take another path."""

    def __init__(self, src) -> None:
        super().__init__(f"Python control flow on a batched value (at {src})" if src
                         else "Python control flow on a batched value")
        self.src = src


def _bind(prim, args, params):
    return registry.bind(prim, tuple(args), params)


def _rank(x, batched: bool) -> int:
    return x.ndim - 1 if batched else x.ndim


def _lift(x, rank: int):
    """A batched ``x`` with unit axes after the batch axis, to logical rank ``rank``."""
    r = x.ndim - 1
    if r >= rank:
        return x
    return x.reshape(x.shape[0], *((1,) * (rank - r)), *x.shape[1:])


def _elementwise(prim, args, batched, size, **params):
    rank = max(_rank(a, b) for a, b in zip(args, batched))
    args = [_lift(a, rank) if b else a for a, b in zip(args, batched)]
    return _bind(prim, args, params)


def _axes(prim, args, batched, size, axes, keepdims=None, **params):
    new = tuple(a + 1 for a in axes)
    if keepdims is None:
        return _bind(prim, args, dict(params, axes=new))
    return _bind(prim, args, dict(params, axes=new, keepdims=keepdims))


def _axis(prim, args, batched, size, axis, **params):
    return _bind(prim, args, dict(params, axis=axis + 1))


def _arg(prim, args, batched, size, axis, keepdims):
    (x,) = args
    if axis is not None:
        return _bind(prim, (x,), {"axis": axis + 1, "keepdims": keepdims})
    r = x.ndim - 1
    out = _bind(prim, (x.reshape(size, -1),), {"axis": 1, "keepdims": False})
    return out.reshape(size, *((1,) * r)) if keepdims else out


def _reshape(prim, args, batched, size, shape):
    return _bind(prim, args, {"shape": (size,) + tuple(shape)})


def _permute(prim, args, batched, size, perm):
    return _bind(prim, args, {"perm": (0,) + tuple(p + 1 for p in perm)})


def _expand(prim, args, batched, size, shape):
    x = _lift(args[0], len(shape))
    return _bind(prim, (x,), {"shape": (size,) + tuple(shape)})


def _all_batched(args, batched, size):
    return [full(a, b, size) for a, b in zip(args, batched)]


def _cat(prim, args, batched, size, axis):
    return _bind(prim, _all_batched(args, batched, size), {"axis": axis + 1})


_FULL = ("s", None, None, None)


def _basic(index) -> bool:
    return all(item[0] != "t" for item in index)


def _getitem(prim, args, batched, size, index):
    if not _basic(index) or any(batched[1:]):
        return per_example(prim, args, batched, size, {"index": index})
    return _bind(prim, args[:1], {"index": (_FULL,) + tuple(index)})


def _scatter_add(prim, args, batched, size, shape, index):
    if not _basic(index) or any(batched[1:]):
        return per_example(prim, args, batched, size, {"shape": shape, "index": index})
    return _bind(prim, args[:1], {"shape": (size,) + tuple(shape),
                                  "index": (_FULL,) + tuple(index)})


def _index_update(prim, args, batched, size, index):
    if not _basic(index) or any(batched[2:]):
        return per_example(prim, args, batched, size, {"index": index})
    x, v = args[0], args[1]
    x = x if batched[0] else x.expand(size, *x.shape)
    if batched[1]:  # v broadcasts against one example's x[index]: line its axes up first
        target = _dummy(registry.Aval(tuple(x.shape[1:]), x.dtype))[np_index(index, ())]
        v = _lift(v, target.ndim)
    return _bind(prim, (x, v), {"index": (_FULL,) + tuple(index)})


def _matmul(prim, args, batched, size):
    (a, b), (ba, bb) = args, batched
    la = tuple(a.shape[1:]) if ba else tuple(a.shape)
    lb = tuple(b.shape[1:]) if bb else tuple(b.shape)
    out_shape = matmul_shape(la, lb)
    if len(la) == 1 and len(lb) == 1:  # a dot product per example
        return _elementwise(P["mul"], [a, b], [ba, bb], size).sum(dim=-1)
    # Shared weights: one plain matrix product, the batch folded into rows (or columns), which
    # the backends run as one BLAS call (broadcast batch axes would not be).
    if ba and not bb and len(lb) <= 2:
        return _bind(prim, (a.reshape(-1, la[-1]), b), {}).reshape(size, *out_shape)
    if bb and not ba and len(la) <= 2 and len(lb) <= 2:
        if len(lb) == 1:  # b: (B, k)
            r = _bind(prim, (a, b.permute(1, 0)), {})
            return r if len(la) == 1 else r.permute(1, 0)
        k, m = lb
        r = _bind(prim, (a, b.permute(1, 0, 2).reshape(k, size * m)), {})
        return r.reshape(size, m) if len(la) == 1 else r.reshape(la[0], size, m).permute(1, 0, 2)
    # Otherwise vectors as matrices, then batch broadcasting: the batch axis leads, unit axes
    # line the operands' own batch axes up.
    if len(la) == 1:
        a = a.reshape(*a.shape[:-1], 1, la[0])
    if len(lb) == 1:
        b = b.reshape(*b.shape[:-1], lb[0], 1)
    rank = max(len(la), len(lb), 2)
    if ba:
        a = _lift(a, rank)
    if bb:
        b = _lift(b, rank)
    if not ba:
        a = a.reshape(*((1,) * (rank + 1 - a.ndim)), *a.shape)
    if not bb:
        b = b.reshape(*((1,) * (rank + 1 - b.ndim)), *b.shape)
    if a.shape[-1] == 1:
        # An outer product per example (the VJP of a vector-matrix product): a broadcast
        # multiply, which fuses, where batched matrix products of depth 1 would not.
        return _bind(P["mul"], (a, b), {}).reshape(size, *out_shape)
    return _bind(prim, (a, b), {}).reshape(size, *out_shape)


def per_example(prim, args, batched, size, params):
    """The fallback: ``prim`` once per example, the results stacked."""
    outs = []
    for k in range(size):
        ex = [_bind(P["getitem"], (a,), {"index": (("i", k),)}) if b else a
              for a, b in zip(args, batched)]
        o = _bind(prim, ex, params)
        outs.append(o.reshape(1, *o.shape))
    return _bind(P["cat"], outs, {"axis": 0})


def _fallback(prim, args, batched, size, **params):
    return per_example(prim, args, batched, size, params)


def _random(prim, args, batched, size, **params):
    # The generator's state is one input for the whole batch: its draws would be the same for
    # every example (as an unsplit key in JAX). torch.func.vmap refuses by default; so do we.
    raise RuntimeError("vmap: a random operation (rand, randn, dropout...) inside vmap would "
                       "draw the same numbers for every example; draw them outside and pass "
                       "them in with in_dims, as torch.func.vmap(randomness='error') asks")


BATCH_RULES: dict = {}
for _p in PRIMITIVES.values():
    if _p.kind == "elementwise" and _p is not P["custom_vjp"]:
        BATCH_RULES[_p] = _elementwise
BATCH_RULES.update({_p: _elementwise for _p in _SPECIAL})
BATCH_RULES.update({_p: _elementwise for _p in _POINTWISE_MORE})
BATCH_RULES.update(_LINALG_BATCH)
for _name in ("sum", "mean", "max", "min", "prod", "norm", "prod_others"):
    BATCH_RULES[P[_name]] = _axes
for _name in ("softmax", "log_softmax", "cumsum", "argsort"):
    BATCH_RULES[P[_name]] = _axis
BATCH_RULES.update({
    P["argmax"]: _arg, P["argmin"]: _arg, P["reshape"]: _reshape, P["permute"]: _permute,
    P["expand"]: _expand, P["cat"]: _cat, P["getitem"]: _getitem,
    P["scatter_add"]: _scatter_add, P["index_update"]: _index_update, P["matmul"]: _matmul,
    # Runs once per example: its ctx holds one example's saved values.
    P["custom_vjp"]: _fallback,
    P["uniform"]: _random,
})
BATCH_RULES.update(_LOOP_BATCH)


class BatchReplay:
    """A batching replay under way, as a graph-level rule sees it: the ``graph`` replayed, the
    values (``env``) by id(var) and the ids of those that carry the batch (``bat``), the batch
    ``size``, and ``held``: what a rule leaves for a later equation (a batched loop, for the
    tuple_gets that read it)."""

    __slots__ = ("graph", "env", "bat", "size", "held")

    def __init__(self, g: Graph, env: dict, bat: set, size: int) -> None:
        self.graph, self.env, self.bat, self.size = g, env, bat, size
        self.held: dict = {}

    def set(self, v, value, batched: bool = False) -> None:
        """``v`` is ``value``, which carries the batch if ``batched``."""
        self.env[id(v)] = value
        if batched:
            self.bat.add(id(v))

    @staticmethod
    def batch(g: Graph, inputs: list, batched: list, size: int) -> tuple[list, list]:
        return batch_replay(g, inputs, batched, size)

    abstract_graph = staticmethod(abstract_graph)
    zeros_like = staticmethod(zeros_like)
    body_vjp = staticmethod(body_vjp)


def batch_replay(g: Graph, inputs: list, batched: list, size: int) -> tuple[list, list]:
    """Run ``g`` (traced on one example) on ``inputs``, those marked in ``batched`` carrying
    the batch as their leading axis: the outputs and whether each is batched."""
    env: dict[int, object] = {id(v): const(arr) for v, arr in g.consts}
    bat: set = set()
    for v, x, b in zip(g.inputs, inputs, batched):
        env[id(v)] = x
        if b:
            bat.add(id(v))

    def read(a):
        return registry.scalar(a.value, a.aval.dtype) if isinstance(a, Lit) else env[id(a)]

    rp = BatchReplay(g, env, bat, size)
    for e in g.eqns:
        args = [read(a) for a in e.inputs]
        flags = [not isinstance(a, Lit) and id(a) in bat for a in e.inputs]
        rule = BATCH_RULES.get(e.prim)
        if isinstance(rule, GraphRule):
            with attributed(e.src):
                if rule(rp, e, args, flags):
                    continue
        if not any(flags) and e.prim.kind != "random":  # (a draw depends on the example)
            out = emit(e, args)
        elif e.prim is guard_p:
            raise DataDependent(e.src)
        else:
            with attributed(e.src):
                out = BATCH_RULES[e.prim](e.prim, args, flags, size, **e.params)
            bat.add(id(e.out))
        if e.out is not None:
            env[id(e.out)] = out
    outs = [read(o) for o in g.outputs]
    return outs, [not isinstance(o, Lit) and id(o) in bat for o in g.outputs]
