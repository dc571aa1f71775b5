"""``torch.special``: special functions with torch's names, arguments and dtypes.

Where a function is an exact composition of other ops (``expit`` is ``sigmoid``; ``ndtr``,
``log_ndtr``, ``sinc``, ``entr``, ``multigammaln``...) it is one, and gets gradients,
forward mode, vmap and compiled code from its parts. The rest are primitives
(``jitgrad.ops.special``). Integer and bool inputs give float32, as in torch.

>>> import jitgrad as torch
>>> x = torch.tensor([0.25, 0.5], requires_grad=True)
>>> torch.special.logit(x)
tensor([-1.0986,  0.0000], grad_fn=<LogBackward0>)
>>> torch.special.xlogy(torch.tensor([0.0, 2.0]), torch.tensor([0.0, 3.0]))
tensor([0.0000, 2.1972])
>>> torch.special.ndtr(torch.tensor([0.0, 1.0]))
tensor([0.5000, 0.8413])
"""

from __future__ import annotations

import decimal
import functools
import math
from fractions import Fraction

from jitgrad import dtypes
from jitgrad.factories import tensor
from jitgrad.ops.elementwise import _float, cos, exp, isinf, isnan, log, log1p, pow, sigmoid, sin
from jitgrad.ops.elementwise import sqrt, where
from jitgrad.ops.elementwise import erf, expm1  # noqa: F401  (torch.special's names too)
from jitgrad.ops.elementwise import clamp as _clamp
from jitgrad.ops.reduce import log_softmax as _log_softmax
from jitgrad.ops.reduce import logsumexp as _logsumexp
from jitgrad.ops.reduce import softmax as _softmax
from jitgrad.ops.registry import promote
from jitgrad.ops.rounding import round  # noqa: F401,A004
from jitgrad.ops.rounding import trunc
from jitgrad.ops.special import (  # noqa: F401
    bessel_j0, bessel_j1, digamma, erfc, erfcx, erfinv, i0, i0e, i1, i1e, lgamma, ndtri,
    polygamma, xlog1py, xlogy, zeta,
)
from jitgrad.ops.trig import acos, asinh
from jitgrad.ops.pointwise_more import igamma, igammac
from jitgrad.tensor import Tensor

__all__ = [
    "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "chebyshev_polynomial_t",
    "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w", "digamma",
    "entr", "erf", "erfc", "erfcx", "erfinv", "exp2", "expit", "expm1", "gammainc", "gammaincc",
    "gammaln",
    "hermite_polynomial_h", "hermite_polynomial_he", "i0", "i0e", "i1", "i1e",
    "laguerre_polynomial_l", "legendre_polynomial_p", "log1p", "log_ndtr", "log_softmax", "logit",
    "logsumexp", "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0",
    "modified_bessel_k1", "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "round",
    "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "shifted_chebyshev_polynomial_t",
    "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
    "shifted_chebyshev_polynomial_w", "sinc", "softmax", "spherical_bessel_j0", "xlog1py",
    "xlogy", "zeta",
]

_SQRT1_2 = math.sqrt(0.5)
gammaln = lgamma
gammainc, gammaincc = igamma, igammac  # torch.special's names for the regularized gammas
psi = digamma


def expit(input):  # noqa: A002  (torch's argument names throughout)
    """The logistic sigmoid ``1 / (1 + exp(-x))``."""
    return sigmoid(_float(input, "expit"))


def exp2(input):  # noqa: A002
    """``2 ** x``, exact at the integers (``pow`` with base 2, not ``exp(x * ln 2)``)."""
    return pow(2.0, _float(input, "exp2"))


def logit(input, eps: float | None = None):  # noqa: A002
    """``log(p / (1 - p))``; with ``eps``, ``p`` is first clamped into ``[eps, 1 - eps]``
    (outside that interval the gradient is 0, as torch's)."""
    p = _float(input, "logit")
    if eps is not None:
        if isinstance(eps, bool) or not isinstance(eps, (int, float)):
            raise TypeError(f"logit(): argument 'eps' must be float, not {type(eps).__name__}")
        p = _clamp(p, float(eps), 1.0 - float(eps))
    return log(p / (1.0 - p))


def sinc(input):  # noqa: A002
    """The normalized sinc ``sin(pi x) / (pi x)``, 1 at 0."""
    x = _float(input, "sinc")
    px = where(x == 0, 1.0, x) * math.pi
    return where(x == 0, 1.0, sin(px) / px)


