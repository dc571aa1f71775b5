"""More of torch's pointwise functions: hyperbolic functions and ``tan``, sign and float
manipulation (``copysign``, ``frexp``, ``ldexp``, ``nextafter``), NaN-aware extremes, integer
arithmetic (``gcd``, ``lcm``, shifts), ``lerp``/``addcmul``/``addcdiv``, the comparison and
arithmetic aliases, and the complex-number identities of real tensors (``conj``, ``real``...).

Most are compositions of existing ops, so gradients, forward mode, vmap and compiled code come
from their parts. Where a composition would round (``fmod``, ``hypot``, ``tan``...), the op is a
primitive with a libm scalar template; the regularized incomplete gamma functions run SciPy's
body on the host, as the other special functions do.

>>> import jitgrad
>>> x = jitgrad.tensor([0.0, 1.0], requires_grad=True)
>>> jitgrad.cosh(x).sum().backward()
>>> x.grad  # sinh
tensor([0.0000, 1.1752])
>>> jitgrad.fmod(jitgrad.tensor([-7.5, 7.5]), 2)
tensor([-1.5000,  1.5000])
>>> jitgrad.gcd(jitgrad.tensor([12, -9]), jitgrad.tensor([18, 6]))
tensor([6, 3])
>>> m, e = jitgrad.frexp(jitgrad.tensor([8.0, -0.75]))
>>> m, e
(tensor([ 0.5000, -0.7500]), tensor([4, 0], dtype=jitgrad.int32))
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from jitgrad import dtypes
from jitgrad._out import with_out
from jitgrad._tensor_methods import _inplace
from jitgrad.ops import _layout, _rules
from jitgrad.ops import elementwise as _ew
from jitgrad.ops.elementwise import (
    _binary, _division_operands, _float, _quiet, _tensor, _unary, abs, clamp, div, eq,
    exp, floor, floor_divide_p, ge, gt, invert, isinf, isnan, le, log, log1p, lt, maximum, mul,
    ne, neg, pow, remainder, sign, sub, where,
)
from jitgrad.ops.registry import promote, register, scalar
from jitgrad.ops.shape import expand
from jitgrad.ops.special import HOST_KIND, _scipy, lgamma
from jitgrad.tensor import Tensor

__all__ = [
    "addcdiv", "addcmul", "angle", "bitwise_and", "bitwise_left_shift", "bitwise_not",
    "bitwise_or", "bitwise_right_shift", "bitwise_xor", "clamp_max", "clamp_min", "conj",
    "conj_physical", "copysign", "cosh", "deg2rad", "equal", "float_power", "fmax", "fmin",
    "fmod", "frexp", "gcd", "greater", "greater_equal", "heaviside", "hypot", "igamma", "igammac",
    "isneginf", "isposinf", "isreal", "lcm", "ldexp", "lerp", "less", "less_equal", "logaddexp",
    "logaddexp2", "nan_to_num", "negative", "nextafter", "not_equal", "positive", "rad2deg",
    "real", "resolve_conj", "resolve_neg", "rsub", "sgn", "signbit", "sinh", "tan",
]


def _zeros_of(t):
    """A zero cotangent of ``t``'s shape: torch's gradient for an input it does not
    differentiate through (``copysign``'s sign, ``nextafter``'s direction)."""
    return expand(scalar(0, t.dtype), tuple(t.shape))


def _copysign_vjp(g, out, x, y):
    # d/dx |x| * sign(y) = out / x, taken as 0 at x == 0 (torch's rule).
    return g * where(x == 0, 0.0, out / where(x == 0, 1.0, x)), _zeros_of(y)


def _igamma_vjp(sign: float):
    def vjp(g, out, a, x):
        if a.requires_grad:  # as torch: no closed form in the shape parameter
            raise NotImplementedError("the derivative for 'igamma' with respect to 'input' (the "
                                      "shape a) is not implemented; only 'other' is "
                                      "differentiable")
        # d/dx P(a, x) = x**(a - 1) exp(-x) / Gamma(a); Q = 1 - P.
        return None, g * (sign * exp((a - 1.0) * log(x) - x - lgamma(a)))
    return vjp


def _wide(fn):
    """A float32 body that computes in float64 and rounds once, as the compiled backends'
    libm calls do (NumPy's float32 loops are off by an ulp where torch's are not)."""
    def impl(*xs):
        with np.errstate(all="ignore"):
            if xs[0].dtype == np.float32:
                return fn(*[x.astype(np.float64) for x in xs]).astype(np.float32)
            return fn(*xs)
    impl.__name__ = fn.__name__
    return impl


cosh_p = register("cosh", _wide(np.cosh), _rules.same, lambda g, out, x: (g * sinh(x),),
                  expr="math.cosh({0})")
sinh_p = register("sinh", _wide(np.sinh), _rules.same, lambda g, out, x: (g * cosh(x),),
                  expr="math.sinh({0})")
tan_p = register("tan", _wide(np.tan), _rules.same, lambda g, out, x: (g * (out * out + 1.0),),
                 saves="output", expr="math.tan({0})")
copysign_p = register("copysign", np.copysign, _rules.binary, _copysign_vjp, saves="both",
                      expr="math.copysign({0}, {1})")
hypot_p = register("hypot", _wide(np.hypot), _rules.binary,
                   lambda g, out, x, y: (g * x / out, g * y / out), saves="both",
                   expr="math.hypot({0}, {1})")
# Floats only (integers compose exactly from remainder): C's fmod, exact where x - trunc(x/y)*y
# rounds. Numba's CPU math has no fmod, but NumPy's ufunc compiles there; the CUDA backend
# has a template of its own (numba-cuda has math.fmod but not the ufunc).
fmod_p = register("fmod", _quiet(np.fmod), _rules.binary,
                  lambda g, out, x, y: (g, -(g * _trunc(x / y))), expr="np.fmod({0}, {1})")
nextafter_p = register("nextafter", np.nextafter, _rules.binary,
                       lambda g, out, x, y: (g, _zeros_of(y)), saves="none",
                       expr="math.nextafter({0}, {1})")
gcd_p = register("gcd", np.gcd, _rules.binary, None, saves="none", expr="math.gcd({0}, {1})")
igamma_p = register("igamma", _scipy("gammainc"), _rules.binary, _igamma_vjp(1.0),
                    kind=HOST_KIND, layout=_layout.elementwise)
igammac_p = register("igammac", _scipy("gammaincc"), _rules.binary, _igamma_vjp(-1.0),
                     kind=HOST_KIND, layout=_layout.elementwise)

# What the transforms give rules of their own (registered after their tables are built).
PRIMS = (cosh_p, sinh_p, tan_p, copysign_p, hypot_p, fmod_p, nextafter_p, gcd_p, igamma_p,
         igammac_p)
# Without a Numba scalar form: SciPy's body on the host, on both compiled backends.
HOST_PRIMS = (igamma_p, igammac_p)

cosh = _unary(cosh_p)
sinh = _unary(sinh_p)
tan = _unary(tan_p)


# -- helpers -------------------------------------------------------------------------------------
def _trunc(x):
    return where(x < 0, -floor(-x), floor(x))


def _floats(input, other, op: str, ints: bool = True):
    """``input`` and ``other`` promoted to one floating dtype (integers to float32 where torch
    does so, else an error naming the dtype)."""
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError(f"{op}(): expected a Tensor as 'input' or 'other', got "
                        f"{type(input).__name__} and {type(other).__name__}")
    x, y = promote(input, other)
    if not x.dtype.is_floating_point:
        if not ints:
            raise RuntimeError(f'"{op}" not implemented for {x.dtype.name} tensors: expected '
                               "floating point operands")
        x, y = x.to(dtypes.float32), y.to(dtypes.float32)
    return x, y


def _integers(input, other, op: str, bools: bool = True):
    x, y = promote(input, other)
    if x.dtype.is_floating_point or (x.dtype is dtypes.bool_ and not bools):
        raise RuntimeError(f'"{op}" not implemented for {x.dtype.name} tensors: expected '
                           f"integer{' or bool' if bools else ''} operands")
    return x, y


def _full(x, value, dtype):
    return expand(scalar(value, dtype), tuple(x.shape))


# -- float functions ----------------------------------------------------------------------------
def deg2rad(input):  # noqa: A002  (torch's argument names throughout)
    """Degrees to radians (integers give float32)."""
    return _float(input, "deg2rad") * (math.pi / 180.0)


def rad2deg(input):  # noqa: A002
    """Radians to degrees (integers give float32)."""
    return _float(input, "rad2deg") * (180.0 / math.pi)


def copysign(input, other):  # noqa: A002
    """``|input|`` with the sign of ``other`` (``-0.0`` counts as negative); differentiable in
    ``input``, as torch's (``other``'s gradient is 0).

    >>> import jitgrad
    >>> jitgrad.copysign(jitgrad.tensor([1.0, 2.0]), jitgrad.tensor([-0.0, 3.0]))
    tensor([-1.,  2.])
    """
    return _binary(copysign_p, *_floats(input, other, "copysign"))


def signbit(input):  # noqa: A002
    """Whether each element's sign bit is set (True for ``-0.0`` and negative NaN)."""
    x = _tensor(input, "signbit")
    if not x.dtype.is_floating_point:
        return x < 0 if x.dtype is not dtypes.bool_ else _full(x, False, dtypes.bool_)
    return _binary(copysign_p, _full(x, 1.0, x.dtype), x) < 0


