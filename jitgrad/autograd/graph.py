"""Backward graph nodes: the ``grad_fn`` of every tensor an op produced.

A node keeps what its primitive's VJP rule reads (inputs, output, or both, as the registry says),
the version each saved tensor had, and an edge per input: the producing node, or the leaf tensor
itself. Its type is named like torch's (``MulBackward0``) so ``print(y.grad_fn)`` reads the same.
"""

from __future__ import annotations

import traceback

import numpy as np

from jitgrad.autograd import grad_mode
from jitgrad.dtypes import _BY_NP
from jitgrad.ir.primitive import Aval

_grad_state = grad_mode.state
_new = object.__new__
_tuple_new = tuple.__new__


class Node:
    """Base of every backward node. ``name()`` and ``next_functions`` as in torch."""

    __slots__ = ("prim", "params", "inputs", "edges", "versions", "out_value", "pre_hooks",
                 "freed", "forward_stack", "__weakref__")

    n_outputs = 1

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {id(self):#x}>"

    @property
    def next_functions(self) -> tuple:
        return tuple((_as_function(e), e[1]) if e is not None else (None, 0) for e in self.edges)

    def register_hook(self, fn) -> None:
        """Register ``fn(grad_inputs, grad_outputs)`` to run after this node (torch's post-hook)."""
        raise NotImplementedError("Node.register_hook is not supported; use Tensor.register_hook")

    def _check_saved(self) -> None:
        if self.freed:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved "
                "tensors after they have already been freed). Saved intermediate values of the "
                f"graph are freed when you call .backward() or autograd.grad(); {self.name()} was "
                "freed. Specify retain_graph=True if you need to backward through the graph a "
                "second time.")
        versions = self.versions
        if versions is None:
            return
        for a, v in zip(self.inputs, versions):
            if a._vc[0] != v:
                break
        else:
            return  # (every call of a backward: nothing moved, and the rule is not asked)
        reads = self.prim.reads
        if reads is not None:
            reads = reads(tuple(e is not None for e in self.edges))
        for i, (a, v) in enumerate(zip(self.inputs, versions)):
            if a._vc[0] != v and (reads is None or reads[i]):
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: [{a.dtype.name} {list(a.shape)}], which is "
                    f"input {i} of {self.name()}, is at version {a._vc[0]}; expected "
                    f"version {v} instead. Use .clone() before the in-place operation.")

    def apply(self, grads: list, create_graph: bool) -> list:
        """Cotangents for every input (``None`` where an input needs none)."""
        self._check_saved()
        g = grads[0]
        if g is None:
            return [None] * len(self.edges)
        out = None
        value = self.out_value
        if value is not None:
            out = Tensor._wrap(value)
            out._rg = True
            out.grad_fn = self
        inputs = self.inputs
        cts = self.prim.vjp(g, out, *inputs, **self.params)
        return _fit_cotangents(cts, inputs, self.edges, type(self).__name__)

    def release(self) -> None:
        """Drop what was saved (after a backward without ``retain_graph``)."""
        if self.prim.saves != "none":
            self.freed = True
            self.out_value = None
            # The saved inputs too: a graph kept after backward holds no intermediates. A freed
            # node reads none of them again (``apply`` raises first).
            self.inputs = ()


def record(prim, args: tuple, params: dict, out) -> "Node":
    """Make ``out``'s ``grad_fn``: the node of ``prim`` applied to ``args`` (called by the eager
    path of ``bind`` for every op whose result needs a gradient, so kept to slot writes)."""
    name = prim.backward_name
    if type(name) is not str:
        name = name(**params)
    node_cls = _node_classes.get(name)
    if node_cls is None:
        node_cls = _node_class(name)
    n = _new(node_cls)
    n.prim = prim
    n.params = params
    saves = prim.saves
    nargs = len(args)
    if saves == "inputs" or saves == "both":
        n.inputs = args
        n.versions = (args[0]._vc[0], args[1]._vc[0]) if nargs == 2 else \
            (args[0]._vc[0],) if nargs == 1 else tuple([a._vc[0] for a in args])
    else:
        # A rule that reads no input keeps only their shapes and dtypes, not their memory: an
        # intermediate only such nodes refer to is freed as soon as the forward pass drops it.
        nondiff = prim.nondiff_inputs
        n.inputs = tuple([  # indices and masks are read: kept
            _stand_in(a) if i not in nondiff and _BY_NP[a._value.dtype].is_floating_point
            else a for i, a in enumerate(args)])
        n.versions = None
    if nargs == 2:  # (most ops: the edges without a comprehension's frame)
        a, b = args
        fa, fb = a.grad_fn, b.grad_fn
        n.edges = ((fa, a._output_nr) if fa is not None else (a, 0) if a._rg else None,
                   (fb, b._output_nr) if fb is not None else (b, 0) if b._rg else None)
    else:
        n.edges = tuple([edge_of(a) for a in args])
    n.out_value = out._value if saves == "output" or saves == "both" else None
    n.pre_hooks = None
    n.freed = False
    n.forward_stack = traceback.format_stack()[:-3] if _grad_state.anomaly else None
    out._rg = True
    out.grad_fn = n  # ``out`` is fresh from the op: its _output_nr is already 0
    return n