def entr(input):  # noqa: A002
    """The elementwise entropy ``-x log x``: 0 at 0, ``-inf`` below 0, NaN at NaN.

    Its gradient ``-(1 + log x)`` is taken as 0 at exactly 0 (torch gives the one-sided inf)."""
    x = _float(input, "entr")
    pos = x > 0
    xs = where(pos, x, 1.0)
    return where(pos, -(xs * log(xs)), where(x == 0, 0.0, where(x < 0, -math.inf, x)))


def ndtr(input):  # noqa: A002
    """The standard normal CDF, as ``erfc(-x / sqrt 2) / 2``: accurate in the lower tail."""
    x = _float(input, "ndtr")
    return erfc(x * -_SQRT1_2) * 0.5


def log_ndtr(input):  # noqa: A002
    """The log of the standard normal CDF, finite far into both tails: below -1 through
    ``erfcx`` (the ``exp(-x**2 / 2)`` factor taken out of the log), above through ``log1p``."""
    x = _float(input, "log_ndtr")
    # Each branch sees only inputs it is accurate on (a where, not minimum/maximum, which would
    # split the gradient at the tie), so the branch not taken contributes an exact zero.
    left_side = x < -1.0
    lo, hi = where(left_side, x, -1.0), where(left_side, -1.0, x)
    left = log(erfcx(lo * -_SQRT1_2) * 0.5) - lo * lo * 0.5
    right = log1p(erfc(hi * _SQRT1_2) * -0.5)
    return where(left_side, left, right)


def multigammaln(input, p: int):  # noqa: A002
    """The log of the multivariate gamma function of dimension ``p``:
    ``p (p - 1) / 4 log(pi) + sum(lgamma(x - j / 2) for j < p)``."""
    x = _float(input, "multigammaln")
    if isinstance(p, bool) or not isinstance(p, int):
        raise TypeError(f"multigammaln(): argument 'p' must be int, not {type(p).__name__}")
    if p < 1:
        raise RuntimeError(f"multigammaln(): p has to be greater than or equal to 1, got {p}")
    out = lgamma(x)
    for j in range(1, p):
        out = out + lgamma(x - j * 0.5)
    return out + p * (p - 1) * 0.25 * math.log(math.pi)


mvlgamma = multigammaln


def softmax(input, dim: int, *, dtype=None):  # noqa: A002
    """Softmax along ``dim`` (in ``dtype`` when given)."""
    return _softmax(input, dim, dtype)


def log_softmax(input, dim: int, *, dtype=None):  # noqa: A002
    """Log-softmax along ``dim`` (in ``dtype`` when given)."""
    return _log_softmax(input, dim, dtype)


def logsumexp(input, dim, keepdim: bool = False):  # noqa: A002
    """``log(sum(exp(x)))`` along ``dim``, without overflow."""
    return _logsumexp(input, dim, keepdim)


# -- functions torch gives no gradient -----------------------------------------------------------
# torch's results of the Bessel and Airy functions and the orthogonal polynomials below carry no
# graph, and neither do these: the input is detached first. Each is a composition of jitgrad ops
# (so it traces, vmaps and compiles like any other), evaluated in float64 and rounded once to the
# input's dtype (integer and bool inputs give float32). Each method is exact to a few ulps where it
# is used: power series where their terms do not cancel, asymptotic series once their smallest
# term is below 1e-17, and in between the trapezoidal rule on integral representations whose
# integrands are analytic in a strip around the real axis (its error falls like exp(-2 pi d / h)).

_EULER = 0.57721566490153286061  # Euler's constant
_PI = math.pi