def hypot(input, other):  # noqa: A002
    """``sqrt(input**2 + other**2)`` without overflow or underflow on the way."""
    return _binary(hypot_p, *_floats(input, other, "hypot", ints=False))


def nextafter(input, other):  # noqa: A002
    """The next floating point value after ``input`` towards ``other``."""
    return _binary(nextafter_p, *_floats(input, other, "nextafter", ints=False))


def fmod(input, other):  # noqa: A002
    """The remainder of division rounded toward zero (C's ``fmod``): it has the sign of
    ``input``, where ``remainder``'s has the sign of ``other``. Integer division by zero raises.
    """
    x, y = _division_operands(input, other)
    if x.dtype.is_floating_point:
        return _binary(fmod_p, x, y)
    r = remainder(x, y)  # exact for integers (and checks for zero divisors)
    return where((r != 0) & ((r < 0) != (x < 0)), r - y, r)


def float_power(input, exponent):  # noqa: A002
    """``input ** exponent`` computed in float64, whatever the operands' dtypes."""
    f64 = dtypes.float64
    if isinstance(input, Tensor):
        if isinstance(exponent, Tensor):
            return pow(input.to(f64), exponent.to(f64))
        return pow(input.to(f64), float(exponent))
    if not isinstance(exponent, Tensor):
        raise TypeError("float_power(): expected a Tensor as 'input' or 'exponent'")
    return pow(float(input), exponent.to(f64))


