"""``torch.signal.windows``: window functions for spectral analysis, with torch's arguments.

Every window takes its length ``M`` and the keywords ``sym`` (True: a symmetric window, for
filter design; False: a periodic one, for spectral analysis: the symmetric window of length
``M + 1`` without its last point), ``dtype`` (float32 or float64; the default float dtype when
None), ``device`` and ``requires_grad``. Each is a composition of jitgrad ops on a ``linspace``
of the sample positions, as torch's is, so ``requires_grad=True`` gives a window with a graph.

>>> import jitgrad as torch
>>> torch.signal.windows.hann(5)
tensor([0.0000, 0.5000, 1.0000, 0.5000, 0.0000])
>>> torch.signal.windows.hann(4, sym=False)
tensor([0.0000, 0.5000, 1.0000, 0.5000])
>>> torch.signal.windows.gaussian(3, std=1.0, dtype=torch.float64)
tensor([0.6065, 1.0000, 0.6065], dtype=jitgrad.float64)
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from jitgrad import dtypes
from jitgrad.devices import check_host
from jitgrad.factories import linspace, ones, tensor, zeros
from jitgrad.ops.elementwise import abs as _abs
from jitgrad.ops.elementwise import cos, exp, sin, sqrt

__all__ = [
    "bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine",
    "general_hamming", "hamming", "hann", "kaiser", "nuttall",
]


def _checks(name: str, M, dtype, layout, device) -> dtypes.DType:
    """torch's common checks; the window's dtype."""
    if isinstance(M, bool) or not isinstance(M, int):
        raise TypeError(f"{name}(): argument 'M' must be int, not {type(M).__name__}")
    if M < 0:
        raise ValueError(f"{name} requires non-negative window length, got M={M}")
    if layout is not None and str(layout).removeprefix("torch.").removeprefix("jitgrad.") \
            != "strided":
        raise ValueError(f"{name} is implemented for strided tensors only, got: {layout}")
    check_host(device)
    dt = dtypes.default_float if dtype is None else dtypes.as_dtype(dtype)
    if dt not in (dtypes.float32, dtypes.float64):
        raise ValueError(f"{name} expects float32 or float64 dtypes, got: {dt}")
    return dt


def _trivial(M: int, dt, requires_grad: bool):
    """The windows of length 0 and 1 (empty, and ``[1.]``), or None."""
    if M == 0:
        return zeros(0, dtype=dt, requires_grad=requires_grad)
    if M == 1:
        return ones(1, dtype=dt, requires_grad=requires_grad)
    return None


def _span(M: int, sym: bool) -> int:
    """The number of steps a symmetric window spans: a periodic one is a symmetric one of
    ``M + 1`` points, cut."""
    return M - 1 if sym else M


def exponential(M: int, *, center: float | None = None, tau: float = 1.0, sym: bool = True,
                dtype=None, layout=None, device=None, requires_grad: bool = False):
    """The exponential (Poisson) window ``exp(-|n - center| / tau)``; ``center`` defaults to
    the middle and may only be given for a periodic window (``sym=False``).

    >>> import jitgrad
    >>> jitgrad.signal.windows.exponential(3, tau=1.0)
    tensor([0.3679, 1.0000, 0.3679])
    """
    dt = _checks("exponential", M, dtype, layout, device)
    if tau <= 0:
        raise ValueError(f"Tau must be positive, got: {tau} instead.")
    if sym and center is not None:
        raise ValueError("Center must be None for symmetric windows")
    if M == 0:
        return zeros(0, dtype=dt, requires_grad=requires_grad)
    if center is None:
        center = (M if not sym and M > 1 else M - 1) / 2.0
    k = linspace(-center / tau, (-center + (M - 1)) / tau, M, dtype=dt,
                 requires_grad=requires_grad)
    return exp(-_abs(k))


def cosine(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
           requires_grad: bool = False):
    """The cosine (sine) window ``sin(pi (n + 1/2) / M)``.

    >>> import jitgrad
    >>> jitgrad.signal.windows.cosine(3)
    tensor([0.5000, 1.0000, 0.5000])
    """
    dt = _checks("cosine", M, dtype, layout, device)
    if M == 0:
        return zeros(0, dtype=dt, requires_grad=requires_grad)
    step = math.pi / (M + 1 if not sym and M > 1 else M)
    k = linspace(0.5 * step, (0.5 + (M - 1)) * step, M, dtype=dt, requires_grad=requires_grad)
    return sin(k)


def gaussian(M: int, *, std: float = 1.0, sym: bool = True, dtype=None, layout=None,
             device=None, requires_grad: bool = False):
    """The Gaussian window ``exp(-(n - c)**2 / (2 std**2))`` around the middle ``c``.

    >>> import jitgrad
    >>> jitgrad.signal.windows.gaussian(3, std=2.0)
    tensor([0.8825, 1.0000, 0.8825])
    """
    dt = _checks("gaussian", M, dtype, layout, device)
    if std <= 0:
        raise ValueError(f"Standard deviation must be positive, got: {std} instead.")
    if M == 0:
        return zeros(0, dtype=dt, requires_grad=requires_grad)
    start = -(M if not sym and M > 1 else M - 1) / 2.0
    scale = 1 / (std * math.sqrt(2))
    k = linspace(start * scale, (start + (M - 1)) * scale, M, dtype=dt,
                 requires_grad=requires_grad)
    return exp(-(k * k))


def kaiser(M: int, *, beta: float = 12.0, sym: bool = True, dtype=None, layout=None,
           device=None, requires_grad: bool = False):
    """The Kaiser window ``I0(beta sqrt(1 - (2n / (M - 1) - 1)**2)) / I0(beta)``.

    >>> import jitgrad
    >>> jitgrad.signal.windows.kaiser(3, beta=1.0)
    tensor([0.7898, 1.0000, 0.7898])
    """
    from jitgrad.special import _i0  # SciPy-free I0 (special imports nothing from here)
    dt = _checks("kaiser", M, dtype, layout, device)
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got: {beta} instead.")
    small = _trivial(M, dt, requires_grad)
    if small is not None:
        return small
    beta = float(dt.np.type(beta))  # beta in the window's precision, as torch's
    step = 2.0 * beta / _span(M, sym)
    k = linspace(-beta, min(beta, -beta + (M - 1) * step), M, dtype=dt,
                 requires_grad=requires_grad)
    b = tensor(beta, dtype=dt)
    # k**2 never exceeds beta**2: the ends of the linspace are +-beta exactly.
    return _i0(sqrt(b * b - k * k)) / _i0(b)


def general_cosine(M: int, *, a: Iterable, sym: bool = True, dtype=None, layout=None,
                   device=None, requires_grad: bool = False):
    """The generalized cosine window ``sum(a[i] (-1)**i cos(2 pi i n / (M - 1)))``.

    >>> import jitgrad
    >>> jitgrad.signal.windows.general_cosine(3, a=[0.5, 0.5])
    tensor([0., 1., 0.])
    """
    dt = _checks("general_cosine", M, dtype, layout, device)
    small = _trivial(M, dt, requires_grad)
    if small is not None:
        return small
    if not isinstance(a, Iterable) or isinstance(a, str):
        raise TypeError("Coefficients must be a list/tuple")
    coefficients = [float(w) for w in a]
    if not coefficients:
        raise ValueError("Coefficients cannot be empty")
    step = 2 * math.pi / _span(M, sym)
    k = linspace(0.0, (M - 1) * step, M, dtype=dt, requires_grad=requires_grad)
    ai = tensor([(-1) ** i * w for i, w in enumerate(coefficients)], dtype=dt,
                requires_grad=requires_grad)
    i = tensor([float(j) for j in range(len(coefficients))], dtype=dt)
    return (ai.unsqueeze(-1) * cos(i.unsqueeze(-1) * k)).sum(0)


def general_hamming(M: int, *, alpha: float = 0.54, sym: bool = True, dtype=None, layout=None,
                    device=None, requires_grad: bool = False):
    """The generalized Hamming window ``alpha - (1 - alpha) cos(2 pi n / (M - 1))``.

    >>> import jitgrad
    >>> jitgrad.signal.windows.general_hamming(3, alpha=0.5)
    tensor([0., 1., 0.])
    """
    _checks("general_hamming", M, dtype, layout, device)
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype, layout=layout,
                          device=device, requires_grad=requires_grad)


def hamming(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
            requires_grad: bool = False):
    """The Hamming window: ``general_hamming`` with ``alpha=0.54``.

    >>> import jitgrad
    >>> jitgrad.signal.windows.hamming(3)
    tensor([0.0800, 1.0000, 0.0800])
    """
    _checks("hamming", M, dtype, layout, device)
    return general_hamming(M, alpha=0.54, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)


def hann(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
         requires_grad: bool = False):
    """The Hann window ``sin(pi n / (M - 1))**2``: ``general_hamming`` with ``alpha=0.5``.

    >>> import jitgrad
    >>> jitgrad.signal.windows.hann(3)
    tensor([0., 1., 0.])
    """
    _checks("hann", M, dtype, layout, device)
    return general_hamming(M, alpha=0.5, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)


def blackman(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
             requires_grad: bool = False):
    """The Blackman window: ``general_cosine`` with ``a=[0.42, 0.5, 0.08]``.

    >>> import jitgrad
    >>> jitgrad.signal.windows.blackman(3, dtype=jitgrad.float64)
    tensor([-1.3878e-17,  1.0000e+00, -1.3878e-17], dtype=jitgrad.float64)
    """
    _checks("blackman", M, dtype, layout, device)
    return general_cosine(M, a=[0.42, 0.5, 0.08], sym=sym, dtype=dtype, layout=layout,
                          device=device, requires_grad=requires_grad)


def nuttall(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
            requires_grad: bool = False):
    """The minimum 4-term Blackman-Harris window of Nuttall: ``general_cosine`` with
    ``a=[0.3635819, 0.4891775, 0.1365995, 0.0106411]``.

    >>> import jitgrad
    >>> jitgrad.signal.windows.nuttall(3)
    tensor([3.6280e-04, 1.0000e+00, 3.6280e-04])
    """
    _checks("nuttall", M, dtype, layout, device)
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym,
                          dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def bartlett(M: int, *, sym: bool = True, dtype=None, layout=None, device=None,
             requires_grad: bool = False):
    """The Bartlett (triangular, zero at both ends) window ``1 - |2n / (M - 1) - 1|``.

    >>> import jitgrad
    >>> jitgrad.signal.windows.bartlett(5)
    tensor([0.0000, 0.5000, 1.0000, 0.5000, 0.0000])
    """
    dt = _checks("bartlett", M, dtype, layout, device)
    small = _trivial(M, dt, requires_grad)
    if small is not None:
        return small
    step = 2 / _span(M, sym)
    k = linspace(-1.0, -1.0 + (M - 1) * step, M, dtype=dt, requires_grad=requires_grad)
    return 1 - _abs(k)
