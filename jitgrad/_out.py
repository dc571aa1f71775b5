"""``out=`` for the top-level functions that PyTorch gives one (``torch.matmul(a, b, out=c)``).

The result is computed as usual, then written into ``out``'s storage (views of ``out`` and NumPy
arrays sharing it see the new values). As in PyTorch, ``out=`` does not record gradients: an
argument that requires grad, or an ``out`` that does, is an error; a result whose dtype cannot
be cast to ``out``'s is an error; an ``out`` of another shape is resized (with a warning unless
it was empty). Inside compiled functions, assign the result instead.

>>> import jitgrad as torch
>>> a = torch.ones(2, 2)
>>> c = torch.empty(2, 2)
>>> torch.matmul(a, a, out=c) is c, c
(True, tensor([[2., 2.],
        [2., 2.]]))
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from jitgrad.errors import TraceError
from jitgrad.ops.registry import trace_state
from jitgrad.tensor import Tensor

# The top-level functions that take out=, as PyTorch's do.
NAMES = ("add", "sub", "mul", "div", "matmul", "mm", "bmm", "mv", "dot", "outer", "pow", "exp",
         "log", "log1p", "expm1", "sin", "cos", "tanh", "sigmoid", "sqrt", "rsqrt", "abs", "neg",
         "reciprocal", "square", "clamp", "maximum", "minimum", "remainder", "floor_divide",
         "floor", "sign", "where", "cat", "concatenate", "stack", "sum", "mean", "prod")


def with_out(fn):
    """``fn`` with an ``out=`` keyword (see the module docstring)."""
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        if not isinstance(out, Tensor):
            raise TypeError(f"{name}(): out= must be a Tensor, got {type(out).__name__}")
        if trace_state.builder is not None:
            raise TraceError(f"{name}(..., out=...) inside a compiled function: assign the "
                             "result instead (out= writes in place and records no gradient)")
        if out.requires_grad:
            raise RuntimeError(f"{name}(): out= was given a tensor that requires grad; "
                               "functions with out= do not support automatic differentiation")
        res = fn(*args, **kwargs)
        if res.requires_grad:
            raise RuntimeError(f"{name}(): functions with out=... arguments don't support "
                               "automatic differentiation, but one of the arguments requires "
                               "grad; call it without out= (or under no_grad())")
        return write_out(name, res._value, out)
    return wrapper


def write_out(name: str, value: np.ndarray, out: Tensor) -> Tensor:
    dst = out._value
    if value.dtype != dst.dtype and not np.can_cast(value.dtype, dst.dtype, "same_kind"):
        raise RuntimeError(f"{name}(): result type {value.dtype} can't be cast to the desired "
                           f"output type {dst.dtype}")
    if value.shape == dst.shape:
        dst[...] = value
    else:
        if dst.size:
            warnings.warn(f"{name}(): an output with one or more elements was resized since it "
                          f"had shape {list(dst.shape)}, which does not match the required "
                          f"output shape {list(value.shape)}", UserWarning, stacklevel=3)
        out._value = value.astype(dst.dtype, copy=True)
    out._vc[0] += 1
    return out