def _plain(x, name: str):
    """``x`` detached and in float64, with the dtype of the result."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'x' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")
    dt = x.dtype if x.dtype.is_floating_point else dtypes.float32
    return x.detach().to(dtypes.float64), dt


def _horner(z, coeffs: list):
    """``sum(c * z**k for k, c in enumerate(coeffs))``."""
    acc = z * coeffs[-1] + coeffs[-2]
    for c in reversed(coeffs[:-2]):
        acc = acc * z + c
    return acc


def _harmonic(k: int) -> Fraction:
    return sum((Fraction(1, j) for j in range(1, k + 1)), Fraction(0))


def _series(terms: int, shift: int, sign: int, weight=lambda k: 1) -> list:
    """Coefficients ``sign**k weight(k) / (k! (k + shift)!)`` of a series in ``x**2 / 4``,
    exact before their one rounding."""
    return [float(Fraction(sign ** k) * weight(k) / (math.factorial(k) * math.factorial(k + shift)))
            for k in range(terms)]


def _hankel_asymptotic(nu: int, terms: int) -> list:
    """Coefficients of ``I_nu(x) sqrt(2 pi x) exp(-x)`` in powers of ``1/x``."""
    out, c = [1.0], Fraction(1)
    for j in range(1, terms):
        c *= Fraction((2 * j - 1) ** 2 - 4 * nu * nu, 8 * j)
        out.append(float(c))
    return out


# Power series in t = x**2 / 4: I0, I1 (for |x| <= 20: 38 terms reach 1e-17), the parts of K0, K1
# beside their log terms (for x <= 2), J0, J1 and the parts of Y0, Y1 (for x <= 4).
_I0_SERIES, _I1_SERIES = _series(38, 0, 1), _series(38, 1, 1)
_K0_SERIES = _series(16, 0, 1, _harmonic)
_K1_SERIES = _series(16, 1, 1, lambda k: _harmonic(k) + _harmonic(k + 1))
_J0_SERIES, _J1_SERIES = _series(22, 0, -1), _series(22, 1, -1)
_Y0_SERIES = [-c for c in _series(22, 0, -1, _harmonic)]
_Y1_SERIES = _series(22, 1, -1, lambda k: _harmonic(k) + _harmonic(k + 1))
_I_ASYMPTOTIC = {0: _hankel_asymptotic(0, 28), 1: _hankel_asymptotic(1, 28)}
_I_SPLIT, _K_SPLIT, _Y_SPLIT = 20.0, 2.0, 4.0

# exp(x) K_nu(x) = x**-0.5 * integral over v >= 0 of exp(-v**2/2) cosh(nu t) / sqrt(1 + v**2/(4x)),
# t = 2 asinh(v / (2 sqrt x)) (x cosh t = x + v**2/2). Its singularities lie at v = +-2i sqrt(x), at
# least 2.8 from the axis for x >= 2: steps of 0.35 leave an error below 1e-17.
_KQ_STEP = 0.35
_KQ_NODES = [j * _KQ_STEP for j in range(27)]
_KQ_WEIGHTS = [(0.5 if j == 0 else 1.0) * _KQ_STEP * math.exp(-v * v / 2)
               for j, v in enumerate(_KQ_NODES)]
_KQ_SHIFTS = [v * v / 4 for v in _KQ_NODES]

# Hankel's integral: H_nu(x) = sqrt(2 / (pi x)) exp(i (x - nu pi/2 - pi/4)) / Gamma(nu + 1/2) *
# integral over u >= 0 of exp(-u) u**(nu - 1/2) (1 + i u / (2x))**(nu - 1/2), with u = s**2; J_nu
# and Y_nu are its real and imaginary parts. Singular at s**2 = 2ix, sqrt(x) >= 2 from the axis for
# x >= 4: steps of 0.3 leave an error below 1e-16.
_HQ_STEP = 0.3
_HQ_NODES = [j * _HQ_STEP for j in range(22)]
_HQ_WEIGHTS = [(0.5 if j == 0 else 1.0) * _HQ_STEP * math.exp(-s * s) * 2 / math.sqrt(_PI)
               for j, s in enumerate(_HQ_NODES)]
_HQ_SHIFTS = [s * s / 2 for s in _HQ_NODES]


def _sum(terms):
    out = None
    for t in terms:
        out = t if out is None else out + t
    return out


def _i_float64(x, nu: int):
    """I_nu(x), nu in (0, 1): its power series for |x| <= 20, its asymptotic series beyond."""
    ax = abs(x)
    small = ax <= _I_SPLIT
    s = where(small, ax, 0.0)
    t = s * s * 0.25
    series = _horner(t, _I0_SERIES) if nu == 0 else _horner(t, _I1_SERIES) * s * 0.5
    b = where(small, 2 * _I_SPLIT, ax)
    # exp(b) overflows past 709.78 as torch's does (the true I0 does past 713.99)
    large = exp(b) / sqrt(b * (2 * _PI)) * _horner(1.0 / b, _I_ASYMPTOTIC[nu])
    out = where(small, series, large)
    if nu == 1:
        out = where(x < 0, -out, out)
    return where(isnan(x), x, out)


def _i0(x):
    """I0 in ``x``'s dtype, with a gradient: ``signal.windows.kaiser`` differentiates it."""
    return _i_float64(x.to(dtypes.float64), 0).to(x.dtype)


