"""Operators and methods of ``Tensor``, each a thin call into ``jitgrad.ops``; in-place variants
write the new value into the tensor's own storage and re-point its ``grad_fn``."""

from __future__ import annotations

import numpy as np

from jitgrad import devices, dtypes, ops
from jitgrad.autograd import grad_mode
from jitgrad.ops import _layout, _rules, memory_format as _formats
from jitgrad.ops import registry
from jitgrad.ops.registry import trace_state
from jitgrad.tensor import Tensor


def _r(fn):
    return lambda self, other: fn(other, self)


_METHODS = {
    # (+ - * / and the reflected + and *: _fast_binary below)
    "__rsub__": _r(ops.sub), "__rtruediv__": _r(ops.div), "__floordiv__": ops.floor_divide,
    "__rfloordiv__": _r(ops.floor_divide), "__mod__": ops.remainder,
    "__rmod__": _r(ops.remainder), "remainder": ops.remainder, "__pow__": ops.pow, "__rpow__": _r(ops.pow),
    "__matmul__": ops.matmul, "__rmatmul__": _r(ops.matmul), "__neg__": ops.neg,
    "__abs__": ops.abs, "__pos__": lambda self: self, "__invert__": ops.invert,
    "__eq__": ops.eq, "__ne__": ops.ne, "__lt__": ops.lt, "__le__": ops.le, "__gt__": ops.gt,
    "__ge__": ops.ge, "__and__": ops.bitwise_and, "__or__": ops.bitwise_or,
    "__xor__": ops.bitwise_xor, "__rand__": ops.bitwise_and, "__ror__": ops.bitwise_or,
    "__rxor__": ops.bitwise_xor,
    "__getitem__": ops.getitem,
    "add": ops.add, "sub": ops.sub, "mul": ops.mul, "div": ops.div, "pow": ops.pow,
    "matmul": ops.matmul, "mm": ops.mm, "bmm": ops.bmm, "dot": ops.dot, "mv": ops.mv,
    "neg": ops.neg, "exp": ops.exp, "log": ops.log, "sin": ops.sin, "cos": ops.cos,
    "tanh": ops.tanh, "sigmoid": ops.sigmoid, "relu": ops.relu, "sqrt": ops.sqrt,
    "abs": ops.abs, "sign": ops.sign, "square": ops.square, "reciprocal": ops.reciprocal,
    "rsqrt": ops.rsqrt, "log10": ops.log10, "log2": ops.log2, "log1p": ops.log1p,
    "expm1": ops.expm1, "erf": ops.erf, "floor": ops.floor,
    "maximum": ops.maximum, "minimum": ops.minimum, "clamp": ops.clamp, "clip": ops.clamp,
    "eq": ops.eq, "ne": ops.ne, "lt": ops.lt, "le": ops.le, "gt": ops.gt, "ge": ops.ge,
    "isnan": ops.isnan, "isinf": ops.isinf, "isfinite": ops.isfinite,
    "logical_not": ops.logical_not, "logical_and": ops.logical_and,
    "logical_or": ops.logical_or, "logical_xor": ops.logical_xor,
    "sum": ops.sum, "mean": ops.mean, "max": ops.max, "min": ops.min, "amax": ops.amax,
    "amin": ops.amin, "argmax": ops.argmax, "argmin": ops.argmin, "prod": ops.prod,
    "norm": ops.norm, "var": ops.var, "std": ops.std, "logsumexp": ops.logsumexp,
    "softmax": ops.softmax, "log_softmax": ops.log_softmax,
    "reshape": ops.reshape, "view": ops.view, "permute": ops.permute,
    "transpose": ops.transpose, "swapaxes": ops.transpose, "t": ops.t, "expand": ops.expand,
    "broadcast_to": ops.broadcast_to, "squeeze": ops.squeeze, "unsqueeze": ops.unsqueeze,
    "flatten": ops.flatten, "narrow": ops.narrow, "narrow_copy": ops.narrow_copy,
    "split": ops.split, "chunk": ops.chunk,
    "unbind": ops.unbind, "select": ops.select, "clone": ops.clone, "movedim": ops.movedim,
    "moveaxis": ops.movedim, "cumsum": ops.cumsum, "multinomial": ops.multinomial,
    "repeat": ops.repeat, "tile": ops.tile,
}
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)


