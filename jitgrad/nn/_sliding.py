"""Sliding windows shared by convolution, pooling and ``unfold``: argument pairs, a pooling's
default stride, and the im2col gather of every window. They import no other ``nn`` module, so
``conv``, ``pooling`` and ``resample`` all build on them without importing one another in a
circle."""

from __future__ import annotations

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