def _k_scaled_quadrature(b, nu: float):
    """``exp(b) K_nu(b)`` for ``b >= 2`` by the trapezoidal rule."""
    inv = 1.0 / b
    terms = []
    for w, c in zip(_KQ_WEIGHTS, _KQ_SHIFTS):
        u = inv * c  # sinh(t/2)**2
        if nu == 0:
            terms.append(w / sqrt(u + 1.0))
        elif nu == 1:
            terms.append((u * 2.0 + 1.0) * w / sqrt(u + 1.0))  # cosh t = 1 + 2u
        else:
            nt = asinh(sqrt(u)) * (2.0 * nu)
            terms.append((exp(nt) + exp(-nt)) * (0.5 * w) / sqrt(u + 1.0))
    return _sum(terms) / sqrt(b)


def _k_float64(x, nu: int, scaled: bool):
    """K_nu(x) (times exp(x) when ``scaled``): the series for x <= 2, the quadrature beyond."""
    small = x <= _K_SPLIT
    s = where(small, x, 1.0)
    t = s * s * 0.25
    log_term = log(s * 0.5) + _EULER
    if nu == 0:
        series = _horner(t, _K0_SERIES) - log_term * _i_float64(s, 0)
    else:
        series = 1.0 / s + log_term * _i_float64(s, 1) - s * 0.25 * _horner(t, _K1_SERIES)
    if scaled:
        series = series * exp(s)
    b = where(small, 2 * _K_SPLIT, x)
    large = _k_scaled_quadrature(b, nu)
    if not scaled:
        large = large * exp(-b)
    out = where(small, series, large)
    if nu == 1:
        out = where(x == 0, math.inf, out)  # 1/x + 0 * log(0) would be NaN
    return where(isnan(x), x, out)


def _y_float64(x, nu: int):
    """Y_nu(x): the series for x <= 4, Hankel's integral beyond (NaN below 0, as torch's)."""
    small = x <= _Y_SPLIT
    s = where(small, x, 1.0)
    t = s * s * 0.25
    log_term = log(s * 0.5) + _EULER
    if nu == 0:
        series = (log_term * _horner(t, _J0_SERIES) + _horner(t, _Y0_SERIES)) * (2 / _PI)
    else:
        j1 = _horner(t, _J1_SERIES) * s
        series = (log_term * j1 - s * 0.5 * _horner(t, _Y1_SERIES)) / _PI - (2 / _PI) / s
    b = where(small, 2 * _Y_SPLIT, x)
    inv = 1.0 / b
    re, im = [], []
    for w, c in zip(_HQ_WEIGHTS, _HQ_SHIFTS):
        a = inv * c
        r = sqrt(a * a + 1.0)  # (1 + ia)**(+-1/2) in polar form, without cancellation
        if nu == 0:
            re.append(sqrt((r + 1.0) * 0.5) / r * w)
            im.append(a / (r * sqrt((r + 1.0) * 2.0)) * w)
        else:
            w = w * 4 * c  # the u**(1/2) du = 2 s**2 ds of nu = 1, and 1/Gamma(3/2) = 2/sqrt(pi)
            re.append(sqrt((r + 1.0) * 0.5) * w)
            im.append(a / sqrt((r + 1.0) * 2.0) * w)
    p, q = _sum(re), _sum(im)
    sn, cs = sin(b), cos(b)  # the phases x - pi/4, x - 3pi/4 from sin x and cos x, exactly
    amplitude = sqrt(inv * (1 / _PI))
    if nu == 0:
        large = (p * (sn - cs) - q * (cs + sn)) * amplitude
    else:
        large = (q * (sn - cs) - p * (sn + cs)) * amplitude
    return where(isnan(x), x, where(small, series, large))


# Ai on [-10.25, 2.25]: Taylor series about the centers -10, -9.5, ..., 2, from Ai and Ai' there
# (computed once, to 60 digits, by the Maclaurin series in decimal arithmetic) and Ai'' = x Ai.
_AI_0 = "0.355028053887817239260063186004183176397979174199177240583327"  # 3**(-2/3) / Gamma(2/3)
_AI_PRIME_0 = "-0.258819403792806798405183560189203963479091138354934582210002"
_AI_START, _AI_STEP, _AI_CENTERS, _AI_TERMS = -10.0, 0.5, 25, 22


