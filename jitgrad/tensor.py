"""The eager Tensor: a NumPy array plus the autograd record (``requires_grad``, ``grad``,
``grad_fn``), a version counter, and, while tracing, the IR value it stands for.

>>> import jitgrad
>>> x = jitgrad.tensor(2.0, requires_grad=True)
>>> y = x * 3
>>> y
tensor(6., grad_fn=<MulBackward0>)
>>> y.backward()
>>> x.grad
tensor(3.)
"""

from __future__ import annotations

import numbers

import numpy as np

from jitgrad import dtypes
from jitgrad.printing import format_tensor


class Tensor:
    """An n-dimensional array that records the operations applied to it.

    The legacy constructor ``Tensor([1, 2])`` makes a float32 tensor, as in PyTorch.

    >>> import jitgrad
    >>> jitgrad.Tensor([1, 2])
    tensor([1., 2.])
    """

    __slots__ = ("_value", "_rg", "grad_fn", "_vc", "__weakref__", "__dict__")

    # Rarely-set fields live as class defaults, so making a tensor writes four slots, not eleven.
    @property
    def grad(self):
        """The gradient that ``backward`` accumulated into this leaf (None before)."""
        return self.__dict__.get("_grad")

    @grad.setter
    def grad(self, g) -> None:
        # As torch: only a tensor (or None) of this tensor's shape and dtype.
        if g is not None:
            if not isinstance(g, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got grad of "
                                f"type {type(g).__name__}")
            if tuple(g._value.shape) != tuple(self._value.shape):
                raise RuntimeError(f"attempting to assign a gradient of size "
                                   f"'{list(g._value.shape)}' to a tensor of size "
                                   f"'{list(self._value.shape)}'. Please ensure that the "
                                   "gradient and the tensor are the same size")
            if g._value.dtype != self._value.dtype:
                raise RuntimeError(f"assigned grad has data of a different type: "
                                   f"{g.dtype.name} for a tensor of {self.dtype.name}")
        self.__dict__["_grad"] = g

    @grad.deleter
    def grad(self) -> None:
        self.__dict__.pop("_grad", None)
    _output_nr = 0
    _base = None
    _view_of = None  # inside a trace: (base, prim, params, args, base's IR) (trace/views)
    _ir = None
    _aval = None
    _hooks = None
    _retains_grad = False

    # NumPy defers to our reflected operators instead of broadcasting over us.
    __array_priority__ = 1000

    def __init__(self, *args) -> None:
        if len(args) == 1 and not isinstance(args[0], numbers.Integral):
            arr = _to_array(args[0], dtypes.float32)
        elif all(isinstance(a, numbers.Integral) for a in args):
            arr = np.zeros(tuple(int(a) for a in args), dtype=np.float32)
        else:
            raise TypeError(f"Tensor(): expected data or integer sizes, got {args!r}")
        _init(self, arr)

    @classmethod
    def _wrap(cls, arr: np.ndarray) -> "Tensor":
        t = object.__new__(Tensor)
        # _init's four fields, inline: every eager result comes through here
        t._value = arr
        t._rg = False
        t.grad_fn = None
        t._vc = [0]
        return t

    # -- autograd record ---------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._rg

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        flag = bool(flag)
        if not flag and self.grad_fn is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf variables. If you "
                               "want to use a computed variable in a subgraph that doesn't require "
                               "differentiation use var_no_grad = var.detach().")
        if flag and not self.dtype.is_floating_point:
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, got "
                               f"{self.dtype.name}")
        self._rg = flag

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":  # noqa: F811
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def _version(self) -> int:
        return self._vc[0]

    def backward(self, gradient=None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs=None) -> None:
        """Accumulate the gradient of this tensor into the ``.grad`` of the leaves.

        >>> import jitgrad
        >>> x = jitgrad.tensor([1.0, 2.0], requires_grad=True)
        >>> (x * x).sum().backward()
        >>> x.grad
        tensor([2., 4.])
        """
        _functional.backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def detach(self) -> "Tensor":
        """A tensor sharing storage (and version counter) that is cut from the graph."""
        builder = _trace_builder()
        if builder is not None:
            return builder.detach(self)
        t = Tensor._wrap(self._value)
        t._vc = self._vc
        return t

    def detach_(self) -> "Tensor":
        if self._base is not None and self.grad_fn is not None:
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        self.grad_fn = None
        self._rg = False
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on a non-leaf tensor after backward."""
        if self.grad_fn is None:
            return
        if not self._retains_grad:
            self._retains_grad = True

            def _keep(g, self=self):
                self.grad = g.detach() if self.grad is None else (self.grad + g).detach()

            self._add_node_hook(_keep)

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor
        replaces the gradient.

        >>> import jitgrad
        >>> x = jitgrad.tensor(1.0, requires_grad=True)
        >>> h = x.register_hook(lambda g: g * 2)
        >>> (x * 3).backward()
        >>> x.grad
        tensor(6.)
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
            return _RemovableHandle(self._hooks, hook)
        return self._add_node_hook(hook)

    def _add_node_hook(self, hook):
        node = self.grad_fn
        if node.pre_hooks is None:
            node.pre_hooks = []
        entry = (self._output_nr, hook)
        node.pre_hooks.append(entry)
        return _RemovableHandle(node.pre_hooks, entry)

    # -- metadata ----------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        v = self._value
        return Size(v.shape if v is not None else self._aval.shape)

    def size(self, dim: int | None = None):
        s = self.shape
        if isinstance(dim, (bool, np.bool_)):  # an int to Python: size(True) would be size(1)
            raise TypeError("size(): argument 'dim' must be int, not bool")
        return s if dim is None else s[dim]

    @property
    def dtype(self) -> dtypes.DType:
        v = self._value
        return dtypes._BY_NP[v.dtype] if v is not None else self._aval.dtype

    @property
    def ndim(self) -> int:
        v = self._value  # (not len(self.shape): that builds a Size)
        return v.ndim if v is not None else len(self._aval.shape)

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        v = self._value
        return v.size if v is not None else int(np.prod(self._aval.shape, dtype=np.int64))

    def nelement(self) -> int:
        return self.numel()

    def element_size(self) -> int:
        return self.dtype.itemsize

    @property
    def device(self):
        from jitgrad.devices import CPU
        return CPU

    @property
    def is_cuda(self) -> bool:
        return False

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    __hash__ = object.__hash__

    # -- values out --------------------------------------------------------------------------
    def _concrete(self, why: str) -> np.ndarray:
        if self._ir is not None:
            return _trace_builder_of(self).concretize(self, why)
        return self._value

    def item(self):
        """The value of a one-element tensor as a Python number."""
        v = self._concrete("item")
        if v.size != 1:
            raise ValueError(f"a Tensor with {v.size} elements cannot be converted to Scalar")
        return v.reshape(()).item()

    def tolist(self):
        return self._concrete("tolist").tolist()

    def numpy(self, force: bool = False) -> np.ndarray:
        if self._ir is not None:
            return _trace_builder_of(self).concretize(self, "numpy")
        if self.requires_grad and not force:
            raise RuntimeError(_NUMPY_REQUIRES_GRAD)
        return self._value

    def __array__(self, dtype=None, copy=None):
        # NumPy 2's protocol: copy=True always copies (np.array(t) does not alias t, as in
        # torch), copy=False never does (an error where a cast needs one), None shares if it can.
        # As torch's, it is numpy(): refused on a tensor that requires grad, since the array
        # would silently leave the graph (np.asarray(w) in a loss gives no gradient). Code of
        # our own reads ``t._value`` (or detaches) instead.
        if self._ir is None and self.requires_grad:
            raise RuntimeError(_NUMPY_REQUIRES_GRAD)
        v = self._concrete("__array__")
        if dtype is not None and np.dtype(dtype) != v.dtype:
            if copy is False:
                raise ValueError(f"converting a {self.dtype.name} tensor to NumPy dtype "
                                 f"{np.dtype(dtype)} needs a copy, but copy=False was given")
            return v.astype(dtype)
        return v.copy() if copy else v

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        # A NumPy ufunc applied to a tensor gives a tensor back (no gradient), as in torch.
        return Tensor._wrap(np.asarray(arr))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        v = self._concrete("bool")
        if v.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {v.size} values is ambiguous")
        return bool(v.reshape(()))

    def __index__(self) -> int:
        if self.dtype.is_floating_point or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._concrete("__index__").reshape(()))

    def __repr__(self) -> str:
        if self._value is None:
            return f"Tensor(shape={list(self.shape)}, dtype={self.dtype!r}, traced)"
        suffix = ""
        if self.grad_fn is not None:
            suffix = f", grad_fn=<{self.grad_fn.name()}>"
        elif self.requires_grad:
            suffix = ", requires_grad=True"
        return format_tensor(self._value, self.dtype, suffix)

    def __format__(self, spec: str) -> str:
        if self.ndim == 0 and spec:
            return format(self.item(), spec)
        return repr(self)

    def __reduce__(self):
        return (_rebuild, (self._value.copy(), self.requires_grad))

    def __deepcopy__(self, memo):
        if self.grad_fn is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) support "
                               "the deepcopy protocol")
        t = type(self).__new__(type(self))
        _init(t, self._value.copy())
        t._rg = self._rg
        if self.grad is not None:
            t.grad = self.grad.__deepcopy__(memo)
        t.__dict__.update(self.__dict__)
        memo[id(self)] = t
        return t

    # -- data access -------------------------------------------------------------------------
    @property
    def data(self) -> "Tensor":
        """The same storage, cut from the graph, with its own version counter (as in torch)."""
        return Tensor._wrap(self._value)

    @data.setter
    def data(self, other: "Tensor") -> None:
        self._value = other._value if isinstance(other, Tensor) else _to_array(other, None)


_NUMPY_REQUIRES_GRAD = ("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                        "instead.")


class Size(tuple):
    """A tensor's shape: a tuple that prints like ``jitgrad.Size([2, 3])``."""

    def __repr__(self) -> str:
        return f"jitgrad.Size({list(self)})"

    def numel(self) -> int:
        return int(np.prod(self, dtype=np.int64))


