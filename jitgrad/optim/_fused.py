"""One compiled loop per parameter for the SGD and Adam/AdamW updates.

The NumPy update in ``optimizer.py`` is the definition; these kernels redo it element by element
and must give the same bits. So every coefficient arrives already rounded to the parameter's
dtype (``c``, built with ``np.array(..., dtype=p.dtype)``, which rounds a Python float exactly as
NumPy 2 rounds a "weak" scalar in ``m *= b1``), no Python float literal appears in a loop (it
would promote float32 arithmetic to float64), and each expression keeps the NumPy code's order of
operations. Numba leaves LLVM's ``contract`` flag off without ``fastmath``, so no multiply-add is
fused into an FMA behind our back.

Only imported once Numba is (see ``optimizer._fused_kernels``). Arrays are flat, C-contiguous and
of one dtype; flags are passed as bools so one compiled version per dtype serves every setting.
``error_model="numpy"`` makes a division by zero give inf/NaN as NumPy's does, not raise.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, error_model="numpy")
def sgd(p, g, buf, c, maximize, decay, momentum, first, nesterov):
    # c = [weight_decay, momentum, 1 - dampening, lr]
    wd, mom, keep, lr = c[0], c[1], c[2], c[3]
    for i in range(p.size):
        gi = g[i]
        if maximize:
            gi = -gi
        if decay:
            gi = gi + wd * p[i]
        if momentum:
            if first:
                b = gi  # the buffer starts as a copy of the first gradient
            else:
                b = buf[i] * mom
                b = b + keep * gi
            buf[i] = b
            gi = gi + mom * b if nesterov else b
        p[i] = p[i] - lr * gi


@numba.njit(cache=True, error_model="numpy")
def adam(p, g, m, v, vmax, c, maximize, coupled, decoupled, amsgrad):
    # c = [b1, 1 - b1, b2, 1 - b2, weight_decay, 1 - lr * weight_decay, sqrt(bc2), eps, lr / bc1]
    b1, keep1, b2, keep2 = c[0], c[1], c[2], c[3]
    wd, shrink, sbc2, eps, step = c[4], c[5], c[6], c[7], c[8]
    for i in range(p.size):
        gi = g[i]
        if maximize:
            gi = -gi
        pi = p[i]
        if decoupled:
            pi = pi * shrink
        elif coupled:
            gi = gi + wd * pi
        mi = m[i] * b1
        mi = mi + keep1 * gi
        m[i] = mi
        vi = v[i] * b2
        vi = vi + keep2 * gi * gi
        v[i] = vi
        if amsgrad:
            # np.maximum's rule, NaN included: the second operand wins when it is larger or NaN
            if vi > vmax[i] or vi != vi:
                vmax[i] = vi
            vi = vmax[i]
        denom = np.sqrt(vi) / sbc2 + eps
        p[i] = pi - step * mi / denom