@functools.lru_cache(maxsize=None)
def _airy_centers() -> tuple:
    values, slopes = [], []
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        a0, a1 = decimal.Decimal(_AI_0), decimal.Decimal(_AI_PRIME_0)
        for j in range(_AI_CENTERS):
            x = decimal.Decimal(_AI_START) + decimal.Decimal(_AI_STEP) * j
            # Ai = Ai(0) f + Ai'(0) g, f = sum x**3k / (2*3 * 5*6 ...), g = sum x**(3k+1) / (3*4 ...)
            alpha = beta = power = decimal.Decimal(1)
            f, g, df, dg = decimal.Decimal(1), x, decimal.Decimal(0), decimal.Decimal(1)
            for k in range(1, 200):
                alpha /= (3 * k - 1) * (3 * k)
                beta /= (3 * k) * (3 * k + 1)
                df += 3 * k * alpha * power * x * x  # power is x**(3k - 3) here
                power *= x ** 3
                f += alpha * power
                g += beta * power * x
                dg += (3 * k + 1) * beta * power
                if abs(alpha * power) + abs(beta * power) < decimal.Decimal("1e-55"):
                    break
            values.append(float(a0 * f + a1 * g))
            slopes.append(float(a0 * df + a1 * dg))
    return tuple(values), tuple(slopes)


def _airy_u(count: int) -> list:
    """u_k of the asymptotic expansion of Ai at -inf (DLMF 9.7.2)."""
    out, u = [Fraction(1)], Fraction(1)
    for k in range(1, count):
        u *= Fraction((6 * k - 5) * (6 * k - 3) * (6 * k - 1), (2 * k - 1) * 216 * k)
        out.append(u)
    return out


_U = _airy_u(24)
_AI_EVEN = [float((-1) ** k * _U[2 * k]) for k in range(12)]
_AI_ODD = [float((-1) ** k * _U[2 * k + 1]) for k in range(12)]


def _airy_float64(x):
    lo = _AI_START - _AI_STEP / 2
    hi = _AI_START + _AI_STEP * (_AI_CENTERS - 0.5)
    mid = (x >= lo) & (x <= hi)
    xm = where(mid, x, 0.0)
    index = ((xm - _AI_START) * (1 / _AI_STEP)).round().long().clamp(0, _AI_CENTERS - 1)
    x0 = index.to(dtypes.float64) * _AI_STEP + _AI_START
    c = xm - x0
    values, slopes = _airy_centers()
    coeffs = [tensor(values, dtype=dtypes.float64)[index],
              tensor(slopes, dtype=dtypes.float64)[index]]
    coeffs.append(x0 * coeffs[0] * 0.5)
    for n in range(1, _AI_TERMS):  # (n+2)(n+1) a[n+2] = x0 a[n] + a[n-1], from Ai'' = x Ai
        coeffs.append((x0 * coeffs[n] + coeffs[n - 1]) * (1 / ((n + 1) * (n + 2))))
    taylor = _horner(c, coeffs)
    # right of it, Ai(x) = sqrt(x / 3) K_{1/3}(zeta) / pi with zeta = 2/3 x**1.5
    right = x > hi
    b = where(right, x, 3.0)
    zeta = b * sqrt(b) * (2.0 / 3.0)
    decaying = _k_scaled_quadrature(zeta, 1.0 / 3.0) * exp(-zeta) * sqrt(b * (1 / 3.0)) / _PI
    # left of it, the asymptotic expansion: its smallest term is below 1e-18 for zeta > 21
    y = where(x < lo, -x, 11.0)
    zeta = y * sqrt(y) * (2.0 / 3.0)
    iz = 1.0 / zeta
    even, odd = _horner(iz * iz, _AI_EVEN), _horner(iz * iz, _AI_ODD) * iz
    sn, cs = sin(zeta), cos(zeta)
    oscillating = ((cs + sn) * even + (sn - cs) * odd) / (sqrt(sqrt(y)) * math.sqrt(2 * _PI))
    return where(isnan(x), x, where(mid, taylor, where(right, decaying, oscillating)))


def _no_grad_unary(fn, name: str, doc: str):
    def op(x):
        x64, dt = _plain(x, name)
        return fn(x64).to(dt)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


airy_ai = _no_grad_unary(_airy_float64, "airy_ai", """The Airy function ``Ai(x)``.

    >>> import jitgrad
    >>> jitgrad.special.airy_ai(jitgrad.tensor([-1.0, 0.0, 1.0]))
    tensor([0.5356, 0.3550, 0.1353])
    """)
bessel_y0 = _no_grad_unary(lambda x: _y_float64(x, 0), "bessel_y0",
                           """The Bessel function of the second kind of order 0 (NaN below 0).

    >>> import jitgrad
    >>> jitgrad.special.bessel_y0(jitgrad.tensor([1.0, 10.0]))
    tensor([0.0883, 0.0557])
    """)
bessel_y1 = _no_grad_unary(lambda x: _y_float64(x, 1), "bessel_y1",
                           """The Bessel function of the second kind of order 1 (NaN below 0).

    >>> import jitgrad
    >>> jitgrad.special.bessel_y1(jitgrad.tensor([1.0, 10.0]))
    tensor([-0.7812,  0.2490])
    """)
