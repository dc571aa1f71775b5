"""Group, instance, RMS and local-response normalization as torch's, with their Modules, made
of jitgrad's reductions (biased variance, as torch's kernels).

>>> import jitgrad
>>> gn = jitgrad.nn.GroupNorm(2, 4)
>>> gn
GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)
>>> gn(jitgrad.arange(16.0).reshape(2, 4, 2)).mean().abs().item() < 1e-6
True
"""

from __future__ import annotations

import math

from jitgrad import factories, ops
from jitgrad.autograd import grad_mode
from jitgrad.errors import ShapeError
from jitgrad.nn.module import Module
from jitgrad.nn.parameter import Parameter


def _affine(out, weight, bias, ndim: int):
    view = (1, -1) + (1,) * (ndim - 2)
    if weight is not None:
        out = out * weight.reshape(view)
    if bias is not None:
        out = out + bias.reshape(view)
    return out


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5):  # noqa: A002
    """Normalize each of ``num_groups`` channel groups of (N, C, *) over its channels and
    positions, then scale and shift per channel.

    >>> import jitgrad
    >>> y = jitgrad.nn.functional.group_norm(jitgrad.randn(2, 4, 3), 2)
    >>> y[:, :2].std(unbiased=False).item() > 0.99
    True
    """
    if input.ndim < 2:
        raise ShapeError(f"group_norm: expected an input with at least 2 dims (N, C, *), got "
                         f"shape {list(input.shape)}")
    n, c = input.shape[:2]
    if num_groups <= 0 or c % num_groups:
        raise ShapeError(f"Expected number of channels in input to be divisible by "
                         f"num_groups, but got input of shape {list(input.shape)} and "
                         f"num_groups={num_groups}")
    per = c // num_groups * math.prod(input.shape[2:])  # (not -1: the batch may be empty)
    x = input.reshape(n, num_groups, per)
    mean = x.mean(-1, keepdim=True)
    centered = x - mean
    var = (centered * centered).mean(-1, keepdim=True)
    out = (centered / ops.sqrt(var + eps)).reshape(tuple(input.shape))
    return _affine(out, weight, bias, input.ndim)


def instance_norm(input, running_mean=None, running_var=None, weight=None,  # noqa: A002
                  bias=None, use_input_stats: bool = True, momentum: float = 0.1,
                  eps: float = 1e-5):
    """Normalize each channel of each example of (N, C, *) over its positions; with
    ``use_input_stats=False`` the running statistics are used instead (and with them given
    and ``use_input_stats``, they are updated in place, as torch)."""
    if input.ndim < 3:
        raise ShapeError(f"instance_norm: expected an input of at least 3 dims (N, C, *), got "
                         f"shape {list(input.shape)}")
    dims = tuple(range(2, input.ndim))
    view = (1, -1) + (1,) * (input.ndim - 2)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("Expected running_mean and running_var to be defined when "
                             "use_input_stats is false")
        out = (input - running_mean.reshape(view)) / ops.sqrt(running_var.reshape(view) + eps)
        return _affine(out, weight, bias, input.ndim)
    m = input.numel() // (input.shape[0] * input.shape[1]) if input.numel() else 0
    if m <= 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                         f"{list(input.shape)}")
    mean = input.mean(dims, keepdim=True)
    centered = input - mean
    var = (centered * centered).mean(dims, keepdim=True)
    if running_mean is not None and running_var is not None:
        with grad_mode.no_grad():
            bm = mean.detach().reshape(input.shape[:2]).mean(0)
            bv = var.detach().reshape(input.shape[:2]).mean(0) * (m / (m - 1))
            running_mean.mul_(1 - momentum).add_(bm * momentum)
            running_var.mul_(1 - momentum).add_(bv * momentum)
    return _affine(centered / ops.sqrt(var + eps), weight, bias, input.ndim)