def _fast_binary(prim, general, floats_only: bool = False):
    """``general`` (``ops.add``...) as an operator method whose common case, eager tensors of
    one dtype and shape or a float tensor and a Python number, goes straight to the eager op:
    exactly what ``general`` would bind there, without its calls in between (``ops.div``
    promotes integers to float: ``floats_only`` leaves them to it)."""
    # (not under anomaly mode either: its record of the forward call would lose the frames
    # of ``general`` that it shows)
    def method(self, other):
        if type(self) is Tensor and trace_state.builder is None and not _state.anomaly and \
                not registry.eager_observers:
            v = self._value
            to = type(other)
            if to is Tensor:
                w = other._value
                if v is not None and w is not None and v.dtype is w.dtype and \
                        v.shape == w.shape and (not floats_only or v.dtype.kind == "f"):
                    return registry._eager(prim, (self, other), _NO)
            elif (to is float or to is int) and v is not None and v.dtype.kind == "f":
                return registry._eager(prim, (self, Tensor._wrap(np.array(other, v.dtype))), _NO)
        return general(self, other)

    method.__name__ = general.__name__
    method.__doc__ = general.__doc__
    return method


_NO: dict = {}
_state = grad_mode.state
# The arithmetic that models and backward rules run most. Commutative ops keep the tensor
# first when reflected (2 * t is mul(t, 2)), so grad_fn's next_functions list the same order as
# torch's.
Tensor.__add__ = Tensor.__radd__ = _fast_binary(ops.elementwise.add_p, ops.add)
Tensor.__sub__ = _fast_binary(ops.elementwise.sub_p, ops.sub)
Tensor.__mul__ = Tensor.__rmul__ = _fast_binary(ops.elementwise.mul_p, ops.mul)
Tensor.__truediv__ = _fast_binary(ops.elementwise.div_p, ops.div, floats_only=True)


def _T(self):
    return self if self.ndim < 2 else self.permute(*reversed(range(self.ndim)))


def _mT(self):
    return self.transpose(-2, -1)


Tensor.T = property(_T)
Tensor.mT = property(_mT)
# jitgrad has no complex dtype: the conjugate transposes are the transposes.
Tensor.mH = property(_mT)
Tensor.H = property(lambda self: self.t())
Tensor.adjoint = _mT


def _to(self, *args, dtype=None, device=None, non_blocking: bool = False, copy: bool = False,
        memory_format=None):
    """``to(dtype)``, ``to("cpu")``, ``to(device, dtype)``, ``to(other_tensor)``: a dtype change
    stays in the graph; a device other than the CPU is an error. ``memory_format`` lays the
    result out as it says (a copy where the layout differs). Positional bools after those are
    ``non_blocking`` and ``copy``, as in torch's overloads."""
    flags = [a for a in args if isinstance(a, bool)]
    if len(flags) > 2 or args[len(args) - len(flags):] != tuple(flags):
        raise TypeError(f"to() received an invalid combination of arguments: {args!r}")
    if len(flags) == 2:
        copy = flags[1]
    args = args[:len(args) - len(flags)]
    dtype, _ = devices.to_args(args, dtype, device)
    dt = None if dtype is None else dtypes.as_dtype(dtype)
    return _cast(self, dt, memory_format, copy, "to")


def _cast(self, dt, memory_format, copy: bool, op: str):
    """``self`` as dtype ``dt`` (None: its own) laid out as ``memory_format`` says: itself when
    nothing changes, as torch."""
    fmt = _formats.check(memory_format, op)
    if dt is None or dt is self.dtype:
        if fmt is None or fmt is _formats.preserve_format:
            return self.clone() if copy else self
        out = ops.contiguous(self, memory_format=fmt)
        return out.clone(memory_format=fmt) if copy and out is self else out
    out = ops.astype(self, dt)
    if fmt is not None and out._ir is None:
        out._value = _formats.laid_out(out._value, fmt)  # a fresh result: nothing else holds it
    return out


