"""Pooling over 1, 2 or 3 spatial dims as torch's: ``max_pool1d``/``max_pool3d`` and
``avg_pool1d``/``avg_pool3d`` (``ceil_mode``, ``count_include_pad``, ``divisor_override``,
``return_indices``), adaptive average and max pooling, and power-average (``lp_pool``) pooling,
with their Modules. Each window is gathered along one dim at a time with an index computed from
the shapes (a constant of the trace); a max picks its element as torch's kernels do (the first
largest element, or the last NaN of a window with NaNs), and the gradient goes to it alone.

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> F.max_pool1d(jitgrad.tensor([[[1.0, 3.0, 2.0, 0.0]]]), 2).tolist()
[[[3.0, 2.0]]]
"""

from __future__ import annotations

import math

import numpy as np

from jitgrad import factories, ops
from jitgrad.errors import ShapeError
from jitgrad.nn._sliding import _first_valid, _max_place, _positions, _stride
from jitgrad.nn.module import Module
from jitgrad.nn.pad import pad as _pad
from jitgrad.nn.pad import take
from jitgrad.nn.resample import _adaptive_taps


def _tuple(v, n: int, name: str, cast: type = int) -> tuple:
    """``v`` as ``n`` ints (``cast=float``: numbers); one value serves every dim."""
    if isinstance(v, (int, np.integer) if cast is int else (int, float, np.number)):
        return (cast(v),) * n
    v = tuple(cast(a) for a in v)
    if len(v) == 1 and n > 1:
        return v * n
    if len(v) != n:
        what = ("an int", "ints") if cast is int else ("a number", "numbers")
        raise ValueError(f"{name} must be {what[0]} or a tuple of {n} {what[1]}, got {v}")
    return v


def _gather_windows(x, idx_per_dim):
    """``x``'s last len(idx) dims gathered by ``idx[i]`` of shape (o_i, k_i): the result has
    shape (..., o_1, ..., o_n, k_1 * ... * k_n)."""
    nd = len(idx_per_dim)
    lead = x.ndim - nd
    for i, idx in enumerate(idx_per_dim):
        d = lead + 2 * i  # earlier dims have been split into (o, k) pairs
        o, k = idx.shape
        x = take(x, d, idx)
        x = x.reshape(*x.shape[:d], o, k, *x.shape[d + 1:])
    order = list(range(lead)) + [lead + 2 * i for i in range(nd)] + \
        [lead + 2 * i + 1 for i in range(nd)]
    x = x.permute(*order)
    return x.reshape(*x.shape[:lead + nd], int(np.prod(x.shape[lead + nd:], dtype=np.int64)))


def _flat_positions(pos_per_dim, sizes) -> np.ndarray:
    """For windows whose elements sit at ``pos[i]`` (o_i, k_i) along each dim, each element's
    index in the flattened spatial plane: shape (o_1, ..., o_n, k_1 * ... * k_n)."""
    nd = len(pos_per_dim)
    flat = np.zeros([1] * (2 * nd), dtype=np.int64)
    stride = 1
    for i in reversed(range(nd)):
        shape = [1] * (2 * nd)
        shape[i], shape[nd + i] = pos_per_dim[i].shape
        flat = flat + pos_per_dim[i].reshape(shape) * stride
        stride *= sizes[i]
    o = [p.shape[0] for p in pos_per_dim]
    return np.broadcast_to(flat, o + [p.shape[1] for p in pos_per_dim]).reshape(*o, -1)


def _pick_max(win, flat: np.ndarray, first_valid: np.ndarray | None = None):
    """Each window's (last dim's) max as torch's max pooling picks it (``_max_place``) and its
    place in ``flat``. The pick is a ``where`` on that index (elementwise, so compiled code
    keeps it in the kernel); the gradient goes to that element alone, as torch's."""
    k = win.shape[-1]
    first = _max_place(win, -1, first_valid).unsqueeze(-1) == ops.arange(k)
    out = ops.where(first, win, _zero_like(win)).sum(-1)
    at = ops.where(first, factories.tensor(flat), 0).sum(-1)
    return out, at


def _zero_like(x):
    return factories.tensor(0.0, dtype=x.dtype)