def _nan_pick(x, y, take_x):
    return where(take_x | isnan(y), x, y)


def fmax(input, other):  # noqa: A002
    """The elementwise maximum, ignoring NaN: NaN only where both are NaN. The gradient goes to
    ``input`` where it is picked (ties included), as torch's."""
    x, y = promote(_tensor(input, "fmax"), other)
    return _nan_pick(x, y, x >= y)


def fmin(input, other):  # noqa: A002
    """The elementwise minimum, ignoring NaN (see ``fmax``)."""
    x, y = promote(_tensor(input, "fmin"), other)
    return _nan_pick(x, y, x <= y)


FrexpResult = namedtuple("frexp", ["mantissa", "exponent"])  # torch.return_types.frexp


def frexp(input):  # noqa: A002
    """``(mantissa, exponent)`` with ``input == mantissa * 2**exponent``, ``|mantissa|`` in
    [0.5, 1) and an int32 exponent; 0, inf and NaN keep themselves with exponent 0.

    The exponent comes from ``log2`` and is then corrected by one where that rounded, so both
    parts are exact; dividing by a power of two is exact, so is the mantissa (and its gradient,
    ``2**-exponent``)."""
    x = _tensor(input, "frexp")
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"frexp() only supports floating-point dtypes, got {x.dtype.name}")
    f64 = dtypes.float64
    ok = invert(isnan(x) | isinf(x)) & (x != 0)
    a = where(ok, abs(x), 1.0).to(f64)
    e = floor(log(a) * (1.0 / math.log(2.0))) + 1.0
    m = _scale_down(a, e, f64)
    e = where(m >= 1.0, e + 1.0, where(m < 0.5, e - 1.0, e))
    e = where(ok, e, 0.0)
    return FrexpResult(where(ok, _scale_down(x, e, x.dtype), x), e.to(dtypes.int32))