Tensor.to = _to
# torch's legacy tensor type names, as ``Tensor.type()`` gives them (``jitgrad.FloatTensor``).
_TYPE_NAMES = {dtypes.float32: "FloatTensor", dtypes.float64: "DoubleTensor",
               dtypes.int64: "LongTensor", dtypes.int32: "IntTensor", dtypes.int16: "ShortTensor",
               dtypes.int8: "CharTensor", dtypes.uint8: "ByteTensor", dtypes.bool_: "BoolTensor"}


def _type(self, dtype=None, non_blocking: bool = False):
    """The legacy type name (``'jitgrad.FloatTensor'``), or, given a dtype or such a name
    (``'torch.DoubleTensor'`` as torch code spells it), the tensor cast to it."""
    if dtype is None:
        return f"jitgrad.{_TYPE_NAMES[self.dtype]}"
    if isinstance(dtype, str):
        name = dtype.rsplit(".", 1)[-1]
        match = [d for d, n in _TYPE_NAMES.items() if n == name]
        if not match:
            raise ValueError(f"invalid type: {dtype!r} (expected a dtype or one of "
                             f"{', '.join(repr('jitgrad.' + n) for n in _TYPE_NAMES.values())})")
        dtype = match[0]
    return self.to(dtype)


Tensor.type = _type
def _caster(dt: dtypes.DType, name: str):
    def cast(self, memory_format=None):
        return _cast(self, dt, memory_format, False, name)
    cast.__name__ = name
    cast.__doc__ = f"``self.to({dt!r})``; ``memory_format`` as ``to``'s."
    return cast


for _name, _dt in (("float", dtypes.float32), ("double", dtypes.float64), ("long", dtypes.int64),
                   ("int", dtypes.int32), ("short", dtypes.int16), ("char", dtypes.int8),
                   ("byte", dtypes.uint8), ("bool", dtypes.bool_)):
    setattr(Tensor, _name, _caster(_dt, _name))
Tensor.cpu = lambda self, memory_format=None: self


def _cuda(self, device=None, non_blocking: bool = False, memory_format=None):
    """As torch's on a machine without a GPU for eager tensors: an error that says so
    (``devices.check_host``), naming the device asked for."""
    devices.check_cuda(device)
    return self


Tensor.cuda = _cuda
Tensor.contiguous = ops.contiguous
# Row-major (dims of 1 aside), as torch's: results are laid out as torch's (ops/_layout.py).
Tensor.is_contiguous = lambda self, memory_format=None: self._value is None or bool(
    self._value.flags.c_contiguous)


def _stride(self: Tensor, dim: int | None = None):
    """Strides in elements, as torch's ``stride()`` (``stride(dim)`` for one dim); results are
    laid out as torch's (ops/_layout.py), so they agree. An abstract traced value is row-major.

    >>> import jitgrad
    >>> x = jitgrad.zeros(2, 3)
    >>> x.stride(), x.t().stride(), x.t().stride(0)
    ((3, 1), (1, 3), 1)
    """
    v = self._value
    shape = tuple(int(n) for n in self.shape)
    if v is None or v.size == 0:  # (torch's empty tensors are row-major)
        strides = _layout._dense_strides(shape, list(reversed(range(len(shape)))), 1)
    else:
        strides = [s // v.itemsize for s in v.strides]
        for d in reversed(range(len(shape))):
            if shape[d] == 1 and strides[d] == 0:
                # NumPy's new axis (x[:, None]) has stride 0; torch's unsqueeze gives the
                # stride the dim would have were it row-major over the next one
                strides[d] = strides[d + 1] * shape[d + 1] if d + 1 < len(shape) else 1
        strides = tuple(strides)
    if dim is None:
        return strides
    return strides[_rules.norm_axis(dim, len(strides), "stride")] if strides else 1


def _storage_offset(self: Tensor) -> int:
    """How many elements into its storage a view starts (``x[1:].storage_offset()`` is
    ``x.shape[1:]``'s size), as torch's."""
    v = self._value
    if v is None:
        return 0
    root = v
    while isinstance(root.base, np.ndarray):
        root = root.base
    return (v.__array_interface__["data"][0] - root.__array_interface__["data"][0]) // v.itemsize


Tensor.stride = _stride
Tensor.storage_offset = _storage_offset
Tensor.nbytes = property(lambda self: self.numel() * self.element_size())
Tensor.itemsize = property(lambda self: self.element_size())
Tensor.type_as = lambda self, other: self.to(other.dtype)
Tensor.view_as = lambda self, other: self.view(other.shape)  # a view, or the error view gives
Tensor.reshape_as = lambda self, other: self.reshape(other.shape)
Tensor.expand_as = lambda self, other: self.expand(other.shape)
Tensor.masked_fill = lambda self, mask, value: ops.where(mask, value, self)
Tensor.new_zeros = lambda self, *size, dtype=None, requires_grad=False, device=None: ops.zeros(
    *size, dtype=dtype or self.dtype, requires_grad=requires_grad, device=device)
Tensor.new_ones = lambda self, *size, dtype=None, requires_grad=False, device=None: ops.ones(
    *size, dtype=dtype or self.dtype, requires_grad=requires_grad, device=device)
Tensor.new_full = lambda self, size, fill_value, dtype=None, requires_grad=False, device=None: \
    ops.full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad,
             device=device)
