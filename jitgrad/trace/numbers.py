"""Python numbers computed from a loop's counter while tracing: the variable of a ``for`` over a
range that a lifted loop carries as an int64 (``trace/ranges.py``), read by the body.

Eagerly the loop variable is a Python int, and what the body computes from it (``0.9 ** i``,
``i * dt``, ``i < 2``) are Python numbers. Handed out as plain ints, those numbers would reach
the trace as literals that differ from one iteration to the next, and the loop could not be
lifted. So while tracing, the variable is a ``TracedNumber``: a 0-d tracer of the counter that
keeps Python's arithmetic. With Python numbers and other traced numbers it computes what Python
would (an int64, float64 or bool value of the IR, by the type Python's result has: ``i / 2`` is
a float, ``i // 2`` an int); with a tensor it acts as a Python scalar of its kind (``x * (0.9 **
i)`` keeps ``x``'s float32, as ``x * 0.729`` does); as an index (``x[i]``) it is a dynamic index.

Whatever asks for its Python value (``if i < 2:``, ``range(i)``, ``xs[i]`` of a list,
``float(i)``, ``math.exp(i)``, ``str(i)``, a dict key) gets it, through a guard on the value as
any tracer does: the trace stays right, and the iterations, whose guards expect different
values, are not lifted (one trace per trip count), unless they differ only by the side of an
``if`` that becomes a ``cond`` (``loops/branches.py``).

Python's ints do not overflow and int64s do: a counter's arithmetic past 2**63 differs.

>>> import jitgrad
>>> def f(x, n):
...     for i in range(int(n.item())):
...         x = x * 0.5 ** i + x[i]
...     return x.sum()
>>> g = jitgrad.jit(f, target="reference")
>>> [g(jitgrad.tensor([1.0, 2.0, 4.0]), jitgrad.tensor(k)).item() for k in (2, 1, 3)]
[14.0, 10.0, 20.0]
>>> g.cache_info().traces
1
"""

from __future__ import annotations

import math
import operator

import numpy as np

from jitgrad import dtypes, ops
from jitgrad.ops.registry import scalar
from jitgrad.tensor import Tensor

_DTYPE = {bool: dtypes.bool_, int: dtypes.int64, float: dtypes.float64}
_PY = (bool, int, float)


class TracedNumber(Tensor):
    """A Python ``bool``, ``int`` or ``float`` (``_kind``) that a trace computes: a 0-d tracer
    with Python's arithmetic (see the module docstring)."""

    # Read by what cannot import this module: ``ops.registry.promote`` takes it as a Python
    # scalar of its kind, ``trace.pytree`` flattens it to its (guarded) Python value.
    _python_number = True

    @property
    def _kind(self) -> type:
        return self.__dict__["_py_kind"]

    def _py(self):
        """The Python value, guarded (the trace depends on it from here on)."""
        return self._kind(self.item())

    def _plain(self) -> Tensor:
        """The same IR value as an ordinary tensor (torch's arithmetic)."""
        return self._builder.tracer(self._ir, self._value)

    def __hash__(self) -> int:
        return hash(self._py())

    def __repr__(self) -> str:
        return repr(self._py())

    def __str__(self) -> str:
        return str(self._py())

    def __format__(self, spec: str) -> str:
        return format(self._py(), spec)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self._py(), dtype=dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # NumPy on a Python number gives a NumPy number, as eagerly.
        if any(isinstance(a, Tensor) and not isinstance(a, TracedNumber) for a in inputs):
            return NotImplemented
        vals = [a._py() if isinstance(a, TracedNumber) else a for a in inputs]
        return getattr(ufunc, method)(*vals, **kwargs)

    def __round__(self, ndigits=None):
        return round(self._py(), ndigits)

    def __trunc__(self):
        return self._py().__trunc__()

    def __floor__(self):
        return math.floor(self._py())

    def __ceil__(self):
        return math.ceil(self._py())

    def __invert__(self):
        return ~self._py()

    def __neg__(self):
        return _unary(self, operator.neg, ops.neg)

    def __pos__(self):
        return _unary(self, operator.pos, None)

    def __abs__(self):
        return _unary(self, operator.abs, ops.abs)


def number(t: Tensor, kind: type) -> TracedNumber:
    """``t`` (a 0-d tracer of ``kind``'s dtype) as the Python number of type ``kind``."""
    out = t._builder.tracer(t._ir, t._value)
    out.__class__ = TracedNumber
    out.__dict__["_py_kind"] = kind
    return out


def _peek(a):
    """A value's Python value for the rules that pick a result's type; not a guard."""
    return a._kind(a._value.reshape(()).item()) if isinstance(a, TracedNumber) else a


