"""``backward`` and ``grad``: the public doors into the engine; and, as in torch, the
higher-level ``jacobian``, ``hessian``, ``vjp``, ``jvp``, ``hvp`` and ``vhp`` (built on
``jitgrad.func``'s transforms).

>>> import jitgrad
>>> x = jitgrad.tensor(3.0, requires_grad=True)
>>> (g,) = jitgrad.autograd.grad(x ** 2, x, create_graph=True)
>>> g
tensor(6., grad_fn=<MulBackward0>)
>>> jitgrad.autograd.grad(g, x)
(tensor(2.),)
"""

from __future__ import annotations

import numpy as np

from jitgrad.autograd.engine import run_backward
from jitgrad.errors import ShapeError


def _as_tuple(x) -> tuple:
    if x is None:
        return ()
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _root_grads(outputs: tuple, grads: tuple, create_graph: bool) -> list:
    if grads and len(grads) != len(outputs):
        raise ValueError(f"got {len(grads)} gradients for {len(outputs)} outputs")
    res = []
    for i, out in enumerate(outputs):
        g = grads[i] if grads else None
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs: the output must be a "
                    f"scalar, but output {i} has shape {tuple(out.shape)}; pass "
                    f"gradient=<a tensor of that shape> to backward()")
            v = out._value
            # (one element: every layout is row-major, so ``ones`` is ``ones_like``)
            g = Tensor._wrap(np.ones(v.shape, v.dtype)) if v is not None \
                else ops.ones_like(out)
        else:
            if not isinstance(g, Tensor):
                g = ops.tensor(g, dtype=out.dtype)
            if tuple(g.shape) != tuple(out.shape):
                raise ShapeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                                 f"{tuple(g.shape)} and output[{i}] has a shape of "
                                 f"{tuple(out.shape)}")
            if g.dtype is not out.dtype:
                g = g.to(out.dtype)
            if not create_graph:
                g = g.detach()
        res.append(g)
    return res


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False,
             inputs=None) -> None:
    """Accumulate gradients of ``tensors`` into the leaves' ``.grad``."""
    outs = _as_tuple(tensors)
    for i, t in enumerate(outs):
        if not t.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a "
                               "grad_fn")
    if retain_graph is None:
        retain_graph = create_graph
    gs = _root_grads(outs, _as_tuple(grad_tensors) if not isinstance(grad_tensors, Tensor)
                     else (grad_tensors,), create_graph)
    if inputs is not None:
        ins = _as_tuple(inputs)
        got = run_backward(list(outs), gs, retain_graph=retain_graph, create_graph=create_graph,
                           capture=list(ins), allow_unused=True)
        from jitgrad.autograd.engine import _accumulate
        for t, g in zip(ins, got):
            if g is not None:
                _accumulate(t, g, create_graph)
        return
    run_backward(list(outs), gs, retain_graph=retain_graph, create_graph=create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused: bool = False, materialize_grads: bool = False) -> tuple:
    """Gradients of ``outputs`` with respect to ``inputs``, returned (``.grad`` is untouched)."""
    outs = _as_tuple(outputs)
    ins = _as_tuple(inputs)
    for i, t in enumerate(outs):
        if not t.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a "
                               "grad_fn")
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"input {i} of grad() does not require grad; only tensors with "
                               "requires_grad=True can be differentiated")
    if retain_graph is None:
        retain_graph = create_graph
    go = _as_tuple(grad_outputs) if not isinstance(grad_outputs, Tensor) else (grad_outputs,)
    gs = _root_grads(outs, go, create_graph)
    got = run_backward(list(outs), gs, retain_graph=retain_graph, create_graph=create_graph,
                       capture=list(ins), allow_unused=allow_unused or materialize_grads)
    if materialize_grads:
        got = [ops.zeros_like(t) if g is None else g for t, g in zip(ins, got)]
    return tuple(got)


# -- torch.autograd.functional: on top of jitgrad.func's transforms ----------------------------
def _inputs(inputs, api: str) -> tuple[tuple, bool]:
    single = not isinstance(inputs, tuple)
    ins = (inputs,) if single else inputs
    for i, x in enumerate(ins):
        if not isinstance(x, Tensor):
            raise TypeError(f"{api}: the inputs must be Tensors or a tuple of Tensors, but input "
                            f"{i} is a {type(x).__name__}")
    return ins, single


def _finish(x, create_graph: bool):
    """Results are part of the graph only with create_graph=True (as torch)."""
    if isinstance(x, Tensor):
        return x if create_graph else x.detach()
    if isinstance(x, (tuple, list)):
        return type(x)(_finish(y, create_graph) for y in x)
    return x


def _no_strict(strict: bool, api: str) -> None:
    if strict:
        raise ValueError(f"{api}: strict=True is not supported; an output that does not depend "
                         "on an input gets a zero derivative")


def _scalar_fn(func, api: str):
    def f(*xs):
        out = func(*xs)
        if not isinstance(out, Tensor) or out.numel() != 1:
            what = (f"a tensor of shape {tuple(out.shape)}" if isinstance(out, Tensor)
                    else type(out).__name__)
            raise RuntimeError(f"The function given to {api} should return a single element "
                               f"Tensor, got {what}")
        return out.reshape(())
    return f


def _vs(v, ins, single: bool, api: str) -> tuple:
    vs = (v,) if single or isinstance(v, Tensor) else tuple(v)
    if len(vs) != len(ins):
        raise RuntimeError(f"{api}: v has {len(vs)} tensors but there are {len(ins)} inputs")
    for i, (a, x) in enumerate(zip(vs, ins)):
        if tuple(a.shape) != tuple(x.shape):
            raise RuntimeError(f"{api}: Mismatch in shape: v[{i}] has a shape of "
                               f"{tuple(a.shape)} and inputs[{i}] has a shape of "
                               f"{tuple(x.shape)}")
    return vs


