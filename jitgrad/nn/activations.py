"""Activation functions as torch's ``nn.functional`` has them, and their Modules. Each is a
composition of jitgrad ops, so gradients, forward mode, ``vmap`` and the compiled backends come
with it. Piecewise functions pick their branch with ``where`` over constant branches so that the
gradient at a kink is the one torch's kernel gives.

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> F.hardtanh(jitgrad.tensor([-2.0, 0.5, 3.0])).tolist()
[-1.0, 0.5, 1.0]
>>> jitgrad.nn.ELU(alpha=0.5)
ELU(alpha=0.5)
"""

from __future__ import annotations

import warnings

from jitgrad import factories, ops
from jitgrad.errors import ShapeError
from jitgrad.nn.module import Module
from jitgrad.nn.parameter import Parameter

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _inplace_op(fn, input, inplace: bool, *args):  # noqa: A002
    # The value is computed from a clone so that the graph never reads the buffer the in-place
    # write then changes (the version check would otherwise refuse the backward pass).
    return input.copy_(fn(input.clone(), *args)) if inplace else fn(input, *args)


def relu(input, inplace: bool = False):  # noqa: A002
    """``max(input, 0)``, as ``torch.nn.functional.relu``.

    >>> import jitgrad
    >>> jitgrad.nn.functional.relu(jitgrad.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return _inplace_op(ops.relu, input, inplace)


def _elu(x, alpha: float, scale: float = 1.0, input_scale: float = 1.0):
    neg = ops.expm1(x * input_scale if input_scale != 1.0 else x) * alpha
    out = ops.where(x > 0, x, neg)
    return out * scale if scale != 1.0 else out


def elu(input, alpha: float = 1.0, inplace: bool = False):  # noqa: A002
    """``x`` where positive, else ``alpha * (exp(x) - 1)``.

    >>> import jitgrad
    >>> round(jitgrad.nn.functional.elu(jitgrad.tensor([-1.0])).item(), 4)
    -0.6321
    """
    return _inplace_op(_elu, input, inplace, alpha)


def selu(input, inplace: bool = False):  # noqa: A002
    """``scale * elu(x, alpha)`` with the self-normalizing constants.

    >>> import jitgrad
    >>> round(jitgrad.nn.functional.selu(jitgrad.tensor([1.0])).item(), 4)
    1.0507
    """
    return _inplace_op(_elu, input, inplace, _SELU_ALPHA, _SELU_SCALE)


def celu(input, alpha: float = 1.0, inplace: bool = False):  # noqa: A002
    """``x`` where positive, else ``alpha * (exp(x / alpha) - 1)``.

    >>> import jitgrad
    >>> round(jitgrad.nn.functional.celu(jitgrad.tensor([-1.0]), 2.0).item(), 4)
    -0.7869
    """
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides the input)")
    return _inplace_op(_elu, input, inplace, alpha, 1.0, 1.0 / alpha)


def _leaky(x, slope: float):
    return ops.where(x > 0, x, x * slope)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False):  # noqa: A002
    """``x`` where positive, else ``negative_slope * x``.

    >>> import jitgrad
    >>> jitgrad.nn.functional.leaky_relu(jitgrad.tensor([-2.0, 1.0]), 0.5).tolist()
    [-1.0, 1.0]
    """
    return _inplace_op(_leaky, input, inplace, negative_slope)


def _hardtanh(x, lo: float, hi: float):
    # constant branches: zero gradient at and beyond the bounds, as torch's kernel
    return ops.where(x <= lo, factories.tensor(lo, dtype=x.dtype),
                     ops.where(x >= hi, factories.tensor(hi, dtype=x.dtype), x))


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0,  # noqa: A002
             inplace: bool = False):
    """``input`` clamped to ``[min_val, max_val]``; the gradient is 0 at the bounds.

    >>> import jitgrad
    >>> jitgrad.nn.functional.hardtanh(jitgrad.tensor([-3.0, 0.25])).tolist()
    [-1.0, 0.25]
    """
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val "
                         f"({max_val})")
    return _inplace_op(_hardtanh, input, inplace, min_val, max_val)


def relu6(input, inplace: bool = False):  # noqa: A002
    """``min(max(x, 0), 6)``.

    >>> import jitgrad
    >>> jitgrad.nn.functional.relu6(jitgrad.tensor([-1.0, 7.0])).tolist()
    [0.0, 6.0]
    """
    return hardtanh(input, 0.0, 6.0, inplace)


def _hardsigmoid(x):
    return ops.where(x <= -3.0, factories.tensor(0.0, dtype=x.dtype),
                     ops.where(x >= 3.0, factories.tensor(1.0, dtype=x.dtype), x / 6.0 + 0.5))


def hardsigmoid(input, inplace: bool = False):  # noqa: A002
    """``relu6(x + 3) / 6``.

    >>> import jitgrad
    >>> jitgrad.nn.functional.hardsigmoid(jitgrad.tensor([0.0, 4.0])).tolist()
    [0.5, 1.0]
    """
    return _inplace_op(_hardsigmoid, input, inplace)


def _hardswish(x):
    # torch's gradient: 0 below -3, x / 3 + 1/2 up to and including 3, 1 above
    return ops.where(x < -3.0, factories.tensor(0.0, dtype=x.dtype),
                     ops.where(x <= 3.0, x * (x + 3.0) / 6.0, x))


def hardswish(input, inplace: bool = False):  # noqa: A002
    """``x * relu6(x + 3) / 6``.

    >>> import jitgrad
    >>> jitgrad.nn.functional.hardswish(jitgrad.tensor([1.0, 4.0])).tolist()
    [0.6666666865348816, 4.0]
    """
    return _inplace_op(_hardswish, input, inplace)


def _mish(x):
    return x * ops.tanh(ops.softplus(x, 1.0, 20.0))


def mish(input, inplace: bool = False):  # noqa: A002
    """``x * tanh(softplus(x))``.

    >>> import jitgrad
    >>> round(jitgrad.nn.functional.mish(jitgrad.tensor([1.0])).item(), 4)
    0.8651
    """
    return _inplace_op(_mish, input, inplace)


def _silu(x):
    return x * ops.sigmoid(x)


def silu(input, inplace: bool = False):  # noqa: A002
    """``x * sigmoid(x)``.

    >>> import jitgrad
    >>> round(jitgrad.nn.functional.silu(jitgrad.tensor([1.0])).item(), 4)
    0.7311
    """
    return _inplace_op(_silu, input, inplace)


def softsign(input):  # noqa: A002
    """``x / (1 + |x|)``.

    >>> import jitgrad
    >>> jitgrad.nn.functional.softsign(jitgrad.tensor([1.0, -3.0])).tolist()
    [0.5, -0.75]
    """
    return input / (ops.abs(input) + 1.0)


def tanhshrink(input):  # noqa: A002
    """``x - tanh(x)``.

    >>> import jitgrad
    >>> jitgrad.nn.functional.tanhshrink(jitgrad.tensor([0.0])).tolist()
    [0.0]
    """
    return input - ops.tanh(input)


def _check_lambd(lambd: float, op: str) -> None:
    if lambd < 0:
        raise ValueError(f"{op}: lambda must be greater or equal to 0, but found to be {lambd}.")


def softshrink(input, lambd: float = 0.5):  # noqa: A002
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0.

    >>> import jitgrad
    >>> jitgrad.nn.functional.softshrink(jitgrad.tensor([1.0, 0.25, -1.0])).tolist()
    [0.5, 0.0, -0.5]
    """
    _check_lambd(lambd, "softshrink")
    zero = factories.tensor(0.0, dtype=input.dtype)
    return ops.where(input > lambd, input - lambd, ops.where(input < -lambd, input + lambd, zero))


