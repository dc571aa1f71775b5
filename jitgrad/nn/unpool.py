"""``max_unpool1d/2d/3d`` and their Modules: the partial inverse of ``max_pool`` with
``return_indices=True``. Each value is written at its index into the flattened output plane of
its (batch, channel): a ``scatter`` onto zeros, so it differentiates (the gradient is the
gather at the same indices, as torch's) and compiles with nothing to register.

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> x = jitgrad.tensor([[[1.0, 5.0, 3.0, 2.0]]])
>>> out, idx = F.max_pool1d(x, 2, return_indices=True)
>>> F.max_unpool1d(out, idx, 2)
tensor([[[0., 5., 3., 0.]]])
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes, factories
from jitgrad.nn.module import Module
from jitgrad.nn.pooling import _tuple
from jitgrad.tensor import Tensor


def _output_size(spatial, k, s, p, output_size, d: int) -> tuple:
    """torch's ``_unpool_output_size``: the inverse of pooling's size, or ``output_size``
    (spatial sizes, or with the batch and channel sizes in front) within a stride of it."""
    default = tuple((spatial[i] - 1) * s[i] + k[i] - 2 * p[i] for i in range(d))
    if output_size is None:
        return default
    size = tuple(int(v) for v in output_size)
    if len(size) == d + 2:
        size = size[2:]
    if len(size) != d:
        raise ValueError(f"output_size should be a sequence containing {d} or {d + 2} "
                         f"elements, but it has a length of '{len(size)}'")
    for i in range(d):
        lo, hi = default[i] - s[i], default[i] + s[i]
        if not lo < size[i] < hi:
            raise ValueError(f'invalid output_size "{size}" (dim {i} must be between {lo} '
                             f"and {hi})")
    return size


def _max_unpool(x, indices, kernel_size, stride, padding, output_size, d: int):
    name = f"max_unpool{d}d"
    if not isinstance(x, Tensor) or not isinstance(indices, Tensor):
        raise TypeError(f"{name}(): input and indices must be Tensors")
    if x.ndim not in (d + 1, d + 2):
        raise RuntimeError(f"{name}: Input to max_unpooling{d}d should be a {d + 1}d or "
                           f"{d + 2}d Tensor, but got a tensor with {x.ndim} dimensions.")
    if indices.dtype is not dtypes.int64:
        raise RuntimeError(f"{name}: elements in indices should be type int64 but got: "
                           f"{indices.dtype.name}")
    if tuple(indices.shape) != tuple(x.shape):
        raise RuntimeError(f"{name}: Expected shape of indices to be same as that of the "
                           f"input tensor ({tuple(x.shape)}) but got indices tensor with "
                           f"shape: {tuple(indices.shape)}")
    k = _tuple(kernel_size, d, "kernel_size")
    s = _tuple(stride if stride is not None else kernel_size, d, "stride")
    p = _tuple(padding, d, "padding")
    size = _output_size(tuple(x.shape[-d:]), k, s, p, output_size, d)
    lead = tuple(x.shape[:-d])
    numel = int(np.prod(size, dtype=np.int64))
    iv = indices._value  # (known eagerly and while tracing: a bad index is the caller's bug)
    if iv is not None and iv.size and (iv.min() < 0 or iv.max() >= numel):
        bad = int(iv[(iv < 0) | (iv >= numel)].flat[0])
        raise RuntimeError(f"{name}: Found an invalid max index: {bad} (output volumes are "
                           f"of size {'x'.join(str(v) for v in size)})")
    flat = factories.zeros(*lead, numel, dtype=x.dtype)
    flat = flat.scatter(-1, indices.reshape(*lead, -1), x.reshape(*lead, -1))
    return flat.reshape(*lead, *size)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0,  # noqa: A002
                 output_size=None):
    """The (N, C, L) or (C, L) ``input`` written at ``indices`` (``max_pool1d``'s) of a
    zero output of length ``(L - 1) * stride - 2 * padding + kernel_size`` (or
    ``output_size``)."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0,  # noqa: A002
                 output_size=None):
    """``max_unpool1d`` over the last two dimensions.

    >>> import jitgrad
    >>> import jitgrad.nn.functional as F
    >>> out, idx = F.max_pool2d(jitgrad.arange(16.0).reshape(1, 1, 4, 4), 2, return_indices=True)
    >>> F.max_unpool2d(out, idx, 2)[0, 0]
    tensor([[ 0.,  0.,  0.,  0.],
            [ 0.,  5.,  0.,  7.],
            [ 0.,  0.,  0.,  0.],
            [ 0., 13.,  0., 15.]])
    """
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0,  # noqa: A002
                 output_size=None):
    """``max_unpool1d`` over the last three dimensions."""
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3)


class _MaxUnpoolNd(Module):
    _d = 0  # the number of spatial dimensions

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        d = self._d
        self.kernel_size = _tuple(kernel_size, d, "kernel_size")
        self.stride = _tuple(stride if stride is not None else kernel_size, d, "stride")
        self.padding = _tuple(padding, d, "padding")

    def forward(self, input, indices, output_size=None):  # noqa: A002
        return _max_unpool(input, indices, self.kernel_size, self.stride, self.padding,
                           output_size, self._d)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """``max_unpool1d`` as a Module.

    >>> import jitgrad
    >>> jitgrad.nn.MaxUnpool1d(2)
    MaxUnpool1d(kernel_size=(2,), stride=(2,), padding=(0,))
    """

    _d = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """``max_unpool2d`` as a Module.

    >>> import jitgrad
    >>> jitgrad.nn.MaxUnpool2d(2)
    MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))
    """

    _d = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """``max_unpool3d`` as a Module.

    >>> import jitgrad
    >>> jitgrad.nn.MaxUnpool3d(2, stride=1)
    MaxUnpool3d(kernel_size=(2, 2, 2), stride=(1, 1, 1), padding=(0, 0, 0))
    """

    _d = 3