def rms_norm(input, normalized_shape, weight=None, eps: float | None = None):  # noqa: A002
    """``x / sqrt(mean(x**2) + eps)`` over the last ``len(normalized_shape)`` dims, times
    ``weight``; ``eps`` defaults to the dtype's machine epsilon, as torch.

    >>> import jitgrad
    >>> [round(v, 4) for v in jitgrad.nn.functional.rms_norm(jitgrad.tensor([3.0, 4.0]), [2]).tolist()]
    [0.8485, 1.1314]
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ShapeError(f"rms_norm: normalized_shape {list(shape)} does not match the last "
                         f"dimensions of the input of shape {list(input.shape)}")
    if eps is None:
        eps = 2.220446049250313e-16 if input.dtype.name == "float64" else 1.1920928955078125e-07
    dims = tuple(range(input.ndim - len(shape), input.ndim))
    out = input * ops.rsqrt((input * input).mean(dims, keepdim=True) + eps)
    return out * weight if weight is not None else out


def local_response_norm(input, size: int, alpha: float = 1e-4, beta: float = 0.75,  # noqa: A002
                        k: float = 1.0):
    """``x / (k + alpha * mean of x**2 over `size` neighbouring channels) ** beta``.

    >>> import jitgrad
    >>> y = jitgrad.nn.functional.local_response_norm(jitgrad.ones(1, 3, 2), 2)
    >>> y.shape
    jitgrad.Size([1, 3, 2])
    """
    from jitgrad.nn.pad import pad
    if input.ndim < 3:
        raise ShapeError(f"Expected 3D or higher dimensionality input (got {input.ndim} "
                         f"dimensions)")
    if input.numel() == 0:
        return input
    c = input.shape[1]
    sq = pad(input * input, [0, 0] * (input.ndim - 2) + [size // 2, (size - 1) // 2])
    window = ops.narrow(sq, 1, 0, c)
    for i in range(1, size):
        window = window + ops.narrow(sq, 1, i, c)
    div = (window * (alpha / size) + k) ** beta
    return input / div


# --- Modules ---------------------------------------------------------------------------------

class GroupNorm(Module):
    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups, self.num_channels, self.eps, self.affine = (num_groups, num_channels,
                                                                     eps, affine)
        if affine:
            self.weight = Parameter(factories.ones(num_channels, dtype=dtype))
            self.bias = Parameter(factories.zeros(num_channels, dtype=dtype)) if bias else None
        else:
            self.weight = self.bias = None

    def forward(self, input):  # noqa: A002
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")


class _InstanceNorm(Module):
    _nd = 1

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(factories.ones(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(factories.zeros(num_features, dtype=dtype)) \
            if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", factories.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", factories.ones(num_features, dtype=dtype))
        else:
            self.running_mean = self.running_var = None

    def forward(self, input):  # noqa: A002
        nd = self._nd
        if input.ndim not in (nd + 1, nd + 2):
            raise ValueError(f"expected {nd + 1}D or {nd + 2}D input (got {input.ndim}D input)")
        if input.ndim == nd + 1:
            return self.forward(input.unsqueeze(0)).squeeze(0)
        use_input_stats = self.training or not self.track_running_stats
        return instance_norm(input, self.running_mean, self.running_var, self.weight,
                             self.bias, use_input_stats, self.momentum, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class InstanceNorm1d(_InstanceNorm):
    """``torch.nn.InstanceNorm1d``: (N, C, L) or (C, L).

    >>> import jitgrad
    >>> jitgrad.nn.InstanceNorm1d(3)
    InstanceNorm1d(3, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=False)
    """

    _nd = 1


class InstanceNorm2d(_InstanceNorm):
    _nd = 2


class InstanceNorm3d(_InstanceNorm):
    _nd = 3


class RMSNorm(Module):
    def __init__(self, normalized_shape, eps: float | None = None,
                 elementwise_affine: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) \
            else tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight = Parameter(factories.ones(*self.normalized_shape, dtype=dtype)) \
            if elementwise_affine else None

    def forward(self, x):
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class LocalResponseNorm(Module):
    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 1.0) -> None:
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):  # noqa: A002
        return local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