modified_bessel_i0 = _no_grad_unary(lambda x: _i_float64(x, 0), "modified_bessel_i0",
                                    """The modified Bessel function of the first kind of order 0
    (``i0``, without a gradient as torch's).

    >>> import jitgrad
    >>> jitgrad.special.modified_bessel_i0(jitgrad.tensor([0.0, 1.0]))
    tensor([1.0000, 1.2661])
    """)
modified_bessel_i1 = _no_grad_unary(lambda x: _i_float64(x, 1), "modified_bessel_i1",
                                    """The modified Bessel function of the first kind of order 1.

    >>> import jitgrad
    >>> jitgrad.special.modified_bessel_i1(jitgrad.tensor([-1.0, 1.0]))
    tensor([-0.5652,  0.5652])
    """)
modified_bessel_k0 = _no_grad_unary(lambda x: _k_float64(x, 0, False), "modified_bessel_k0",
                                    """The modified Bessel function of the second kind of order 0
    (``inf`` at 0, NaN below).

    >>> import jitgrad
    >>> jitgrad.special.modified_bessel_k0(jitgrad.tensor([1.0, 3.0]))
    tensor([0.4210, 0.0347])
    """)
modified_bessel_k1 = _no_grad_unary(lambda x: _k_float64(x, 1, False), "modified_bessel_k1",
                                    """The modified Bessel function of the second kind of order 1.

    >>> import jitgrad
    >>> jitgrad.special.modified_bessel_k1(jitgrad.tensor([1.0, 3.0]))
    tensor([0.6019, 0.0402])
    """)
scaled_modified_bessel_k0 = _no_grad_unary(lambda x: _k_float64(x, 0, True),
                                           "scaled_modified_bessel_k0",
                                           """``exp(x) K0(x)``, finite far past where ``K0``
    underflows.

    >>> import jitgrad
    >>> jitgrad.special.scaled_modified_bessel_k0(jitgrad.tensor([1.0, 1000.0]))
    tensor([1.1445, 0.0396])
    """)
scaled_modified_bessel_k1 = _no_grad_unary(lambda x: _k_float64(x, 1, True),
                                           "scaled_modified_bessel_k1",
                                           """``exp(x) K1(x)``.

    >>> import jitgrad
    >>> jitgrad.special.scaled_modified_bessel_k1(jitgrad.tensor([1.0, 1000.0]))
    tensor([1.6362, 0.0396])
    """)


def _spherical_j0(x):
    # sin(x) / x is exact to an ulp or two wherever x != 0; 1 at 0, and 0 at +-inf as torch's
    safe = where(x == 0, 1.0, x)
    return where(x == 0, 1.0, where(isinf(x), 0.0, sin(safe) / safe))


spherical_bessel_j0 = _no_grad_unary(_spherical_j0, "spherical_bessel_j0",
                                     """The spherical Bessel function of the first kind of order 0,
    ``sin(x) / x``.

    >>> import jitgrad
    >>> jitgrad.special.spherical_bessel_j0(jitgrad.tensor([0.0, 1.0]))
    tensor([1.0000, 0.8415])
    """)


# -- orthogonal polynomials ----------------------------------------------------------------------
# P_n(x) for an order n that is a Python number or a tensor (truncated toward zero, as torch's
# integer cast; negative or NaN orders give 0), by each family's three-term recurrence in the
# operands' dtype. Where torch switches to a closed trigonometric form (the Chebyshev families
# past a small order, inside (-1, 1)), these do too, so both round alike.

def _poly_operands(x, n, name: str):
    """``x`` and the truncated order as detached float64 tensors, the order when it is a Python
    number, and the dtype of the result (torch's promotion of ``x`` and ``n``, at least float32).
    float64 rounds each term of the recurrence far below what a float32 result keeps."""
    if not isinstance(x, Tensor) and not isinstance(n, Tensor):
        raise TypeError(f"{name}(): expected a Tensor for 'x' or 'n', got "
                        f"{type(x).__name__} and {type(n).__name__}")
    for arg, v in (("x", x), ("n", n)):
        if not isinstance(v, Tensor) and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise TypeError(f"{name}(): argument '{arg}' must be a Tensor or a number, not "
                            f"{type(v).__name__}")
    xt, nt = promote(x, n)
    dt = xt.dtype if xt.dtype.is_floating_point else dtypes.float32
    xt, nt = xt.detach().to(dtypes.float64), nt.detach().to(dtypes.float64)
    order = where(isnan(nt), -1.0, trunc(nt))
    # a Python order: every element takes the same steps, known without reading a tensor
    steps = None if isinstance(n, Tensor) else int(n) if math.isfinite(n) and n > 0 else 0
    return xt, order, steps, dt


