"""L-BFGS, as ``torch.optim.LBFGS``: the two-loop recursion over the last ``history_size``
steps, a fixed step of ``lr`` (the first one scaled by the gradient's size) or, with
``line_search_fn="strong_wolfe"``, a step that meets the strong Wolfe conditions
(``optim.line_search``), and torch's stopping tests. ``step(closure)`` needs the closure that
clears the gradients, recomputes the loss, calls ``backward()`` and returns the loss.

>>> import jitgrad
>>> w = jitgrad.nn.Parameter(jitgrad.tensor([3.0, -2.0], dtype=jitgrad.float64))
>>> opt = jitgrad.optim.LBFGS([w], lr=1.0)
>>> def closure():
...     opt.zero_grad()
...     loss = ((w - 1.0) ** 2).sum()
...     loss.backward()
...     return loss
>>> _ = opt.step(closure)
>>> [round(v, 6) for v in w.tolist()]
[1.0, 1.0]
"""

from __future__ import annotations

import numpy as np

from jitgrad.autograd import enable_grad
from jitgrad.optim.line_search import strong_wolfe
from jitgrad.optim.optimizer import Optimizer


class LBFGS(Optimizer):
    def __init__(self, params, lr: float = 1.0, max_iter: int = 20, max_eval: int | None = None,
                 tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9,
                 history_size: int = 100, line_search_fn: str | None = None) -> None:
        if lr <= 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got "
                             f"{line_search_fn!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                                      tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change,
                                      history_size=history_size, line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def _flat_grad(self) -> np.ndarray:
        return np.concatenate([np.zeros(p._value.size, p._value.dtype) if p.grad is None
                               else p.grad._value.reshape(-1) for p in self._params])

    def _flat_params(self) -> np.ndarray:
        return np.concatenate([p._value.reshape(-1).astype(np.float64) for p in self._params])

    def _pieces(self, flat: np.ndarray):
        """Each parameter with its part of ``flat``, in its shape."""
        k = 0
        for p in self._params:
            n = p._value.size
            yield p, flat[k:k + n].reshape(p._value.shape)
            k += n

    def _set(self, x: np.ndarray) -> None:
        for p, piece in self._pieces(x):
            p._value[...] = piece
            p._vc[0] += 1

    def _add(self, t: float, d: np.ndarray) -> None:
        for p, piece in self._pieces(d):
            p._value += (t * piece).astype(p._value.dtype)
            p._vc[0] += 1

    def step(self, closure=None):
        """One optimization step: up to ``max_iter`` iterations of L-BFGS."""
        if closure is None:
            raise RuntimeError("LBFGS.step needs a closure that recomputes the loss (and calls "
                               "backward)")
        g = self.param_groups[0]
        lr, max_iter, max_eval = g["lr"], g["max_iter"], g["max_eval"]
        tol_grad, tol_change, history = g["tolerance_grad"], g["tolerance_change"], \
            g["history_size"]
        state = self.state.setdefault(id(self._params[0]), {"func_evals": 0, "n_iter": 0})

        def evaluate() -> tuple:
            with enable_grad():
                out = closure()
            return out, float(out)
        orig_loss, loss = evaluate()
        evals = 1
        state["func_evals"] += 1
        flat = self._flat_grad()
        if np.abs(flat).max() <= tol_grad:
            return orig_loss
        d, t = state.get("d"), state.get("t")
        dirs, stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag, prev_flat, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), \
            state.get("prev_loss")
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d, dirs, stps, ro, h_diag = -flat, [], [], [], 1.0
            else:
                y, s = flat - prev_flat, d * t
                ys = float(y @ s)
                if ys > 1e-10:  # keep the curvature pair only when it is positive
                    if len(dirs) == history:
                        dirs.pop(0), stps.pop(0), ro.pop(0)
                    dirs.append(y), stps.append(s), ro.append(1.0 / ys)
                    h_diag = ys / float(y @ y)
                al = [0.0] * len(dirs)
                q = -flat
                for i in range(len(dirs) - 1, -1, -1):
                    al[i] = float(stps[i] @ q) * ro[i]
                    q = q - al[i] * dirs[i]
                r = q * h_diag
                for i in range(len(dirs)):
                    be = float(dirs[i] @ r) * ro[i]
                    r = r + (al[i] - be) * stps[i]
                d = r
            prev_flat = flat.copy()
            prev_loss = loss
            t = min(1.0, 1.0 / float(np.abs(flat).sum())) * lr if state["n_iter"] == 1 else lr
            if float(flat @ d) > -tol_change:  # not a descent direction
                break
            done = False
            if g["line_search_fn"] == "strong_wolfe":
                x0 = self._flat_params()

                def phi(step: float) -> tuple:
                    self._set(x0 + step * d)
                    value = evaluate()[1]
                    grad = self._flat_grad()
                    return value, grad, float(grad @ d)
                t, loss, flat, ls_evals = strong_wolfe(
                    phi, loss, flat, float(flat @ d), t, tolerance_change=tol_change,
                    d_max=float(np.abs(d).max()))
                self._set(x0 + t * d)
                done = bool(np.abs(flat).max() <= tol_grad)
                evals += ls_evals
                state["func_evals"] += ls_evals
            else:
                self._add(t, d)
            if g["line_search_fn"] is None and n_iter != max_iter:
                _, loss = evaluate()
                flat = self._flat_grad()
                done = bool(np.abs(flat).max() <= tol_grad)
                evals += 1
                state["func_evals"] += 1
            if n_iter == max_iter or evals >= max_eval or done:
                break
            if np.abs(d * t).max() <= tol_change or abs(loss - prev_loss) < tol_change:
                break
        state.update(d=d, t=t, old_dirs=dirs, old_stps=stps, ro=ro, H_diag=h_diag,
                     prev_flat_grad=prev_flat, prev_loss=prev_loss)
        return orig_loss
