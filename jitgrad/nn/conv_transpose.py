"""Transposed convolution as torch's ``conv_transpose1d``/``conv_transpose2d`` and their
Modules. A transposed convolution is the gradient of a convolution with respect to its input;
written forward, it is a plain ``conv2d`` of the input spread out by ``stride`` (zeros between
its elements), padded by ``dilation * (k - 1) - padding`` (a negative amount crops), with the
kernel flipped and its in/out channels swapped within each group.

>>> import jitgrad
>>> up = jitgrad.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1)
>>> up(jitgrad.ones(1, 2, 4, 4)).shape
jitgrad.Size([1, 3, 8, 8])
"""

from __future__ import annotations


import numpy as np

from jitgrad import factories, ops
from jitgrad.errors import ShapeError
from jitgrad.ops.scatter_more import check_transposed
from jitgrad.nn import init
from jitgrad.nn.conv import conv2d
from jitgrad.nn.module import Module
from jitgrad.nn.pad import pad
from jitgrad.nn.parameter import Parameter


def _tuple(v, n: int, name: str) -> tuple:
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    v = tuple(int(a) for a in v)
    if len(v) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v}")
    return v


def _spread(x, dim: int, s: int):
    """Insert ``s - 1`` zeros between the elements of ``x`` along ``dim``."""
    if s == 1 or x.shape[dim] == 0:
        return x
    n = x.shape[dim]
    z = factories.zeros(*x.shape[:dim + 1], s - 1, *x.shape[dim + 1:], dtype=x.dtype)
    y = ops.cat([x.unsqueeze(dim + 1), z], dim + 1)
    y = y.reshape(*x.shape[:dim], n * s, *x.shape[dim + 1:])
    return ops.narrow(y, dim, 0, (n - 1) * s + 1)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0,  # noqa: A002
                     output_padding=0, groups: int = 1, dilation=1):
    """Transposed 2-D convolution of (N, C, H, W) or (C, H, W) with ``weight``
    (C, OC / groups, KH, KW)."""
    if input.ndim == 3 and weight.ndim == 4:
        return conv_transpose2d(input.unsqueeze(0), weight, bias, stride, padding,
                                output_padding, groups, dilation).squeeze(0)
    if input.ndim != 4 or weight.ndim != 4:
        raise ShapeError(f"conv_transpose2d: expected a 3-D (unbatched) or 4-D (batched) input "
                         f"and a 4-D weight, got shapes {list(input.shape)} and "
                         f"{list(weight.shape)}")
    s, p = _tuple(stride, 2, "stride"), _tuple(padding, 2, "padding")
    op, d = _tuple(output_padding, 2, "output_padding"), _tuple(dilation, 2, "dilation")
    check_transposed("conv_transpose2d", input, weight, groups, s, p, op, d)
    cin, og, kh, kw = weight.shape
    x = _spread(_spread(input, 2, s[0]), 3, s[1])
    eh, ew = d[0] * (kh - 1) - p[0], d[1] * (kw - 1) - p[1]
    x = pad(x, (ew, ew + op[1], eh, eh + op[0]))
    # (C, OC/g, KH, KW) -> (OC, C/g, KH, KW), flipped in space
    w = weight.reshape(groups, cin // groups, og, kh, kw).transpose(1, 2)
    w = w.reshape(groups * og, cin // groups, kh, kw).flip((2, 3))
    return conv2d(x, w, bias, 1, 0, d, groups)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0,  # noqa: A002
                     output_padding=0, groups: int = 1, dilation=1):
    """Transposed 1-D convolution of (N, C, L) or (C, L) with ``weight`` (C, OC / groups, K).

    >>> import jitgrad
    >>> x, w = jitgrad.tensor([[[1.0, 2.0]]]), jitgrad.tensor([[[1.0, 1.0]]])
    >>> jitgrad.nn.functional.conv_transpose1d(x, w, stride=2).tolist()
    [[[1.0, 1.0, 2.0, 2.0]]]
    """
    if input.ndim == 2 and weight.ndim == 3:
        return conv_transpose1d(input.unsqueeze(0), weight, bias, stride, padding,
                                output_padding, groups, dilation).squeeze(0)
    if input.ndim != 3 or weight.ndim != 3:
        raise ShapeError(f"conv_transpose1d: expected a 2-D (unbatched) or 3-D (batched) input "
                         f"and a 3-D weight, got shapes {list(input.shape)} and "
                         f"{list(weight.shape)}")
    one = lambda v, name: (1,) + _tuple(v, 1, name)  # noqa: E731
    zero = lambda v, name: (0,) + _tuple(v, 1, name)  # noqa: E731
    out = conv_transpose2d(input.unsqueeze(2), weight.unsqueeze(2), bias, one(stride, "stride"),
                           zero(padding, "padding"), zero(output_padding, "output_padding"),
                           groups, one(dilation, "dilation"))
    return out.squeeze(2)


class _ConvTransposeNd(Module):
    _n = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__()
        n = self._n
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for '
                             f'{type(self).__name__}')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _tuple(kernel_size, n, "kernel_size")
        self.stride, self.padding = _tuple(stride, n, "stride"), _tuple(padding, n, "padding")
        self.output_padding = _tuple(output_padding, n, "output_padding")
        self.dilation, self.groups = _tuple(dilation, n, "dilation"), groups
        self.padding_mode = padding_mode
        self.weight = Parameter(factories.empty(in_channels, out_channels // groups,
                                                *self.kernel_size, dtype=dtype))
        self.bias = Parameter(factories.empty(out_channels, dtype=dtype)) if bias else None
        # (torch's: fan_in is read from the weight's dim 1, out / groups here)
        init._default_(self.weight, self.bias)

    def _output_padding(self, input, output_size) -> tuple:
        if output_size is None:
            return self.output_padding
        n = self._n
        want = tuple(int(v) for v in output_size)[-n:]
        pad_out = []
        for i in range(n):
            size = input.shape[input.ndim - n + i]
            base = ((size - 1) * self.stride[i] - 2 * self.padding[i]
                    + self.dilation[i] * (self.kernel_size[i] - 1) + 1)
            extra = want[i] - base
            if not 0 <= extra < max(self.stride[i], self.dilation[i]):
                raise ValueError(f"requested an output size of {list(want)}, but valid sizes "
                                 f"range from {base} to "
                                 f"{base + max(self.stride[i], self.dilation[i]) - 1} "
                                 f"(for an input of {list(input.shape[2:])})")
            pad_out.append(extra)
        return tuple(pad_out)

    def extra_repr(self) -> str:
        n = self._n
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        return s + (", bias=False" if self.bias is None else "")


class ConvTranspose2d(_ConvTransposeNd):
    _n = 2

    def forward(self, input, output_size=None):  # noqa: A002
        return conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                self._output_padding(input, output_size), self.groups,
                                self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """``torch.nn.ConvTranspose1d``.

    >>> import jitgrad
    >>> jitgrad.nn.ConvTranspose1d(2, 4, 3, stride=2)
    ConvTranspose1d(2, 4, kernel_size=(3,), stride=(2,))
    """

    _n = 1

    def forward(self, input, output_size=None):  # noqa: A002
        return conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                self._output_padding(input, output_size), self.groups,
                                self.dilation)
