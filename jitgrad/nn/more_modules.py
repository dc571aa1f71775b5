"""torch's ``Unflatten``, ``Conv3d`` and ``ConvTranspose3d`` Modules, over the functions jitgrad
already has (``Tensor.unflatten``, ``conv3d``, ``conv_transpose3d``).

>>> import jitgrad
>>> jitgrad.nn.Unflatten(1, (2, -1))(jitgrad.ones(4, 6)).shape
jitgrad.Size([4, 2, 3])
>>> jitgrad.nn.Conv3d(1, 2, 3, padding=1)(jitgrad.ones(1, 1, 4, 4, 4)).shape
jitgrad.Size([1, 2, 4, 4, 4])
"""

from __future__ import annotations

from jitgrad.devices import check_host
from jitgrad.nn.conv import _ConvNd
from jitgrad.nn.conv_transpose import _ConvTransposeNd, _tuple
from jitgrad.nn.module import Module
from jitgrad.nn.pad import pad
from jitgrad.ops.scatter_more import conv3d, conv_transpose3d


class Unflatten(Module):
    """``torch.nn.Unflatten``: dim ``dim`` split into ``unflattened_size`` (one entry may be
    -1), the inverse of ``Flatten``.

    >>> import jitgrad
    >>> jitgrad.nn.Unflatten(-1, [2, 3])
    Unflatten(dim=-1, unflattened_size=[2, 3])
    """

    def __init__(self, dim: int, unflattened_size) -> None:
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(f"unflattened_size must be a tuple of ints, but found type "
                            f"{type(unflattened_size).__name__}")
        for idx, elem in enumerate(unflattened_size):
            if not isinstance(elem, int):
                raise TypeError(f"unflattened_size must be tuple of ints, but found element of "
                                f"type {type(elem).__name__} at pos {idx}")
        self.dim, self.unflattened_size = dim, unflattened_size

    def forward(self, input):  # noqa: A002
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class Conv3d(_ConvNd):
    """``torch.nn.Conv3d`` over (N, C, D, H, W) or unbatched (C, D, H, W).

    >>> import jitgrad
    >>> jitgrad.nn.Conv3d(2, 4, 3, stride=2, bias=False)
    Conv3d(2, 4, kernel_size=(3, 3, 3), stride=(2, 2, 2), bias=False)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        check_host(device)
        kernel = _tuple(kernel_size, 3, "kernel_size")
        stride, dilation = _tuple(stride, 3, "stride"), _tuple(dilation, 3, "dilation")
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "{'valid', 'same'}")
            if padding == "same" and stride != (1, 1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
        else:
            padding = _tuple(padding, 3, "padding")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {set(_PADDING_MODES)}, but got "
                             f"padding_mode='{padding_mode}'")
        super().__init__(in_channels, out_channels, kernel, stride, padding, dilation, groups,
                         bias, dtype)
        self.padding_mode = padding_mode
        # F.pad's amounts for a padding_mode other than zeros: last dim first, as torch's
        if isinstance(padding, str):
            totals = [d * (k - 1) if padding == "same" else 0 for d, k in zip(dilation, kernel)]
            per_dim = [(t // 2, t - t // 2) for t in totals]  # the odd one after, as torch
        else:
            per_dim = [(a, a) for a in padding]
        self._reversed_padding_repeated_twice = tuple(a for two in reversed(per_dim) for a in two)

    def forward(self, input):  # noqa: A002
        if self.padding_mode != "zeros":
            return conv3d(pad(input, self._reversed_padding_repeated_twice,
                              mode=self.padding_mode),
                          self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return conv3d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.padding_mode == "zeros" else s + f", padding_mode={self.padding_mode}"


class ConvTranspose3d(_ConvTransposeNd):
    """``torch.nn.ConvTranspose3d``.

    >>> import jitgrad
    >>> jitgrad.nn.ConvTranspose3d(2, 4, 3, stride=2)(jitgrad.ones(1, 2, 2, 2, 2)).shape
    jitgrad.Size([1, 4, 5, 5, 5])
    """

    _n = 3

    def forward(self, input, output_size=None):  # noqa: A002
        return conv_transpose3d(input, self.weight, self.bias, self.stride, self.padding,
                                self._output_padding(input, output_size), self.groups,
                                self.dilation)
