"""Normalization, embedding and dropout layers, as torch's: ``LayerNorm``, ``BatchNorm1d``,
``Embedding``, ``Dropout``, and their functional forms. Each is made of jitgrad's own ops, so it
runs eagerly and (but for what draws random numbers or updates running statistics, which the
tracer refuses by name) inside compiled functions.

>>> import jitgrad
>>> ln = jitgrad.nn.LayerNorm(4)
>>> ln(jitgrad.arange(8.0).reshape(2, 4)).mean(-1).abs().max().item() < 1e-6
True
"""

from __future__ import annotations

import math

from jitgrad import dtypes, factories, ops
from jitgrad.autograd import grad_mode
from jitgrad.errors import ShapeError
from jitgrad.ops import _layout
from jitgrad.nn import init
from jitgrad.nn.module import Module
from jitgrad.nn.parameter import Parameter


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5):  # noqa: A002
    """Normalize over the last ``len(normalized_shape)`` dims (biased variance), then scale and
    shift."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ShapeError(f"layer_norm: normalized_shape {list(shape)} does not match the last "
                         f"dimensions of the input of shape {list(input.shape)}")
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    input = input.contiguous()  # noqa: A001  (as torch's kernel: its output is row-major)
    mean = input.mean(dim=dims, keepdim=True)
    centered = input - mean
    var = (centered * centered).mean(dim=dims, keepdim=True)
    out = centered / ops.sqrt(var + eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


class LayerNorm(Module):
    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=None) -> None:
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) \
            else tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(factories.ones(*self.normalized_shape, dtype=dtype))
            self.bias = Parameter(factories.zeros(*self.normalized_shape, dtype=dtype)) \
                if bias else None
        else:
            self.weight = self.bias = None

    def forward(self, x):
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None,  # noqa: A002
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5):
    """Normalize each channel (dim 1) by the batch's statistics (training: the running ones are
    updated in place, with the unbiased variance, as torch) or by the running ones. Inputs are
    (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W)."""
    if input.ndim == 1 and input.numel() == 0 and running_mean is not None \
            and running_mean.numel() == 0:
        return input.clone()  # no channels: torch gives the empty input back
    if input.ndim not in (2, 3, 4, 5):
        raise ShapeError(f"batch_norm: expected a 2-D to 5-D input (N, C), (N, C, L), "
                         f"(N, C, H, W) or (N, C, D, H, W), got shape {list(input.shape)}")
    dims = (0,) + tuple(range(2, input.ndim))
    view = (1, -1) + (1,) * (input.ndim - 2)
    if input._value is None or not _layout.channels_last(input._value):
        # torch's output is row-major (a channels-last input's stays channels-last)
        input = input.contiguous()  # noqa: A001
    if training:
        n = input.numel() // input.shape[1]
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got input "
                             f"size {list(input.shape)}")
        mean = input.mean(dim=dims)
        var = ((input - mean.reshape(view)) ** 2).mean(dim=dims)
        if running_mean is not None:
            with grad_mode.no_grad():
                running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
                running_var.mul_(1 - momentum).add_(var.detach() * (momentum * n / (n - 1)))
    else:
        mean, var = running_mean, running_var
    out = (input - mean.reshape(view)) / ops.sqrt(var.reshape(view) + eps)
    if weight is not None:
        out = out * weight.reshape(view)
    if bias is not None:
        out = out + bias.reshape(view)
    return out


class _BatchNorm(Module):
    _dims: tuple = (2, 3)
    _name = "BatchNorm1d"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=None) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(factories.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(factories.zeros(num_features, dtype=dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", factories.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", factories.ones(num_features, dtype=dtype))
            # torch's counter of training batches (in its state dicts; momentum=None averages
            # the statistics of all of them)
            self.register_buffer("num_batches_tracked", factories.tensor(0, dtype=dtypes.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def _prepare_state(self, prefix: str, state: dict) -> None:
        """A checkpoint written before BatchNorm counted its batches (by an earlier jitgrad)
        lacks ``num_batches_tracked``: the module keeps its own count, as torch's load hook
        has it."""
        key = prefix + "num_batches_tracked"
        if self.num_batches_tracked is not None and key not in state and \
                prefix + "running_mean" in state:
            state[key] = self.num_batches_tracked.detach().clone()

    def forward(self, x):
        if x.ndim not in self._dims:
            raise ValueError(f"expected {' or '.join(f'{d}D' for d in self._dims)} input (got "
                             f"{x.ndim}D input)")
        if x.shape[1] != self.num_features:
            raise ShapeError(f"{self._name}({self.num_features}): input has {x.shape[1]} "
                             f"channels (shape {list(x.shape)})")
        training = self.training or self.running_mean is None
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # the running statistics average every batch's
                momentum = 1.0 / float(self.num_batches_tracked)
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          training, momentum, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) inputs, as ``torch.nn.BatchNorm1d``."""


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) inputs over N, H and W, as
    ``torch.nn.BatchNorm2d``.

    >>> import jitgrad
    >>> bn = jitgrad.nn.BatchNorm2d(2)
    >>> bn(jitgrad.arange(16.0).reshape(2, 2, 2, 2)).mean().abs().item() < 1e-6
    True
    """

    _dims = (4,)
    _name = "BatchNorm2d"


class BatchNorm3d(_BatchNorm):
    """Batch normalization of (N, C, D, H, W) inputs over N, D, H and W, as
    ``torch.nn.BatchNorm3d``.

    >>> import jitgrad
    >>> bn = jitgrad.nn.BatchNorm3d(2)
    >>> bn(jitgrad.arange(32.0).reshape(2, 2, 2, 2, 2)).mean().abs().item() < 1e-6
    True
    """

    _dims = (5,)
    _name = "BatchNorm3d"


def embedding(input, weight, padding_idx: int | None = None):  # noqa: A002
    """Rows of ``weight`` at the integer indices ``input`` (the ``padding_idx`` row gets no
    gradient, as torch)."""
    if input.dtype.is_floating_point:
        raise RuntimeError(f"Expected tensor for argument #1 'indices' to have an integer "
                           f"scalar type; but got {input.dtype.name}")
    out = weight[input.reshape(-1)]
    if padding_idx is not None:
        keep = (input.reshape(-1) != padding_idx).to(weight.dtype).reshape(-1, 1)
        out = out * keep + (out * (1 - keep)).detach()
    return out.reshape(*input.shape, weight.shape[1])


class Embedding(Module):
    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype=None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None and padding_idx < 0:
            padding_idx += num_embeddings
        self.padding_idx = padding_idx
        self.weight = Parameter(factories.empty(num_embeddings, embedding_dim, dtype=dtype))
        init.normal_(self.weight)
        if padding_idx is not None:
            with grad_mode.no_grad():
                self.weight[padding_idx] = 0.0

    def forward(self, x):
        return embedding(x, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


def check_p(p: float) -> None:
    """The dropout probability torch accepts (every dropout checks it)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