def _scale_down(x, e, dt):
    """``x / 2**e`` in two halves, so that neither power overflows or leaves the normal range
    (2**1024 is inf in float64, 2**-1074 the last subnormal)."""
    h = floor(e * 0.5)
    return x / pow(2.0, h.to(dt)) / pow(2.0, (e - h).to(dt))


def ldexp(input, other):  # noqa: A002
    """``input * 2**other`` (integers give float32)."""
    x, o = promote(_tensor(input, "ldexp"), other)
    dt = x.dtype if x.dtype.is_floating_point else dtypes.float32
    return x.to(dt) * pow(2.0, o.to(dt))


def logaddexp(input, other):  # noqa: A002
    """``log(exp(input) + exp(other))`` without overflow: ``max + log1p(exp(-|x - y|))``."""
    x, y = _floats(input, other, "logaddexp", ints=False)
    r = maximum(x, y) + log1p(exp(-abs(x - y)))
    return where(isinf(x) & (x == y), x, r)  # inf - inf would be NaN


def logaddexp2(input, other):  # noqa: A002
    """``log2(2**input + 2**other)``, as ``logaddexp`` in base 2."""
    x, y = _floats(input, other, "logaddexp2", ints=False)
    r = maximum(x, y) + log1p(pow(2.0, -abs(x - y))) * (1.0 / math.log(2.0))
    return where(isinf(x) & (x == y), x, r)


def nan_to_num(input, nan: float = 0.0, posinf: float | None = None,  # noqa: A002
               neginf: float | None = None):
    """NaN, +inf and -inf replaced by ``nan``, ``posinf`` and ``neginf`` (the infinities by the
    dtype's largest finite values by default); integers are copied."""
    x = _tensor(input, "nan_to_num")
    if not x.dtype.is_floating_point:
        return x.clone()
    big = float(np.finfo(x.dtype.np).max)
    hi = big if posinf is None else posinf
    lo = -big if neginf is None else neginf
    return where(isnan(x), nan, where(x == math.inf, hi, where(x == -math.inf, lo, x)))


def heaviside(input, values):  # noqa: A002
    """The step function: 0 below 0, 1 above, ``values`` at 0 (and 0 at NaN). Not
    differentiable (as torch, whose backward raises), so the result carries no gradient."""
    x, v = _tensor(input, "heaviside"), _tensor(values, "heaviside")
    if x.dtype is not v.dtype:
        raise RuntimeError(f"heaviside is not yet implemented for tensors with different dtypes "
                           f"(input {x.dtype.name}, values {v.dtype.name})")
    x, v = x.detach(), v.detach()
    return where(x == 0, v, (x > 0).to(x.dtype))


def igamma(input, other):  # noqa: A002
    """The regularized lower incomplete gamma function ``P(input, other)``; differentiable in
    ``other`` only, as torch's.

    >>> import jitgrad
    >>> jitgrad.igamma(jitgrad.tensor([1.0]), jitgrad.tensor([2.0]))  # 1 - exp(-2)
    tensor([0.8647])
    """
    return _binary(igamma_p, *_floats(input, other, "igamma", ints=False))


def igammac(input, other):  # noqa: A002
    """The regularized upper incomplete gamma function ``Q = 1 - P`` (see ``igamma``)."""
    return _binary(igammac_p, *_floats(input, other, "igammac", ints=False))