Tensor.new_tensor = lambda self, data, dtype=None, requires_grad=False, device=None: ops.tensor(
    data, dtype=dtype or self.dtype, requires_grad=requires_grad)
Tensor.all = lambda self, dim=None, keepdim=False: ops.logical_not(self.bool()).sum(
    dim, keepdim) == 0
Tensor.any = lambda self, dim=None, keepdim=False: self.bool().sum(dim, keepdim) > 0


# -- in place ----------------------------------------------------------------------------------
def _write(self: Tensor, compute, name: str, reads: tuple = ()) -> Tensor:
    """Run ``compute(src)`` and store its value in ``self``'s storage; ``reads`` are the other
    tensors the op uses.

    When the op records a gradient it reads a snapshot of the old value, so the new ``grad_fn``
    is exact; nodes that saved ``self`` earlier see its version move and refuse to run.
    """
    builder = trace_state.builder
    if builder is not None:
        return builder.inplace(self, compute, name)
    recording = grad_mode.state.enabled
    if recording and self._rg and self.grad_fn is None:
        raise RuntimeError(f"a leaf Variable that requires grad is being used in an in-place "
                           f"operation ({name}). Wrap it in jitgrad.no_grad() to update it, or "
                           f"clone() it first.")
    if recording:
        if self._base is not None and (self._base._rg or self._rg):
            raise RuntimeError(f"{name}: in-place modification of a view of a tensor that "
                               "requires grad is not supported; clone() the view first")
    if recording and (self._rg or any(isinstance(t, Tensor) and t._rg for t in reads)):
        src = Tensor._wrap(self._value.copy())
        src._rg, src.grad_fn, src._output_nr = self._rg, self.grad_fn, self._output_nr
        out = compute(src)
    else:  # nothing to differentiate: no copy
        out = compute(self)
    val = out._value
    if not np.can_cast(val.dtype, self._value.dtype, "same_kind"):
        raise RuntimeError(f"{name}: result type {dtypes._BY_NP[val.dtype].name} can't be cast to "
                           f"the desired output type {self.dtype.name}")
    if val.shape != self._value.shape:
        try:
            if np.broadcast_shapes(val.shape, self._value.shape) != self._value.shape:
                raise ValueError
        except ValueError:
            raise RuntimeError(f"{name}: output with shape {list(self.shape)} doesn't match the "
                               f"broadcast shape {list(val.shape)}") from None
    try:
        np.copyto(self._value, val, casting="same_kind")
    except ValueError:
        raise RuntimeError(f"{name}: unsupported operation: more than one element of the "
                           "written-to tensor refers to a single memory location (it is an "
                           "expanded view). Please clone() the tensor before the operation.") from None
    self._vc[0] += 1
    if out.grad_fn is not None and recording:
        self.grad_fn, self._output_nr, self._rg = out.grad_fn, out._output_nr, True
    return self


def _inplace(name: str, fn):
    def method(self, *args, **kwargs):
        # ``y.mul_(y)``: every use of self reads the value before the write.
        return _write(self, lambda src: fn(src, *[src if a is self else a for a in args],
                                           **kwargs), name, args)
    method.__name__ = name
    return method


