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

import math

from jitgrad.ops.elementwise import _float, log, log1p, pow, sigmoid, sin, where
from jitgrad.ops.elementwise import erf, expm1  # noqa: F401  (torch.special's names too)
from jitgrad.ops.elementwise import clamp as _clamp
from jitgrad.ops.reduce import log_softmax as _log_softmax
from jitgrad.ops.reduce import logsumexp as _logsumexp
from jitgrad.ops.reduce import softmax as _softmax
from jitgrad.ops.rounding import round  # noqa: F401,A004
from jitgrad.ops.special import (  # noqa: F401
    bessel_j0, bessel_j1, digamma, erfc, erfcx, erfinv, i0, i0e, i1, i1e, lgamma, ndtri,
    polygamma, xlog1py, xlogy, zeta,
)

__all__ = [
    "bessel_j0", "bessel_j1", "digamma", "entr", "erf", "erfc", "erfcx", "erfinv", "exp2",
    "expit", "expm1", "gammaln", "i0", "i0e", "i1", "i1e", "log1p", "log_ndtr", "log_softmax",
    "logit", "logsumexp", "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "round", "sinc",
    "softmax", "xlog1py", "xlogy", "zeta",
]

_SQRT1_2 = math.sqrt(0.5)
gammaln = lgamma
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
