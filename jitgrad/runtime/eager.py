"""The eager fallback: past the re-trace limits a compiled function runs its Python eagerly,
with results shaped as the compiled path gives them."""

from __future__ import annotations

import warnings

import numpy as np

from jitgrad.tensor import Tensor
from jitgrad.trace.pytree import (Kind, flatten, map_leaves, num_leaves, to_host,
                                  unflatten)
from jitgrad.runtime.nodes import RetraceWarning, _name


class EagerMixin:
    """``Runtime``'s eager fallback."""

    def _give_up(self, args, kwargs, why: str):
        self.fallback = why
        self._last_steady = None
        warnings.warn(f"jitgrad: {_name(self.fn)} runs eagerly from now on: {why}. Results stay "
                      "exact; raise the limit with retrace_limit= or jitgrad.config.retrace_limit "
                      "if the paths are few.", RetraceWarning, stacklevel=4)
        return self.eager(args, kwargs)

    def eager(self, args: tuple, kwargs: dict):
        out = self._eager(args, kwargs)
        if self.target == "cuda":  # results as the compiled path gives them: on the device
            out = _to_device_tree(out)
        return out

    def _eager(self, args: tuple, kwargs: dict):
        from jitgrad.autograd import enable_grad
        from jitgrad.autograd.functional import grad as autograd_grad
        self.eager_calls += 1
        args, kwargs = to_host(tuple(args)), to_host(kwargs)
        if self.mode == "jit":
            return self.fn(*args, **kwargs)
        args = list(args)
        wrt, trees = [], []
        for i in self._argnums():
            leaves, tree = flatten(args[i], f"argument {i}", dynamic_scalars=True)
            trees.append(tree)
            if tree[0] == Kind.MODULE:
                wrt.extend(leaves)
                continue
            fresh = [Tensor._wrap(x._value).requires_grad_() for x in leaves]
            wrt.extend(fresh)
            args[i] = unflatten(tree, fresh)
        with enable_grad():
            out = self.fn(*args, **kwargs)
        aux = None
        if self.has_aux:
            out, aux = out
        from jitgrad.trace.tracer import _check_scalar
        out = _check_scalar(out)
        gs = autograd_grad(out, wrt, allow_unused=True) if out.requires_grad else [None] * len(wrt)
        gs = [Tensor._wrap(np.zeros_like(w._value)) if g is None else g.detach()
              for g, w in zip(gs, wrt)]
        it = iter(gs)
        per_arg = [unflatten(t, [next(it) for _ in range(num_leaves(t))]) for t in trees]
        g = per_arg[0] if isinstance(self.argnums, int) else tuple(per_arg)
        value = out.detach()
        return ((value, _detach_tree(aux)) if self.has_aux else value), g


def _to_device_tree(obj):
    """``obj`` with every Tensor replaced by a DeviceArray holding its value."""
    from jitgrad.backends import _cuda_runtime as rt
    from jitgrad.backends.device_array import DeviceArray

    def leaf(x):
        if not isinstance(x, Tensor):
            return x
        return DeviceArray(rt.to_device(x._value, x._value.dtype), x._value.shape)
    return map_leaves(leaf, obj)


def _detach_tree(obj):
    leaves, tree = flatten(obj, "aux")
    return unflatten(tree, [x.detach() for x in leaves])
