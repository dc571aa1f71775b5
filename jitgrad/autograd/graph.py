"""Backward graph nodes: the ``grad_fn`` of every tensor an op produced.

A node keeps what its primitive's VJP rule reads (inputs, output, or both, as the registry says),
the version each saved tensor had, and an edge per input: the producing node, or the leaf tensor
itself. Its type is named like torch's (``MulBackward0``) so ``print(y.grad_fn)`` reads the same.
"""

from __future__ import annotations

import traceback

import numpy as np

from jitgrad.autograd import grad_mode


class Node:
    """Base of every backward node. ``name()`` and ``next_functions`` as in torch."""

    __slots__ = ("prim", "params", "inputs", "edges", "versions", "out_value", "pre_hooks",
                 "freed", "forward_stack", "__weakref__")

    n_outputs = 1

    @classmethod
    def record(cls, prim, args: tuple, params: dict, out) -> "Node":
        name = prim.backward_name
        if type(name) is not str:
            name = name(**params)
        node_cls = _node_class(name)
        n = node_cls.__new__(node_cls)
        n.prim = prim
        n.params = params
        saves = prim.saves
        # A rule that reads no input keeps only their shapes and dtypes, not their memory: an
        # intermediate only such nodes refer to is freed as soon as the forward pass drops it.
        n.inputs = args if saves in ("inputs", "both") else tuple([
            _stand_in(a) if i not in prim.nondiff_inputs and a.dtype.is_floating_point else a
            for i, a in enumerate(args)])  # indices and masks are read: kept
        n.edges = tuple([edge_of(a) for a in args])
        n.versions = tuple([a._vc[0] for a in args]) if saves in ("inputs", "both") else None
        n.out_value = out._value if saves in ("output", "both") else None
        n.pre_hooks = None
        n.freed = False
        n.forward_stack = traceback.format_stack()[:-3] if grad_mode.state.anomaly else None
        out._rg = True
        out.grad_fn = n  # ``out`` is fresh from the op: its _output_nr is already 0
        return n

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
        if self.versions is not None:
            reads = self.prim.reads
            if reads is not None:
                reads = reads(tuple(e is not None for e in self.edges))
            for i, (a, v) in enumerate(zip(self.inputs, self.versions)):
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
        if self.out_value is not None:
            out = Tensor._wrap(self.out_value)
            out._rg = True
            out.grad_fn = self
        cts = self.prim.vjp(g, out, *self.inputs, **self.params)
        return _fit_cotangents(cts, self.inputs, self.edges, self.name())

    def release(self) -> None:
        """Drop what was saved (after a backward without ``retain_graph``)."""
        if self.prim.saves != "none":
            self.freed = True
            self.out_value = None
            # the saved inputs too: a graph kept after backward holds no intermediates
            self.inputs = tuple([_stand_in(a) if a._value is not None and
                                 a.dtype.is_floating_point else a for a in self.inputs])


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
        res.append(ct)
    return res


def _stand_in(t):
    """A value-less tensor with ``t``'s shape, dtype and requires_grad (for rules that read
    no input)."""
    from jitgrad.ops.registry import Aval  # here: the registry imports this module
    s = object.__new__(Tensor)
    s._value = None
    s._aval = Aval(tuple(t.shape), t.dtype)
    s._rg = t._rg
    s.grad_fn = None
    s._vc = t._vc
    return s


def edge_of(t) -> tuple | None:
    if t.grad_fn is not None:
        return (t.grad_fn, t._output_nr)
    if t.requires_grad:
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