for _name, _fn in (("add_", ops.add), ("sub_", ops.sub), ("mul_", ops.mul), ("div_", ops.div),
                   ("pow_", ops.pow), ("clamp_", ops.clamp), ("exp_", ops.exp), ("log_", ops.log),
                   ("tanh_", ops.tanh),
                   ("sigmoid_", ops.sigmoid), ("relu_", ops.relu), ("sqrt_", ops.sqrt),
                   ("neg_", ops.neg), ("abs_", ops.abs), ("__iadd__", ops.add),
                   ("__isub__", ops.sub), ("__imul__", ops.mul), ("__itruediv__", ops.div),
                   ("__ipow__", ops.pow)):
    setattr(Tensor, _name, _inplace(_name, _fn))
Tensor.clamp_min_ = _inplace("clamp_min_", lambda x, m: ops.clamp(x, min=m))
Tensor.clamp_max_ = _inplace("clamp_max_", lambda x, m: ops.clamp(x, max=m))
Tensor.masked_fill_ = _inplace("masked_fill_", lambda x, mask, v: ops.where(mask, v, x))


def _fill_(self, value):
    return _write(self, lambda src: ops.full_like(src, value) if not isinstance(value, Tensor)
                  else ops.expand(value.to(src.dtype), tuple(src.shape)) * 1, "fill_", (value,))


def _zero_(self):
    return _write(self, lambda src: ops.zeros_like(src), "zero_")


def _copy_(self, other):
    if not isinstance(other, Tensor):
        other = ops.tensor(other)

    def compute(src):
        o = other.to(src.dtype)
        return ops.expand(o, tuple(src.shape)) + ops.zeros_like(src) if o.shape != src.shape \
            else ops.clone(o)
    return _write(self, compute, "copy_", (other,))


def _setitem(self, idx, value):
    if trace_state.builder is None and not (grad_mode.state.enabled and (
            self._rg or (isinstance(value, Tensor) and value._rg))):
        # Nothing to record: write straight into storage, as NumPy would.
        v = value._value if isinstance(value, Tensor) else value
        spec, tensors = ops.parse_index(idx)
        target, arrays = self._value, tuple(t._value for t in tensors)
        two = ops.split_ints(spec, tensors, self.ndim)
        if two is not None:  # x[0, :, idx] = v: the ints select first, as torch's
            target, spec = target[ops.np_index(two[0], ())], two[1]
        try:
            target[ops.np_index(spec, arrays)] = v
        except ValueError as e:
            raise RuntimeError(f"__setitem__: {e}") from None
        self._vc[0] += 1
        return
    _write(self, lambda src: ops.index_update(src, idx, value), "__setitem__", (value,))


Tensor.fill_ = _fill_
Tensor.zero_ = _zero_
Tensor.copy_ = _copy_
Tensor.__setitem__ = _setitem


def _uniform_(self, a: float = 0.0, b: float = 1.0):
    return _write(self, lambda src: ops.from_array(
        ops.generator().uniform(a, b, tuple(src.shape)).astype(src.dtype.np)), "uniform_")


def _normal_(self, mean: float = 0.0, std: float = 1.0):
    return _write(self, lambda src: ops.from_array(
        ops.generator().normal(mean, std, tuple(src.shape)).astype(src.dtype.np)), "normal_")


Tensor.uniform_ = _uniform_
Tensor.normal_ = _normal_


# tril / triu (composites over where: jitgrad/ops/triangular.py).
from jitgrad.ops.triangular import tril as _tril, triu as _triu  # noqa: E402

Tensor.tril = _tril
Tensor.triu = _triu
Tensor.tril_ = _inplace("tril_", _tril)
Tensor.triu_ = _inplace("triu_", _triu)


# Sorting, gathers and scatters, rounding, inverse trigonometry (ops/sorting.py, indexing.py,
# rounding.py, trig.py), each a method as in torch.
from jitgrad.ops import indexing as _ix, rounding as _rd, sorting as _so, trig as _tr  # noqa: E402
from jitgrad.ops.reduce import cumprod as _cumprod  # noqa: E402

