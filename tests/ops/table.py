"""The op table: one row per primitive. Each row is a function of float64 tensors, the NumPy
reference of the same function, the input shapes it runs at (broadcasting included), the input
domain, and whether second-order gradients are checked."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.special as _sp

import jitgrad as jg


@dataclass
class Row:
    covers: tuple            # primitive names this row exercises
    fn: Callable             # jitgrad function of tensors
    ref: Callable            # NumPy reference of the same function
    shapes: list             # list of input-shape tuples
    domain: str = "real"     # real | positive | unit | away0 | distinct
    order2: bool = True
    gtol: float = 1e-6       # gradcheck tolerance (looser only where the row rounds to float32)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _divisor(d):
    """Integer divisors of both signs, none 0 (integer division by zero raises)."""
    where = jg.where if isinstance(d, jg.Tensor) else np.where
    return where(d == 0, 3, d)


B = [((3,),), ((2, 3),), ((2, 1, 4),)]
BIN = [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 4)), ((), (2, 2))]

ROWS = [
    Row(("neg",), lambda x: -x, lambda x: -x, B),
    Row(("exp",), jg.exp, np.exp, B),
    Row(("log",), jg.log, np.log, B, domain="positive"),
    Row(("log1p",), jg.log1p, np.log1p, B, domain="positive"),
    Row(("expm1",), jg.expm1, np.expm1, B),
    Row(("erf",), jg.erf, lambda x: __import__("scipy.special").special.erf(x), B),
    Row(("sin",), jg.sin, np.sin, B),
    Row(("cos",), jg.cos, np.cos, B),
    Row(("tanh",), jg.tanh, np.tanh, B),
    Row(("sigmoid",), jg.sigmoid, lambda x: 1 / (1 + np.exp(-x)), B),
    Row(("relu",), jg.relu, lambda x: np.maximum(x, 0), B, domain="away0"),
    Row(("sqrt",), jg.sqrt, np.sqrt, B, domain="positive"),
    Row(("abs", "sign"), jg.abs, np.abs, B, domain="away0"),
    Row(("clone",), lambda x: x.clone() * 1, lambda x: x * 1, B),
    Row(("astype",), lambda x: x.float().double() * 2, lambda x: x.astype(np.float32) * 2, B,
        order2=False, gtol=1e-3),
    Row(("clamp",), lambda x: jg.clamp(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5), B,
        domain="away_half"),
    Row(("add",), lambda x, y: x + y, np.add, BIN),
    Row(("sub",), lambda x, y: x - y, np.subtract, BIN),
    Row(("mul",), lambda x, y: x * y, np.multiply, BIN),
    Row(("div",), lambda x, y: x / y, np.divide, BIN, domain="positive"),
    Row(("pow",), lambda x, y: x ** y, np.power, BIN, domain="positive"),
    Row(("pow_scalar",), lambda x: x ** 3 + x ** 2 + x ** 0.5 + x ** 0,
        lambda x: x ** 3 + x ** 2 + x ** 0.5 + 1, B, domain="positive"),
    Row(("maximum",), jg.maximum, np.maximum, BIN, domain="distinct"),
    Row(("minimum",), jg.minimum, np.minimum, BIN, domain="distinct"),
    Row(("where", "gt"), lambda c, x, y: jg.where(c > 0, x, y),
        lambda c, x, y: np.where(c > 0, x, y), [((3,), (3,), (3,)), ((2, 3), (3,), (2, 1))]),
    # tril and triu: composites (a constant triangle mask and where), at several diagonals.
    Row(("where",), lambda x: x.tril() * x + jg.triu(x, 2) - jg.tril(x, diagonal=-1),
        lambda x: np.tril(x) * x + np.triu(x, 2) - np.tril(x, -1), [((3, 3),), ((2, 4),), ((2, 4, 3),)]),
    Row(("where",), lambda x: jg.tril(x, 1).exp() + x.triu(-1) * x.triu(),
        lambda x: np.exp(np.tril(x, 1)) + np.triu(x, -1) * np.triu(x), [((4, 2),), ((2, 1, 3, 5),)]),
    Row(("eq", "ne", "lt", "le", "ge", "bitwise_and", "bitwise_or", "bitwise_xor", "invert"),
        lambda x, y: jg.where(((x < y) | (x >= y + 1)) & ~(x == y) & (x != y + 5)
                              ^ (x <= -9), x * y, y),
        lambda x, y: np.where(((x < y) | (x >= y + 1)) & ~(x == y) & (x != y + 5) ^ (x <= -9),
                              x * y, y), BIN, domain="distinct"),
    Row(("floor_divide",),  # integers: x's gradient is the (piecewise constant) quotient
        lambda x, y: x * ((x * 100).to(jg.int64) // _divisor((y * 7).to(jg.int64).abs() - 2)),
        lambda x, y: x * ((x * 100).astype(np.int64) // _divisor(
            np.abs((y * 7).astype(np.int64)) - 2)),
        BIN),
    Row(("remainder",), lambda x, y: x % (y.abs() + 0.5) + (x * 3) % -1.5,
        lambda x, y: np.remainder(x, np.abs(y) + 0.5) + np.remainder(x * 3, -1.5), BIN,
        order2=False),
    Row(("isnan", "isinf", "floor"), lambda x: jg.where(jg.isfinite(x) & (x.floor() < 5), x, 0.0),
        lambda x: np.where(np.isfinite(x) & (np.floor(x) < 5), x, 0.0), B),
    # Inverse trigonometry (ops/trig.py): asin, acos and atanh on (-0.9, 0.9), acosh above 1.
    Row(("asin", "acos", "atanh"),
        lambda x: jg.asin(x.tanh() * 0.9) + jg.acos(x.tanh() * 0.9) * 2 + jg.atanh(x.tanh() * 0.9),
        lambda x: np.arcsin(np.tanh(x) * 0.9) + np.arccos(np.tanh(x) * 0.9) * 2
        + np.arctanh(np.tanh(x) * 0.9), B),
    Row(("atan", "asinh", "acosh"), lambda x: jg.atan(x) + jg.asinh(x) * x + jg.acosh(x + 1),
        lambda x: np.arctan(x) + np.arcsinh(x) * x + np.arccosh(x + 1), B, domain="positive"),
    Row(("atan2",), jg.atan2, np.arctan2, BIN, domain="away0"),
    # The rounding composites (ops/rounding.py) over floor and sign, whose zero gradients reach
    # x alongside frac's gradient of 1.
    Row(("floor", "sign"),
        lambda x: x * (jg.round(x * 2) + jg.ceil(x) + jg.trunc(x) + x.sign() + jg.frac(x)),
        lambda x: x * (np.round(x * 2) + np.ceil(x) + np.trunc(x) + np.sign(x)
                       + (x - np.trunc(x))), B, domain="away0"),
    Row(("sum",), lambda x: x.sum(-1), lambda x: x.sum(-1), B),
    Row(("sum",), lambda x: x.sum(), lambda x: x.sum(), B),
    Row(("mean",), lambda x: x.mean(0, keepdim=True), lambda x: x.mean(0, keepdims=True), B),
    Row(("max",), lambda x: x.max(-1).values, lambda x: x.max(-1), B, domain="distinct"),
    Row(("min", "argmin", "argmax"),
        lambda x: x.min(0).values * (x.argmin(0) + x.argmax(0)),
        lambda x: x.min(0) * (x.argmin(0) + x.argmax(0)), B, domain="distinct"),
    Row(("prod", "prod_others"), lambda x: x.prod(-1), lambda x: x.prod(-1), B, order2=False),
    Row(("norm",), lambda x: x.norm(), lambda x: np.sqrt((x * x).sum()), B),
    Row(("cumsum",), lambda x: x.cumsum(-1) * x, lambda x: np.cumsum(x, -1) * x, B),
    Row(("softmax",), lambda x: jg.softmax(x, -1), lambda x: _softmax(x, -1), B),
    Row(("log_softmax",), lambda x: jg.log_softmax(x, 0), lambda x: np.log(_softmax(x, 0)), B),
    Row(("reshape",), lambda x: x.reshape(-1) * 1, lambda x: x.reshape(-1) * 1, B),
    Row(("permute",), lambda x: x.T * 1, lambda x: x.T * 1, B),
    Row(("expand",), lambda x: x.expand(2, *x.shape) * 1,
        lambda x: np.broadcast_to(x, (2, *x.shape)) * 1, B),
    Row(("cat",), lambda x, y: jg.cat([x, y], 0), lambda x, y: np.concatenate([x, y], 0),
        [((2,), (3,)), ((1, 3), (2, 3))]),
    Row(("getitem", "scatter_add"), lambda x: x[..., ::2] * x[..., :1],
        lambda x: x[..., ::2] * x[..., :1], B),
    Row(("getitem", "scatter_add"), lambda x: x[jg.tensor([0, 0, 1])],
        lambda x: x[np.array([0, 0, 1])], [((3,),), ((2, 3),)]),
    Row(("index_update",), lambda x, y: jg.ops.index_update(x, (0,), y) * x,
        lambda x, y: np.concatenate([y[None] * x[:1], x[1:] * x[1:]]),
        [((2, 3), (3,))]),
    Row(("matmul",), jg.matmul, np.matmul,
        [((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)), ((2, 2, 3), (3, 2)),
         ((2, 1, 2, 3), (3, 3, 2))]),
    # sort: the order (argsort, no gradient) gathers the values, whose gradient scatters back.
    Row(("argsort",), lambda x: jg.sort(x, -1).values * jg.arange(float(x.shape[-1])),
        lambda x: np.sort(x, -1) * np.arange(x.shape[-1]), B, domain="distinct"),
    # Linear algebra (ops/linalg.py's factorizations and solves) against NumPy and SciPy, on
    # well-conditioned matrices; eigen- and singular vectors enter squared (their signs are
    # LAPACK's choice).
    Row(("linalg_inv", "linalg_det", "linalg_slogdet", "linalg_info"),
        lambda x: jg.linalg.inv(x + 4 * jg.eye(3, dtype=x.dtype))
        + (jg.linalg.det(x + 4 * jg.eye(3, dtype=x.dtype))
           + jg.linalg.slogdet(x + 4 * jg.eye(3, dtype=x.dtype)).logabsdet
           + jg.linalg.inv_ex(x + 4 * jg.eye(3, dtype=x.dtype)).info).unsqueeze(-1).unsqueeze(-1),
        lambda x: np.linalg.inv(x + 4 * np.eye(3)) + (np.linalg.det(x + 4 * np.eye(3))
                                                      + np.linalg.slogdet(x + 4 * np.eye(3))[1]
                                                      )[..., None, None],
        [((3, 3),), ((2, 3, 3),)], order2=False),
    Row(("linalg_solve", "linalg_solve_triangular"),
        lambda a, b: jg.linalg.solve(a + 4 * jg.eye(3, dtype=a.dtype), b)
        + jg.linalg.solve_triangular(a + 4 * jg.eye(3, dtype=a.dtype), b, upper=True),
        lambda a, b: np.linalg.solve(a + 4 * np.eye(3), b)
        + np.linalg.solve(np.triu(a + 4 * np.eye(3)), b), [((3, 3), (3, 2))], order2=False),
    Row(("linalg_cholesky", "linalg_eigh"),
        lambda x: jg.linalg.cholesky(x.T @ x + 3 * jg.eye(3, dtype=x.dtype))
        + jg.linalg.eigh(x.T @ x + 3 * jg.eye(3, dtype=x.dtype)).eigenvectors ** 2
        * jg.linalg.eigh(x.T @ x + 3 * jg.eye(3, dtype=x.dtype)).eigenvalues,
        lambda x: np.linalg.cholesky(x.T @ x + 3 * np.eye(3))
        + np.linalg.eigh(x.T @ x + 3 * np.eye(3))[1] ** 2
        * np.linalg.eigh(x.T @ x + 3 * np.eye(3))[0], [((4, 3),)], order2=False),
    Row(("linalg_svd", "linalg_qr", "linalg_pinv"),
        lambda x: jg.linalg.svd(x, full_matrices=False).Vh ** 2
        * jg.linalg.svd(x, full_matrices=False).S.unsqueeze(-1)
        + jg.linalg.pinv(x) @ x * 0.5 + jg.linalg.qr(x).R,
        lambda x: np.linalg.svd(x, full_matrices=False)[2] ** 2
        * np.linalg.svd(x, full_matrices=False)[1][:, None]
        + np.linalg.pinv(x) @ x * 0.5 + np.linalg.qr(x)[1], [((4, 3),)], order2=False),
    Row(("linalg_matrix_exp",), lambda x: jg.linalg.matrix_exp(x * 0.5),
        lambda x: __import__("scipy.linalg").linalg.expm(x * 0.5),
        [((3, 3),), ((2, 3, 3),)], order2=False),
    # The LU factorization (ops/linalg_lu.py), square, tall and wide: P L U^2 against SciPy's.
    Row(("linalg_lu_factor", "linalg_lu_pivots_to_permutation"),
        lambda x: (lambda p, lo, up: p @ lo @ (up * up))(*jg.linalg.lu(x)),
        lambda x: (lambda p, lo, up: p @ lo @ (up * up))(*__import__("scipy.linalg").linalg.lu(x)),
        [((3, 3),), ((2, 4, 3),), ((3, 5),)]),
    # geqrf (no gradient, as torch's: ops/_rules.no_derivative) through Q R = x, on the
    # detached input; the detached term cancels it numerically
    Row(("linalg_geqrf",),
        lambda x: x + (lambda a, tau: jg.linalg.householder_product(a, tau)
                       @ a[..., :x.shape[-1], :].triu() - x.detach())(*jg.geqrf(x.detach())),
        lambda x: x, [((3, 3),), ((2, 4, 3),)]),
    # LDL (no gradient either) through A ldl_solve(ldl_factor(A), x) = x, A symmetric
    Row(("linalg_ldl_factor", "linalg_ldl_info", "linalg_ldl_solve"),
        lambda x: x + (lambda a: a @ jg.linalg.ldl_solve(
            *jg.linalg.ldl_factor_ex(a)[:2], x.detach()) - x.detach())(
            x.detach() + x.detach().mT + 4 * jg.eye(x.shape[-1], dtype=x.dtype)),
        lambda x: x, [((3, 3),), ((2, 4, 4),)]),
    # Special functions (ops/special.py) against SciPy; polygamma, zeta and xlogy at x > 0.
    Row(("erfc", "lgamma", "digamma", "polygamma"),
        lambda x: jg.erfc(x) + jg.lgamma(x) + jg.digamma(x) + jg.polygamma(2, x),
        lambda x: _sp.erfc(x) + _sp.gammaln(x) + _sp.psi(x) + _sp.polygamma(2, x), B,
        domain="positive"),
    Row(("erfinv", "erfcx", "ndtri"),
        lambda x: jg.erfinv(x.tanh() * 0.9) + jg.special.erfcx(x) + jg.special.ndtri(x.sigmoid()),
        lambda x: _sp.erfinv(np.tanh(x) * 0.9) + _sp.erfcx(x) + _sp.ndtri(_sp.expit(x)), B),
    Row(("i0", "i0e", "i1", "i1e", "bessel_j0", "bessel_j1"),
        lambda x: jg.i0(x) + jg.special.i0e(x) * 2 + jg.special.i1(x) * 3 + jg.special.i1e(x) * 4
        + jg.special.bessel_j0(x) * 5 + jg.special.bessel_j1(x) * 6,
        lambda x: _sp.i0(x) + _sp.i0e(x) * 2 + _sp.i1(x) * 3 + _sp.i1e(x) * 4 + _sp.j0(x) * 5
        + _sp.j1(x) * 6, B),
    Row(("xlogy", "xlog1py"), lambda x, y: jg.xlogy(x, y) + jg.special.xlog1py(y, x),
        lambda x, y: _sp.xlogy(x, y) + _sp.xlog1py(y, x), BIN, domain="positive"),
    Row(("zeta",), lambda q: jg.special.zeta(3.0, q), lambda q: _sp.zeta(3.0, q), B,
        domain="positive"),
    # torch's further pointwise functions (ops/pointwise_more.py); nextafter's and gcd's
    # gradients are zero (they enter as masks and integer factors), fmod's is 1 and -trunc.
    Row(("cosh", "sinh", "tan", "copysign", "hypot", "fmod", "nextafter", "gcd"),
        lambda x, y: (jg.cosh(x) + jg.sinh(y) * 2 + jg.tan(x * 0.5) + jg.copysign(x, y)
                      + jg.hypot(x, y) + jg.fmod(x * 3, y) * 0.5
                      + (jg.nextafter(x, y) > x).to(x.dtype) * x
                      + jg.gcd((x * 7).to(jg.int64), (y * 5).to(jg.int64)).to(x.dtype) * y),
        lambda x, y: (np.cosh(x) + np.sinh(y) * 2 + np.tan(x * 0.5) + np.copysign(x, y)
                      + np.hypot(x, y) + np.fmod(x * 3, y) * 0.5 + (np.nextafter(x, y) > x) * x
                      + np.gcd((x * 7).astype(np.int64), (y * 5).astype(np.int64)) * y),
        BIN, domain="distinct", order2=False),
    # (the shape a is not differentiable, as in torch: a constant here)
    Row(("igamma", "igammac"),
        lambda x: jg.igamma(jg.full_like(x, 1.7), x) + jg.igammac(jg.full_like(x, 0.6), x * 2) * 3,
        lambda x: _sp.gammainc(1.7, x) + _sp.gammaincc(0.6, x * 2) * 3, B,
        domain="positive", order2=False),
]


def _sigmoid64(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


# Accuracy where naive formulas lose it: near 0 (log(1 + x) rounds 1 + x) and at large |x|
# (overflow, cancellation). Each row: a function of one 1-D tensor, its float64 reference (a
# stable formula), and the points. Every target must match the reference to a few ulps of the
# dtype, float32 included.
ACCURACY = [
    ("log1p", jg.log1p, np.log1p, [1e-8, -1e-8, 1e-20, 3e-5, 0.5, 1e3, 1e30]),
    ("expm1", jg.expm1, np.expm1, [1e-8, -1e-8, 1e-20, -3e-5, 0.5, -30.0, 40.0]),
    ("softplus", lambda x: jg.nn.functional.softplus(x), lambda x: np.logaddexp(0.0, x),
     [1e-8, -1e-8, 0.5, -30.0, 30.0, 80.0]),
    ("sigmoid", jg.sigmoid, _sigmoid64, [1e-8, -1e-8, 0.5, -30.0, 30.0, -80.0]),
    ("logsumexp", lambda x: jg.logsumexp(x.reshape(-1, 1) * jg.ones(1, 2, dtype=x.dtype), -1),
     lambda x: x + np.log(2.0), [1e-8, -1e-8, 0.5, -80.0, 80.0, 1e4]),
    ("log_softmax", lambda x: jg.log_softmax(jg.stack([x, x * 0], -1), -1)[:, 0],
     lambda x: x - np.logaddexp(x, 0.0), [1e-8, -1e-8, 0.5, -60.0, 60.0]),
    ("bce_with_logits", lambda x: jg.nn.functional.binary_cross_entropy_with_logits(
        x, jg.ones_like(x), reduction="none"), lambda x: np.logaddexp(0.0, -x),
     [1e-8, -1e-8, 0.5, -60.0, 60.0]),
]