_ALPHA = 1.7580993408473766  # SELU's scale * alpha: the value a dropped unit saturates to


def _dropout_impl(input, p: float, training: bool, inplace: bool, feature: bool,  # noqa: A002
                  alpha: bool, unbatched: bool = False):
    """ATen's ``_dropout_impl``. ``feature``: one draw per (sample, channel), broadcast over the
    rest; ``unbatched``: ``input`` lacks the batch dim (torch unsqueezes it; the mask's shape
    drops the leading 1 instead, which draws the same numbers)."""
    if not training or p == 0 or math.prod(input.shape) == 0:
        return input
    if p == 1:
        return input.mul_(0.0) if inplace else input * 0.0
    shape = tuple(input.shape)
    if feature:
        full = (1, *shape) if unbatched else shape
        if len(full) < 2:
            raise RuntimeError("Feature dropout requires at least 2 dimensions in the input")
        noise = full[:2] + (1,) * (len(full) - 2)
        shape = noise[1:] if unbatched else noise
    keep = (factories.rand(*shape) >= p).to(input.dtype)
    if not alpha:
        scale = keep * (1.0 / (1.0 - p))
        return input.mul_(scale) if inplace else input * scale
    a = 1.0 / math.sqrt((_ALPHA * _ALPHA * p + 1) * (1 - p))
    shift = (keep - 1.0) * (_ALPHA * a) + _ALPHA * a * p
    scale = keep * a
    return input.mul_(scale).add_(shift) if inplace else input * scale + shift


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False):  # noqa: A002
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)`` when
    ``training``; inside a compiled function the mask is a fresh draw at every call. With
    ``inplace``, ``input`` itself is scaled (``mul_``: its version moves, a leaf that requires
    grad is refused) and returned, as torch's ``dropout_``."""
    check_p(p)
    return _dropout_impl(input, p, training, inplace, False, False)


class DropoutNd(Module):
    """The dropout Modules' base (torch's ``_DropoutNd``): ``p`` checked, and their repr."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        check_p(p)
        self.p, self.inplace = p, inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(DropoutNd):
    def forward(self, x):
        return dropout(x, self.p, self.training, self.inplace)
