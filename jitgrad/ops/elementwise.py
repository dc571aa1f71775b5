"""Elementwise primitives: each one's NumPy body, VJP rule and scalar codegen template together.

>>> import jitgrad
>>> x = jitgrad.tensor([0.0, 1.0], requires_grad=True)
>>> jitgrad.exp(x).sum().backward()
>>> x.grad
tensor([1.0000, 2.7183])
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes
from jitgrad.ops import _rules
from jitgrad.ops import memory_format as _formats
from jitgrad.ops.registry import Aval, bind, promote, register, scalar, trace_state

_NO = {}


def _quiet(fn):
    """NumPy warns on log(-1), 0/0 ...; torch does not, and neither do we: NaN/inf are values."""
    def impl(*xs, **params):
        with np.errstate(all="ignore"):
            return fn(*xs, **params)
    impl.__name__ = getattr(fn, "__name__", "impl")
    return impl


def _sigmoid(x):
    return np.exp(-np.logaddexp(np.zeros((), x.dtype), -x))


# -- unary -------------------------------------------------------------------------------------
neg_p = register("neg", np.negative, _rules.same, lambda g, out, x: (-g,), saves="none",
                 expr="(-{0})")
exp_p = register("exp", _quiet(np.exp), _rules.same, lambda g, out, x: (g * out,),
                 saves="output", expr="math.exp({0})",
                 vector={"float64": "vexp({0})", "float32": "vexp32({0})"})
log_p = register("log", _quiet(np.log), _rules.same, lambda g, out, x: (g / x,),
                 expr="math.log({0})")
# Primitives, not log(1 + x) and exp(x) - 1: those round to 0 for |x| below the epsilon of the
# dtype (float32 log1p(1e-8) gave 0.0), while these stay accurate to the last bit near 0.
log1p_p = register("log1p", _quiet(np.log1p), _rules.same, lambda g, out, x: (g / (x + 1),),
                   expr="math.log1p({0})", backward_name="Log1PBackward0")
expm1_p = register("expm1", _quiet(np.expm1), _rules.same, lambda g, out, x: (g * (out + 1),),
                   saves="output", expr="math.expm1({0})")
def _erf(x):
    from scipy.special import erf  # NumPy has no erf; imported at first use
    return erf(x)


erf_p = register("erf", _erf, _rules.same,
                 lambda g, out, x: (g * (1.1283791670955126 * exp(-(x * x))),),
                 expr="math.erf({0})")
# Vector templates: the CPU backend's vectorizable math (backends/_vecmath.py) for loops over
# many elements; the float32 ones compute in float32, eight lanes, within 2 ulp.
sin_p = register("sin", np.sin, _rules.same, lambda g, out, x: (g * cos(x),),
                 expr="math.sin({0})", vector={"float64": "vsin({0})"})
cos_p = register("cos", np.cos, _rules.same, lambda g, out, x: (-(g * sin(x)),),
                 expr="math.cos({0})", vector={"float64": "vcos({0})"})
tanh_p = register("tanh", np.tanh, _rules.same, lambda g, out, x: (g * (1 - out * out),),
                  saves="output", expr="math.tanh({0})",
                  vector={"float64": "vtanh({0})", "float32": "vtanh32({0})"})
sigmoid_p = register("sigmoid", _quiet(_sigmoid), _rules.same,
                     lambda g, out, x: (g * out * (1 - out),), saves="output",
                     expr="(1.0 / (1.0 + math.exp(-{0})))",
                     vector={"float64": "(1.0 / (1.0 + vexp(-{0})))",
                             "float32": "(np.float32(1.0) / (np.float32(1.0) + vexp32(-{0})))"})
relu_p = register("relu", lambda x: np.maximum(x, np.zeros((), x.dtype)), _rules.same,
                  lambda g, out, x: (g * (out > 0),), saves="output",
                  expr="({0} if {0} > 0.0 or {0} != {0} else 0.0)")  # +0.0 for -0.0 and negatives
sqrt_p = register("sqrt", _quiet(np.sqrt), _rules.same, lambda g, out, x: (g / (2 * out),),
                  saves="output", expr="math.sqrt({0})")
abs_p = register("abs", np.abs, _rules.same, lambda g, out, x: (g * sign(x),),
                 expr="abs({0})")
def _zero_vjp(g, out, x):
    # Piecewise-constant ops (floor, sign...): their output requires grad when the input does,
    # with a zero gradient (torch's ``zeros_like(grad)``: 0 even where ``g`` is inf or NaN).
    from jitgrad.ops.shape import expand
    return (expand(scalar(0, g.dtype), tuple(g.shape)),)


sign_p = register("sign", np.sign, _rules.same, _zero_vjp, saves="none", expr="sign({0})")


def _astype_abstract(x: Aval, dtype) -> Aval:
    return Aval(x.shape, dtype)


def _astype_vjp(g, out, x, dtype):
    return (g.to(x.dtype) if x.dtype.is_floating_point else None,)


astype_p = register("astype", lambda x, dtype: x.astype(dtype.np), _astype_abstract, _astype_vjp,
                    saves="none", backward_name="ToCopyBackward0", expr="{cast}({0})")


def _clamp_vjp(g, out, x, lo, hi):
    keep = None
    if lo is not None:
        keep = x >= lo
    if hi is not None:
        keep = (x <= hi) if keep is None else keep & (x <= hi)
    return (where(keep, g, 0.0) if keep is not None else g,)


clamp_p = register("clamp", lambda x, lo, hi: np.clip(x, lo, hi), _rules.same, _clamp_vjp,
                   expr="clamp({0}, {lo}, {hi})")

# -- binary ------------------------------------------------------------------------------------
add_p = register("add", np.add, _rules.binary, lambda g, out, x, y: (g, g), saves="none",
                 expr="({0} + {1})")
sub_p = register("sub", np.subtract, _rules.binary, lambda g, out, x, y: (g, -g), saves="none",
                 expr="({0} - {1})")
mul_p = register("mul", np.multiply, _rules.binary, lambda g, out, x, y: (g * y, g * x),
                 expr="({0} * {1})", reads=_rules.reads_other)
div_p = register("div", _quiet(np.true_divide), _rules.binary,
                 lambda g, out, x, y: (g / y, -(g * x) / (y * y)), expr="({0} / {1})",
                 reads=lambda needs: (needs[1], needs[0] or needs[1]))


def _pow_vjp(g, out, x, y):
    gx = g * y * x ** (y - 1) if x.requires_grad else None
    gy = None
    if y.requires_grad:
        # As torch: d/dy x**y = x**y log x, taken as 0 where x == 0 and y >= 0.
        gy = where((x == 0) & (y >= 0), 0.0, g * out * log(x))
    return gx, gy


pow_p = register("pow", _quiet(np.power), _rules.binary, _pow_vjp, saves="both",
                 expr="({0} ** {1})", backward_name="PowBackward1")


def _pow_scalar_vjp(g, out, x, p):
    if p == 2:
        return (g * x * 2.0,)
    if p == 0:
        return (g * 0.0,)
    return (g * pow_scalar(x, p - 1) * p,)


# A constant exponent is a parameter, not an operand (torch's PowBackward0): its VJP needs no
# logarithm and codegen can turn ``x ** 2`` into ``x * x``.
pow_scalar_p = register("pow_scalar", _quiet(lambda x, p: np.power(x, x.dtype.type(p))),
                        _rules.same, _pow_scalar_vjp, expr="({0} ** {p})",
                        backward_name="PowBackward0")


def _max_vjp(g, out, x, y):
    # Ties split the gradient evenly, as torch does.
    wx = (x > y) + (x == y) * 0.5
    return g * wx, g * (1 - wx)


def _min_vjp(g, out, x, y):
    wx = (x < y) + (x == y) * 0.5
    return g * wx, g * (1 - wx)


maximum_p = register("maximum", np.maximum, _rules.binary, _max_vjp, expr="max2({0}, {1})")
minimum_p = register("minimum", np.minimum, _rules.binary, _min_vjp, expr="min2({0}, {1})")


def _where_abstract(c: Aval, x: Aval, y: Aval) -> Aval:
    shape = _rules.broadcast_shapes(_rules.broadcast_shapes(c.shape, x.shape, "where"), y.shape,
                                    "where")
    return Aval(shape, x.dtype)


where_p = register("where", np.where, _where_abstract,
                   lambda g, out, c, x, y: (None, where(c, g, 0.0), where(c, 0.0, g)),
                   saves="inputs", nondiff_inputs=(0,), expr="({1} if {0} else {2})")

_CMP = {}
for _name, _fn, _sym in (("eq", np.equal, "=="), ("ne", np.not_equal, "!="), ("lt", np.less, "<"),
                         ("le", np.less_equal, "<="), ("gt", np.greater, ">"),
                         ("ge", np.greater_equal, ">=")):
    _CMP[_name] = register(_name, _fn, _rules.compare, None, saves="none",
                           expr=f"({{0}} {_sym} {{1}})")
for _name, _fn, _sym in (("bitwise_and", np.bitwise_and, "&"), ("bitwise_or", np.bitwise_or, "|"),
                         ("bitwise_xor", np.bitwise_xor, "^")):
    _CMP[_name] = register(_name, _fn, _rules.binary, None, saves="none",
                           expr=f"({{0}} {_sym} {{1}})")
invert_p = register("invert", np.invert, _rules.same, None, saves="none", expr="invert({0})")
isnan_p = register("isnan", np.isnan, lambda x: Aval(x.shape, dtypes.bool_), None, saves="none",
                   expr="isnan({0})")
isinf_p = register("isinf", np.isinf, lambda x: Aval(x.shape, dtypes.bool_), None, saves="none",
                   expr="isinf({0})")
floor_p = register("floor", np.floor, _rules.same, _zero_vjp, saves="none", expr="floor({0})")
# Integer floor division (floats compose from fmod: ``_float_floor_divide``): exact for all of
# int64, where a detour through floating point rounds above 2**24 (float32) or 2**53. Division
# by zero gives 0 and min // -1 wraps to min, as NumPy.
floor_divide_p = register("floor_divide", _quiet(np.floor_divide), _rules.binary, None,
                          saves="none", expr="floordiv({0}, {1})")
# x - floor(x / y) * y with the sign of y (Python's %, torch.remainder), computed as NumPy does
# (fmod, then a correction) rather than by that formula, which rounds: 1.0 % 0.1 is 0.0999...
remainder_p = register("remainder", _quiet(np.remainder), _rules.binary,
                       lambda g, out, x, y: (g, -g * floor(div(x, y))), saves="inputs",
                       expr="({0} % {1})")


# -- the functional API ------------------------------------------------------------------------
def _tensor(x, op: str):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be a Tensor, not {type(x).__name__}")
    return x


def _float(x, op: str):
    x = _tensor(x, op)
    return x if x.dtype.is_floating_point else x.to(dtypes.float32)


def _unary(prim, float_only: bool = True):
    op = prim.name

    def fn(x):
        return bind(prim, ((_float(x, op) if float_only else _tensor(x, op)),), _NO)

    fn.__name__ = op
    fn.__doc__ = f"Elementwise ``{op}``."
    return fn


neg = _unary(neg_p, float_only=False)
exp = _unary(exp_p)
log = _unary(log_p)
log1p = _unary(log1p_p)
erf = _unary(erf_p)
expm1 = _unary(expm1_p)
sin = _unary(sin_p)
cos = _unary(cos_p)
tanh = _unary(tanh_p)
sigmoid = _unary(sigmoid_p)
relu = _unary(relu_p, float_only=False)
sqrt = _unary(sqrt_p)
abs = _unary(abs_p, float_only=False)  # noqa: A001
_sign = _unary(sign_p, float_only=False)


def sign(x):
    """-1, 0 or 1 by the sign of each element (NaN stays NaN); a bool tensor is its own sign."""
    return x.clone() if _tensor(x, "sign").dtype is dtypes.bool_ else _sign(x)
isnan = _unary(isnan_p, float_only=False)
isinf = _unary(isinf_p, float_only=False)
floor = _unary(floor_p, float_only=False)


def isfinite(x):
    return invert(isnan(x) | isinf(x))


def invert(x):
    return bind(invert_p, (_tensor(x, "invert"),), _NO)


def _binary(prim, x, y):
    # The common cases decided at once, each exactly what ``promote`` and the broadcast check
    # below would do: two tensors of one dtype, or a float tensor and a Python number (which
    # takes the tensor's dtype).
    tx, ty = type(x), type(y)
    if tx is Tensor and x._value is not None:
        vx = x._value
        if ty is Tensor and y._value is not None:
            vy = y._value
            if vx.dtype is vy.dtype:
                if vx.shape != vy.shape:
                    _rules.broadcast_shapes(vx.shape, vy.shape, prim.name)
                return bind(prim, (x, y), _NO)
        elif (ty is float or ty is int) and vx.dtype.kind == "f" and trace_state.builder is None:
            return bind(prim, (x, Tensor._wrap(np.array(y, dtype=vx.dtype))), _NO)
    elif (tx is float or tx is int) and ty is Tensor and y._value is not None and \
            y._value.dtype.kind == "f" and trace_state.builder is None:
        return bind(prim, (Tensor._wrap(np.array(x, dtype=y._value.dtype)), y), _NO)
    x, y = promote(x, y)
    if x._value is not None and y._value is not None:
        sx, sy = x._value.shape, y._value.shape
        if sx != sy:
            _rules.broadcast_shapes(sx, sy, prim.name)
    return bind(prim, (x, y), _NO)


def add(x, y, alpha=1):
    return _binary(add_p, x, y if alpha == 1 else y * alpha)


def sub(x, y, alpha=1):
    return _binary(sub_p, x, y if alpha == 1 else y * alpha)


def mul(x, y):
    return _binary(mul_p, x, y)


def div(x, y, rounding_mode=None):
    if rounding_mode is not None:
        if rounding_mode == "floor":
            return floor_divide(x, y)
        if rounding_mode == "trunc":
            return _trunc_divide(x, y)
        raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but "
                         f"found {rounding_mode!r}")
    x, y = promote(x, y)
    if not x.dtype.is_floating_point:  # true division of integers gives float, as in torch
        x, y = x.to(dtypes.float32), y.to(dtypes.float32)
    return _binary(div_p, x, y)


def floor_divide(x, y):
    xd = x.dtype if isinstance(x, Tensor) else dtypes.scalar_dtype(x)
    yd = y.dtype if isinstance(y, Tensor) else dtypes.scalar_dtype(y)
    if xd.is_floating_point or yd.is_floating_point:
        return _float_floor_divide(*promote(x, y))
    x, y = _division_operands(x, y)
    _no_zero_divisor(y, "floor_divide")
    return _binary(floor_divide_p, x, y)


def _float_floor_divide(x, y):
    """Float floor division as Python's ``//`` and torch's kernel compute it: from the exact
    ``fmod``, not ``floor(x / y)``, whose rounded quotient can reach the next integer
    (``1 // 0.1`` is 9.0, ``floor(1 / 0.1)`` 10.0). A zero divisor gives ``x / y`` (inf or
    NaN), as torch. The last ``floor`` changes no value (each is integer-valued, inf or NaN):
    it keeps the gradient zero, as before, whatever the ``where``s route."""
    from jitgrad.ops.pointwise_more import copysign_p, fmod_p
    mod = _binary(fmod_p, x, y)
    d = (x - mod) / y
    d = where((mod != 0) & ((y < 0) != (mod < 0)), d - 1, d)
    fl = floor(d)
    # d is within rounding of an integer: the nearest one (``d > fl + 0.5``, not ``d - fl >
    # 0.5``, which makes a NaN, and NumPy's warning, of an infinite quotient)
    q = where(d > fl + 0.5, fl + 1, fl)
    q = where(d != 0, q, _binary(copysign_p, *promote(0.0, x / y)))  # a zero keeps the sign
    return floor(where(y == 0, x / y, q))


def _trunc_divide(x, y):
    """The quotient rounded toward zero (``div(rounding_mode="trunc")``); integers stay
    integers, exactly: the floor quotient, one closer to zero where it was rounded down below 0."""
    xd = x.dtype if isinstance(x, Tensor) else dtypes.scalar_dtype(x)
    yd = y.dtype if isinstance(y, Tensor) else dtypes.scalar_dtype(y)
    if xd.is_floating_point or yd.is_floating_point:
        from jitgrad.ops.rounding import trunc
        return trunc(div(x, y))
    x, y = _division_operands(x, y)
    q = floor_divide(x, y)
    return where((q < 0) & (q * y != x), q + 1, q)


def _no_zero_divisor(y, op: str) -> None:
    """Integer division by zero raises, as in torch (NumPy and compiled loops would give 0).
    Inside a trace the test is a guard: a later call with a zero divisor re-traces, and raises."""
    if y.dtype.is_floating_point:
        return
    builder = trace_state.builder
    if builder is None:
        zero = bool((y._value == 0).any())
    elif builder.concrete:
        zero = bool((y == 0).sum() > 0)  # a guard on the answer
    else:
        return
    if zero:
        raise RuntimeError(f"ZeroDivisionError: integer {op} by zero (a divisor holds 0; "
                           "divide floats, or replace the zeros, e.g. with jitgrad.where)")


def _division_operands(x, y) -> tuple:
    """Promoted operands of floor division and remainder: bools divide as int64, as in torch."""
    x, y = promote(x, y)
    if x.dtype is dtypes.bool_:
        x, y = x.to(dtypes.int64), y.to(dtypes.int64)
    return x, y


def remainder(x, y):
    """``x % y``: the remainder of floor division, with the sign of ``y`` (as Python and torch).

    >>> import jitgrad
    >>> (jitgrad.tensor([7.5, -7.5]) % 2).tolist()
    [1.5, 0.5]
    """
    x, y = _division_operands(x, y)
    _no_zero_divisor(y, "remainder")
    return _binary(remainder_p, x, y)


def pow(x, y):  # noqa: A001
    """``x ** y``; a Python-number exponent on a float tensor is a parameter of the op."""
    if isinstance(x, Tensor) and isinstance(y, (int, float)) and not isinstance(y, bool) and (
            x.dtype.is_floating_point or (isinstance(y, int) and y >= 0)):
        return pow_scalar(x, y)
    return _binary(pow_p, x, y)


def pow_scalar(x, p):
    return bind(pow_scalar_p, (x,), {"p": float(p) if x.dtype.is_floating_point else int(p)})


def maximum(x, y):
    return _binary(maximum_p, x, y)


def minimum(x, y):
    return _binary(minimum_p, x, y)


def _compare(name):
    prim = _CMP[name]

    def fn(x, y):
        return _binary(prim, x, y)

    fn.__name__ = name
    return fn


eq, ne, lt, le, gt, ge = (_compare(n) for n in ("eq", "ne", "lt", "le", "gt", "ge"))
bitwise_and, bitwise_or, bitwise_xor = (_compare(n) for n in ("bitwise_and", "bitwise_or",
                                                               "bitwise_xor"))
def _truth(x, name: str):
    """``x`` as bools: nonzero is True (a bitwise op on ints gave 2 & 1 == 0 for and)."""
    x = _tensor(x, name) if not isinstance(x, (bool, int, float)) else x
    if isinstance(x, (bool, int, float)):
        return bool(x)
    return x if x.dtype is dtypes.bool_ else x != 0


def _logical(name: str, op):
    def fn(x, y):
        return op(_truth(x, name), _truth(y, name))
    fn.__name__ = name
    fn.__doc__ = (f"Elementwise {name.split('_')[1]} of the truth of ``x`` and ``y`` (nonzero "
                  "is True), a bool tensor.")
    return fn


logical_and = _logical("logical_and", bitwise_and)
logical_or = _logical("logical_or", bitwise_or)
logical_xor = _logical("logical_xor", bitwise_xor)


def logical_not(x):
    x = _tensor(x, "logical_not")
    return invert(x if x.dtype is dtypes.bool_ else x != 0)


def where(cond, x, y):
    """Pick from ``x`` where ``cond`` holds, else from ``y`` (broadcasting all three).

    >>> import jitgrad
    >>> jitgrad.where(jitgrad.tensor([True, False]), 1.0, 0.0)
    tensor([1., 0.])
    """
    if not isinstance(cond, Tensor):
        raise TypeError("where(): condition must be a bool Tensor")
    if cond.dtype is not dtypes.bool_:
        cond = cond != 0
    x, y = promote(x, y)
    if cond.shape != x.shape or x.shape != y.shape:
        _where_abstract(Aval(cond.shape, cond.dtype), Aval(x.shape, x.dtype), Aval(y.shape, y.dtype))
    return bind(where_p, (cond, x, y), _NO)


def clamp(x, min=None, max=None):  # noqa: A002
    """Clamp into ``[min, max]``; either bound may be None, or a tensor."""
    x = _tensor(x, "clamp")
    if min is None and max is None:
        raise ValueError("clamp(): at least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    if not x.dtype.is_floating_point and (isinstance(min, float) or isinstance(max, float)):
        x = x.to(dtypes.float32)
    cast = float if x.dtype.is_floating_point else int
    return bind(clamp_p, (x,), {"lo": None if min is None else cast(min),
                                 "hi": None if max is None else cast(max)})


def astype(x, dtype) -> "Tensor":
    dtype = dtypes.as_dtype(dtype)
    if x.dtype is dtype:
        return x
    return bind(astype_p, (x,), {"dtype": dtype})


def square(x):
    return mul(x, x)


def reciprocal(x):
    return div(1.0, x)


def rsqrt(x):
    return div(1.0, sqrt(x))


def log10(x):
    return log(x) * 0.4342944819032518  # 1 / ln 10


def log2(x):
    return log(x) * 1.4426950408889634  # 1 / ln 2


def softplus(x, beta: float = 1.0, threshold: float = 20.0):
    bx = x * beta
    return where(bx > threshold, x, log1p(exp(minimum(bx, threshold))) / beta)


_ = scalar  # re-exported for ops that build literals
from jitgrad.tensor import Tensor  # noqa: E402


def _where_method(self, condition, y):
    """``x.where(condition, y)``: ``where(condition, x, y)``, as torch's method."""
    return where(condition, self, y)