def _out_len(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:  # the last window must start inside the input
        out -= 1
    return out


def _batched(input, nd: int, op: str):  # noqa: A002
    if input.ndim == nd + 1:
        return input.unsqueeze(0), True
    if input.ndim != nd + 2:
        raise ShapeError(f"{op}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) "
                         f"input, got shape {list(input.shape)}")
    return input, False


def _max_pool(input, nd: int, kernel_size, stride, padding, dilation, ceil_mode,  # noqa: A002
              return_indices, op: str):
    x, unbatched = _batched(input, nd, op)
    k = _tuple(kernel_size, nd, "kernel_size")
    s = _tuple(_stride(stride, k), nd, "stride")
    p, d = _tuple(padding, nd, "padding"), _tuple(dilation, nd, "dilation")
    if min(k + s + d) < 1 or min(p) < 0:
        raise ValueError(f"{op}: kernel_size, stride and dilation must be positive and padding "
                         f"non-negative, got {k}, {s}, {d} and {p}")
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise RuntimeError(f"{op}: pad should be at most half of effective kernel size, but got "
                         f"pad={p}, kernel_size={k} and dilation={d}")
    sizes = tuple(x.shape[2:])
    outs = [_out_len(n, ki, si, pi, di, ceil_mode) for n, ki, si, pi, di in zip(sizes, k, s, p, d)]
    if min(outs) < 1:
        raise ShapeError(f"{op}: Invalid computed output size {outs} for input of shape "
                         f"{list(input.shape)}")
    pos = _positions(outs, s, k, d, p)
    # pad with -inf far enough for every window (ceil_mode windows may run past the end)
    extra = [max(int(q.max()) + 1 - n, 0) for q, n in zip(pos, sizes)]
    widths = [w for i in reversed(range(nd)) for w in (p[i], extra[i])]
    xp = _pad(x, widths, value=-math.inf) if any(widths) else x
    win = _gather_windows(xp, [q + pi for q, pi in zip(pos, p)])
    # (without padding or a ceil_mode overhang, each window's first element is inside the
    # input, and argmax already gives it for a window of -inf only)
    valid = _first_valid(pos, sizes) if any(widths) else None
    out, at = _pick_max(win, _flat_positions([np.clip(q, 0, None) for q in pos], sizes), valid)
    if unbatched:
        out, at = out.squeeze(0), at.squeeze(0)
    return (out, at) if return_indices else out


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1,  # noqa: A002
               ceil_mode: bool = False, return_indices: bool = False):
    """The largest element of each window of (N, C, L) or (C, L).

    >>> import jitgrad
    >>> jitgrad.nn.functional.max_pool1d(jitgrad.tensor([[1.0, 3.0, 2.0]]), 2,
    ...                                  ceil_mode=True).tolist()
    [[3.0, 2.0]]
    """
    return _max_pool(input, 1, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, "max_pool1d")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1,  # noqa: A002
               ceil_mode: bool = False, return_indices: bool = False):
    return _max_pool(input, 3, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, "max_pool3d")


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0,  # noqa: A002
                            dilation=1, ceil_mode: bool = False, return_indices: bool = True):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def _avg_pool(input, nd: int, kernel_size, stride, padding, ceil_mode,  # noqa: A002
              count_include_pad, divisor_override, op: str):
    x, unbatched = _batched(input, nd, op)
    k = _tuple(kernel_size, nd, "kernel_size")
    s = _tuple(_stride(stride, k), nd, "stride")
    p = _tuple(padding, nd, "padding")
    if any(pi > ki // 2 for pi, ki in zip(p, k)):
        raise RuntimeError(f"{op}: pad should be at most half of effective kernel size, but got "
                         f"pad={p} and kernel_size={k}")
    if divisor_override is not None and divisor_override == 0:
        raise ValueError(f"{op}: divisor must be not zero")
    sizes = tuple(x.shape[2:])
    outs = [_out_len(n, ki, si, pi, 1, ceil_mode) for n, ki, si, pi in zip(sizes, k, s, p)]
    if min(outs) < 1:
        raise ShapeError(f"{op}: Invalid computed output size {outs} for input of shape "
                         f"{list(input.shape)}")
    pos = _positions(outs, s, k, (1,) * nd, p)
    extra = [max(int(q.max()) + 1 - n, 0) for q, n in zip(pos, sizes)]
    widths = [w for i in reversed(range(nd)) for w in (p[i], extra[i])]
    xp = _pad(x, widths) if any(widths) else x
    total = _gather_windows(xp, [q + pi for q, pi in zip(pos, p)]).sum(-1)
    if divisor_override is not None:
        out = total / float(divisor_override)
    else:
        # torch's divisor: the window clipped to the padded input (count_include_pad) or to
        # the input itself
        div = np.ones(outs)
        for i, (q, n, pi) in enumerate(zip(pos, sizes, p)):
            lo, hi = (0, n) if not count_include_pad else (-pi, n + pi)
            cnt = np.minimum(q[:, -1] + 1, hi) - np.maximum(q[:, 0], lo)
            div = div * cnt.reshape([-1 if j == i else 1 for j in range(nd)])
        out = total / factories.tensor(div, dtype=x.dtype)
    return out.squeeze(0) if unbatched else out


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,  # noqa: A002
               count_include_pad: bool = True):
    """The mean of each window of (N, C, L) or (C, L).

    >>> import jitgrad
    >>> jitgrad.nn.functional.avg_pool1d(jitgrad.tensor([[1.0, 3.0, 2.0, 0.0]]), 2).tolist()
    [[2.0, 1.0]]
    """
    return _avg_pool(input, 1, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     None, "avg_pool1d")


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode: bool = False,  # noqa: A002
               count_include_pad: bool = True, divisor_override=None):
    return _avg_pool(input, 3, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, "avg_pool3d")


