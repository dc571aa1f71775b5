"""Random numbers inside compiled functions: a counter-based generator, as torch.compile draws
with Philox and JAX with threefry keys.

``uniform`` is a primitive of the generator's *state* (an int64[2] input, ``[seed, stream]``) and
a *salt* (which draw of the trace it is). Element ``i`` is a hash of ``(seed, stream, salt, i)``:
SplitMix64's finalizer, a bijection of 64-bit words that scatters consecutive counters, applied to
a key made from the first three and then to the key plus ``i``. Nothing is stored between calls:

- the state is a live input read at every call, and each read advances the stream, so compiled
  code draws fresh numbers at every call, and the same ones again after ``manual_seed``;
- one draw is one value of the graph, so dropout's mask is the same in forward and backward;
- every backend computes the same bits (the NumPy body here is the definition, and the Numba
  kernels compute it exactly), so compiled and interpreted traces agree to the last bit.

Normal samples are Box-Muller over two draws, integers a floor of a scaled draw: compositions of
ordinary ops that fuse with their consumers.

>>> import jitgrad
>>> f = jitgrad.jit(lambda x: x + jitgrad.rand(3))
>>> _ = jitgrad.manual_seed(0); a = f(jitgrad.zeros(3))
>>> _ = jitgrad.manual_seed(0); b = f(jitgrad.zeros(3))
>>> bool((a == b).all()) and bool((f(jitgrad.zeros(3)) != a).any())
True
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes
from jitgrad.ops.registry import Aval, bind, register

GOLDEN = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1


def mix(z: int) -> int:
    """SplitMix64's finalizer on a Python int (the key is made once per draw, in exact
    integer arithmetic)."""
    z &= _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def key(seed: int, stream: int, salt: int) -> int:
    """The key of one draw: every element's hash starts from it."""
    k = mix((seed & _M64) ^ 0x5851F42D4C957F2D)
    k = mix(k + (stream & _M64) * GOLDEN)
    return mix(k + (salt & _M64) * GOLDEN)


def _mix_array(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def bits(state: np.ndarray, salt: int, n: int) -> np.ndarray:
    """``n`` 64-bit words of the draw ``salt`` from ``state`` (the reference for the kernels)."""
    s = np.asarray(state).reshape(-1).astype(np.int64)
    k = np.uint64(key(int(s[0]), int(s[1]), salt))
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as intended
        return _mix_array(k + (np.arange(1, n + 1, dtype=np.uint64) * np.uint64(GOLDEN)))


def to_unit(z: np.ndarray, dtype) -> np.ndarray:
    """Words to floats in [0, 1): the top 53 (float64) or 24 (float32) bits, exactly."""
    if np.dtype(dtype) == np.float32:
        return (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)
    return (z >> np.uint64(11)).astype(np.float64) * (2.0 ** -53)


def _uniform_impl(state, *, shape, dtype, salt):
    n = int(np.prod(shape)) if shape else 1
    return to_unit(bits(state, salt, n), dtype.np).reshape(shape)


def _uniform_abstract(state, *, shape, dtype, salt):
    if tuple(state.shape) != (2,) or state.dtype is not dtypes.int64:
        raise TypeError(f"uniform: the generator state is int64[2], got "
                        f"{state.dtype.name}{list(state.shape)}")
    if not dtype.is_floating_point:
        raise TypeError(f"uniform: samples are floating point, got {dtype.name}")
    return Aval(tuple(shape), dtype)


uniform_p = register("uniform", _uniform_impl, _uniform_abstract, None, saves="none",
                     kind="random")


def uniform(state, shape: tuple, dtype: dtypes.DType, salt: int):
    """Samples in [0, 1) of ``shape`` from the generator ``state`` (a tensor), draw ``salt``."""
    return bind(uniform_p, (state,), {"shape": tuple(int(d) for d in shape), "dtype": dtype,
                                      "salt": int(salt)})
