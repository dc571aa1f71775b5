"""Convolution and pooling, as torch's: ``conv1d``/``conv2d`` (stride, padding, dilation,
groups) and ``max_pool2d``/``avg_pool2d``, with their Modules. Each is an im2col: one gather of
every window's elements (by an index computed from the shapes, a constant of the trace) and a
matrix product (BLAS) or a reduction over the window, so it runs eagerly, differentiates, and
compiles with the rest of a model.

>>> import jitgrad
>>> conv = jitgrad.nn.Conv2d(1, 2, 3, padding=1)
>>> conv(jitgrad.ones(4, 1, 8, 8)).shape
jitgrad.Size([4, 2, 8, 8])
"""

from __future__ import annotations

import math

import numpy as np

from jitgrad import factories, ops
from jitgrad.errors import ShapeError
from jitgrad.nn import init
from jitgrad.nn._sliding import (  # noqa: F401  (nn.conv's names)
    _first_valid, _max_place, _pair, _positions, _stride, _windows)
from jitgrad.nn.module import Module
from jitgrad.nn.parameter import Parameter


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1,  # noqa: A002
           groups: int = 1):
    """2-D convolution (cross-correlation, as torch) of ``input`` (N, C, H, W), or unbatched
    (C, H, W), with ``weight`` (OC, C / groups, KH, KW)."""
    if input.ndim == 3 and weight.ndim == 4:  # unbatched: a batch of one, as torch
        return conv2d(input.unsqueeze(0), weight, bias, stride, padding, dilation,
                      groups).squeeze(0)
    if input.ndim != 4 or weight.ndim != 4:
        raise ShapeError(f"conv2d: expected a 3-D (unbatched) or 4-D (batched) input and a 4-D "
                         f"weight, got shapes {list(input.shape)} and {list(weight.shape)}")
    n, c = input.shape[:2]
    oc, cg, kh, kw = weight.shape
    if groups < 1 or c % groups or oc % groups or cg * groups != c:
        raise ShapeError(f"conv2d: weight of shape {list(weight.shape)} with groups={groups} "
                         f"expects input to have {cg * groups} channels, but got {c} channels "
                         f"(input shape {list(input.shape)})")
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if _pair(stride, "stride") != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            d = _pair(dilation, "dilation")
            if (d[0] * (kh - 1)) % 2 or (d[1] * (kw - 1)) % 2:
                raise ValueError("padding='same' needs an odd dilated kernel here")
            padding = (d[0] * (kh - 1) // 2, d[1] * (kw - 1) // 2)
        else:
            raise ValueError(f"invalid padding string {padding!r}: use 'valid' or 'same'")
    win, (oh, ow) = _windows(input, (kh, kw), _pair(stride, "stride"), _pair(padding, "padding"),
                             _pair(dilation, "dilation"), 0.0, "conv2d")
    # (N, OH, OW, C, KH*KW): each output position's window, channels first
    cols = win.permute(3, 1, 2, 4, 0)
    og = oc // groups
    outs = []
    for k in range(groups):
        part = cols[:, :, :, k * cg:(k + 1) * cg].reshape(n * oh * ow, cg * kh * kw)
        outs.append(part @ weight[k * og:(k + 1) * og].reshape(og, cg * kh * kw).permute(1, 0))
    out = outs[0] if groups == 1 else ops.cat(outs, 1)
    # torch's convolution output is row-major (N, C, H, W): view(-1, ...) of it works.
    out = out.reshape(n, oh, ow, oc).permute(0, 3, 1, 2).contiguous()
    return out if bias is None else out + bias.reshape(1, oc, 1, 1)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1,  # noqa: A002
           groups: int = 1):
    """1-D convolution of ``input`` (N, C, L), or unbatched (C, L), with ``weight``
    (OC, C / groups, K)."""
    if input.ndim == 2 and weight.ndim == 3:  # unbatched: a batch of one, as torch
        return conv1d(input.unsqueeze(0), weight, bias, stride, padding, dilation,
                      groups).squeeze(0)
    if input.ndim != 3 or weight.ndim != 3:
        raise ShapeError(f"conv1d: expected a 2-D (unbatched) or 3-D (batched) input and a 3-D "
                         f"weight, got shapes {list(input.shape)} and {list(weight.shape)}")
    one = lambda v: (1, v) if isinstance(v, int) else (1, *v)  # noqa: E731
    if not isinstance(padding, str):
        padding = (0, padding) if isinstance(padding, int) else (0, *padding)
    out = conv2d(input.unsqueeze(2), weight.unsqueeze(2), bias, one(stride), padding,
                 one(dilation), groups)
    return out.squeeze(2)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1,  # noqa: A002
               ceil_mode: bool = False, return_indices: bool = False):
    """The largest element of each window of ``input`` (N, C, H, W) or unbatched (C, H, W);
    the gradient goes to it alone (the first of equal ones, a window's last NaN), as torch's. With
    ``return_indices``, also where each came from: its index in the flattened H * W plane."""
    if input.ndim == 3:  # unbatched: a batch of one, as torch
        out = max_pool2d(input.unsqueeze(0), kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices)
        return (out[0].squeeze(0), out[1].squeeze(0)) if return_indices else out.squeeze(0)
    if input.ndim != 4:
        raise ShapeError(f"max_pool2d: expected a 3-D (unbatched) or 4-D (batched) input, got "
                         f"shape {list(input.shape)}")
    if ceil_mode or return_indices:  # windows past the edge, where each max came from
        from jitgrad.nn.pooling import _max_pool
        return _max_pool(input, 2, kernel_size, stride, padding, dilation, ceil_mode,
                         return_indices, "max_pool2d")
    k = _pair(kernel_size, "kernel_size")
    p = _pair(padding, "padding")
    s = _pair(_stride(stride, k), "stride")
    d = _pair(dilation, "dilation")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"max_pool2d: pad should be at most half of the effective kernel size, "
                         f"but got pad={p} and kernel_size={k}")
    win, (oh, ow) = _windows(input, k, s, p, d, -math.inf, "max_pool2d")
    n, c = input.shape[:2]
    flat = win.reshape(k[0] * k[1], -1)
    # torch's pick (the gradient goes there): a window's last NaN, if any, and in a window of
    # -inf only its first element inside the input, not the padding
    valid = None
    if p[0] or p[1]:
        # flat's columns run over (oh, ow, n, c)
        valid = np.repeat(_first_valid(_positions((oh, ow), s, k, d, p),
                                       input.shape[2:]).reshape(-1), n * c)
    best = _max_place(flat, 0, valid)
    out = flat[best, factories.arange(flat.shape[1])]
    return out.reshape(oh, ow, n, c).permute(2, 3, 0, 1).contiguous()  # row-major, as torch's


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,  # noqa: A002
               count_include_pad: bool = True, divisor_override=None):
    """The mean of each window of ``input`` (N, C, H, W) or unbatched (C, H, W); zero padding
    counted, as torch's default."""
    if input.ndim == 3:  # unbatched: a batch of one, as torch
        return avg_pool2d(input.unsqueeze(0), kernel_size, stride, padding, ceil_mode,
                          count_include_pad, divisor_override).squeeze(0)
    if ceil_mode or not count_include_pad or divisor_override is not None:
        from jitgrad.nn.pooling import _avg_pool  # windows past the edge, other divisors
        return _avg_pool(input, 2, kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override, "avg_pool2d")
    k = _pair(kernel_size, "kernel_size")
    win, (oh, ow) = _windows(input, k, _pair(_stride(stride, k), "stride"),
                             _pair(padding, "padding"), (1, 1), 0.0, "avg_pool2d")
    return win.mean(0).permute(2, 3, 0, 1).contiguous()  # row-major, as torch's


