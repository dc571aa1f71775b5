"""Resampling as torch's: ``interpolate`` (nearest, nearest-exact, linear, bilinear, bicubic,
trilinear, area) with ``nn.Upsample``, ``pixel_shuffle``/``pixel_unshuffle``,
``channel_shuffle`` and ``unfold``/``fold``. Interpolation is separable: along each spatial dim
the output is a weighted sum of a few input elements, gathered with an index and weighted by
coefficients that depend on the shapes only (constants of the trace), so gradients and compiled
code come from ``index_select``, ``mul`` and ``sum``.

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> x = jitgrad.tensor([[[0.0, 1.0]]])
>>> F.interpolate(x, scale_factor=2, mode="linear", align_corners=True).tolist()
[[[0.0, 0.3333333432674408, 0.6666666865348816, 1.0]]]
"""

from __future__ import annotations

import math

import numpy as np

from jitgrad import factories, ops
from jitgrad.errors import ShapeError
from jitgrad.nn.module import Module
from jitgrad.nn.pad import take

_LINEAR = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
_CUBIC_A = -0.75


def _gather_weighted(x, dim: int, idx: np.ndarray, w: np.ndarray | None):
    """Along ``dim``: output position ``i`` is ``sum_k w[i, k] * x[idx[i, k]]`` (or just
    ``x[idx[i, 0]]`` when ``w`` is None)."""
    m, k = idx.shape
    g = take(x, dim, idx)
    if w is None:
        return g
    shape = list(x.shape)
    shape[dim:dim + 1] = [m, k]
    g = g.reshape(tuple(shape))
    wshape = [1] * len(shape)
    wshape[dim:dim + 2] = [m, k]
    wt = factories.tensor(w.reshape(wshape), dtype=x.dtype)
    return (g * wt).sum(dim + 1)


def _source_coords(n: int, m: int, scale: float | None, align_corners: bool,
                   cubic: bool) -> np.ndarray:
    """The input coordinate each output position samples (torch's
    ``area_pixel_compute_source_index``)."""
    dst = np.arange(m, dtype=np.float64)
    if align_corners:
        return dst * ((n - 1) / (m - 1) if m > 1 else 0.0)
    s = n / m if scale is None else scale
    src = s * (dst + 0.5) - 0.5
    return src if cubic else np.maximum(src, 0.0)


def _linear_taps(n: int, m: int, scale, align_corners: bool):
    src = _source_coords(n, m, scale, align_corners, False)
    i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    lam = src - i0
    i1 = np.minimum(i0 + 1, n - 1)
    return np.stack([i0, i1], 1), np.stack([1.0 - lam, lam], 1)


def cubic_weights(t):
    """The four cubic-convolution weights (A = -0.75) of the taps at -1, 0, 1, 2 around a point
    ``t`` past the tap at 0, as torch's ``get_cubic_upsample_coefficients``: NumPy arrays or
    tensors (``grid_sample`` differentiates through them)."""
    a = _CUBIC_A

    def near(v):  # |v| <= 1
        return ((a + 2) * v - (a + 3)) * v * v + 1

    def far(v):  # 1 < |v| < 2
        return ((a * v - 5 * a) * v + 8 * a) * v - 4 * a
    return [far(t + 1), near(t), near(1 - t), far((1 - t) + 1)]


def _cubic_taps(n: int, m: int, scale, align_corners: bool):
    src = _source_coords(n, m, scale, align_corners, True)
    i = np.floor(src).astype(np.int64)
    w = np.stack(cubic_weights(src - i), 1)
    idx = np.clip(i[:, None] + np.arange(-1, 3)[None, :], 0, n - 1)
    return idx, w


def _nearest_taps(n: int, m: int, scale, exact: bool) -> np.ndarray:
    # torch computes the nearest index in single precision: so do we, to pick the same element
    s = np.float32(n / m if scale is None else scale)
    dst = np.arange(m, dtype=np.float32) + np.float32(0.5 if exact else 0.0)
    return np.minimum(np.floor(dst * s).astype(np.int64), n - 1)[:, None]