def _largest(order, steps: int | None, skip=None) -> int:
    """The most recurrence steps any element needs (read from a tensor order: a guard when
    traced)."""
    if steps is not None:
        return steps
    if skip is not None:
        order = where(skip, 0.0, order)
    if order.numel() == 0:
        return 0
    return max(int(order.max().item()), 0)


def _recurrence(order, per_element: bool, steps: int, p0, p1, step):
    """P_order from P_0, P_1 and ``step(k, P_{k-2}, P_{k-1}) = P_k``; elements of a smaller
    order keep theirs."""
    p, q = p0, p1
    for k in range(2, steps + 1):
        r = step(k, p, q)
        if per_element:
            go = order >= k
            p, q = where(go, q, p), where(go, r, q)
        else:
            p, q = q, r
    return where(order < 0, 0.0, where(order == 0, 1.0, q))


def _even(order):
    return order - (order * 0.5).floor() * 2 == 0


def _sign_by_parity(order, value):
    return where(_even(order), value, -value)


def _chebyshev(x, n, name: str, first, last_low_order: int, closed, at_ends, shifted: bool):
    """A Chebyshev family: ``first(y)`` is P_1, ``closed(order, theta, y)`` the trigonometric
    form used for orders above ``last_low_order`` inside (-1, 1), ``at_ends(order, upper)`` the
    values at y = 1 (upper) and y = -1."""
    x, order, fixed, dt = _poly_operands(x, n, name)
    y = x + x - 1 if shifted else x
    inside = (abs(y) < 1) & (order > last_low_order)
    steps = _largest(order, fixed, inside)
    rec = _recurrence(order, fixed is None, steps, 1.0, first(y), lambda k, p, q: (y + y) * q - p)
    theta = acos(where(inside, y, 0.0))
    out = where(inside, closed(order, theta, y), rec)
    upper, lower = (x == 1, x == 0) if shifted else (x == 1, x == -1)
    out = where(upper, at_ends(order, True), where(lower, at_ends(order, False), out))
    return where(order < 0, 0.0, out).to(dt)


def _odd_ratio(num, den, fallback):
    """``num / den``, or ``fallback`` where ``den`` is 0."""
    return where(den != 0, num / where(den != 0, den, 1.0), fallback)


def _t_closed(order, theta, y):
    return cos(order * theta)


def _u_closed(order, theta, y):
    return _odd_ratio(sin((order + 1) * theta), sin(theta),
                      (order + 1) * cos((order + 1) * theta) / y)


def _v_closed(order, theta, y):
    return where(sin(theta * 0.5) != 1, cos((order + 0.5) * theta) / cos(theta * 0.5),
                 _sign_by_parity(order, order * 2 + 1))


def _w_closed(order, theta, y):
    return where(cos(theta * 0.5) != 1, sin((order + 0.5) * theta) / sin(theta * 0.5),
                 where(y > 0, order * 2 + 1, _sign_by_parity(order, 1.0)))


def _t_ends(order, upper):
    return 1.0 if upper else _sign_by_parity(order, 1.0)


def _u_ends(order, upper):
    return order + 1 if upper else _sign_by_parity(order, order + 1)


def _v_ends(order, upper):
    return 1.0 if upper else _sign_by_parity(order, order * 2 + 1)


def _w_ends(order, upper):
    return order * 2 + 1 if upper else _sign_by_parity(order, 1.0)


_CHEBYSHEV = {  # kind: (P_1, last order by recurrence, shifted: last order), closed form, ends
    "t": (lambda y: y, 6, 6, _t_closed, _t_ends),
    "u": (lambda y: y + y, 8, 6, _u_closed, _u_ends),
    "v": (lambda y: y + y - 1, 8, 6, _v_closed, _v_ends),
    "w": (lambda y: y + y + 1, 8, 4, _w_closed, _w_ends),
}
_KIND_NAMES = {"t": "first", "u": "second", "v": "third", "w": "fourth"}
_DOC_VALUES = {  # the example's output: P_2 at 0.5 and 1 (torch's values)
    ("t", False): "[-0.5000,  1.0000]", ("u", False): "[0., 3.]", ("v", False): "[-1.,  1.]",
    ("w", False): "[1., 5.]", ("t", True): "[-1.,  1.]", ("u", True): "[-1.,  3.]",
    ("v", True): "[-1.,  1.]", ("w", True): "[-1.,  5.]",
}


