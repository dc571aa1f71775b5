"""Fractional max pooling (Graham, "Fractional Max-Pooling", 2014) as torch's:
``fractional_max_pool2d``/``fractional_max_pool3d`` (and their ``_with_indices`` forms) and the
``FractionalMaxPool2d``/``FractionalMaxPool3d`` Modules.

Each (sample, channel) plane is pooled by windows of ``kernel_size`` whose starts step
pseudo-randomly from the first element to the last window that fits: ATen's
``generate_intervals``, driven by one number in [0, 1) per plane and spatial dim
(``_random_samples``, of shape (N, C, 2) or (N, C, 3); drawn with jitgrad's generator when not
given, so ``manual_seed`` reproduces them). The windows are then a gather of the input at
constant positions, and the max of each is picked as ``max_pool``'s (``pooling._pick_max``):
the gradient goes to the first largest element of each window, added up where windows overlap,
as torch's.

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> x = jitgrad.arange(25.0).reshape(1, 1, 5, 5).requires_grad_()
>>> u = jitgrad.tensor([[[0.5, 0.5]]])
>>> out, idx = F.fractional_max_pool2d(x, 2, output_size=3, return_indices=True,
...                                    _random_samples=u)
>>> out.tolist()
[[[[6.0, 8.0, 9.0], [16.0, 18.0, 19.0], [21.0, 23.0, 24.0]]]]
>>> idx
tensor([[[[ 6,  8,  9],
          [16, 18, 19],
          [21, 23, 24]]]])
>>> out.sum().backward()
>>> int(x.grad.sum())
9
"""

from __future__ import annotations

import math

import numpy as np

from jitgrad import factories
from jitgrad.errors import TraceError
from jitgrad.nn.module import Module
from jitgrad.nn.pooling import _batched, _pick_max, _tuple

# the spatial dims' names in torch's messages, and which of a plane's samples drives each dim
# (ATen's: a 2-D pool reads sample 0 for the width and 1 for the height; a 3-D pool reads
# 0, 1, 2 for time, height, width)
_NAMES = {2: ("height", "width"), 3: ("time", "height", "width")}
_SAMPLE = {2: (1, 0), 3: (0, 1, 2)}


def _intervals(sample: np.ndarray, n: int, o: int, k: int) -> np.ndarray:
    """ATen's ``generate_intervals`` for an array of samples at once: the starts of ``o``
    windows of length ``k`` along a dim of length ``n``, shape ``sample.shape + (o,)``. The
    arithmetic runs in the samples' precision (float32 for a float32 input), as torch's, so
    that the truncations land on the same integers."""
    seq = np.full(sample.shape + (o,), n - k, dtype=np.int64)
    if o > 1:
        f = sample.dtype.type
        alpha = f(n - k) / f(o - 1)
        i = np.arange(o - 1).astype(sample.dtype)
        u = sample[..., None]
        seq[..., :-1] = ((i + u) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)
    return seq


def _samples(samples, x, nd: int, op: str) -> np.ndarray:
    """The random samples as a NumPy array (N, C, nd), checked as torch checks them."""
    n, c = x.shape[:2]
    if samples is None:
        samples = factories.rand(n, c, nd, dtype=x.dtype)
    if getattr(samples, "_ir", None) is not None:
        raise TraceError(f"{op}() inside a compiled function: where its windows lie depends on "
                         "the values of _random_samples, which compiled code must know in "
                         "advance; pass _random_samples drawn outside, or call it outside")
    if samples.ndim != 3:
        raise RuntimeError(f"Expect _random_samples to have 3 dimensions, got {samples.ndim}")
    if samples.shape[0] < n:
        raise RuntimeError("Expect _random_samples.size(0) no less then input batch size.")
    if samples.shape[1] != c:
        raise RuntimeError("Expect _random_samples.size(1) equals to input channel size.")
    if samples.shape[2] != nd:
        raise RuntimeError(f"Expect _random_samples.size(2) equals to {nd}; got "
                           f"{samples.shape[2]}.")
    if samples.dtype != x.dtype:
        raise RuntimeError("Expect _random_samples to have the same dtype as input")
    return np.asarray(samples._value)[:n]