def _adaptive_taps(n: int, m: int):
    """Adaptive pooling windows: output ``i`` covers ``[floor(i n / m), ceil((i + 1) n / m))``;
    shorter windows repeat their last element (the extras get weight 0)."""
    i = np.arange(m)
    start = (i * n) // m
    stop = -((-(i + 1) * n) // m)
    k = int((stop - start).max()) if m else 1
    idx = np.minimum(start[:, None] + np.arange(k)[None, :], (stop - 1)[:, None])
    valid = (start[:, None] + np.arange(k)[None, :]) < stop[:, None]
    return idx, valid, (stop - start)


def _spatial(v, n: int, what: str, input_shape) -> tuple:
    if isinstance(v, (tuple, list)):
        if len(v) != n:
            raise ValueError(f"Input and {what} must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of "
                             f"{list(input_shape[2:])} and {what} of shape {tuple(v)}. Please "
                             f"provide input tensor in (N, C, d1, d2, ...,dK) format and {what} "
                             f"in (o1, o2, ...,oK) format.")
        return tuple(v)
    return (v,) * n


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest",  # noqa: A002
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False):
    """Resize the spatial dims of ``input`` (N, C, d1, ...) to ``size`` or by
    ``scale_factor``, as ``torch.nn.functional.interpolate``.

    >>> import jitgrad
    >>> x = jitgrad.tensor([[[1.0, 2.0]]])
    >>> jitgrad.nn.functional.interpolate(x, size=4).tolist()
    [[[1.0, 1.0, 2.0, 2.0]]]
    """
    if mode not in _MODES or input.ndim not in (3, 4, 5):
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {input.ndim}D) for "
            f"the modes: nearest | linear | bilinear | bicubic | trilinear | area | "
            f"nearest-exact (got {mode})")
    if mode in _LINEAR and input.ndim != _LINEAR[mode]:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs "
                                  f"{_LINEAR[mode]}D input")
    if align_corners is not None and mode not in _LINEAR:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    nd = input.ndim - 2
    ins = tuple(input.shape[2:])
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        out = tuple(int(s) for s in _spatial(size, nd, "output size", input.shape))
        scales = (None,) * nd
    elif scale_factor is not None:
        sf = tuple(float(s) for s in _spatial(scale_factor, nd, "scale_factor", input.shape))
        out = tuple(int(math.floor(n * s)) for n, s in zip(ins, sf))
        scales = (None,) * nd if recompute_scale_factor else tuple(1.0 / s for s in sf)
    else:
        raise ValueError("either size or scale_factor should be defined")
    if min(ins + out) <= 0:
        raise ShapeError(f"Input and output sizes should be greater than 0, but got input "
                         f"{list(ins)} and output {list(out)}")
    x = input
    for i, (n, m, scale) in enumerate(zip(ins, out, scales)):
        d = 2 + i
        if mode in ("nearest", "nearest-exact"):
            x = _gather_weighted(x, d, _nearest_taps(n, m, scale, mode != "nearest"), None)
        elif mode == "area":
            idx, valid, count = _adaptive_taps(n, m)
            x = _gather_weighted(x, d, idx, valid / count[:, None])
        elif mode == "bicubic":
            x = _gather_weighted(x, d, *_cubic_taps(n, m, scale, bool(align_corners)))
        else:
            x = _gather_weighted(x, d, *_linear_taps(n, m, scale, bool(align_corners)))
    return x


def upsample(input, size=None, scale_factor=None, mode: str = "nearest",  # noqa: A002
             align_corners: bool | None = None):
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None):  # noqa: A002
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None):  # noqa: A002
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


def _check_factor(r: int, name: str, op: str) -> None:
    if r <= 0:
        raise ValueError(f"{op}: {name} must be greater than 0, but got: {r}")


