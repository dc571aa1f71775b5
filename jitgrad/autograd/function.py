"""Custom differentiable operations: subclass ``Function`` with ``forward`` and ``backward``.

>>> import jitgrad
>>> class Cube(jitgrad.autograd.Function):
...     @staticmethod
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return x ** 3
...     @staticmethod
...     def backward(ctx, g):
...         (x,) = ctx.saved_tensors
...         return 3 * x ** 2 * g
>>> x = jitgrad.tensor(2.0, requires_grad=True)
>>> Cube.apply(x).backward()
>>> x.grad
tensor(12.)
"""

from __future__ import annotations

from jitgrad.autograd import grad_mode
from jitgrad.autograd.graph import _fit_cotangents, check_gradient_shape, edge_of


class FunctionCtx:
    """What ``forward`` leaves for ``backward``: saved tensors and any attributes set on it."""

    def save_for_backward(self, *tensors) -> None:
        self._saved = tuple(tensors)
        self._saved_versions = tuple(t._vc[0] if isinstance(t, Tensor) else None for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        saved = getattr(self, "_saved", ())
        if getattr(self, "_freed", False):
            raise RuntimeError("Trying to backward through the graph a second time (or directly "
                               "access saved tensors after they have already been freed). Specify "
                               "retain_graph=True if you need to backward a second time.")
        for i, (t, v) in enumerate(zip(saved, self._saved_versions)):
            if v is not None and t._vc[0] != v:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified by an "
                    f"inplace operation: saved tensor {i} of {type(self).__name__} is at version "
                    f"{t._vc[0]}; expected version {v} instead.")
        return saved

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_diff = {id(t) for t in tensors}

    def set_materialize_grads(self, value: bool) -> None:
        self._materialize = bool(value)

    def mark_dirty(self, *tensors) -> None:
        self._dirty = tensors


class FunctionNode(FunctionCtx):
    """The ``grad_fn`` of a custom Function's outputs (the ctx object is the node, as in torch)."""

    fn_cls: type = None
    pre_hooks = None

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{type(self).__name__} object at {id(self):#x}>"

    @property
    def next_functions(self) -> tuple:
        from jitgrad.autograd.graph import _as_function
        return tuple((_as_function(e), e[1]) if e is not None else (None, 0) for e in self.edges)

    def apply(self, grads: list, create_graph: bool) -> list:
        if getattr(self, "_materialize", True):
            grads = [ops.zeros(*shape, dtype=dt) if g is None else g
                     for g, (shape, dt) in zip(grads, self.out_meta)]
        cts = _backward_cotangents(self, grads)
        return _fit_cotangents(cts, self.inputs, self.edges, self.name())

    def release(self) -> None:
        self._freed = True


_node_classes: dict[type, type] = {}


class Function:
    """Base class of custom autograd operations; call them with ``MyFunction.apply(...)``."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must implement forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError("a Function subclass must implement backward(ctx, ...)")

    @staticmethod
    def jvp(ctx, *grad_inputs):
        raise NotImplementedError("a Function subclass must implement jvp(ctx, ...) to be used "
                                  "with forward-mode AD")

    @classmethod
    def apply(cls, *args, **kwargs):
        from jitgrad.autograd import forward_ad
        from jitgrad.ops.registry import trace_state
        node_cls = _node_classes.get(cls)
        if node_cls is None:
            node_cls = _node_classes[cls] = type(f"{cls.__name__}Backward", (FunctionNode,),
                                                 {"fn_cls": cls})
        if trace_state.builder is not None:
            return _apply_traced(cls, node_cls(), args, kwargs)
        # Forward mode gets tangents from the backward (forward_ad's double VJP); a Function
        # that has only a jvp gives its outputs' tangents itself.
        if cls.jvp is not Function.jvp and cls.backward is Function.backward \
                and forward_ad.carries_tangent(args):
            return _apply_jvp(cls, node_cls(), args, kwargs)
        ctx = node_cls()
        tensors = [a for a in args if isinstance(a, Tensor)]
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with grad_mode.no_grad():
            out = cls.forward(ctx, *args, **kwargs)
        track = grad_mode.state.enabled and any(t.requires_grad for t in tensors)
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        if track:
            ctx.args = args
            ctx.inputs = tuple(tensors)
            ctx.edges = tuple(edge_of(t) for t in tensors)
            ctx.n_outputs = len(outs)
            non_diff = getattr(ctx, "_non_diff", set())
            wrapped = []
            for i, o in enumerate(outs):
                if isinstance(o, Tensor):
                    if any(o is t for t in tensors):
                        o = o.detach()  # an input returned as-is gets its own node
                    if id(o) not in non_diff and o.dtype.is_floating_point:
                        o._rg, o.grad_fn, o._output_nr = True, ctx, i
                wrapped.append(o)
            ctx.out_meta = _out_meta(wrapped)
            outs = tuple(wrapped)
        return outs[0] if single else outs


def _apply_jvp(cls, ctx, args, kwargs):
    """``apply`` inside a forward-AD level for a Function with ``jvp`` and no ``backward``:
    ``forward`` on the primals, then ``jvp`` on the inputs' tangents (zeros for an input that
    has none, as torch materializes them) makes each output a dual tensor."""
    from jitgrad.autograd import forward_ad
    ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
    with grad_mode.no_grad():
        out = cls.forward(ctx, *args, **kwargs)
        tangents = [forward_ad.tangent_or_zeros(a) if isinstance(a, Tensor) else None
                    for a in args]
        res = cls.jvp(ctx, *tangents)
    single = not isinstance(out, tuple)
    outs, res = ((out,), (res,)) if single else (out, res if isinstance(res, tuple) else (res,))
    if len(res) != len(outs):
        raise RuntimeError(f"function {cls.__name__}.jvp returned an incorrect number of "
                           f"tangents (expected {len(outs)}, got {len(res)})")
    non_diff = getattr(ctx, "_non_diff", set())
    wrapped = tuple(
        forward_ad.make_dual(o, t) if isinstance(o, Tensor) and isinstance(t, Tensor)
        and o.dtype.is_floating_point and id(o) not in non_diff else o
        for o, t in zip(outs, res))
    return wrapped[0] if single else wrapped


def _out_meta(outs) -> tuple:
    """Shape and dtype of each output, for the zeros that stand in for missing gradients."""
    return tuple((tuple(o.shape), o.dtype) if isinstance(o, Tensor) else ((), None) for o in outs)


def _apply_traced(cls, ctx, args, kwargs):
    """``Function.apply`` inside a trace. ``forward`` is traced as it runs (its values are the
    outputs' values); each differentiable output then passes through a ``custom_vjp`` equation,
    an identity whose VJP rule calls ``backward``, so the autodiff pass differentiates the
    Function with the user's rule, never through ``forward``."""
    from jitgrad.ops.control import custom_vjp_p
    from jitgrad.ops.registry import bind
    tensors = tuple(a for a in args if isinstance(a, Tensor))
    ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.dtype.is_floating_point
                                 for a in args)
    with grad_mode.no_grad():
        out = cls.forward(ctx, *args, **kwargs)
    single = not isinstance(out, tuple)
    outs = (out,) if single else out
    ctx.args = args
    ctx.n_outputs = len(outs)
    ctx.out_meta = _out_meta(outs)
    non_diff = getattr(ctx, "_non_diff", set())
    wrapped = tuple(
        bind(custom_vjp_p, (o,) + tensors, {"ctx": ctx, "index": i})
        if isinstance(o, Tensor) and o.dtype.is_floating_point and id(o) not in non_diff and tensors
        else o for i, o in enumerate(outs))
    return wrapped[0] if single else wrapped


