"""The eager fallback: past the re-trace limits a compiled function runs its Python eagerly,
with results shaped as the compiled path gives them."""

from __future__ import annotations

import warnings

import numpy as np

from jitgrad.tensor import Tensor
from jitgrad.trace import pytree
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
        out = _own_results(self._eager(args, kwargs), self._input_arrays(args, kwargs))
        if self.backend.on_device:  # results as the compiled path gives them: on the device
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

    def _input_arrays(self, args: tuple, kwargs: dict) -> set:
        """The ids of the arrays the call reads: its arguments' (and their Modules' tensors)
        and those of closures and globals."""
        arrays = [t._value for t in self.implicit.state()[0]]

        def leaf(x):
            if isinstance(x, Tensor):
                arrays.append(x._value)
            elif isinstance(x, np.ndarray):
                arrays.append(x)
            elif isinstance(x, pytree.Module):
                _, _, params, others, _ = pytree.module_flat(x)
                arrays.extend(t._value for t in params + others)
        map_leaves(leaf, (args, kwargs))
        return {id(a) for a in arrays if type(a) is np.ndarray} | \
            {id(a.base) for a in arrays if type(a) is np.ndarray and a.base is not None}


def _own_results(obj, inputs: set):
    """``obj`` with each Tensor that is not a dense, writable array of its own (a broadcast
    gradient from autograd.grad, an argument returned as it is, a result given twice) replaced
    by a copy, as the compiled path gives them: results are written in place. An array that
    owns its data can share it only with views of it or by being the same object."""
    seen: set = set()

    def leaf(x):
        if not isinstance(x, Tensor):
            return x
        a = x._value
        if a.flags.owndata and a.flags.writeable and a.flags.c_contiguous and \
                id(a) not in inputs and id(a) not in seen:
            seen.add(id(a))
            return x
        return Tensor._wrap(np.array(a, order="C"))
    return map_leaves(leaf, obj)


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