Tensor.where = _where_method

clone_p = register("clone", np.copy, _rules.same, lambda g, out, x: (g,), saves="none",
                   expr="{0}")


def clone(x, *, memory_format=None):
    """A copy with its own storage that stays in the graph (``CloneBackward0``), laid out as
    ``x`` is (torch's ``preserve_format``: a clone of ``x.t()`` is transposed too), or as
    ``memory_format`` says."""
    fmt = _formats.check(memory_format, "clone")
    out = bind(clone_p, (_tensor(x, "clone"),), _NO)
    if fmt is not None and out._ir is None:
        out._value = _formats.laid_out(out._value, fmt)  # a fresh result: nothing else holds it
    return out


def contiguous(x, memory_format=None):
    """``x`` itself when its elements are laid out row-major, else a row-major copy in the graph
    (``CloneBackward0``), as torch: ``x.t().contiguous().view(-1)`` works where
    ``x.t().view(-1)`` cannot. ``memory_format=jitgrad.channels_last`` asks for NHWC instead."""
    fmt = _formats.check(memory_format, "contiguous")
    if fmt is _formats.preserve_format:
        raise RuntimeError("contiguous(): preserve memory format is unsupported by the "
                           "contiguous operator")
    v = _tensor(x, "contiguous")._value
    if fmt is not None and fmt is not _formats.contiguous_format:
        from jitgrad.ops._layout import channels_last
        if v is None or trace_state.builder is not None or (
                fmt is _formats.channels_last and channels_last(v)):
            return x
        return clone(x, memory_format=fmt)
    if v is None or v.flags.c_contiguous:
        return x
    builder = trace_state.builder
    if builder is not None:
        # The same IR value (a layout is no concern of compiled code), with a row-major copy
        # of the concrete value that a later view() in the trace checks, as eager does.
        return builder.tracer(builder.atom(x), np.ascontiguousarray(v))
    out = clone(x)
    # clone keeps x's layout; this copy is row-major (a fresh result: nothing else holds it).
    out._value = np.ascontiguousarray(out._value)
    return out
