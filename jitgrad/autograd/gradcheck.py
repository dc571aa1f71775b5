"""Finite-difference checks of analytic gradients (central differences, as torch's gradcheck).

>>> import jitgrad
>>> x = jitgrad.tensor([0.3, -1.2], dtype=jitgrad.float64, requires_grad=True)
>>> jitgrad.autograd.gradcheck(lambda t: (t.sin() * t).sum(), (x,))
True
"""

from __future__ import annotations

import numpy as np



class GradcheckError(RuntimeError):
    """The analytic and numerical Jacobians disagree."""


def _outputs(fn, inputs) -> tuple:
    out = fn(*inputs)
    return (out,) if isinstance(out, Tensor) else tuple(out)


def _numerical(fn, inputs, eps: float) -> list:
    """Jacobian blocks J[out][inp] of shape (out.numel, inp.numel) by central differences."""
    # Gradients stay on: for gradgradcheck, ``fn`` itself differentiates.
    outs = _outputs(fn, inputs)
    jac = [[np.zeros((o.numel(), x.numel())) for x in inputs] for o in outs]
    for j, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        flat = x._value.reshape(-1)  # a view: perturb in place, then restore
        for k in range(flat.size):
            orig = flat[k].copy()
            flat[k] = orig + eps
            plus = [o._value.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
            flat[k] = orig - eps
            minus = [o._value.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
            flat[k] = orig
            for i in range(len(outs)):
                jac[i][j][:, k] = (plus[i] - minus[i]) / (2 * eps)
    return jac


def _analytical(fn, inputs) -> list:
    outs = _outputs(fn, inputs)
    diff = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    jac = [[np.zeros((o.numel(), x.numel())) for x in inputs] for o in outs]
    for i, o in enumerate(outs):
        if not o.requires_grad:
            continue
        for r in range(o.numel()):
            seed = np.zeros(o.numel(), dtype=o.dtype.np)
            seed[r] = 1
            gs = grad(o, diff, grad_outputs=Tensor._wrap(seed.reshape(o.shape)),
                      retain_graph=True, allow_unused=True)
            it = iter(gs)
            for j, x in enumerate(inputs):
                if isinstance(x, Tensor) and x.requires_grad:
                    g = next(it)
                    if g is not None:
                        jac[i][j][r, :] = g._value.astype(np.float64).reshape(-1)
    return jac


def _forward_analytical(fn, inputs) -> list:
    """Jacobian blocks by forward mode: a column per input element, as the tangent of each
    output when that element's tangent is 1 (``forward_ad``, so a Function's ``jvp`` runs)."""
    from jitgrad.autograd import forward_ad as fwAD
    outs = _outputs(fn, inputs)
    jac = [[np.zeros((o.numel(), x.numel())) for x in inputs] for o in outs]
    for j, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        for k in range(x.numel()):
            seed = np.zeros(x.numel(), dtype=x.dtype.np)
            seed[k] = 1
            with fwAD.dual_level():
                dual = fwAD.make_dual(x, Tensor._wrap(seed.reshape(x.shape)))
                got = _outputs(fn, [dual if q == j else a for q, a in enumerate(inputs)])
                for i, o in enumerate(got):
                    t = fwAD.unpack_dual(o).tangent
                    if t is not None:
                        jac[i][j][:, k] = t._value.astype(np.float64).reshape(-1)
    return jac


def gradcheck(func, inputs, *, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, check_backward_ad: bool = True,
              check_forward_ad: bool = False, **_ignored) -> bool:
    """Compare ``func``'s analytic Jacobian, by reverse mode and (``check_forward_ad``) by
    forward mode, with central differences; inputs should be float64."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    num = _numerical(func, inputs, eps)
    modes = [(m, get) for m, get, on in (("", _analytical, check_backward_ad),
                                         (" (forward mode)", _forward_analytical,
                                          check_forward_ad)) if on]
    for mode, get in modes:
        ana = get(func, inputs)
        for i, (nrow, arow) in enumerate(zip(num, ana)):
            for j, (n, a) in enumerate(zip(nrow, arow)):
                if not np.allclose(a, n, rtol=rtol, atol=atol, equal_nan=True):
                    msg = (f"Jacobian mismatch for output {i} with respect to input {j}{mode},\n"
                           f"numerical:{n}\nanalytical:{a}\n")
                    if raise_exception:
                        raise GradcheckError(msg)
                    return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """Second-order check: gradcheck of the (create_graph) vector-Jacobian product of ``func``."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    outs = _outputs(func, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = tuple(Tensor._wrap(rng.standard_normal(o.shape).astype(o.dtype.np))
                             for o in outs)

    def vjp(*xs):
        os_ = _outputs(func, xs)
        d = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
        gs = grad(os_, d, grad_outputs=grad_outputs, create_graph=True, allow_unused=True)
        return tuple(g if g is not None else ops.zeros_like(x) for g, x in zip(gs, d))

    return gradcheck(vjp, inputs, eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception)


from jitgrad import ops  # noqa: E402
from jitgrad.autograd.functional import grad  # noqa: E402
from jitgrad.tensor import Tensor  # noqa: E402
