"""The strong Wolfe line search of ``LBFGS(line_search_fn="strong_wolfe")``: a bracketing phase
that grows the step until it passes a minimizer, then a zoom that shrinks the bracket by cubic
interpolation (Nocedal & Wright, Numerical Optimization, algorithms 3.5 and 3.6), stopping at
the first step with sufficient decrease, ``f(t) <= f(0) + c1 t f'(0)``, and small curvature,
``|f'(t)| <= c2 |f'(0)|``.

>>> import numpy as np
>>> def phi(t):  # f(x + t d) of f(x) = x**2 from x = 3 along d = -1: value, gradient, slope
...     x = 3.0 - t
...     return x * x, np.array([2 * x]), -2 * x
>>> t, f, g, evals = strong_wolfe(phi, 9.0, np.array([6.0]), -6.0, 1.0)
>>> bool(f <= 9.0 - 1e-4 * t * 6.0 and abs(-g[0]) <= 0.9 * 6.0)
True
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np


def cubic_minimizer(t1: float, f1: float, s1: float, t2: float, f2: float, s2: float,
                    lo: float, hi: float) -> float:
    """The minimizer in ``[lo, hi]`` of the cubic through ``(t1, f1)`` and ``(t2, f2)`` with
    slopes ``s1`` and ``s2``; the middle of the interval when the cubic has no minimum."""
    d1 = s1 + s2 - 3 * (f1 - f2) / (t1 - t2)
    disc = d1 * d1 - s1 * s2
    if disc < 0 or not math.isfinite(disc):
        return (lo + hi) / 2
    d2 = math.sqrt(disc)
    if t1 > t2:  # the formula wants t1 <= t2
        t1, f1, s1, t2, f2, s2 = t2, f2, s2, t1, f1, s1
    den = s2 - s1 + 2 * d2
    if den == 0:
        return (lo + hi) / 2
    t = t2 - (t2 - t1) * (s2 + d2 - d1) / den
    return min(max(t, lo), hi)


def strong_wolfe(phi: Callable, f0: float, g0: np.ndarray, s0: float, t: float,
                 c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9,
                 max_ls: int = 25, d_max: float = 1.0) -> tuple:
    """A step ``t`` along a descent direction that meets the strong Wolfe conditions, found
    with at most ``max_ls`` calls of ``phi(t) -> (value, flat gradient, slope along d)``.
    ``f0``, ``g0`` and ``s0 < 0`` are those at ``t = 0``; ``d_max`` is the direction's largest
    entry (a bracket narrower than ``tolerance_change`` in the parameters ends the search).
    Returns ``(t, value, gradient, evaluations)`` of the best step seen."""
    prev = (0.0, f0, g0, s0)
    evals = 0
    bracket = None
    while evals < max_ls:
        f, g, s = phi(t)
        evals += 1
        cur = (t, f, g, s)
        if f > f0 + c1 * t * s0 or (evals > 1 and f >= prev[1]):
            bracket = [prev, cur]  # passed a minimizer: it lies between prev and cur
            break
        if abs(s) <= -c2 * s0:
            return t, f, g, evals
        if s >= 0:  # the slope turned: a minimizer lies between cur and prev
            bracket = [cur, prev]
            break
        # Still going down: extrapolate, at least 1% and at most 10 times further.
        t_next = cubic_minimizer(prev[0], prev[1], prev[3], t, f, s,
                                 t + 0.01 * (t - prev[0]), 10 * t)
        prev, t = cur, t_next
    if bracket is None:  # out of evaluations while still going down
        return prev[0], prev[1], prev[2], evals
    # Zoom: bracket[0] is the end with the lower value, which keeps sufficient decrease.
    if bracket[1][1] < bracket[0][1]:
        bracket.reverse()
    while evals < max_ls:
        (ta, fa, _, sa), (tb, fb, _, sb) = bracket
        width = abs(tb - ta)
        if width * d_max < tolerance_change:
            break
        lo, hi = min(ta, tb), max(ta, tb)
        t = cubic_minimizer(ta, fa, sa, tb, fb, sb, lo, hi)
        # Keep the trial well inside the bracket, so that it shrinks every time.
        margin = 0.1 * width
        if min(t - lo, hi - t) < margin:
            t = hi - margin if abs(t - hi) < abs(t - lo) else lo + margin
        f, g, s = phi(t)
        evals += 1
        cur = (t, f, g, s)
        if f > f0 + c1 * t * s0 or f >= fa:
            bracket[1] = cur
        else:
            if abs(s) <= -c2 * s0:
                return t, f, g, evals
            if s * (tb - ta) >= 0:
                bracket[1] = bracket[0]
            bracket[0] = cur
        if bracket[1][1] < bracket[0][1]:
            bracket.reverse()
    t, f, g, _ = bracket[0]
    return t, f, g, evals
