"""Special functions as primitives: their SciPy bodies, shape rules and derivatives together.

``erfc``, ``lgamma``, ``xlogy`` and ``xlog1py`` have libm scalar templates, so compiled code
fuses them into its loops.
The others (``erfinv``, ``erfcx``, ``digamma``, ``polygamma``, the modified Bessel functions
``i0 i0e i1 i1e``, ``ndtri``, the Hurwitz ``zeta`` and the Bessel functions ``j0 j1``) have no
scalar form Numba compiles, short of series written out by hand: they are elementwise all the
same, but of kind ``"elementwise_host"``, so fusion leaves them alone and both compiled backends
run their SciPy body on the host. Each computes in float64 and rounds once to the input's dtype.

>>> import jitgrad
>>> from jitgrad.ops import special
>>> x = jitgrad.tensor([0.5, 2.0], requires_grad=True)
>>> special.lgamma(x).sum().backward()
>>> x.grad  # digamma
tensor([-1.9635,  0.4228])
>>> special.erfinv(jitgrad.tensor([0.0, 0.5]))
tensor([0.0000, 0.4769])
"""

from __future__ import annotations

import math

import numpy as np

from jitgrad import dtypes
from jitgrad.ops import _layout, _rules
from jitgrad.ops.elementwise import _NO, _binary, _float, exp, log, log1p, sign, where
from jitgrad.ops.registry import bind, promote, register

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
HOST_KIND = "elementwise_host"


def _scipy(name: str):
    """The NumPy body of a primitive: ``scipy.special.<name>`` in float64, rounded once to the
    operands' dtype (SciPy's float32 loops are less accurate than torch's)."""
    def impl(*xs, **params):
        from scipy import special  # imported at first use, as elementwise.erf does
        dt = np.result_type(*xs)
        with np.errstate(all="ignore"):
            out = getattr(special, name)(*params.values(), *[np.asarray(x, np.float64)
                                                               for x in xs])
        return np.asarray(out, dtype=dt)
    impl.__name__ = name
    return impl


def _host(name: str, scipy_name: str, vjp, **kw):
    return register(name, _scipy(scipy_name), _rules.binary if kw.pop("binary", False)
                    else _rules.same, vjp, kind=HOST_KIND, layout=_layout.elementwise, **kw)


def _safe(x, at_zero: float = 1.0):
    """``x`` with its zeros replaced, for the branch of a ``where`` that is not taken there: its
    derivative stays finite, so the zero the ``where`` sends it does not become NaN."""
    return where(x == 0, at_zero, x)


# -- templated (fused) -------------------------------------------------------------------------
erfc_p = register("erfc", _scipy("erfc"), _rules.same,
                  lambda g, out, x: (-(g * (_TWO_OVER_SQRT_PI * exp(-(x * x)))),),
                  expr="math.erfc({0})")
lgamma_p = register("lgamma", _scipy("gammaln"), _rules.same,
                    lambda g, out, x: (g * digamma(x),), expr="math.lgamma({0})")



def _xlogy_impl(log):
    def impl(x, y):
        with np.errstate(all="ignore"):
            return np.where(np.isnan(y), y, np.where(x == 0, 0, x * log(y))).astype(
                np.result_type(x, y))
    return impl


# x * log(y), 0 where x == 0 (even at y == 0 or inf), NaN where y is NaN. Primitives rather than
# a ``where`` composition for torch's gradient: d/dx is log(y) at x == 0 too.
xlogy_p = register("xlogy", _xlogy_impl(np.log), _rules.binary,
                   lambda g, out, x, y: (g * log(y), g * x / y),
                   expr="({1} if {1} != {1} else (0.0 if {0} == 0.0 else {0} * math.log({1})))")
xlog1py_p = register("xlog1py", _xlogy_impl(np.log1p), _rules.binary,
                     lambda g, out, x, y: (g * log1p(y), g * x / (y + 1.0)),
                     expr="({1} if {1} != {1} else "
                          "(0.0 if {0} == 0.0 else {0} * math.log1p({1})))")

# -- on the host -------------------------------------------------------------------------------
digamma_p = _host("digamma", "psi", lambda g, out, x: (g * polygamma(1, x),))
polygamma_p = _host("polygamma", "polygamma", lambda g, out, x, n: (g * polygamma(n + 1, x),))
erfinv_p = _host("erfinv", "erfinv",
                 lambda g, out, x: (g * (exp(out * out) / _TWO_OVER_SQRT_PI),), saves="output")
erfcx_p = _host("erfcx", "erfcx",
                lambda g, out, x: (g * (2.0 * x * out - _TWO_OVER_SQRT_PI),), saves="both",
                backward_name="SpecialErfcxBackward0")
ndtri_p = _host("ndtri", "ndtri", lambda g, out, x: (g * (_SQRT_2PI * exp(out * out * 0.5)),),
                saves="output", backward_name="SpecialNdtriBackward0")
i0_p = _host("i0", "i0", lambda g, out, x: (g * i1(x),))
i0e_p = _host("i0e", "i0e", lambda g, out, x: (g * (i1e(x) - sign(x) * out),), saves="both",
               backward_name="SpecialI0EBackward0")
# i1'(x) = i0(x) - i1(x) / x, whose limit at 0 is 1/2.
i1_p = _host("i1", "i1", lambda g, out, x: (
    g * where(x == 0, 0.5, i0(x) - out / _safe(x)),), saves="both",
    backward_name="SpecialI1Backward0")