# -- integer functions --------------------------------------------------------------------------
def gcd(input, other):  # noqa: A002
    """The greatest common divisor of integers (non-negative; ``gcd(0, 0) == 0``)."""
    return _binary(gcd_p, *_integers(input, other, "gcd", bools=False))


def lcm(input, other):  # noqa: A002
    """The least common multiple of integers (non-negative; 0 where either is 0)."""
    x, y = _integers(input, other, "lcm", bools=False)
    g = _binary(gcd_p, x, y)
    nz = g != 0
    # x is a multiple of g: the division is exact, and by a nonzero divisor.
    q = _binary(floor_divide_p, x, where(nz, g, scalar(1, g.dtype)))
    return where(nz, abs(q * y), scalar(0, g.dtype))


def _bitwise(name: str, fn):
    def op(input, other):  # noqa: A002
        if not isinstance(other, Tensor):
            _tensor(input, name)
        return fn(*_integers(input, other, name))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = (f"Elementwise {name.split('_')[1]} of the bits of integers (of the truth of "
                  "bools).")
    return op


bitwise_and = _bitwise("bitwise_and", _ew.bitwise_and)
bitwise_or = _bitwise("bitwise_or", _ew.bitwise_or)
bitwise_xor = _bitwise("bitwise_xor", _ew.bitwise_xor)


def bitwise_not(input):  # noqa: A002
    """Each bit of an integer flipped (``~x == -x - 1``); the negation of a bool."""
    x = _tensor(input, "bitwise_not")
    if x.dtype.is_floating_point:
        raise RuntimeError(f'"bitwise_not" not implemented for {x.dtype.name} tensors: expected '
                           "integer or bool operands")
    return invert(x)


def _shift_operands(input, other, name: str):
    x, s = _integers(input, other, name, bools=False)
    bits = 8 * x.dtype.np.itemsize
    signed = x.dtype.np.kind == "i"
    return x, s, bits, signed


def bitwise_left_shift(input, other):  # noqa: A002
    """``input << other``: bits shifted out are lost (the product wraps, as C's), and a shift
    by the width or more, or by a negative amount, gives 0, as torch's."""
    x, s, bits, _ = _shift_operands(input, other, "bitwise_left_shift")
    out = (s < 0) | (s >= bits)
    zero = scalar(0, x.dtype)
    return where(out, zero, x * pow(2, where(out, zero, s)))


def bitwise_right_shift(input, other):  # noqa: A002
    """``input >> other``, arithmetic for signed integers (floor division by ``2**other``); a
    shift past the sign bit, or by a negative amount, gives -1 or 0 by the sign, as torch's."""
    x, s, bits, signed = _shift_operands(input, other, "bitwise_right_shift")
    # 2**(bits - 1) does not fit a signed type: that shift is the sign alone, as wider ones.
    out = (s < 0) | (s >= bits - 1 if signed else s >= bits)
    zero = scalar(0, x.dtype)
    q = _binary(floor_divide_p, x, pow(2, where(out, zero, s)))
    if not signed:
        return where(out, zero, q)
    return where(out, where(x < 0, scalar(-1, x.dtype), zero), q)


# -- arithmetic --------------------------------------------------------------------------------
def clamp_min(input, min):  # noqa: A002
    """``clamp(input, min=min)``."""
    return clamp(input, min=min)


def clamp_max(input, max):  # noqa: A002
    """``clamp(input, max=max)``."""
    return clamp(input, max=max)


def lerp(input, end, weight):  # noqa: A002
    """``input + weight * (end - input)``, computed from the nearer end (torch's formula, exact
    at weight 0 and 1).

    >>> import jitgrad
    >>> jitgrad.lerp(jitgrad.tensor([1.0]), jitgrad.tensor([3.0]), 0.75)
    tensor([2.5000])
    """
    x, y = _tensor(input, "lerp"), _tensor(end, "lerp")
    if not x.dtype.is_floating_point:
        raise RuntimeError(f'"lerp" not implemented for {x.dtype.name} tensors')
    for name, t in (("end", y), ("weight", weight)):
        if isinstance(t, Tensor) and t.dtype is not x.dtype:
            raise RuntimeError(f"lerp: expected dtype {x.dtype.name} for `{name}` but got dtype "
                               f"{t.dtype.name}")
    d = y - x
    if not isinstance(weight, Tensor):
        w = float(weight)
        return x + d * w if math.fabs(w) < 0.5 else y - d * (1.0 - w)
    return where(abs(weight) < 0.5, x + weight * d, y - d * (1.0 - weight))