def _as(a, dtype: dtypes.DType) -> Tensor:
    if isinstance(a, TracedNumber):
        t = a._plain()
        return t if t.dtype is dtype else t.to(dtype)
    return scalar(a, dtype)


def _unary(a: TracedNumber, pyop, op):
    r = pyop(_peek(a))
    kind = type(r)
    t = _as(a, _DTYPE[kind])
    return number(op(t) if op is not None else t, kind)


# name: (Python's operator, jitgrad's op on two tensors of one dtype)
_OPS = {
    "add": (operator.add, ops.add), "sub": (operator.sub, ops.sub),
    "mul": (operator.mul, ops.mul), "truediv": (operator.truediv, ops.div),
    "floordiv": (operator.floordiv, ops.floor_divide), "mod": (operator.mod, ops.remainder),
    "pow": (operator.pow, ops.pow), "and": (operator.and_, ops.bitwise_and),
    "or": (operator.or_, ops.bitwise_or), "xor": (operator.xor, ops.bitwise_xor),
    "lt": (operator.lt, ops.lt), "le": (operator.le, ops.le), "gt": (operator.gt, ops.gt),
    "ge": (operator.ge, ops.ge), "eq": (operator.eq, ops.eq), "ne": (operator.ne, ops.ne),
}
_COMPARE = frozenset({"lt", "le", "gt", "ge", "eq", "ne"})
_DIVIDE = frozenset({"truediv", "floordiv", "mod"})


def _python(pyop, a, b):
    """Python's own arithmetic on the values, each read through a guard."""
    return pyop(*[v._py() if isinstance(v, TracedNumber) else v for v in (a, b)])


def _apply(name: str, a, b):
    pyop, op = _OPS[name]
    if isinstance(a, Tensor) and not isinstance(a, TracedNumber) or \
            isinstance(b, Tensor) and not isinstance(b, TracedNumber):
        # with a tensor, the number is a Python scalar of its kind (ops.registry.promote), and
        # the arithmetic torch's
        return getattr(Tensor, f"__{name}__")(a, b)
    if not all(isinstance(v, TracedNumber) or type(v) in _PY for v in (a, b)):
        return _python(pyop, a, b)  # another kind of number (NumPy's, a Fraction)
    va, vb = _peek(a), _peek(b)
    r = pyop(va, vb)  # raises where Python does (a zero divisor), with the traced values
    kind = type(r)
    if kind not in _PY or any(type(v) is int and not -2**63 <= v < 2**63 for v in (va, vb, r)):
        return _python(pyop, a, b)  # complex, or past int64
    ta, tb = isinstance(a, TracedNumber), isinstance(b, TracedNumber)
    # A guard on a traced divisor: a later zero re-traces, and Python raises. Integer floor
    # division and remainder have one of their own (ops' _no_zero_divisor).
    if name in _DIVIDE and tb and not (name != "truediv" and kind is int):
        bool(b._plain() != 0)
    if name == "pow":
        if va < 0 and type(vb) is float:
            # Python's result is complex for a non-integer exponent, where the IR's is NaN (an
            # int exponent is exact: (-1.0) ** i alternates)
            return _python(pyop, a, b)
        # The guards that keep the result's type: an int to an int power is an int only for
        # a non-negative exponent; a float power of a non-negative base is never complex.
        int_pow = type(va) is not float and type(vb) is not float
        if int_pow and tb:
            bool(b._plain() >= 0) if kind is int else bool(b._plain() < 0)
        if type(vb) is float and ta:
            bool(a._plain() >= 0)
        # 0 ** negative raises in Python, where the IR gives inf: a guard on the pair (the
        # int-power guard above already holds the exponent non-negative, or the base peeked
        # zero with it negative would have raised)
        if ta and tb and not (int_pow and kind is int):
            bool((a._plain() != 0) | (b._plain() >= 0))
        elif ta and not tb and vb < 0:
            bool(a._plain() != 0)
        elif tb and not ta and va == 0 and not int_pow:
            bool(b._plain() >= 0)
    if name in _COMPARE:
        operand = dtypes.float64 if float in (type(va), type(vb)) else dtypes.int64
    elif name in ("and", "or", "xor"):
        operand = _DTYPE[kind]
    else:
        operand = dtypes.float64 if kind is float else dtypes.int64
    return number(op(_as(a, operand), _as(b, operand)), kind)


def _method(name: str, reflected: bool):
    if reflected:
        def fn(self, other):
            return _apply(name, other, self)
    else:
        def fn(self, other):
            return _apply(name, self, other)
    return fn


for _name in _OPS:
    setattr(TracedNumber, f"__{_name}__", _method(_name, False))
    if _name not in _COMPARE:  # (a comparison's reflection is its mirror, defined here too)
        setattr(TracedNumber, f"__r{_name}__", _method(_name, True))