def _custom_vjp_rule(g, out, y, *xs, ctx, index):
    """Cotangents of a traced Function's tensor arguments for output ``index``'s cotangent:
    ``backward`` with zeros for the other outputs (it is linear in them, so the per-output calls
    add up to one call with all of them). It runs on this pass's abstract tracers: the tensors
    ``forward`` left on ``ctx`` are swapped for them while it runs."""
    from jitgrad.ops.registry import trace_state
    b = trace_state.builder
    grads = [None] * ctx.n_outputs
    grads[index] = g
    if getattr(ctx, "_materialize", True):
        grads = [ops.zeros(*shape, dtype=dt) if gr is None and dt is not None else gr
                 for gr, (shape, dt) in zip(grads, ctx.out_meta)]

    def local(v):
        if isinstance(v, Tensor) and getattr(v, "_ir", None) is not None \
                and v.__dict__.get("_builder") is not b:
            return b.tracer(v._ir, None)
        if isinstance(v, tuple):
            return tuple(local(x) for x in v)
        return v
    saved = dict(vars(ctx))
    for k, v in saved.items():
        if k not in ("args", "out_meta"):
            setattr(ctx, k, local(v))
    try:
        cts = _backward_cotangents(ctx, grads)
    finally:
        for k, v in saved.items():
            setattr(ctx, k, v)
    return (None,) + tuple(cts)


def _backward_cotangents(ctx, grads: list) -> list:
    """The Function's ``backward`` on ``grads``, checked (a gradient per argument, each of a
    shape that sums down to its argument's); the gradients of the tensor arguments."""
    res = ctx.fn_cls.backward(ctx, *grads)
    if not isinstance(res, tuple):
        res = (res,)
    name = type(ctx).__name__
    if len(res) < len(ctx.args):
        raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                           f"(expected {len(ctx.args)}, got {len(res)})")
    for i, (r, a) in enumerate(zip(res, ctx.args)):
        if isinstance(r, Tensor) and isinstance(a, Tensor) and r.shape != a.shape:
            check_gradient_shape(name, i, r.shape, a.shape)
    return [r for r, a in zip(res, ctx.args) if isinstance(a, Tensor)]


from jitgrad import ops  # noqa: E402
from jitgrad.tensor import Tensor  # noqa: E402