def hardshrink(input, lambd: float = 0.5):  # noqa: A002
    """``x`` where ``|x| > lambd``, else 0.

    >>> import jitgrad
    >>> jitgrad.nn.functional.hardshrink(jitgrad.tensor([1.0, 0.25])).tolist()
    [1.0, 0.0]
    """
    return ops.where((input >= -lambd) & (input <= lambd),
                     factories.tensor(0.0, dtype=input.dtype), input)


def _threshold(x, threshold: float, value: float):
    return ops.where(x > threshold, x, factories.tensor(value, dtype=x.dtype))


def threshold(input, threshold: float, value: float, inplace: bool = False):  # noqa: A002
    """``x`` where ``x > threshold``, else ``value``.

    >>> import jitgrad
    >>> jitgrad.nn.functional.threshold(jitgrad.tensor([0.5, 2.0]), 1.0, -1.0).tolist()
    [-1.0, 2.0]
    """
    return _inplace_op(_threshold, input, inplace, threshold, value)


def glu(input, dim: int = -1):  # noqa: A002
    """The gated linear unit: ``a * sigmoid(b)`` for the two halves ``a, b`` of ``dim``.

    >>> import jitgrad
    >>> jitgrad.nn.functional.glu(jitgrad.tensor([[2.0, 0.0]])).tolist()
    [[1.0]]
    """
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = dim % input.ndim if -input.ndim <= dim < input.ndim else None
    if d is None:
        raise IndexError(f"glu: dim {dim} is out of range for a {input.ndim}-D input")
    n = input.shape[d]
    if n % 2:
        raise RuntimeError(f"Halving dimension must be even, but dimension {d} is size {n}")
    return ops.narrow(input, d, 0, n // 2) * ops.sigmoid(ops.narrow(input, d, n // 2, n // 2))


def logsigmoid(input):  # noqa: A002
    """``log(sigmoid(x))``, written so that large ``|x|`` stays finite.

    >>> import jitgrad
    >>> round(jitgrad.nn.functional.logsigmoid(jitgrad.tensor([0.0])).item(), 4)
    -0.6931
    """
    return ops.minimum(input, factories.tensor(0.0, dtype=input.dtype)) - \
        ops.log1p(ops.exp(-ops.abs(input)))


def _softmax_dim(ndim: int) -> int:
    # torch's implicit choice (with a deprecation warning there)
    return 0 if ndim in (0, 1, 3) else 1


def _dim_or_implicit(dim, input, name: str, stacklevel: int) -> int:  # noqa: A002
    if dim is not None:
        return dim
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call "
                  "to include dim=X as an argument.", UserWarning, stacklevel=stacklevel)
    return _softmax_dim(input.ndim)


def softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None):  # noqa: A002
    """``torch.softmax``, where a missing ``dim`` is chosen as torch chooses it (0 for 0-, 1-
    and 3-d inputs, else 1), with torch's deprecation warning.

    >>> import jitgrad
    >>> jitgrad.nn.functional.softmax(jitgrad.tensor([0.0, 0.0]), dim=0).tolist()
    [0.5, 0.5]
    """
    return ops.softmax(input, _dim_or_implicit(dim, input, "softmax", _stacklevel), dtype=dtype)


def log_softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None):  # noqa: A002
    """``torch.log_softmax``; a missing ``dim`` is chosen as ``softmax`` chooses it."""
    return ops.log_softmax(input, _dim_or_implicit(dim, input, "log_softmax", _stacklevel),
                           dtype=dtype)


def softmin(input, dim: int | None = None, _stacklevel: int = 3, dtype=None):  # noqa: A002
    """``softmax(-x, dim)``.

    >>> import jitgrad
    >>> jitgrad.nn.functional.softmin(jitgrad.tensor([0.0, 0.0]), dim=0).tolist()
    [0.5, 0.5]
    """
    if dtype is not None:
        input = input.to(dtype)  # noqa: A001
    return ops.softmax(-input, _dim_or_implicit(dim, input, "softmin", _stacklevel))


def rrelu(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3,  # noqa: A002
          training: bool = False, inplace: bool = False):
    """Leaky ReLU with a random slope in ``[lower, upper]`` per element when ``training``,
    the mean slope ``(lower + upper) / 2`` otherwise.

    >>> import jitgrad
    >>> jitgrad.nn.functional.rrelu(jitgrad.tensor([-3.0]), 0.25, 0.75).tolist()
    [-1.5]
    """
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)

    def sample(x):
        slope = factories.rand(*x.shape, dtype=x.dtype) * (upper - lower) + lower
        return ops.where(x >= 0, x, x * slope)
    return _inplace_op(sample, input, inplace)


def prelu(input, weight):  # noqa: A002
    """``x`` where positive, else ``weight * x``; ``weight`` has one element or one per
    channel (dim 1).

    >>> import jitgrad
    >>> jitgrad.nn.functional.prelu(jitgrad.tensor([[-2.0, 2.0]]), jitgrad.tensor([0.5])).tolist()
    [[-1.0, 2.0]]
    """
    n = weight.numel()
    if n != 1:
        c = input.shape[1] if input.ndim >= 2 else (input.shape[0] if input.ndim else 1)
        if n != c:
            raise ShapeError(f"Mismatch of parameter numbers and input channel size. Found "
                             f"parameter numbers = {n} and channel size = {c}.")
        if input.ndim >= 2:
            weight = weight.reshape((c,) + (1,) * (input.ndim - 2))
    elif input.ndim < weight.ndim:  # one weight: the result has the input's shape (0-d too)
        weight = weight.reshape(())
    return ops.where(input > 0, input, weight * input)


def softplus(input, beta: float = 1.0, threshold: float = 20.0):  # noqa: A002
    return ops.softplus(input, beta, threshold)


