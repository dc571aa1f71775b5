"""Parameter initialisers (torch's names and defaults), drawing from ``jitgrad.manual_seed``.

>>> import jitgrad
>>> w = jitgrad.empty(3, 4)
>>> _ = jitgrad.nn.init.zeros_(w)
>>> float(w.sum())
0.0
"""

from __future__ import annotations

import math

import numpy as np

from jitgrad.autograd import grad_mode


def _fans(t) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError("fan in and fan out can not be computed for tensor with fewer than 2 "
                         "dimensions")
    rf = int(np.prod(t.shape[2:], dtype=np.int64)) if t.ndim > 2 else 1
    return t.shape[1] * rf, t.shape[0] * rf


def _default_(weight, bias) -> None:
    """torch's initialisation of a linear or convolution layer: Kaiming-uniform with
    a = sqrt(5), the bias within 1/sqrt(fan_in) (fan_in from the weight's dim 1 and kernel)."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = _fans(weight)[0]
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound)


def calculate_gain(nonlinearity: str, param=None) -> float:
    gains = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0)}
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in gains:
        raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")
    return gains[nonlinearity]


def _set(t, arr):
    with grad_mode.no_grad():
        t._value[...] = arr.astype(t._value.dtype)
        t._vc[0] += 1
    return t


def uniform_(t, a: float = 0.0, b: float = 1.0):
    from jitgrad.factories import generator
    return _set(t, generator().uniform(a, b, tuple(t.shape)))


def normal_(t, mean: float = 0.0, std: float = 1.0):
    from jitgrad.factories import generator
    return _set(t, generator().normal(mean, std, tuple(t.shape)))


def constant_(t, val: float):
    return _set(t, np.full(tuple(t.shape), val))


def zeros_(t):
    return constant_(t, 0.0)


def ones_(t):
    return constant_(t, 1.0)


def xavier_uniform_(t, gain: float = 1.0):
    fan_in, fan_out = _fans(t)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a)


def xavier_normal_(t, gain: float = 1.0):
    fan_in, fan_out = _fans(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(t, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    fan_in, fan_out = _fans(t)
    fan = fan_in if mode == "fan_in" else fan_out
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(t, -bound, bound)


def kaiming_normal_(t, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    fan_in, fan_out = _fans(t)
    fan = fan_in if mode == "fan_in" else fan_out
    return normal_(t, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan))
