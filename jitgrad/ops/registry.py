"""The one primitive registry.

Each primitive is declared once, with everything every stage needs:

- ``impl``: the NumPy implementation (eager execution and the reference interpreter);
- ``abstract``: the shape/dtype rule, ``(avals, **params) -> Aval`` (tracing, the autodiff pass,
  the IR verifier);
- ``vjp``: the reverse-mode rule ``vjp(g, out, *inputs, **params) -> cotangents``, written with
  jitgrad's own ops so that one rule serves eager backward (``create_graph`` included), tracing, and
  the autodiff pass that emits adjoint IR;
- ``expr``: the codegen slot of elementwise primitives: a scalar expression template
  (``"({0} * {1})"``), with ``vector`` variants for fused loops over many elements;
- ``reduction``: the codegen slot of reductions fused into loops (a ``Reduction``);
  every other primitive has a lowering per backend, registered against this object
  (``jitgrad.backends.lowering``).

``bind`` is the single entry point every op goes through: it runs eagerly (recording a
``grad_fn`` node when gradients are needed) or, while a trace is active, hands the op to it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jitgrad import dtypes
from jitgrad.autograd import grad_mode
# The IR's core, free of the eager engine; re-exported here, where ops are declared.
from jitgrad.ir.primitive import PRIMITIVES, Aval, Primitive, Reduction  # noqa: F401
from jitgrad.ir.primitive import register as _declare
from jitgrad.ops import _layout

# The layout of a primitive's eager result by its kind, unless it names its own rule or is a
# view (``jitgrad.ops._layout``): elementwise results follow their operands, as torch's
# TensorIterator lays them out; reductions, scans and matmul are row-major.
_LAYOUT_OF_KIND = {"elementwise": _layout.elementwise, "reduce": _layout.contiguous,
                   "scan": _layout.contiguous, "linalg": _layout.contiguous}


def register(name: str, impl, abstract, vjp=None, *, layout=None, **kw) -> Primitive:
    """``jitgrad.ir.primitive.register``, with the result's layout rule defaulting by kind."""
    if layout is None and not kw.get("view"):
        layout = _LAYOUT_OF_KIND.get(kw.get("kind", "elementwise"))
    return _declare(name, impl, abstract, vjp, layout=layout, **kw)


class _TraceState:
    """Where ops go while a trace (or the autodiff pass) is building IR. A stack, so that
    nested compiled functions restore the outer builder on exit."""

    __slots__ = ("builder", "stack")

    def __init__(self) -> None:
        self.builder: Any = None
        self.stack: list = []

    def push(self, builder) -> None:
        self.stack.append(self.builder)
        self.builder = builder

    def pop(self) -> None:
        self.builder = self.stack.pop()


trace_state = _TraceState()

# Hooks that observe eager ops (profilers). Empty in the common case, so the hot path pays one
# truthiness test.
eager_observers: list = []

# Bound once: the eager path reads them for every op.
_grad_state = grad_mode.state
_new = object.__new__
_ndarray = np.ndarray
_asarray = np.asarray
_elementwise_layout = _layout.elementwise
_contiguous_layout = _layout.contiguous


def bind(prim: Primitive, args: tuple, params: dict) -> "Tensor":
    """Apply ``prim`` to Tensor ``args``: eagerly, or into the active trace."""
    builder = trace_state.builder
    if builder is not None:
        return builder.bind(prim, args, params)
    if eager_observers:
        return _observed(prim, args, params)
    return _eager(prim, args, params)


def _eager(prim: Primitive, args: tuple, params: dict) -> "Tensor":
    # The hot path of every eager op: locals and slots only, no per-op lists where the
    # arity is one or two, the result's fields written inline (as ``Tensor._wrap`` would).
    n = len(args)
    if n == 2:
        a0 = args[0]
        out = prim.impl(a0._value, args[1]._value, **params)
    elif n == 1:
        a0 = args[0]
        out = prim.impl(a0._value, **params)
    else:
        out = prim.impl(*[a._value for a in args], **params)
        a0 = args[0] if n else None
    if type(out) is not _ndarray:
        out = _asarray(out)
    layout = prim.layout
    if layout is not None:
        # The two rules most ops have, decided here where that is cheap: an elementwise result
        # of fewer than two dims has one layout; a row-major result is already row-major.
        if layout is _elementwise_layout:
            if out.ndim > 1:
                out = layout(out, [a._value for a in args], params)
        elif layout is not _contiguous_layout or not out.flags.c_contiguous:
            out = layout(out, [a._value for a in args], params)
    t = _new(Tensor)
    t._value = out
    t._rg = False
    t.grad_fn = None
    t._vc = [0]
    if prim.view and out.base is not None and np.may_share_memory(out, a0._value):
        # A view shares storage, so it shares the version counter too: an in-place write
        # through either one must invalidate what was saved from the other.
        t._vc = a0._vc
        t._base = a0._base if a0._base is not None else a0
    if _grad_state.enabled and prim.vjp is not None:
        nondiff = prim.nondiff_inputs
        if nondiff:
            for i, a in enumerate(args):
                if a._rg and i not in nondiff:
                    _record(prim, args, params, t)
                    break
        else:
            for a in args:
                if a._rg:
                    _record(prim, args, params, t)
                    break
    return t


