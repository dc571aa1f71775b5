"""Eager reverse-mode autodiff: the engine, ``grad``, custom Functions, grad modes, checks.

>>> import jitgrad
>>> x = jitgrad.tensor(2.0, requires_grad=True)
>>> jitgrad.autograd.grad(x ** 3, x)
(tensor(12.),)
"""

from jitgrad.autograd.grad_mode import (  # noqa: F401
    detect_anomaly, enable_grad, inference_mode, is_anomaly_enabled, is_grad_enabled, no_grad,
    set_detect_anomaly, set_grad_enabled,
)
from jitgrad.autograd import graph  # noqa: F401
from jitgrad.autograd.functional import backward, grad  # noqa: F401
from jitgrad.autograd.function import Function, FunctionCtx  # noqa: F401
from jitgrad.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: F401
from jitgrad.autograd import profiler  # noqa: F401,E402
from jitgrad.autograd import forward_ad  # noqa: F401,E402


def Variable(data, requires_grad: bool = False, volatile: bool = False):  # noqa: N802
    """The old autograd wrapper, now a tensor itself (as in torch since 0.4): ``data`` with
    ``requires_grad`` set."""
    from jitgrad.tensor import Tensor
    t = data.detach() if isinstance(data, Tensor) else __import__("jitgrad").tensor(data)
    return t.requires_grad_(requires_grad) if requires_grad else t