def _adaptive_sizes(output_size, nd: int, sizes) -> tuple:
    o = (output_size,) * nd if output_size is None or isinstance(output_size, int) \
        else tuple(output_size)
    if len(o) == 1 and nd > 1:
        o = o * nd
    if len(o) != nd:
        raise ValueError(f"adaptive pooling: output_size must have {nd} elements, got {o}")
    return tuple(n if v is None else int(v) for v, n in zip(o, sizes))


def _adaptive(input, nd: int, output_size, op: str):  # noqa: A002
    if input.ndim not in (nd + 1, nd + 2):
        raise ShapeError(f"{op}: expected a {nd + 1}-D or {nd + 2}-D input, got shape "
                         f"{list(input.shape)}")
    sizes = tuple(input.shape[input.ndim - nd:])
    outs = _adaptive_sizes(output_size, nd, sizes)
    if min(outs) < 0 or (min(sizes) == 0 and max(outs) > 0):
        raise ShapeError(f"{op}: cannot pool an input of shape {list(input.shape)} to "
                         f"{list(outs)}")
    return [_adaptive_taps(n, o) for n, o in zip(sizes, outs)], sizes


def _adaptive_avg(input, nd: int, output_size, op: str):  # noqa: A002
    taps, _ = _adaptive(input, nd, output_size, op)
    win = _gather_windows(input, [idx for idx, _, _ in taps])
    w = np.ones([1] * (2 * nd))
    for i, (_, valid, count) in enumerate(taps):
        shape = [1] * (2 * nd)
        shape[i], shape[nd + i] = valid.shape
        w = w * (valid / count[:, None]).reshape(shape)
    o = [v.shape[0] for _, v, _ in taps]
    w = np.broadcast_to(w, o + [v.shape[1] for _, v, _ in taps]).reshape(*o, -1)
    return (win * factories.tensor(w, dtype=input.dtype)).sum(-1)


def adaptive_avg_pool1d(input, output_size):  # noqa: A002
    """The mean over ``output_size`` near-equal windows of the last dim.

    >>> import jitgrad
    >>> x = jitgrad.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])
    >>> jitgrad.nn.functional.adaptive_avg_pool1d(x, 2).tolist()
    [[2.0, 4.0]]
    """
    return _adaptive_avg(input, 1, output_size, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size):  # noqa: A002
    return _adaptive_avg(input, 2, output_size, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(input, output_size):  # noqa: A002
    return _adaptive_avg(input, 3, output_size, "adaptive_avg_pool3d")


def _adaptive_max(input, nd: int, output_size, return_indices: bool, op: str):  # noqa: A002
    taps, sizes = _adaptive(input, nd, output_size, op)
    # shorter windows repeat their last element: argmax still finds the first largest one
    win = _gather_windows(input, [idx for idx, _, _ in taps])
    out, at = _pick_max(win, _flat_positions([idx for idx, _, _ in taps], sizes))
    return (out, at) if return_indices else out


def adaptive_max_pool1d(input, output_size, return_indices: bool = False):  # noqa: A002
    """The largest element of ``output_size`` near-equal windows of the last dim.

    >>> import jitgrad
    >>> x = jitgrad.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    >>> jitgrad.nn.functional.adaptive_max_pool1d(x, 2).tolist()
    [[5.0, 4.0]]
    """
    return _adaptive_max(input, 1, output_size, return_indices, "adaptive_max_pool1d")


def adaptive_max_pool2d(input, output_size, return_indices: bool = False):  # noqa: A002
    return _adaptive_max(input, 2, output_size, return_indices, "adaptive_max_pool2d")


def adaptive_max_pool3d(input, output_size, return_indices: bool = False):  # noqa: A002
    return _adaptive_max(input, 3, output_size, return_indices, "adaptive_max_pool3d")


def adaptive_max_pool1d_with_indices(input, output_size, return_indices: bool = True):  # noqa: A002
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices: bool = True):  # noqa: A002
    return adaptive_max_pool2d(input, output_size, True)