def _observed(prim: Primitive, args: tuple, params: dict) -> "Tensor":
    tokens = [obs.before(prim, args, params) for obs in eager_observers]
    out = _eager(prim, args, params)
    for obs, tok in zip(eager_observers, tokens):
        obs.after(tok, prim, args, params, out)
    return out


def scalar(v, dtype: dtypes.DType) -> "Tensor":
    """A Python scalar as a 0-d tensor of ``dtype`` (a literal, inside a trace)."""
    builder = trace_state.builder
    if builder is not None:
        return builder.literal(v, dtype)
    return Tensor._wrap(np.array(v, dtype=dtype.np))


def promote(*xs) -> tuple:
    """Bring Tensors and Python scalars to one dtype by torch's promotion rule. A traced Python
    number (a loop counter's ``0.5 ** i``, ``trace/numbers.py``) is a Python scalar of its kind,
    as the number it stands for is eagerly."""
    # The fast paths may pass a traced number through as it is: they take operands of one
    # dtype only, which the scalar rule keeps too (a float64 tensor with a float is float64).
    first = xs[0]
    if type(first) is Tensor or isinstance(first, Tensor):
        v = first._value
        if v is not None and len(xs) == 2:  # (the common case: arrays of one NumPy dtype)
            y = xs[1]
            if isinstance(y, Tensor) and y._value is not None and y._value.dtype is v.dtype:
                return xs
        dt = first.dtype
        for x in xs[1:]:
            if not isinstance(x, Tensor) or x.dtype is not dt:
                break
        else:
            return xs
    if any(type(x) is np.ndarray for x in xs):
        xs = tuple(as_tensor_operand(x) if type(x) is np.ndarray else x for x in xs)
    dims, zerodims, scalars = [], [], []
    for x in xs:
        if isinstance(x, Tensor):
            if type(x) is not Tensor and getattr(type(x), "_python_number", False):
                scalars.append(dtypes.scalar_dtype(x._kind()))
            else:
                (dims if x.ndim else zerodims).append(x.dtype)
        elif isinstance(x, (bool, int, float, np.bool_, np.integer, np.floating)):
            scalars.append(dtypes.scalar_dtype(x))
        else:
            raise TypeError(f"unsupported operand of type {type(x).__name__}: expected a Tensor, "
                            "a NumPy array or a Python number")
    dt = dtypes.result_type(dims, zerodims, scalars)
    return tuple(_convert(x, dt) for x in xs)


def live_array(arr) -> "Tensor | None":
    """Inside a trace, the input tracer of a NumPy array the function reaches from outside (a
    global's, a closure's: ``trace/implicit.py``); None otherwise."""
    builder = trace_state.builder
    return builder.live_array(arr) if builder is not None else None


def as_tensor_operand(arr: np.ndarray) -> "Tensor":
    """A NumPy array operand as a Tensor of its own dtype (promoted like any tensor); inside a
    trace, the live input of an array the function reaches (``trace/implicit.py``), or else a
    constant holding a copy of its current value."""
    if arr.dtype not in dtypes._BY_NP:
        raise TypeError(f"unsupported operand: a NumPy array of dtype {arr.dtype}; jitgrad "
                        f"tensors are {dtypes._SUPPORTED} (convert it with .astype)")
    live = live_array(arr)  # a global's or closure's array: read at every call
    if live is not None:
        return live
    arr = np.array(arr)  # a copy: later writes to the caller's array change nothing here
    builder = trace_state.builder
    if builder is not None:
        return builder.const(arr)
    return Tensor._wrap(arr)


def _convert(x, dt: dtypes.DType) -> "Tensor":
    if isinstance(x, Tensor):
        if type(x) is not Tensor and getattr(type(x), "_python_number", False):
            x = x._plain()  # the op's operand is a tensor: torch's arithmetic from here
        return x if x.dtype is dt else x.to(dt)
    return scalar(x, dt)


# graph needs ops and Tensor in turn: last
from jitgrad.autograd.graph import record as _record  # noqa: E402
from jitgrad.tensor import Tensor  # noqa: E402
