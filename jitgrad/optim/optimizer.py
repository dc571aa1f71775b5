"""Optimizer base class and the SGD / Adam / AdamW / RMSprop / Adagrad update rules (torch's
formulas)."""

from __future__ import annotations

import math
import sys

import numpy as np

from jitgrad.errors import ShapeError
from jitgrad.tensor import Tensor


class Optimizer:
    """Holds parameter groups and per-parameter state; subclasses define ``_update``."""

    defaults: dict = {}

    def __init__(self, params, defaults: dict) -> None:
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a Tensor")
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict[int, dict] = {}
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        ps = group["params"]
        ps = [ps] if isinstance(ps, Tensor) else list(ps)
        for i, p in enumerate(ps):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but parameter {i} is a "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf Tensor (parameter {i}); optimize "
                                 "the leaf it was computed from, or detach() it")
            if not p.dtype.is_floating_point or not p.requires_grad:
                raise ValueError(f"parameter {i} does not require grad; optimizers update "
                                 "floating-point tensors with requires_grad=True (nn.Parameter)")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in ps):
            raise ValueError("some parameters appear in more than one parameter group")
        group["params"] = ps
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad._value[...] = 0

    def _grads(self, grads) -> list:
        params = [p for g in self.param_groups for p in g["params"]]
        if grads is None:
            return [None if p.grad is None else p.grad._value for p in params]
        if isinstance(grads, dict):
            grads = list(grads.values())
        elif isinstance(grads, Tensor):
            grads = [grads]
        grads = list(grads)
        if len(grads) != len(params):
            raise ValueError(f"step(grads) got {len(grads)} gradients for {len(params)} "
                             "parameters (pass the gradient pytree of the same parameters, in "
                             "named_parameters() order)")
        out = []
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                out.append(None)
                continue
            gv = g._value if isinstance(g, Tensor) else np.asarray(g)
            if gv.shape != p._value.shape:
                raise ShapeError(f"step(grads): gradient {i} has shape {tuple(gv.shape)}, but its "
                                 f"parameter has shape {tuple(p.shape)}")
            out.append(gv)
        return out

    def step(self, grads=None, closure=None):
        """Update every parameter from its ``.grad`` (or from ``grads``)."""
        loss = None
        if closure is not None:
            from jitgrad.autograd import enable_grad
            with enable_grad():
                loss = closure()
        gs = iter(self._grads(grads))
        for group in self.param_groups:
            for p in group["params"]:
                g = next(gs)
                if g is None:
                    continue
                st = self.state.setdefault(id(p), {})
                self._update(p._value, g.astype(p._value.dtype, copy=False), st, group)
                p._vc[0] += 1
        return loss

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        params = [p for g in self.param_groups for p in g["params"]]
        return {"state": {i: {k: (v.copy() if isinstance(v, np.ndarray) else v)
                              for k, v in self.state.get(id(p), {}).items()}
                          for i, p in enumerate(params) if id(p) in self.state},
                "param_groups": [{k: v for k, v in g.items() if k != "params"}
                                 for g in self.param_groups]}

    def load_state_dict(self, sd: dict) -> None:
        params = [p for g in self.param_groups for p in g["params"]]
        for i, st in sd["state"].items():
            self.state[id(params[int(i)])] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                              for k, v in st.items()}
        for g, saved in zip(self.param_groups, sd["param_groups"]):
            g.update(saved)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(k for k in g if k != "params"):
                lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"


def _fused_kernels():
    """The compiled per-parameter updates of ``_fused``, or None to take the NumPy path.

    Importing Numba costs 0.5-1 s, more than an eager-only program's optimizer steps ever save, so
    the kernels are used only once something else has imported it (any program that compiled a
    function has); until then, and where Numba is missing, the NumPy code runs. Both give the
    same bits, so a run that imports Numba half-way keeps its trajectory.
    """
    if "numba" not in sys.modules:
        return None
    from jitgrad.optim import _fused
    return _fused


# The scalar types that leave NumPy 2's arithmetic on an array of each dtype in that dtype (NEP 50:
# Python numbers are "weak"), as the kernels' arithmetic always is. Anything else takes the NumPy
# path: a np.float64 learning rate from a NumPy schedule makes a float32 update partly float64.
_SAME_PRECISION = {np.dtype(np.float32): (float, int, bool, np.float32),
                   np.dtype(np.float64): (float, int, bool, np.float32, np.float64)}