def check_gradient_shape(name: str, index: int, got, want) -> None:
    """A gradient must have its input's shape, or one that sums down to it (broadcasting)."""
    got, want = tuple(got), tuple(want)
    try:
        ok = np.broadcast_shapes(want, got) == got
    except ValueError:
        ok = False
    if not ok:
        raise RuntimeError(f"{name} returned an invalid gradient at index {index}: got shape "
                           f"{list(got)}, expected a shape compatible with {list(want)}")


def _fit_cotangents(cts, inputs, edges, name: str) -> list:
    if not isinstance(cts, (tuple, list)):
        cts = (cts,)
    if len(cts) != len(inputs):
        raise RuntimeError(f"{name} returned {len(cts)} gradients for {len(inputs)} inputs")
    res = []
    for i, (ct, a, e) in enumerate(zip(cts, inputs, edges)):
        if e is None or ct is None:
            res.append(None)
            continue
        # The common case first: an eager cotangent of its input's shape and NumPy dtype
        # (a stand-in's are in its aval) needs nothing done.
        cv = ct._value if isinstance(ct, Tensor) else None
        if cv is not None:
            av = a._value
            if av is not None:
                if cv.shape == av.shape and cv.dtype is av.dtype:
                    res.append(ct)
                    continue
            else:
                aval = a._aval
                if aval is not None and cv.shape == aval.shape and cv.dtype is aval.dtype.np:
                    res.append(ct)
                    continue
        res.append(_fit(ct, a, i, name))
    return res


def _fit(ct, a, i: int, name: str):
    """``ct`` made a Tensor of ``a``'s shape (summing broadcast dims) and dtype."""
    if not isinstance(ct, Tensor):
        ct = ops.from_array(np.asarray(ct, dtype=a.dtype.np))
    cv, av = ct._value, a._value
    if cv is None or av is None:  # abstract values, in the autodiff pass
        if ct.shape != a.shape:
            check_gradient_shape(name, i, ct.shape, a.shape)
            ct = ops.sum_to(ct, a.shape)
        if ct.dtype is not a.dtype:
            ct = ct.to(a.dtype)
    else:
        if cv.shape != av.shape:
            check_gradient_shape(name, i, cv.shape, av.shape)
            ct = ops.sum_to(ct, av.shape)
        if ct._value.dtype is not av.dtype:
            ct = ct.to(a.dtype)
    return ct


def _stand_in(t):
    """A value-less tensor with ``t``'s shape, dtype and requires_grad (for rules that read
    no input)."""
    s = _new(Tensor)
    v = t._value
    # (an Aval built as its tuple: NamedTuple's own __new__ is a Python call)
    s._aval = _tuple_new(Aval, (v.shape, _BY_NP[v.dtype])) if v is not None else \
        Aval(tuple(t.shape), t.dtype)
    s._value = None
    s._rg = t._rg
    s.grad_fn = None
    s._vc = t._vc
    return s


def edge_of(t) -> tuple | None:
    fn = t.grad_fn
    if fn is not None:
        return (fn, t._output_nr)
    if t._rg:
        return (t, 0)
    return None


class AccumulateGrad:
    """The node that stands for a leaf in ``next_functions`` (as in torch)."""

    __slots__ = ("variable",)

    def __init__(self, variable) -> None:
        self.variable = variable

    def name(self) -> str:
        return "AccumulateGrad"

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {id(self):#x}>"

    @property
    def next_functions(self) -> tuple:
        return ()


def rename(t, name: str):
    """``t`` with its node reporting ``name``: a loss written as several ops reads as torch's
    one node (``NllLossBackward0``). The node's behaviour is its primitive's, not its class's."""
    n = getattr(t, "grad_fn", None)
    if isinstance(n, Node) and type(n).__name__ != name:
        n.__class__ = _node_class(name)
    return t


def _node_class(name: str) -> type:
    """The Node subclass named ``name`` (one per name: ``type(y.grad_fn)`` compares equal)."""
    cls = _node_classes.get(name)
    if cls is None:
        cls = _node_classes[name] = type(name, (Node,), {"__slots__": ()})
    return cls


def _as_function(edge_target):
    target = edge_target[0]
    return AccumulateGrad(target) if isinstance(target, Tensor) else target


_node_classes: dict[str, type] = {}

from jitgrad import ops  # noqa: E402
from jitgrad.tensor import Tensor  # noqa: E402
