"""``ceil``, ``trunc``, ``round``, ``frac``: composites of ``floor`` (a primitive), so they
trace and compile as it does. As torch, the piecewise-constant ones keep a result that requires
grad when the input does, with a zero gradient; ``frac``'s gradient is 1.

>>> import jitgrad
>>> x = jitgrad.tensor([-1.5, -0.5, 0.5, 1.5, 2.5])
>>> jitgrad.round(x), jitgrad.trunc(x)
(tensor([-2., -0.,  0.,  2.,  2.]), tensor([-1., -0.,  0.,  1.,  2.]))
>>> jitgrad.ceil(x), jitgrad.frac(x)
(tensor([-1., -0.,  1.,  2.,  3.]), tensor([-0.5000, -0.5000,  0.5000,  0.5000,  0.5000]))
"""

from __future__ import annotations

from jitgrad.ops.elementwise import _tensor, floor, remainder, where


def _exact(x, op: str) -> bool:
    """Integers and bools round to themselves (a copy, as torch)."""
    return not _tensor(x, op).dtype.is_floating_point


def ceil(input):  # noqa: A002  (torch's argument name)
    """The smallest integer not below each element (-0.0 for -1 < x < 0, as torch)."""
    if _exact(input, "ceil"):
        return input.clone()
    return -floor(-input)


def trunc(input):  # noqa: A002
    """Each element rounded toward zero."""
    if _exact(input, "trunc"):
        return input.clone()
    return where(input < 0, -floor(-input), floor(input))


fix = trunc


def round(input, *, decimals: int = 0):  # noqa: A001,A002
    """Each element rounded to the nearest integer, ties to even (as torch and NumPy); with
    ``decimals``, to that many decimal places (negative: to tens, hundreds...)."""
    if _exact(input, "round"):
        return input.clone()
    decimals = int(decimals)
    if decimals > 0:
        scale = 10.0 ** decimals
        return _half_even(input * scale) / scale
    if decimals < 0:
        scale = 10.0 ** -decimals
        return _half_even(input / scale) * scale
    return _half_even(input)


def _half_even(x):
    # x - floor(x) is exact in floating point, so the tie test is too (floor(x + 0.5) would
    # round 0.49999999999999994 up). A tie goes to the even neighbour.
    f = floor(x)
    d = x - f
    up = (d > 0.5) | ((d == 0.5) & (remainder(f, 2.0) == 1))
    out = where(up, f + 1, f)
    # where(x < 0 ...) keeps -0.0 for -0.5 < x < 0 (as torch) where f + 1 gives +0.0.
    return where((out == 0) & (x < 0), -0.0, out)


def frac(input):  # noqa: A002
    """The fractional part, ``input - trunc(input)``, with the sign of ``input``."""
    if _exact(input, "frac"):
        raise RuntimeError(f"frac: expected a floating point tensor, got {input.dtype.name}")
    return input - trunc(input)