class _RemovableHandle:
    def __init__(self, container: list, item) -> None:
        self._container, self._item = container, item

    def remove(self) -> None:
        if self._item in self._container:
            self._container.remove(self._item)


def _init(t: Tensor, arr: np.ndarray) -> None:
    # runtime.Runtime._builder, Tensor._wrap and registry._eager write these same four fields
    # inline (hot paths).
    t._value = arr
    t._rg = False
    t.grad_fn = None
    t._vc = [0]


def _rebuild(arr, requires_grad):
    t = Tensor._wrap(arr)
    t._rg = requires_grad
    return t


def _trace_builder():
    return _registry.trace_state.builder


def _trace_builder_of(t: Tensor):
    b = _registry.trace_state.builder
    if b is None:
        raise RuntimeError("a traced tensor escaped its trace: it has no value outside the "
                           "compiled function that made it (return it from the function instead)")
    return b


def _to_array(data, dtype: dtypes.DType | None) -> np.ndarray:
    """Convert user data to a NumPy array of a supported dtype (float data -> float32 unless it
    arrives as a NumPy array, whose dtype is kept, as in torch)."""
    if isinstance(data, Tensor):
        arr = data._concrete("tensor")
        # A copy laid out as the original, as torch's (``order="K"``; ``ndarray.copy`` is "C").
        return arr.astype(dtype.np) if dtype is not None and arr.dtype != dtype.np else \
            arr.copy(order="K")
    if isinstance(data, (list, tuple)) and _contains_tensor(data):
        data = _tensors_to_values(data)
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.array(data)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"unsupported data of dtype {arr.dtype}: jitgrad tensors hold "
                            f"{dtypes._SUPPORTED}")
        if dtype is None:
            dtype = dtypes.from_numpy_dtype(arr.dtype)
    else:
        if isinstance(data, (str, bytes, dict, set)) or data is None:
            raise TypeError(f"tensor(): unsupported data of type {type(data).__name__}; expected a "
                            "number, a (nested) list of numbers, or a NumPy array")
        try:
            arr = np.array(data)
        except ValueError as e:
            raise ValueError(f"tensor(): ragged or malformed nested sequence: {e}") from None
        if arr.dtype.kind not in "biuf":
            big = next((v for v in arr.reshape(-1).tolist() if isinstance(v, int) and
                        not isinstance(v, bool) and not -2**63 <= v < 2**63), None) \
                if arr.dtype == object else None
            if big is not None:
                raise OverflowError(f"tensor(): the integer {big} does not fit in int64 (the "
                                    "largest integer dtype); pass it as a float to keep its "
                                    "magnitude")
            raise TypeError(f"tensor(): unsupported data (NumPy made it {arr.dtype}); expected "
                            "numbers: float, int or bool")
        if dtype is None:
            dtype = {"b": dtypes.bool_, "i": dtypes.int64, "u": dtypes.int64}.get(arr.dtype.kind,
                                                                              dtypes.float32)
    if arr.dtype.kind == "u" and dtype is dtypes.int64 and arr.size and arr.max() >= 2**63:
        raise OverflowError(f"tensor(): the unsigned value {arr.max()} does not fit in int64")
    # Laid out as a NumPy array given is (torch copies one with its strides: tensor(a.T) is
    # transposed, so it cannot be viewed flat); nested lists come out row-major.
    return np.array(arr, dtype=dtype.np, order="K")


def _contains_tensor(seq) -> bool:
    for x in seq:
        if isinstance(x, Tensor) or (isinstance(x, (list, tuple)) and _contains_tensor(x)):
            return True
    return False


def _tensors_to_values(seq):
    out = []
    for x in seq:
        if isinstance(x, Tensor):
            if x._ir is not None:
                raise TypeError("tensor() of traced tensors would bake their current values into "
                                "the compiled code; use jitgrad.stack(...) instead")
            out.append(x._value)
        elif isinstance(x, (list, tuple)):
            out.append(_tensors_to_values(x))
        else:
            out.append(x)
    return out


from jitgrad.ops import registry as _registry  # noqa: E402
from jitgrad import _tensor_methods  # noqa: E402,F401  (attaches operators and methods)
from jitgrad.autograd import functional as _functional  # noqa: E402