def pixel_shuffle(input, upscale_factor: int):  # noqa: A002
    """(*, C r^2, H, W) to (*, C, H r, W r).

    >>> import jitgrad
    >>> jitgrad.nn.functional.pixel_shuffle(jitgrad.ones(1, 8, 2, 3), 2).shape
    jitgrad.Size([1, 2, 4, 6])
    """
    r = int(upscale_factor)
    _check_factor(r, "upscale_factor", "pixel_shuffle")
    if input.ndim < 3:
        raise ShapeError(f"pixel_shuffle expects input to have at least 3 dimensions, but got "
                         f"input with {input.ndim} dimension(s)")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ShapeError(f"pixel_shuffle expects its input's 'channel' dimension to be "
                         f"divisible by the square of upscale_factor, but input.size(-3)={c} "
                         f"is not divisible by {r * r}")
    b = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(b), b, b + 3, b + 1, b + 4, b + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor: int):  # noqa: A002
    """(*, C, H r, W r) to (*, C r^2, H, W), the inverse of ``pixel_shuffle``.

    >>> import jitgrad
    >>> jitgrad.nn.functional.pixel_unshuffle(jitgrad.ones(1, 2, 4, 6), 2).shape
    jitgrad.Size([1, 8, 2, 3])
    """
    r = int(downscale_factor)
    _check_factor(r, "downscale_factor", "pixel_unshuffle")
    if input.ndim < 3:
        raise ShapeError(f"pixel_unshuffle expects input to have at least 3 dimensions, but "
                         f"got input with {input.ndim} dimension(s)")
    *lead, c, h, w = input.shape
    if h % r or w % r:
        raise ShapeError(f"pixel_unshuffle expects height ({h}) and width ({w}) to be "
                         f"divisible by downscale_factor ({r})")
    b = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(b), b, b + 2, b + 4, b + 1, b + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(input, groups: int):  # noqa: A002
    """Interleave the channels (dim 1) of ``groups`` groups.

    >>> import jitgrad
    >>> x = jitgrad.arange(4.0).reshape(1, 4, 1)
    >>> jitgrad.nn.functional.channel_shuffle(x, 2).reshape(-1).tolist()
    [0.0, 2.0, 1.0, 3.0]
    """
    if groups <= 0:
        raise ValueError(f"Number of groups to divide channels in must be positive. Value of "
                         f"groups:{groups}")
    n, c, *rest = input.shape
    if c % groups:
        raise ShapeError(f"Number of channels must be divisible by groups. Got {c} channels "
                         f"and {groups} groups.")
    x = input.reshape(n, groups, c // groups, *rest).transpose(1, 2)
    return x.reshape(n, c, *rest)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):  # noqa: A002
    """Sliding blocks of (N, C, H, W) (or unbatched (C, H, W)) as columns:
    (N, C * kh * kw, L), L the number of blocks.

    >>> import jitgrad
    >>> jitgrad.nn.functional.unfold(jitgrad.ones(1, 2, 4, 4), 2).shape
    jitgrad.Size([1, 8, 9])
    """
    from jitgrad.nn._sliding import _pair, _windows
    if input.ndim == 3:
        return unfold(input.unsqueeze(0), kernel_size, dilation, padding, stride).squeeze(0)
    if input.ndim != 4:
        raise NotImplementedError(f"Input Error: Only 3D or 4D input Tensors are supported "
                                  f"(got {input.ndim}D)")
    k = _pair(kernel_size, "kernel_size")
    win, (oh, ow) = _windows(input, k, _pair(stride, "stride"), _pair(padding, "padding"),
                             _pair(dilation, "dilation"), 0.0, "unfold")
    n, c = input.shape[:2]
    return win.permute(3, 4, 0, 1, 2).reshape(n, c * k[0] * k[1], oh * ow)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):  # noqa: A002
    """The adjoint of ``unfold``: sums (N, C * kh * kw, L) blocks into (N, C, H, W)
    (overlaps add up).

    >>> import jitgrad
    >>> cols = jitgrad.ones(1, 4, 4)
    >>> jitgrad.nn.functional.fold(cols, (3, 3), 2)[0, 0].tolist()
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    from jitgrad.nn._sliding import _pair
    if input.ndim == 2:
        return fold(input.unsqueeze(0), output_size, kernel_size, dilation, padding,
                    stride).squeeze(0)
    if input.ndim != 3:
        raise NotImplementedError(f"Input Error: Only unbatched (2D) or batched (3D) input "
                                  f"Tensors are supported (got {input.ndim}D)")
    (h, w), (kh, kw) = _pair(output_size, "output_size"), _pair(kernel_size, "kernel_size")
    (dh, dw), (ph, pw) = _pair(dilation, "dilation"), _pair(padding, "padding")
    sh, sw = _pair(stride, "stride")
    n, ck, length = input.shape
    if ck % (kh * kw):
        raise ShapeError(f"Expected size of input's dimension 1 to be divisible by the product "
                         f"of kernel_size, but got input.size(1)={ck} and "
                         f"kernel_size={(kh, kw)}")
    hp, wp = h + 2 * ph, w + 2 * pw
    oh, ow = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1 or oh * ow != length:
        raise ShapeError(f"Given output_size={(h, w)}, kernel_size={(kh, kw)}, "
                         f"dilation={(dh, dw)}, padding={(ph, pw)}, stride={(sh, sw)}, expected "
                         f"size of input's dimension 2 to match the calculated number of "
                         f"sliding blocks {oh} * {ow} = {oh * ow}, but got "
                         f"input.size(2)={length}.")
    c = ck // (kh * kw)
    rows = (np.arange(kh) * dh)[:, None, None, None] + (np.arange(oh) * sh)[None, None, :, None]
    cols = (np.arange(kw) * dw)[None, :, None, None] + (np.arange(ow) * sw)[None, None, None, :]
    flat = (rows * wp + cols).reshape(-1)  # (kh, kw, oh, ow) -> a place in the padded plane
    at = factories.tensor(np.broadcast_to(flat, (n, c, flat.size)).astype(np.int64))
    out = factories.zeros(n, c, hp * wp, dtype=input.dtype)
    out = out.scatter_add(2, at, input.reshape(n, c, kh * kw * length))
    out = out.reshape(n, c, hp, wp)
    return ops.narrow(ops.narrow(out, 2, ph, h), 3, pw, w) if ph or pw else out


# --- Modules ---------------------------------------------------------------------------------

class Upsample(Module):
    """``torch.nn.Upsample``.

    >>> import jitgrad
    >>> up = jitgrad.nn.Upsample(scale_factor=2)
    >>> up, up(jitgrad.ones(1, 1, 3)).shape
    (Upsample(scale_factor=2.0, mode='nearest'), jitgrad.Size([1, 1, 6]))
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None) -> None:
        super().__init__()
        self.size = size
        if isinstance(scale_factor, (tuple, list)):
            self.scale_factor = tuple(float(s) for s in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor is not None else None
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):  # noqa: A002
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           self.recompute_scale_factor)

    def extra_repr(self) -> str:
        info = (f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None
                else f"size={self.size!r}")
        return f"{info}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


class PixelShuffle(Module):
    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):  # noqa: A002
        return pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):  # noqa: A002
        return pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class ChannelShuffle(Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input):  # noqa: A002
        return channel_shuffle(input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class Unfold(Module):
    def __init__(self, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, input):  # noqa: A002
        return unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Fold(Unfold):
    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__(kernel_size, dilation, padding, stride)
        self.output_size = output_size

    def forward(self, input):  # noqa: A002
        return fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                    self.stride)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, " + super().extra_repr()