class _ConvNd(Module):
    def __init__(self, in_channels: int, out_channels: int, kernel, stride, padding, dilation,
                 groups: int, bias: bool, dtype) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must be divisible by groups ({groups})")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel, stride, padding
        self.dilation, self.groups = dilation, groups
        self.weight = Parameter(factories.empty(out_channels, in_channels // groups, *kernel,
                                                dtype=dtype))
        self.bias = Parameter(factories.empty(out_channels, dtype=dtype)) if bias else None
        init._default_(self.weight, self.bias)

    def extra_repr(self) -> str:
        # torch's: settings left at their defaults (no padding, dilation 1, one group) go unsaid
        n = len(self.kernel_size)
        tup = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * n  # noqa: E731
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={tup(self.kernel_size)}, "
             f"stride={tup(self.stride)}")
        if isinstance(self.padding, str):
            s += f", padding={self.padding}"
        elif any(tup(self.padding)):
            s += f", padding={tup(self.padding)}"
        if any(d != 1 for d in tup(self.dilation)):
            s += f", dilation={tup(self.dilation)}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + (", bias=False" if self.bias is None else "")


class Conv2d(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, dtype=None) -> None:
        super().__init__(in_channels, out_channels, _pair(kernel_size, "kernel_size"),
                         _pair(stride, "stride"),
                         padding if isinstance(padding, str) else _pair(padding, "padding"),
                         _pair(dilation, "dilation"), groups, bias, dtype)

    def forward(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)


class Conv1d(_ConvNd):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding=0, dilation: int = 1, groups: int = 1, bias: bool = True,
                 dtype=None) -> None:
        super().__init__(in_channels, out_channels, (int(kernel_size),), int(stride), padding,
                         int(dilation), groups, bias, dtype)

    def forward(self, x):
        return conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.dilation, self.ceil_mode = dilation, ceil_mode
        self.return_indices = return_indices

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        stride = self.kernel_size if self.stride is None else self.stride
        return (f"kernel_size={self.kernel_size}, stride={stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        stride = self.kernel_size if self.stride is None else self.stride
        return f"kernel_size={self.kernel_size}, stride={stride}, padding={self.padding}"