def _value(value, t):
    return int(value) if not t.dtype.is_floating_point else value


def addcmul(input, tensor1, tensor2, *, value=1):  # noqa: A002
    """``input + value * tensor1 * tensor2``."""
    t1 = _tensor(tensor1, "addcmul")
    p = t1 * _value(value, t1) * tensor2 if value != 1 else t1 * tensor2
    return _tensor(input, "addcmul") + p


def addcdiv(input, tensor1, tensor2, *, value=1):  # noqa: A002
    """``input + value * tensor1 / tensor2`` (true division; integer operands are refused, as
    torch's)."""
    t1, t2 = _tensor(tensor1, "addcdiv"), _tensor(tensor2, "addcdiv")
    if not t1.dtype.is_floating_point and not t2.dtype.is_floating_point:
        raise RuntimeError("Integer division with addcdiv is no longer supported: use "
                           "(input + value * tensor1 / tensor2) for a true division")
    return _tensor(input, "addcdiv") + (t1 * value if value != 1 else t1) / t2


def rsub(input, other, *, alpha=1):  # noqa: A002
    """``other - alpha * input``."""
    return sub(other, _tensor(input, "rsub"), alpha=alpha)


def negative(input):  # noqa: A002
    """``-input`` (not for bools: use ``logical_not``)."""
    if _tensor(input, "negative").dtype is dtypes.bool_:
        raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. If "
                           "you are trying to invert a mask, use the `~` or `logical_not()` "
                           "operator instead.")
    return neg(input)


def positive(input):  # noqa: A002
    """``input`` itself (not for bools, as torch)."""
    if _tensor(input, "positive").dtype is dtypes.bool_:
        raise RuntimeError("The `+` operator, on a bool tensor is not supported.")
    return input


# -- real tensors' complex-number identities and predicates -------------------------------------
def _identity(name: str, doc: str):
    def fn(input):  # noqa: A002
        return _tensor(input, name)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc + " jitgrad's tensors are real: ``input`` itself, as torch gives for them."
    return fn


conj = _identity("conj", "The complex conjugate.")
conj_physical = _identity("conj_physical", "The complex conjugate, materialized.")
resolve_conj = _identity("resolve_conj", "The conjugation resolved.")
resolve_neg = _identity("resolve_neg", "The negative bit resolved.")
real = _identity("real", "The real part.")


def angle(input):  # noqa: A002
    """The argument of each element: pi below 0, else 0, NaN at NaN (integers give float32)."""
    x = _float(input, "angle")
    # (the constants in x's dtype: two Python floats alone would make a float32 pi)
    return where(isnan(x), x, where(x < 0, scalar(math.pi, x.dtype), scalar(0.0, x.dtype)))


def sgn(input):  # noqa: A002
    """``sign`` (for real tensors the two agree)."""
    return sign(input)


def isposinf(input):  # noqa: A002
    """Where ``input`` is +inf."""
    x = _tensor(input, "isposinf")
    return x == math.inf if x.dtype.is_floating_point else _full(x, False, dtypes.bool_)


def isneginf(input):  # noqa: A002
    """Where ``input`` is -inf."""
    x = _tensor(input, "isneginf")
    return x == -math.inf if x.dtype.is_floating_point else _full(x, False, dtypes.bool_)


def isreal(input):  # noqa: A002
    """True everywhere: jitgrad's tensors are real."""
    return _full(_tensor(input, "isreal"), True, dtypes.bool_)