def _flat(scalars, *arrays):
    """1-d views of ``arrays`` (the parameter first) for a fused kernel, or None where the kernel
    could differ from the NumPy code: it knows float32 and float64, writes through the views,
    assumes one dtype and one length, and computes with ``scalars`` rounded to that dtype."""
    dtype, shape = arrays[0].dtype, arrays[0].shape
    allowed = _SAME_PRECISION.get(dtype)
    if allowed is None or not arrays[0].flags.writeable:
        return None  # (NumPy raises the clear error for a read-only parameter)
    for x in scalars:
        if type(x) not in allowed:
            return None
    for a in arrays:
        if a.dtype != dtype or a.shape != shape or not a.flags.c_contiguous:
            return None
    return [a.ravel() for a in arrays]  # views: each is C-contiguous


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, dampening, weight decay and Nesterov."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"invalid SGD hyper-parameters: lr={lr}, momentum={momentum}, "
                             f"weight_decay={weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _update(self, p, g, state, group) -> None:
        fused = _fused_kernels()
        if fused is not None:
            mom = group["momentum"]
            buf = state.get("momentum_buffer")
            first = bool(mom) and buf is None
            if first:
                buf = np.empty_like(p)  # the kernel fills it with the first gradient
            flat = _flat((group["weight_decay"], mom, group["dampening"], group["lr"]),
                         p, g, buf if mom else p)
            if flat is not None:
                if first:
                    state["momentum_buffer"] = buf
                c = np.array([group["weight_decay"], mom, 1 - group["dampening"], group["lr"]],
                             dtype=p.dtype)
                fused.sgd(*flat, c, bool(group["maximize"]), bool(group["weight_decay"]),
                          bool(mom), first, bool(group["nesterov"]))
                return
        self._update_numpy(p, g, state, group)

    def _update_numpy(self, p, g, state, group) -> None:
        if group["maximize"]:
            g = -g
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        mom = group["momentum"]
        if mom:
            buf = state.get("momentum_buffer")
            if buf is None:
                # np.array, not g.copy(): for a 0-d parameter, -g and g + wd * p are NumPy
                # scalars, and a scalar buffer would be rebound by *=, never updated in place
                buf = state["momentum_buffer"] = np.array(g)
            else:
                buf *= mom
                buf += (1 - group["dampening"]) * g
            g = g + mom * buf if group["nesterov"] else buf
        p -= p.dtype.type(group["lr"]) * g


class Adam(Optimizer):
    """Adam (Kingma & Ba) with torch's bias correction; ``weight_decay`` is L2 (coupled)."""

    decoupled = False

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False) -> None:
        if lr < 0 or eps < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"invalid Adam hyper-parameters: lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    def _update(self, p, g, state, group) -> None:
        fused = _fused_kernels()
        if fused is not None:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            amsgrad = bool(group["amsgrad"])
            if not state:
                self._init_state(p, state, group)
            m, v = state["exp_avg"], state["exp_avg_sq"]
            flat = _flat((lr, b1, b2, eps, wd), p, g, m, v,
                         state["max_exp_avg_sq"] if amsgrad else v)
            if flat is not None:
                state["step"] += 1
                t = state["step"]
                bc1 = 1 - b1 ** t
                bc2 = 1 - b2 ** t
                # the NumPy code's scalars, computed as it computes them, rounded to p's dtype
                c = np.array([b1, 1 - b1, b2, 1 - b2, wd, 1 - lr * wd, math.sqrt(bc2), eps,
                              lr / bc1], dtype=p.dtype)
                fused.adam(*flat, c, bool(group["maximize"]), bool(wd) and not self.decoupled,
                           bool(wd) and self.decoupled, amsgrad)
                return
        self._update_numpy(p, g, state, group)

    @staticmethod
    def _init_state(p, state, group) -> None:
        state["step"] = 0
        state["exp_avg"] = np.zeros_like(p)
        state["exp_avg_sq"] = np.zeros_like(p)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = np.zeros_like(p)

    def _update_numpy(self, p, g, state, group) -> None:
        if group["maximize"]:
            g = -g
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if wd:
            if self.decoupled:
                p *= p.dtype.type(1 - lr * wd)
            else:
                g = g + wd * p
        if not state:
            self._init_state(p, state, group)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        bc1 = 1 - b1 ** t
        bc2 = 1 - b2 ** t
        denom = np.sqrt(v) / math.sqrt(bc2) + eps
        p -= (lr / bc1) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), torch's default 0.01."""

    decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize)


class RMSprop(Optimizer):
    """RMSprop (Hinton): divide by a running root mean square of the gradients; ``centered``
    subtracts the squared running mean; ``momentum`` keeps a buffer of the scaled steps."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False) -> None:
        if lr < 0 or eps < 0 or momentum < 0 or weight_decay < 0 or not 0 <= alpha <= 1:
            raise ValueError(f"invalid RMSprop hyper-parameters: lr={lr}, alpha={alpha}, "
                             f"eps={eps}, momentum={momentum}, weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _update(self, p, g, state, group) -> None:
        if group["maximize"]:
            g = -g
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        alpha = group["alpha"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p)
            if group["momentum"]:
                state["momentum_buffer"] = np.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p)
        state["step"] += 1
        sq = state["square_avg"]
        sq *= alpha
        sq += (1 - alpha) * g * g
        if group["centered"]:
            ga = state["grad_avg"]
            ga *= alpha
            ga += (1 - alpha) * g
            avg = np.sqrt(sq - ga * ga) + group["eps"]
        else:
            avg = np.sqrt(sq) + group["eps"]
        if group["momentum"]:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += g / avg
            p -= p.dtype.type(group["lr"]) * buf
        else:
            p -= p.dtype.type(group["lr"]) * (g / avg)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.): steps scaled by the root of each coordinate's summed squared
    gradients, with torch's ``lr_decay`` and ``initial_accumulator_value``."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10,
                 maximize: bool = False) -> None:
        if lr < 0 or lr_decay < 0 or weight_decay < 0 or eps < 0 or initial_accumulator_value < 0:
            raise ValueError(f"invalid Adagrad hyper-parameters: lr={lr}, lr_decay={lr_decay}, "
                             f"weight_decay={weight_decay}, eps={eps}, "
                             f"initial_accumulator_value={initial_accumulator_value}")
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))

    def _update(self, p, g, state, group) -> None:
        if group["maximize"]:
            g = -g
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(p, group["initial_accumulator_value"])
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"]
        s += g * g
        p -= p.dtype.type(clr) * (g / (np.sqrt(s) + group["eps"]))
