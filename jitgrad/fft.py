"""``torch.fft``: the real-valued helpers (``fftfreq``, ``rfftfreq``, ``fftshift``,
``ifftshift``) with torch's names and dtypes.

jitgrad has no complex dtype, and every transform here takes or gives complex tensors (even
``irfft`` and ``hfft``, real-valued results, read their input as complex). Rather than hand back
real and imaginary parts under a dtype that says otherwise, each transform raises
``NotImplementedError`` naming the problem.

>>> import jitgrad as torch
>>> torch.fft.fftfreq(4)
tensor([ 0.0000,  0.2500, -0.5000, -0.2500])
>>> torch.fft.fftshift(torch.arange(5))
tensor([3, 4, 0, 1, 2])
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes
from jitgrad.devices import check_host
from jitgrad.ops.indexing import roll
from jitgrad.tensor import Tensor

__all__ = [
    "fft", "fft2", "fftfreq", "fftn", "fftshift", "hfft", "ifft", "ifft2", "ifftn",
    "ifftshift", "ihfft", "irfft", "irfft2", "irfftn", "rfft", "rfft2", "rfftfreq", "rfftn",
]


def _frequencies(k: np.ndarray, n: int, d: float, dtype, requires_grad: bool, device,
                 op: str) -> Tensor:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{op}(): argument 'n' must be int, not {type(n).__name__}")
    if n <= 0:
        raise RuntimeError(f"{op}(): n must be positive, got {n}")
    check_host(device)
    dt = dtypes.default_float if dtype is None else dtypes.as_dtype(dtype)
    if not dt.is_floating_point:
        raise RuntimeError(f"{op}(): expected a floating dtype, got {dt.name}")
    # As torch: the integers in the result's dtype, times the spacing rounded to that dtype.
    out = k.astype(dt.np) * dt.np.type(1.0 / (n * d))
    from jitgrad.factories import tensor
    return tensor(out, dtype=dt, requires_grad=requires_grad)


def fftfreq(n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad: bool = False,
            layout=None) -> Tensor:
    """The sample frequencies of an ``n``-point FFT with spacing ``d``: ``[0, 1, ...,
    (n - 1) // 2, -(n // 2), ..., -1] / (d * n)`` (float32 unless ``dtype`` says)."""
    k = np.concatenate([np.arange((n - 1) // 2 + 1), np.arange(-(n // 2), 0)]) \
        if isinstance(n, (int, np.integer)) and n > 0 else np.zeros(0)
    return _frequencies(k, n, d, dtype, requires_grad, device, "fftfreq")


def rfftfreq(n: int, d: float = 1.0, *, dtype=None, device=None, requires_grad: bool = False,
             layout=None) -> Tensor:
    """The sample frequencies of an ``n``-point ``rfft``: ``[0, 1, ..., n // 2] / (d * n)``."""
    k = np.arange(n // 2 + 1) if isinstance(n, (int, np.integer)) and n > 0 else np.zeros(0)
    return _frequencies(k, n, d, dtype, requires_grad, device, "rfftfreq")


def _shift(input, dim, op: str, inverse: bool):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}(): argument 'input' must be a Tensor, not {type(input).__name__}")
    if dim is None:
        dims = tuple(range(input.ndim))
    elif isinstance(dim, (int, np.integer)):
        dims = (int(dim),)
    else:
        dims = tuple(int(d) for d in dim)
    if not dims:
        return input.clone()
    from jitgrad.ops._rules import norm_axis
    sizes = [input.shape[norm_axis(d, input.ndim, op)] for d in dims]
    # fftshift moves the zero frequency to the middle (n // 2); ifftshift undoes it.
    shifts = tuple((s + 1) // 2 if inverse else s // 2 for s in sizes)
    return roll(input, shifts, dims)


def fftshift(input, dim=None) -> Tensor:  # noqa: A002
    """``input`` rolled so that the zero frequency sits in the middle of each of ``dim``
    (all dimensions when None); differentiable, as ``roll``."""
    return _shift(input, dim, "fftshift", inverse=False)


def ifftshift(input, dim=None) -> Tensor:  # noqa: A002
    """The inverse of ``fftshift``: the zero frequency back to index 0 of each of ``dim``."""
    return _shift(input, dim, "ifftshift", inverse=True)


def _complex(name: str, what: str):
    def transform(input, *args, **kwargs):  # noqa: A002
        raise NotImplementedError(
            f"jitgrad has no complex dtype: torch.fft.{name} {what}, which no jitgrad tensor "
            "can hold. Compute it in NumPy (numpy.fft) or torch, outside the differentiated "
            "code, or work with a real formulation (a DFT matrix: cos/sin and matmul).")
    transform.__name__ = transform.__qualname__ = name
    transform.__doc__ = f"Not available: ``torch.fft.{name}`` {what} (jitgrad has no complex dtype)."
    return transform


_GIVES = "returns a complex tensor"
_TAKES = "reads its input as complex"
fft, ifft, fft2, ifft2, fftn, ifftn = (_complex(n, _GIVES) for n in (
    "fft", "ifft", "fft2", "ifft2", "fftn", "ifftn"))
rfft, rfft2, rfftn, ihfft = (_complex(n, _GIVES) for n in ("rfft", "rfft2", "rfftn", "ihfft"))
irfft, irfft2, irfftn, hfft = (_complex(n, _TAKES) for n in ("irfft", "irfft2", "irfftn", "hfft"))