i1e_p = _host("i1e", "i1e", lambda g, out, x: (
    g * where(x == 0, 0.5, i0e(x) - out * (sign(x) + 1.0 / _safe(x))),), saves="both",
    backward_name="SpecialI1EBackward0")
bessel_j0_p = _host("bessel_j0", "j0", lambda g, out, x: (-(g * bessel_j1(x)),))
bessel_j1_p = _host("bessel_j1", "j1", lambda g, out, x: (
    g * where(x == 0, 0.5, bessel_j0(x) - out / _safe(x)),), saves="both")


def _zeta_vjp(g, out, x, q):
    if x.requires_grad:  # as torch: the derivative in the order s has no closed form
        raise NotImplementedError("the derivative for 'zeta' with respect to 'input' is not "
                                  "implemented (only 'other', the shift q, is differentiable)")
    return None, -(g * x * zeta(x + 1.0, q))


zeta_p = _host("zeta", "zeta", _zeta_vjp, binary=True, backward_name="SpecialZetaBackward0")

# What the transforms and backends give rules of their own (elementwise, but not fused).
HOST_PRIMS = (digamma_p, polygamma_p, erfinv_p, erfcx_p, ndtri_p, i0_p, i0e_p, i1_p, i1e_p,
              bessel_j0_p, bessel_j1_p, zeta_p)


# -- the functional forms ----------------------------------------------------------------------
def _unary(prim, doc: str):
    op = prim.name

    def fn(input):  # noqa: A002  (torch's argument name)
        return bind(prim, (_float(input, op),), _NO)

    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = doc
    return fn


erfc = _unary(erfc_p, "The complementary error function ``1 - erf(x)``, accurate where erf "
                      "nears 1.")
lgamma = _unary(lgamma_p, "``log |Gamma(x)|``; its derivative is ``digamma``.")
digamma = _unary(digamma_p, "The logarithmic derivative of the gamma function (``-inf`` at 0, "
                            "NaN at the negative integers, as torch).")
erfinv = _unary(erfinv_p, "The inverse error function on (-1, 1) (``+-inf`` at +-1).")
erfcx = _unary(erfcx_p, "The scaled complementary error function ``exp(x**2) * erfc(x)``.")
ndtri = _unary(ndtri_p, "The inverse of the standard normal CDF ``ndtr``.")
i0 = _unary(i0_p, "The modified Bessel function of the first kind, order 0.")
i0e = _unary(i0e_p, "``exp(-|x|) * i0(x)``, finite where ``i0`` overflows.")
i1 = _unary(i1_p, "The modified Bessel function of the first kind, order 1.")
i1e = _unary(i1e_p, "``exp(-|x|) * i1(x)``, finite where ``i1`` overflows.")
bessel_j0 = _unary(bessel_j0_p, "The Bessel function of the first kind, order 0.")
bessel_j1 = _unary(bessel_j1_p, "The Bessel function of the first kind, order 1.")


def polygamma(n: int, input):  # noqa: A002
    """The ``n``-th derivative of ``digamma`` (``n = 0``: digamma itself).

    >>> import jitgrad
    >>> from jitgrad.ops.special import polygamma
    >>> polygamma(1, jitgrad.tensor([1.0]))  # pi**2 / 6
    tensor([1.6449])
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"polygamma(): argument 'n' must be int, not {type(n).__name__}")
    if n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    x = _float(input, "polygamma")
    if n == 0:
        return bind(digamma_p, (x,), _NO)
    return bind(polygamma_p, (x,), {"n": int(n)})


def _pair(input, other, op: str):
    """Two operands, one of them a Tensor, promoted to one floating dtype."""
    from jitgrad.tensor import Tensor
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        raise TypeError(f"{op}(): expected a Tensor as 'input' or 'other', got "
                        f"{type(input).__name__} and {type(other).__name__}")
    x, y = promote(input, other)
    if not x.dtype.is_floating_point:
        x, y = x.to(dtypes.float32), y.to(dtypes.float32)
    return x, y


def xlogy(input, other):  # noqa: A002
    """``input * log(other)``, taken as 0 where ``input`` is 0 (even where ``other`` is 0 or
    inf), NaN where ``other`` is NaN; broadcasting, either argument may be a number.

    >>> import jitgrad
    >>> from jitgrad.ops.special import xlogy
    >>> xlogy(jitgrad.tensor([0.0, 2.0]), jitgrad.tensor([0.0, 3.0]))
    tensor([0.0000, 2.1972])
    """
    return _binary(xlogy_p, *_pair(input, other, "xlogy"))


def xlog1py(input, other):  # noqa: A002
    """``input * log1p(other)``, taken as 0 where ``input`` is 0, NaN where ``other`` is NaN."""
    return _binary(xlog1py_p, *_pair(input, other, "xlog1py"))


def zeta(input, other):  # noqa: A002
    """The Hurwitz zeta function ``sum((k + other) ** -input for k >= 0)``, broadcasting;
    either argument may be a number. Differentiable in ``other`` only, as torch's.

    >>> import jitgrad
    >>> from jitgrad.ops.special import zeta
    >>> zeta(jitgrad.tensor([2.0]), 1.0)  # pi**2 / 6
    tensor([1.6449])
    """
    return _binary(zeta_p, *_pair(input, other, "zeta"))
