"""The primitive registry and the functional API built on it.

Each family module registers its primitives (NumPy body, shape rule, VJP rule, codegen slot) next
to the user-facing functions that bind them.
"""

from jitgrad.ops.registry import PRIMITIVES, Aval, Primitive, bind, promote, register  # noqa: F401
from jitgrad.ops.elementwise import (  # noqa: F401
    abs, add, astype, bitwise_and, bitwise_or, bitwise_xor, clamp, clone, contiguous, cos, div, eq, exp,
    erf, expm1, floor, floor_divide, ge, gt, invert, isfinite, isinf, isnan, le, log, log10,
    log1p, log2,
    logical_and, logical_not, logical_or, logical_xor, lt, maximum, minimum, mul, ne, neg, pow,
    reciprocal, relu, remainder, rsqrt, sigmoid, sign, sin, softplus, sqrt, square, sub, tanh,
    where,
)
from jitgrad.ops.shape import (  # noqa: F401
    broadcast_to, cat, chunk, concatenate, expand, flatten, getitem, index_update, narrow,
    narrow_copy,
    movedim, np_index, parse_index, permute, repeat, reshape, select, split, split_ints, squeeze,
    stack, t, tile, transpose, unbind, unsqueeze, view,
)
from jitgrad.ops.reduce import (  # noqa: F401
    amax, amin, argmax, argmin, cumsum, log_softmax, logsumexp, max, mean, min, norm, prod, softmax, std,
    sum, sum_to, var,
)
from jitgrad.ops import control, random  # noqa: F401
from jitgrad.ops.linalg import bmm, dot, matmul, mm, mv  # noqa: F401
from jitgrad.factories import (  # noqa: F401
    Generator, arange, as_tensor, bernoulli, default_generator, empty, empty_like, eye, from_array,
    from_numpy, full, full_like, generator,
    linspace, manual_seed, multinomial, ones, ones_like, rand, rand_like, randint, randn,
    randn_like, randperm,
    tensor, zeros, zeros_like,
)
