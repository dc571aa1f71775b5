"""``backward`` and ``grad``: the public doors into the engine.

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
            g = Tensor._wrap(np.ones_like(out._value)) if out._value is not None \
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


from jitgrad import ops  # noqa: E402
from jitgrad.tensor import Tensor  # noqa: E402