for _name, _fn in (("sort", _so.sort), ("argsort", _so.argsort), ("topk", _so.topk),
                   ("nonzero", _so.nonzero), ("argwhere", _so.argwhere), ("unique", _so.unique),
                   ("unique_consecutive", _so.unique_consecutive),
                   ("gather", _ix.gather), ("scatter", _ix.scatter),
                   ("scatter_add", _ix.scatter_add), ("index_select", _ix.index_select),
                   ("take_along_dim", _ix.take_along_dim), ("fliplr", _ix.fliplr),
                   ("flipud", _ix.flipud), ("roll", _ix.roll),
                   ("repeat_interleave", _ix.repeat_interleave), ("diag", _ix.diag),
                   ("diagonal", _ix.diagonal), ("cumprod", _cumprod),
                   ("ceil", _rd.ceil), ("trunc", _rd.trunc), ("fix", _rd.trunc),
                   ("round", _rd.round), ("frac", _rd.frac),
                   ("asin", _tr.asin), ("acos", _tr.acos), ("atan", _tr.atan),
                   ("asinh", _tr.asinh), ("acosh", _tr.acosh), ("atanh", _tr.atanh),
                   ("arcsin", _tr.asin), ("arccos", _tr.acos), ("arctan", _tr.atan),
                   ("arcsinh", _tr.asinh), ("arccosh", _tr.acosh), ("arctanh", _tr.atanh),
                   ("atan2", _tr.atan2), ("arctan2", _tr.atan2)):
    setattr(Tensor, _name, _fn)


def _flip(self, *dims, **kw):
    """``x.flip(0, 1)``, ``x.flip((0, 1))`` or ``x.flip(dims=(0, 1))``, as torch's method."""
    if kw:
        if dims or set(kw) != {"dims"}:
            raise TypeError(f"flip() got unexpected arguments {sorted(kw)}")
        return _ix.flip(self, kw["dims"])
    return _ix.flip(self, dims[0] if len(dims) == 1 else dims)


Tensor.flip = _flip
for _name, _fn in (("scatter_", _ix.scatter), ("scatter_add_", _ix.scatter_add),
                   ("floor_", ops.floor), ("ceil_", _rd.ceil), ("trunc_", _rd.trunc),
                   ("round_", _rd.round), ("frac_", _rd.frac), ("sign_", ops.sign),
                   ("atan2_", _tr.atan2)):
    setattr(Tensor, _name, _inplace(_name, _fn))


# Special functions (jitgrad/special.py, ops/special.py), as torch's methods.
from jitgrad import special as _sp  # noqa: E402

for _name, _fn in (("erfc", _sp.erfc), ("erfinv", _sp.erfinv), ("lgamma", _sp.lgamma),
                   ("digamma", _sp.digamma), ("polygamma", lambda x, n: _sp.polygamma(n, x)),
                   ("mvlgamma", _sp.multigammaln), ("i0", _sp.i0), ("sinc", _sp.sinc),
                   ("exp2", _sp.exp2), ("logit", _sp.logit), ("xlogy", _sp.xlogy)):
    setattr(Tensor, _name, _fn)
    setattr(Tensor, _name + "_", _inplace(_name + "_", _fn))


# Linear algebra (jitgrad/linalg/), as torch's methods.
from jitgrad.linalg import _decomp as _la, _legacy as _lg, _lu  # noqa: E402

for _name, _fn in (("inverse", _lg.inverse), ("det", _lg.det), ("logdet", _la.logdet),
                   ("slogdet", _lg.slogdet), ("cholesky", _lg.cholesky),
                   ("pinverse", _lg.pinverse), ("matrix_power", _lg.matrix_power),
                   ("svd", _lg.svd), ("qr", _lg.qr), ("cholesky_solve", _lg.cholesky_solve),
                   ("cholesky_inverse", _lg.cholesky_inverse),
                   ("triangular_solve", _lg.triangular_solve), ("cross", _lg.cross),
                   ("lu", _lu.lu_legacy), ("lu_solve", _lu.lu_solve_legacy)):
    setattr(Tensor, _name, _fn)