def _fractional_max_pool(input, nd: int, kernel_size, output_size, output_ratio,  # noqa: A002
                         return_indices: bool, samples, op: str):
    x, unbatched = _batched(input, nd, op)
    k = _tuple(kernel_size, nd, "kernel_size")
    if min(k) <= 0:
        raise RuntimeError(f"{op}(): kernel size should be greater than zero, but got "
                           + "x".join(map(str, k)))
    if output_size is None and output_ratio is None:
        raise ValueError(f"{op} requires specifying either an output_size or an output_ratio")
    sizes = tuple(x.shape[2:])
    if output_size is None:
        outs = tuple(int(n * r) for n, r in zip(sizes, _tuple(output_ratio, nd, "output_ratio", float)))
    else:
        outs = _tuple(output_size, nd, "output_size")
    if not x.dtype.is_floating_point:
        raise NotImplementedError(f"{op}(): expected a floating point input, got {x.dtype}")
    lead = input.ndim - nd - 1  # the channel dim of ``input``
    for i in range(lead, input.ndim):
        if input.shape[i] == 0:
            raise RuntimeError(f"{op}(): Expected input to have non-zero size for non-batch "
                               f"dimensions, but got {list(input.shape)} with dimension {i} "
                               "being empty.")
    if min(outs) < 0:
        raise RuntimeError(f"{op}(): output_size must be non-negative, got {list(outs)}")
    for name, n, o, ki in zip(_NAMES[nd], sizes, outs, k):
        # ATen's 3-D check is strict (o + k - 1 < n), its 2-D one is not: kept as torch's
        if (o + ki - 1 >= n) if nd == 3 else (o + ki - 1 > n):
            raise RuntimeError(f"{op}(): pool {name} {ki} too large relative to input {name} {n}")
    u = _samples(samples, x, nd, op)
    batch, chans = x.shape[:2]
    # each window element's place in its plane: (N, C, o_1, ..., o_nd, k_1 * ... * k_nd)
    flat = np.zeros((batch, chans) + (1,) * (2 * nd), dtype=np.int64)
    stride = 1
    for i in reversed(range(nd)):
        pos = _intervals(u[..., _SAMPLE[nd][i]], sizes[i], outs[i], k[i])[..., None] + \
            np.arange(k[i])
        if pos.size and (pos.min() < 0 or pos.max() >= sizes[i]):
            raise RuntimeError(f"{op}(): _random_samples put a window outside the input's "
                               f"{_NAMES[nd][i]}; the samples must lie in [0, 1)")
        shape = [batch, chans] + [1] * (2 * nd)
        shape[2 + i], shape[2 + nd + i] = outs[i], k[i]
        flat = flat + pos.reshape(shape) * stride
        stride *= sizes[i]
    flat = np.broadcast_to(flat, (batch, chans, *outs, *k)).reshape(
        batch, chans, *outs, math.prod(k))
    # one gather on the leading dim of the flattened input, each plane offset by its start
    planes = (np.arange(batch * chans, dtype=np.int64) * stride).reshape(
        (batch, chans) + (1,) * (nd + 1))
    at = factories.tensor((flat + planes).reshape(-1))
    win = x.reshape(-1)[at].reshape(*flat.shape)
    out, idx = _pick_max(win, flat)
    if unbatched:
        out, idx = out.squeeze(0), idx.squeeze(0)
    return (out, idx) if return_indices else out


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,  # noqa: A002
                          return_indices: bool = False, _random_samples=None):
    """2-D fractional max pooling of (N, C, H, W) or (C, H, W) to ``output_size`` (or
    ``output_ratio`` times the input's size) by ``kernel_size`` windows; with
    ``return_indices``, also each max's index in its flattened H * W plane.

    >>> import jitgrad
    >>> x = jitgrad.randn(2, 3, 9, 8)
    >>> jitgrad.nn.functional.fractional_max_pool2d(x, 2, output_ratio=0.5).shape
    jitgrad.Size([2, 3, 4, 4])
    """
    return _fractional_max_pool(input, 2, kernel_size, output_size, output_ratio,
                                return_indices, _random_samples, "fractional_max_pool2d")


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None,  # noqa: A002
                          return_indices: bool = False, _random_samples=None):
    """3-D fractional max pooling of (N, C, T, H, W) or (C, T, H, W); as
    ``fractional_max_pool2d``, with indices into the flattened T * H * W volume.

    >>> import jitgrad
    >>> x = jitgrad.randn(3, 6, 7, 8)
    >>> jitgrad.nn.functional.fractional_max_pool3d(x, 2, output_size=(3, 4, 5)).shape
    jitgrad.Size([3, 3, 4, 5])
    """
    return _fractional_max_pool(input, 3, kernel_size, output_size, output_ratio,
                                return_indices, _random_samples, "fractional_max_pool3d")


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None,  # noqa: A002
                                       output_ratio=None, return_indices: bool = False,
                                       _random_samples=None):
    """``fractional_max_pool2d(..., return_indices=True)``: ``(values, indices)``."""
    return fractional_max_pool2d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples)


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None,  # noqa: A002
                                       output_ratio=None, return_indices: bool = False,
                                       _random_samples=None):
    """``fractional_max_pool3d(..., return_indices=True)``: ``(values, indices)``."""
    return fractional_max_pool3d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples)


class FractionalMaxPool2d(Module):
    """``torch.nn.FractionalMaxPool2d``: ``fractional_max_pool2d`` with fixed arguments; a
    ``_random_samples`` given here is a buffer, used at every call (else each call draws).

    >>> import jitgrad
    >>> pool = jitgrad.nn.FractionalMaxPool2d(3, output_ratio=(0.5, 0.5))
    >>> pool(jitgrad.randn(1, 2, 10, 12)).shape
    jitgrad.Size([1, 2, 5, 6])
    """

    _nd = 2
    _fn = staticmethod(fractional_max_pool2d)

    def __init__(self, kernel_size, output_size=None, output_ratio=None,
                 return_indices: bool = False, _random_samples=None) -> None:
        super().__init__()
        nd, name = self._nd, type(self).__name__
        self.kernel_size = _tuple(kernel_size, nd, "kernel_size")
        if nd == 3 and min(self.kernel_size) <= 0:
            raise ValueError(f"kernel_size must be greater than 0, but got {kernel_size}")
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.output_size = _tuple(output_size, nd, "output_size") \
            if output_size is not None else None
        self.output_ratio = _tuple(output_ratio, nd, "output_ratio", float) \
            if output_ratio is not None else None
        if output_size is None and output_ratio is None:
            raise ValueError(f"{name} requires specifying either an output size, or a pooling "
                             "ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None and not all(0 < r < 1 for r in self.output_ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input):  # noqa: A002
        return type(self)._fn(input, self.kernel_size, self.output_size, self.output_ratio,
                              self.return_indices, _random_samples=self._random_samples)


class FractionalMaxPool3d(FractionalMaxPool2d):
    """``torch.nn.FractionalMaxPool3d``.

    >>> import jitgrad
    >>> jitgrad.nn.FractionalMaxPool3d(2, output_size=(3, 4, 5)).output_size
    (3, 4, 5)
    """

    _nd = 3
    _fn = staticmethod(fractional_max_pool3d)