def _lp_pool(input, nd: int, norm_type: float, kernel_size, stride, ceil_mode,  # noqa: A002
             op: str):
    k = _tuple(kernel_size, nd, "kernel_size")
    avg = _avg_pool(input ** norm_type, nd, k, stride, 0, ceil_mode, True, None, op)
    # as torch: sign(avg) * relu(|avg|), scaled back to a sum, to the power 1/p
    total = ops.sign(avg) * ops.relu(ops.abs(avg)) * float(np.prod(k))
    return total ** (1.0 / norm_type)


def lp_pool1d(input, norm_type: float, kernel_size: int, stride=None,  # noqa: A002
              ceil_mode: bool = False):
    """``(sum over each window of x ** p) ** (1 / p)``.

    >>> import jitgrad
    >>> jitgrad.nn.functional.lp_pool1d(jitgrad.tensor([[3.0, 4.0]]), 2, 2).tolist()
    [[5.0]]
    """
    return _lp_pool(input, 1, norm_type, kernel_size, stride, ceil_mode, "lp_pool1d")


def lp_pool2d(input, norm_type: float, kernel_size, stride=None,  # noqa: A002
              ceil_mode: bool = False):
    return _lp_pool(input, 2, norm_type, kernel_size, stride, ceil_mode, "lp_pool2d")


# --- Modules ---------------------------------------------------------------------------------

class MaxPool1d(Module):
    """``torch.nn.MaxPool1d``.

    >>> import jitgrad
    >>> jitgrad.nn.MaxPool1d(3)
    MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False)
    """

    _fn = staticmethod(max_pool1d)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):  # noqa: A002
        return type(self)._fn(input, self.kernel_size, self.stride, self.padding, self.dilation,
                              self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool3d(MaxPool1d):
    _fn = staticmethod(max_pool3d)


class AvgPool1d(Module):
    """``torch.nn.AvgPool1d``.

    >>> import jitgrad
    >>> jitgrad.nn.AvgPool1d(3)
    AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size = _tuple(kernel_size, 1, "kernel_size")
        self.stride = _tuple(stride if stride is not None else kernel_size, 1, "stride")
        self.padding = _tuple(padding, 1, "padding")
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, input):  # noqa: A002
        return avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool3d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):  # noqa: A002
        return avg_pool3d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptiveAvg(Module):
    _fn = staticmethod(adaptive_avg_pool1d)

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input):  # noqa: A002
        return type(self)._fn(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvg):
    """``torch.nn.AdaptiveAvgPool1d``.

    >>> import jitgrad
    >>> jitgrad.nn.AdaptiveAvgPool2d((3, None))
    AdaptiveAvgPool2d(output_size=(3, None))
    """

    _fn = staticmethod(adaptive_avg_pool1d)


class AdaptiveAvgPool2d(_AdaptiveAvg):
    _fn = staticmethod(adaptive_avg_pool2d)


class AdaptiveAvgPool3d(_AdaptiveAvg):
    _fn = staticmethod(adaptive_avg_pool3d)


class _AdaptiveMax(_AdaptiveAvg):
    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input):  # noqa: A002
        return type(self)._fn(input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMax):
    _fn = staticmethod(adaptive_max_pool1d)


class AdaptiveMaxPool2d(_AdaptiveMax):
    _fn = staticmethod(adaptive_max_pool2d)


class AdaptiveMaxPool3d(_AdaptiveMax):
    _fn = staticmethod(adaptive_max_pool3d)


class LPPool1d(Module):
    _fn = staticmethod(lp_pool1d)

    def __init__(self, norm_type: float, kernel_size, stride=None,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type, self.kernel_size = norm_type, kernel_size
        self.stride, self.ceil_mode = stride, ceil_mode

    def forward(self, input):  # noqa: A002
        return type(self)._fn(input, self.norm_type, self.kernel_size, self.stride,
                              self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")


class LPPool2d(LPPool1d):
    _fn = staticmethod(lp_pool2d)