def equal(input, other) -> bool:  # noqa: A002
    """Whether the two tensors have the same shape and elements (NaN is unequal to itself).
    Inside a compiled function the answer is a guard on the values."""
    x, y = _tensor(input, "equal"), _tensor(other, "equal")
    if tuple(x.shape) != tuple(y.shape):
        return False
    return bool((x != y).sum() == 0)


greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne

# -- methods -------------------------------------------------------------------------------------
_ALIASES = {"divide": div, "multiply": mul, "subtract": sub, "true_divide": div,
            "absolute": abs, "floor_divide": _ew.floor_divide, "remainder": remainder,
            "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge}
# Name -> function, for the methods with an in-place variant (``x.cosh_()``).
_WITH_INPLACE = dict(
    _ALIASES, cosh=cosh, sinh=sinh, tan=tan, deg2rad=deg2rad, rad2deg=rad2deg, copysign=copysign,
    float_power=float_power, fmod=fmod, ldexp=ldexp, gcd=gcd, lcm=lcm, heaviside=heaviside,
    hypot=hypot, nextafter=nextafter, sgn=sgn, nan_to_num=nan_to_num, negative=negative,
    greater=gt, greater_equal=ge, less=lt, less_equal=le, not_equal=ne, bitwise_and=bitwise_and,
    bitwise_or=bitwise_or, bitwise_xor=bitwise_xor, bitwise_not=bitwise_not,
    bitwise_left_shift=bitwise_left_shift, bitwise_right_shift=bitwise_right_shift, lerp=lerp,
    addcmul=addcmul, addcdiv=addcdiv, conj_physical=conj_physical, igamma=igamma,
    igammac=igammac, clamp_min=clamp_min, clamp_max=clamp_max,
)
_PLAIN = dict(fmax=fmax, fmin=fmin, frexp=frexp, logaddexp=logaddexp, logaddexp2=logaddexp2,
              signbit=signbit, isneginf=isneginf, isposinf=isposinf, isreal=isreal,
              positive=positive, angle=angle, conj=conj, resolve_conj=resolve_conj,
              resolve_neg=resolve_neg, equal=equal)
for _name, _fn in {**_WITH_INPLACE, **_PLAIN}.items():
    setattr(Tensor, _name, _fn)
for _name, _fn in _WITH_INPLACE.items():
    if _name not in ("clamp_min", "clamp_max"):  # (those exist already)
        setattr(Tensor, _name + "_", _inplace(_name + "_", _fn))


def _float_power_(self, exponent):
    if self.dtype is not dtypes.float64:
        raise RuntimeError(f"the base given to float_power_ has dtype {self.dtype.name} but the "
                           "operation's result requires dtype float64")
    return _inplace("float_power_", float_power)(self, exponent)


Tensor.float_power_ = _float_power_
Tensor.is_conj = lambda self: False
Tensor.is_neg = lambda self: False
Tensor.real = property(lambda self: self, doc="The real part: the tensor itself.")
Tensor.__lshift__ = bitwise_left_shift
Tensor.__rshift__ = bitwise_right_shift
Tensor.__rlshift__ = lambda self, other: bitwise_left_shift(other, self)
Tensor.__rrshift__ = lambda self, other: bitwise_right_shift(other, self)
Tensor.__ilshift__ = _inplace("__ilshift__", bitwise_left_shift)
Tensor.__irshift__ = _inplace("__irshift__", bitwise_right_shift)

# ``out=`` on the top-level functions that torch gives one (not the methods, as torch).
for _name in ("cosh", "sinh", "tan", "deg2rad", "rad2deg", "copysign", "float_power", "fmax",
              "fmin", "fmod", "ldexp", "gcd", "lcm", "heaviside", "hypot", "logaddexp",
              "logaddexp2", "nextafter", "signbit", "sgn", "isneginf", "isposinf", "nan_to_num",
              "negative", "greater", "greater_equal", "less", "less_equal", "not_equal",
              "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_left_shift",
              "bitwise_right_shift", "clamp_max", "clamp_min", "lerp", "addcmul", "addcdiv",
              "angle", "conj_physical", "igamma", "igammac"):
    globals()[_name] = with_out(globals()[_name])