def _chebyshev_function(kind: str, shifted: bool):
    first, low, shifted_low, closed, ends = _CHEBYSHEV[kind]
    name = f"{'shifted_' if shifted else ''}chebyshev_polynomial_{kind}"

    def fn(x, n):
        return _chebyshev(x, n, name, first, shifted_low if shifted else low, closed, ends,
                          shifted)
    fn.__name__ = fn.__qualname__ = name
    where_ = "of ``2x - 1``, on [0, 1]" if shifted else "on [-1, 1]"
    fn.__doc__ = f"""The {'shifted ' if shifted else ''}Chebyshev polynomial of the \
{_KIND_NAMES[kind]} kind {where_}, of order ``n`` (a number or a tensor).

    >>> import jitgrad
    >>> jitgrad.special.{name}(jitgrad.tensor([0.5, 1.0], dtype=jitgrad.float64), 2)
    tensor({_DOC_VALUES[kind, shifted]}, dtype=jitgrad.float64)
    """
    return fn


chebyshev_polynomial_t = _chebyshev_function("t", False)
chebyshev_polynomial_u = _chebyshev_function("u", False)
chebyshev_polynomial_v = _chebyshev_function("v", False)
chebyshev_polynomial_w = _chebyshev_function("w", False)
shifted_chebyshev_polynomial_t = _chebyshev_function("t", True)
shifted_chebyshev_polynomial_u = _chebyshev_function("u", True)
shifted_chebyshev_polynomial_v = _chebyshev_function("v", True)
shifted_chebyshev_polynomial_w = _chebyshev_function("w", True)


def hermite_polynomial_h(x, n):
    """The physicists' Hermite polynomial ``H_n(x)`` (``H_2 = 4x**2 - 2``).

    >>> import jitgrad
    >>> jitgrad.special.hermite_polynomial_h(jitgrad.tensor([1.0, 2.0]), 2)
    tensor([ 2., 14.])
    """
    x, order, fixed, dt = _poly_operands(x, n, "hermite_polynomial_h")
    steps = _largest(order, fixed)
    return _recurrence(order, fixed is None, steps, 1.0, x + x,
                       lambda k, p, q: (x + x) * q - (2 * (k - 1)) * p).to(dt)


def hermite_polynomial_he(x, n):
    """The probabilists' Hermite polynomial ``He_n(x)`` (``He_2 = x**2 - 1``).

    >>> import jitgrad
    >>> jitgrad.special.hermite_polynomial_he(jitgrad.tensor([1.0, 2.0]), 2)
    tensor([0., 3.])
    """
    x, order, fixed, dt = _poly_operands(x, n, "hermite_polynomial_he")
    steps = _largest(order, fixed)
    return _recurrence(order, fixed is None, steps, 1.0, x,
                       lambda k, p, q: x * q - (k - 1) * p).to(dt)


def laguerre_polynomial_l(x, n):
    """The Laguerre polynomial ``L_n(x)`` (``L_1 = 1 - x``; 1 at x = 0).

    >>> import jitgrad
    >>> jitgrad.special.laguerre_polynomial_l(jitgrad.tensor([0.0, 1.0]), 2)
    tensor([ 1.0000, -0.5000])
    """
    x, order, fixed, dt = _poly_operands(x, n, "laguerre_polynomial_l")
    steps = _largest(order, fixed)
    out = _recurrence(order, fixed is None, steps, 1.0, 1 - x,
                      lambda k, p, q: ((2 * k - 1 - x) * q - (k - 1) * p) / k)
    return where((x == 0) & (order >= 0), 1.0, out).to(dt)


def legendre_polynomial_p(x, n):
    """The Legendre polynomial ``P_n(x)`` (``P_2 = (3x**2 - 1) / 2``).

    >>> import jitgrad
    >>> jitgrad.special.legendre_polynomial_p(jitgrad.tensor([0.5, -1.0]), 2)
    tensor([-0.1250,  1.0000])
    """
    x, order, fixed, dt = _poly_operands(x, n, "legendre_polynomial_p")
    steps = _largest(order, fixed)
    out = _recurrence(order, fixed is None, steps, 1.0, x,
                      lambda k, p, q: ((2 * k - 1) * x * q - (k - 1) * p) / k)
    ends = where(x > 0, 1.0, _sign_by_parity(order, 1.0))
    return where((abs(x) == 1) & (order >= 0), ends, out).to(dt)