def relu_(input):  # noqa: A002
    return relu(input, True)


def elu_(input, alpha: float = 1.0):  # noqa: A002
    return elu(input, alpha, True)


def selu_(input):  # noqa: A002
    return selu(input, True)


def celu_(input, alpha: float = 1.0):  # noqa: A002
    return celu(input, alpha, True)


def leaky_relu_(input, negative_slope: float = 0.01):  # noqa: A002
    return leaky_relu(input, negative_slope, True)


def hardtanh_(input, min_val: float = -1.0, max_val: float = 1.0):  # noqa: A002
    return hardtanh(input, min_val, max_val, True)


def threshold_(input, threshold: float, value: float):  # noqa: A002
    return _inplace_op(_threshold, input, True, threshold, value)


def rrelu_(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3,  # noqa: A002
           training: bool = False):
    return rrelu(input, lower, upper, training, True)


# --- Modules ---------------------------------------------------------------------------------

class _Inplace(Module):
    """An activation whose only setting is ``inplace`` (shown in the repr only when set)."""

    _fn = staticmethod(relu)

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input):  # noqa: A002
        return type(self)._fn(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class SELU(_Inplace):
    _fn = staticmethod(selu)


class Hardsigmoid(_Inplace):
    _fn = staticmethod(hardsigmoid)


class Hardswish(_Inplace):
    _fn = staticmethod(hardswish)


class Mish(_Inplace):
    _fn = staticmethod(mish)


class _Plain(Module):
    _fn = staticmethod(softsign)

    def forward(self, input):  # noqa: A002
        return type(self)._fn(input)


class Softsign(_Plain):
    _fn = staticmethod(softsign)


class Tanhshrink(_Plain):
    _fn = staticmethod(tanhshrink)


class LogSigmoid(_Plain):
    _fn = staticmethod(logsigmoid)


class ELU(Module):
    """``torch.nn.ELU``.

    >>> import jitgrad
    >>> jitgrad.nn.ELU(inplace=True)
    ELU(alpha=1.0, inplace=True)
    """

    _fn = staticmethod(elu)

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):  # noqa: A002
        return type(self)._fn(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(ELU):
    _fn = staticmethod(celu)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):  # noqa: A002
        return leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Hardtanh(Module):
    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: float | None = None, max_value: float | None = None) -> None:
        super().__init__()
        # torch's old keyword names still win when given
        self.min_val = min_val if min_value is None else min_value
        self.max_val = max_val if max_value is None else max_value
        self.inplace = inplace
        if self.max_val <= self.min_val:
            raise ValueError(f"Hardtanh: max_val ({self.max_val}) must be greater than min_val "
                             f"({self.min_val})")

    def forward(self, input):  # noqa: A002
        return hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return (f"min_val={self.min_val}, max_val={self.max_val}"
                + (", inplace=True" if self.inplace else ""))


class ReLU6(Hardtanh):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class _Shrink(Module):
    _fn = staticmethod(softshrink)

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input):  # noqa: A002
        return type(self)._fn(input, self.lambd)

    def extra_repr(self) -> str:
        return str(self.lambd)


class Softshrink(_Shrink):
    _fn = staticmethod(softshrink)


class Hardshrink(_Shrink):
    _fn = staticmethod(hardshrink)


class Threshold(Module):
    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):  # noqa: A002
        return threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        return (f"threshold={self.threshold}, value={self.value}"
                + (", inplace=True" if self.inplace else ""))


class GLU(Module):
    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input):  # noqa: A002
        return glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmin(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input):  # noqa: A002
        return softmin(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax2d(Module):
    """Softmax over the channels of a (N, C, H, W) or (C, H, W) input."""

    def forward(self, input):  # noqa: A002
        if input.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input of 3 or 4 dimensions, got "
                             f"{input.ndim}")
        return ops.softmax(input, -3)


class RReLU(Module):
    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
                 inplace: bool = False) -> None:
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input):  # noqa: A002
        return rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        return (f"lower={self.lower}, upper={self.upper}"
                + (", inplace=True" if self.inplace else ""))


class PReLU(Module):
    """``torch.nn.PReLU``: a learned negative slope, one or one per channel.

    >>> import jitgrad
    >>> jitgrad.nn.PReLU(3).weight.tolist()
    [0.25, 0.25, 0.25]
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(factories.full((num_parameters,), init, dtype=dtype))

    def forward(self, input):  # noqa: A002
        return prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Softplus(Module):
    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):  # noqa: A002
        return softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={float(self.beta)}, threshold={float(self.threshold)}"

