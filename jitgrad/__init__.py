"""jitgrad: PyTorch-style autograd that compiles gradients of ordinary Python.

>>> import jitgrad as torch
>>> x = torch.tensor(2.0, requires_grad=True)
>>> y = torch.tensor(3.0, requires_grad=True)
>>> z = x * y + y ** 2
>>> z.backward()
>>> x.grad, y.grad
(tensor(3.), tensor(8.))
"""

from jitgrad._version import __version__  # noqa: F401

import sys as _sys

from jitgrad.tensor import Size, Tensor  # noqa: F401  (must come first: ops attach to Tensor)
from jitgrad.dtypes import DType  # noqa: F401
from jitgrad.dtypes import bool_ as bool  # noqa: F401,A001
from jitgrad.dtypes import float32, float64, int64  # noqa: F401
from jitgrad.dtypes import float32 as float  # noqa: F401,A001
from jitgrad.dtypes import float64 as double  # noqa: F401
from jitgrad.dtypes import int64 as long  # noqa: F401
from jitgrad.dtypes import int8, int16, int32, uint8  # noqa: F401
from jitgrad.dtypes import int32 as int  # noqa: F401,A001
from jitgrad.dtypes import int16 as short  # noqa: F401
from jitgrad.errors import ShapeError, TraceError  # noqa: F401
from jitgrad.ops import (  # noqa: F401
    abs, add, amax, amin, arange, argmax, argmin, as_tensor, bmm, broadcast_to, cat, chunk, clamp,
    clone, concatenate, cos, cumsum, div, dot, empty, empty_like, eq, exp, erf, expand, expm1, eye, flatten,
    floor, floor_divide, from_numpy, full, full_like, ge, gt, isfinite, isinf, isnan, le,
    linspace, log, log10, log1p, log2, log_softmax, logical_and, logical_not, logical_or,
    logical_xor, logsumexp, lt,
    manual_seed, matmul, max, maximum, mean, min, minimum, mm, movedim, mul, mv, narrow, ne, neg, norm,
    narrow_copy,
    ones, ones_like, permute, pow, prod, rand, rand_like, randint, randn, randn_like,
    randperm, reciprocal, relu, remainder, reshape, rsqrt, select, sigmoid, sign, sin, softmax, split, sqrt,
    square, squeeze, stack, std, sub, sum, t, tanh, tensor, tile, transpose, unbind, unsqueeze, var,
    where, zeros, zeros_like,
)
from jitgrad.ops import clamp as clip  # noqa: F401
from jitgrad.ops import Generator, bernoulli, default_generator, multinomial  # noqa: F401
from jitgrad.ops import movedim as moveaxis  # noqa: F401
from jitgrad._compat import (  # noqa: F401,A004
    BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, IntTensor, LongTensor,
    ShortTensor, all, allclose, any, histc, histogram, isclose,
)
from jitgrad.autograd import (  # noqa: F401
    enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled,
)
from jitgrad import accelerator, autograd, cuda, nn, optim, utils  # noqa: F401
from jitgrad.devices import device, get_default_device, set_default_device  # noqa: F401
from jitgrad.api import Compiled, Lowered, grad, jit, value_and_grad  # noqa: F401
from jitgrad import func  # noqa: F401,E402  (torch.func: composable transforms)
from jitgrad.runtime import RetraceWarning, config  # noqa: F401
from jitgrad.trace.implicit import LiveStateWarning  # noqa: F401
from jitgrad import _blas, _malloc  # noqa: E402
from jitgrad.backends.disk_cache import CacheWarning  # noqa: F401
from jitgrad.serialization import load, save  # noqa: F401
from jitgrad.func import vmap  # noqa: F401,E402  (torch.vmap)
from jitgrad import hub, onnx  # noqa: F401,E402  (imported by tutorials, used on request)
from jitgrad.backends import cuda as _cuda_flags, cudnn as _cudnn, mps as _mps  # noqa: F401,E402
from jitgrad.ops.shape_more import outer  # noqa: F401,E402  (before _add_out wraps it)


def _add_out() -> None:
    from jitgrad._out import NAMES, with_out
    g = globals()
    for name in NAMES:
        g[name] = with_out(g[name])


_add_out()
subtract, multiply, divide, true_divide = sub, mul, div, div
absolute = abs


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(x: Tensor) -> int:
    return x.numel()