def jacobian(func, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``, as ``torch.autograd.functional.jacobian``
    (always vectorized: ``vmap`` of a VJP or JVP).

    >>> import jitgrad
    >>> jitgrad.autograd.functional.jacobian(lambda x: x ** 2, jitgrad.tensor([1.0, 3.0]))
    tensor([[2., 0.],
            [0., 6.]])
    """
    from jitgrad import func as F
    _no_strict(strict, "jacobian")
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f"jacobian: strategy must be 'reverse-mode' or 'forward-mode', got "
                         f"{strategy!r}")
    ins, single = _inputs(inputs, "jacobian")
    t = F.jacrev if strategy == "reverse-mode" else F.jacfwd
    jac = t(func, argnums=0 if single else tuple(range(len(ins))))(*ins)
    return _finish(jac, create_graph)


def hessian(func, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of a scalar ``func`` at ``inputs``, as ``torch.autograd.functional.hessian``.

    >>> import jitgrad
    >>> jitgrad.autograd.functional.hessian(lambda x: (x ** 3).sum(), jitgrad.tensor([1.0, 2.0]))
    tensor([[ 6.,  0.],
            [ 0., 12.]])
    """
    from jitgrad import func as F
    _no_strict(strict, "hessian")
    ins, single = _inputs(inputs, "hessian")
    nums = 0 if single else tuple(range(len(ins)))
    outer = F.jacrev if outer_jacobian_strategy == "reverse-mode" else F.jacfwd
    h = outer(F.jacrev(_scalar_fn(func, "hessian"), nums), nums)(*ins)
    return _finish(h, create_graph)


def vjp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), vᵀ J)``, as ``torch.autograd.functional.vjp``.

    >>> import jitgrad
    >>> jitgrad.autograd.functional.vjp(lambda x: x * 2, jitgrad.ones(2), jitgrad.tensor([1.0, 3.0]))
    (tensor([2., 2.]), tensor([2., 6.]))
    """
    from jitgrad import func as F
    _no_strict(strict, "vjp")
    ins, single = _inputs(inputs, "vjp")
    out, vjp_fn = F.vjp(func, *ins)
    if v is None:
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("vjp: The vector v can only be None if the user-provided function "
                               "returns a single Tensor with a single element.")
        v = ops.ones_like(out)
    got = vjp_fn(v)
    return _finish(out, create_graph), _finish(got[0] if single else got, create_graph)


def jvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), J v)``, as ``torch.autograd.functional.jvp`` (by forward mode).

    >>> import jitgrad
    >>> jitgrad.autograd.functional.jvp(jitgrad.sin, jitgrad.zeros(2), jitgrad.tensor([1.0, 2.0]))
    (tensor([0., 0.]), tensor([1., 2.]))
    """
    from jitgrad import func as F
    _no_strict(strict, "jvp")
    ins, single = _inputs(inputs, "jvp")
    if v is None:
        if len(ins) != 1 or ins[0].numel() != 1:
            raise RuntimeError("jvp: The vector v can only be None if the input to the "
                               "user-provided function is a single Tensor with a single element.")
        v = ops.ones_like(ins[0])
    out, t = F.jvp(func, ins, _vs(v, ins, single, "jvp"))
    return _finish(out, create_graph), _finish(t, create_graph)


def hvp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), H v)`` for a scalar ``func``, as ``torch.autograd.functional.hvp``:
    forward mode over reverse mode.

    >>> import jitgrad
    >>> f = lambda x: (x ** 3).sum()
    >>> jitgrad.autograd.functional.hvp(f, jitgrad.tensor([1.0, 2.0]), jitgrad.ones(2))[1]
    tensor([ 6., 12.])
    """
    return _hessian_product(func, inputs, v, create_graph, strict, "hvp")


def vhp(func, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """``(func(inputs), vᵀ H)`` for a scalar ``func``, as ``torch.autograd.functional.vhp``:
    reverse mode over reverse mode.

    >>> import jitgrad
    >>> f = lambda x: (x ** 3).sum()
    >>> jitgrad.autograd.functional.vhp(f, jitgrad.tensor([1.0, 2.0]), jitgrad.ones(2))[1]
    tensor([ 6., 12.])
    """
    return _hessian_product(func, inputs, v, create_graph, strict, "vhp")


def _hessian_product(func, inputs, v, create_graph, strict, api):
    from jitgrad import func as F
    _no_strict(strict, api)
    ins, single = _inputs(inputs, api)
    f = _scalar_fn(func, api)
    if v is None:
        if len(ins) != 1 or ins[0].numel() != 1:
            raise RuntimeError(f"{api}: The vector v can only be None if the input to the "
                               "user-provided function is a single Tensor with a single element.")
        v = ops.ones_like(ins[0])
    vs = _vs(v, ins, single, api)
    g = F.grad(f, argnums=tuple(range(len(ins))))
    if api == "hvp":
        _, got = F.jvp(g, ins, vs)
    else:
        _, vjp_fn = F.vjp(g, *ins)
        got = vjp_fn(vs)
    out = func(*ins)
    return _finish(out, create_graph), _finish(got[0] if single else tuple(got), create_graph)


from jitgrad import ops  # noqa: E402
from jitgrad.tensor import Tensor  # noqa: E402
