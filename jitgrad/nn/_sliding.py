"""Sliding windows shared by convolution, pooling and ``unfold``: argument pairs, a pooling's
default stride, the im2col gather of every window, each window's positions and where a max
pooling picks its max. They import no other ``nn`` module, so ``conv``, ``pooling`` and
``resample`` all build on them without importing one another in a circle."""

from __future__ import annotations

import math

import numpy as np

from jitgrad import factories, ops
from jitgrad.errors import ShapeError


def _pair(v, name: str) -> tuple:
    if isinstance(v, int):
        return (v, v)
    v = tuple(int(a) for a in v)
    if len(v) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {v}")
    return v


def _stride(stride, kernel):
    """A pooling's stride: the kernel's when None or empty (torch's ``stride=()``)."""
    return kernel if stride is None or (isinstance(stride, (tuple, list)) and not stride) \
        else stride


def _windows(x, kernel, stride, padding, dilation, fill: float, what: str):
    """Every window's elements of ``x`` (N, C, H, W), padded with ``fill``: a tensor of shape
    (KH * KW, OH, OW, N, C), and (OH, OW)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    if min(sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"{what}: stride and dilation must be positive and padding non-negative")
    hp, wp = h + 2 * ph, w + 2 * pw
    oh, ow = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise ShapeError(f"{what}: the kernel {kh}x{kw} (dilation {dh}x{dw}) is larger than the "
                         f"padded input {hp}x{wp} (input shape {list(x.shape)})")
    if ph or pw:
        x = ops.cat([factories.full((n, c, ph, w), fill, dtype=x.dtype), x,
                     factories.full((n, c, ph, w), fill, dtype=x.dtype)], 2) if ph else x
        x = ops.cat([factories.full((n, c, hp, pw), fill, dtype=x.dtype), x,
                     factories.full((n, c, hp, pw), fill, dtype=x.dtype)], 3) if pw else x
    rows = (np.arange(oh) * sh)[None, :, None] + (np.arange(kh) * dh)[:, None, None]  # kh,oh,1
    cols = (np.arange(ow) * sw)[None, None, :] + (np.arange(kw) * dw)[:, None, None]  # kw,1,ow
    flat = rows[:, None, :, :] * wp + cols[None, :, :, :]  # (kh, kw, oh, ow)
    at = factories.tensor(flat.reshape(-1).astype(np.int64))
    g = x.permute(2, 3, 0, 1).reshape(hp * wp, n, c)[at]  # (kh*kw*oh*ow, N, C)
    return g.reshape(kh * kw, oh, ow, n, c), (oh, ow)


def _positions(outs, stride, kernel, dilation, padding) -> list[np.ndarray]:
    """Per dim, the input index of each window's elements: (o_i, k_i) arrays, negative or past
    the end where a window covers padding."""
    return [(np.arange(o) * si)[:, None] + (np.arange(ki) * di)[None, :] - pi
            for o, si, ki, di, pi in zip(outs, stride, kernel, dilation, padding)]


def _first_valid(pos_per_dim, sizes) -> np.ndarray:
    """Each window's first element inside the input (not padding), as an index among the
    window's flattened elements: shape (o_1, ..., o_n) for windows at ``pos[i]`` (o_i, k_i).
    Inside the input is a per-dim test, so the first one is each dim's first, row-major."""
    first = np.zeros([1] * len(pos_per_dim), dtype=np.int64)
    for i, (q, n) in enumerate(zip(pos_per_dim, sizes)):
        shape = [1] * len(pos_per_dim)
        shape[i] = q.shape[0]
        # (every window has one: padding is at most half the kernel, and a ceil_mode window
        # starts inside the input)
        first = first * q.shape[1] + ((q >= 0) & (q < n)).argmax(1).reshape(shape)
    return first


def _max_place(win, dim: int = -1, first_valid: np.ndarray | None = None):
    """Where torch's max pooling finds each window's max along ``dim``. Its kernels start at
    -inf on the window's first element inside the input (``first_valid``, when the window
    holds padding) and scan keeping ``val > max || isnan(val)``: the first largest element;
    in a window with NaNs the last NaN (each one met replaces the one before: ``argmax``
    alone would give the first, the same value but another index and gradient); in a window
    of -inf only, that first element inside the input (``argmax`` would give the padding)."""
    k = win.shape[dim]
    shape = [1] * win.ndim
    shape[dim] = k
    pos = ops.arange(k).reshape(*shape)
    best = win.argmax(dim)
    if first_valid is not None:
        best = ops.where((win == -math.inf).all(dim), factories.tensor(first_valid), best)
    last_nan = ops.where(win != win, pos, -1).amax(dim)  # -1: no NaN in the window
    return ops.where(last_nan >= 0, last_nan, best)