from jitgrad.ops.triangular import tril, triu  # noqa: F401,E402
from jitgrad.ops.sorting import (  # noqa: F401,E402
    argsort, argwhere, nonzero, sort, topk, unique, unique_consecutive,
)
from jitgrad.ops.indexing import (  # noqa: F401,E402
    diag, diag_embed, diagonal, flip, fliplr, flipud, gather, index_select, meshgrid,
    repeat_interleave, roll, scatter, scatter_add, take_along_dim,
)
from jitgrad.ops.einsum import einsum  # noqa: F401,E402
from jitgrad.ops.reduce import cumprod  # noqa: F401,E402
from jitgrad.ops.rounding import ceil, fix, frac, round, trunc  # noqa: F401,E402,A004
from jitgrad.ops.trig import (  # noqa: F401,E402
    acos, acosh, arccos, arccosh, arcsin, arcsinh, arctan, arctan2, arctanh, asin, asinh, atan,
    atan2, atanh,
)
from jitgrad.ops.memory_format import (  # noqa: F401,E402
    channels_last, channels_last_3d, contiguous_format, memory_format, preserve_format,
)
from jitgrad import fft, special  # noqa: F401,E402  (torch.fft, torch.special)
from jitgrad.special import (  # noqa: F401,E402
    digamma, erfc, erfinv, exp2, i0, lgamma, logit, mvlgamma, polygamma, sinc, xlogy,
)
from jitgrad import linalg  # noqa: F401,E402
from jitgrad import masked, signal  # noqa: F401,E402  (torch.masked, torch.signal)
from jitgrad.linalg._decomp import logdet, matrix_exp  # noqa: F401,E402
from jitgrad.linalg._legacy import (  # noqa: F401,E402
    cholesky, cholesky_inverse, cholesky_solve, cross, det, inverse, matrix_power, pinverse, qr,
    slogdet, svd, triangular_solve,
)
from jitgrad.linalg._householder import geqrf, orgqr, ormqr  # noqa: F401,E402
from jitgrad.linalg._lu import (  # noqa: F401,E402
    lu_legacy as lu, lu_solve_legacy as lu_solve, lu_unpack,
)

from jitgrad.ops.pointwise_more import (  # noqa: F401,E402
    addcdiv, addcmul, angle, bitwise_and, bitwise_left_shift, bitwise_not, bitwise_or,
    bitwise_right_shift, bitwise_xor, clamp_max, clamp_min, conj, conj_physical, copysign, cosh,
    deg2rad, equal, float_power, fmax, fmin, fmod, frexp, gcd, greater, greater_equal,
    heaviside, hypot, igamma, igammac, isneginf, isposinf, isreal, lcm, ldexp, lerp, less,
    less_equal, logaddexp, logaddexp2, nan_to_num, negative, nextafter, not_equal, positive,
    rad2deg, real, resolve_conj, resolve_neg, rsub, sgn, signbit, sinh, tan,
)
from jitgrad.ops.shape_more import (  # noqa: F401,E402
    addbmm, addmm, addmv, addmv_, addr, baddbmm, ger, inner, vdot, kron, tensordot,
    block_diag, cartesian_prod, combinations, cdist, dist, atleast_1d, atleast_2d, atleast_3d,
    column_stack, dstack, hstack, vstack, row_stack, concat, dsplit, hsplit, vsplit,
    tensor_split, split_with_sizes, swapaxes, swapdims, unflatten, ravel, rot90, diagflat, diff,
    broadcast_shapes, broadcast_tensors, adjoint, tril_indices, triu_indices, unravel_index,
    scalar_tensor, logspace, fill, fill_, zero_, take, put,
)
from jitgrad.ops.stats import (  # noqa: F401,E402
    aminmax, bincount, bucketize, searchsorted, count_nonzero, corrcoef, cov, cummax, cummin,
    logcumsumexp, histogramdd, kthvalue, median, nanmedian, mode, msort, nanmean, nansum,
    quantile, nanquantile, std_mean, var_mean, trapezoid, trapz, cumulative_trapezoid, gradient,
    renorm, isin,
)
from jitgrad.ops.scatter_more import (  # noqa: F401,E402
    index_add, index_copy, index_fill, index_put, index_reduce, scatter_reduce,
    diagonal_scatter, select_scatter, slice_scatter, masked_fill, masked_scatter, masked_select,
    nonzero_static, conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d,
    conv_transpose3d, layer_norm, group_norm, rms_norm,
)


from jitgrad.ops import shape_more as _shape_more  # noqa: E402


class _TraceModule(type(_sys.modules["jitgrad.trace"])):
    """``jitgrad.trace`` is the tracing subpackage and, called, ``torch.trace``: the sum of a
    matrix's diagonal (the name is torch's; the subpackage's imports keep working).

    >>> import jitgrad
    >>> jitgrad.trace(jitgrad.tensor([[1.0, 2.0], [3.0, 4.0]]))
    tensor(5.)
    """

    def __call__(self, input):  # noqa: A002
        return input.trace() if isinstance(input, Tensor) else _shape_more._trace(input)


_sys.modules["jitgrad.trace"].__class__ = _TraceModule

_blas.apply(config.blas_threads)  # (a thread per core, one while building: jitgrad/_blas.py)
_malloc.tune()  # a step's freed arrays stay for the next (jitgrad/_malloc.py)
