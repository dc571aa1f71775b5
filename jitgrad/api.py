"""The compiled transforms: ``grad``, ``value_and_grad`` and ``jit``.

>>> import jitgrad
>>> @jitgrad.grad
... def f(x):
...     return (x.sin() * x).sum()
>>> f(jitgrad.tensor([0.0, 1.0]))
tensor([0.0000, 1.3818])
"""

from __future__ import annotations

import functools

from jitgrad.factories import random_calls
from jitgrad.ir.graph import Graph
from jitgrad.ops import registry
from jitgrad.ops.control import guard_p
from jitgrad.ops.registry import trace_state
from jitgrad.runtime import _MISS, Runtime

STAGES = ("forward", "adjoint", "optimized", "kernel", "call")


class Lowered:
    """What one signature compiles to: the IR at each stage, the kernels, and the guards."""

    def __init__(self, node, mode: str, call_text=None) -> None:
        self._node = node
        self._mode = mode
        self._call_text = call_text

    @property
    def forward(self) -> Graph:
        return self._node.traced.graph

    @property
    def adjoint(self) -> Graph:
        return self._node.adjoint

    @property
    def optimized(self) -> Graph:
        return self._node.optimized

    def as_text(self, stage: str = "optimized") -> str:
        """The text of ``stage``: "forward", "adjoint", "optimized", "kernel", "call" (the
        Python that runs a steady-state call: argument checks, the kernel, the results), or
        "all".

        >>> import jitgrad
        >>> f = jitgrad.grad(lambda x: (x * x).sum(), target="numba-cpu")
        >>> print(f.lower(jitgrad.ones(3)).as_text("call").splitlines()[0])
        def steady(args):
        """
        if stage == "all":
            return "\n\n".join(f"== {s} ==\n{self.as_text(s)}" for s in STAGES)
        if stage == "forward":
            return str(self.forward)
        if stage == "adjoint":
            return str(self.adjoint)
        if stage == "optimized":
            return str(self.optimized)
        if stage == "kernel":
            return self._node.exe.text()
        if stage == "call":
            return self._call_text() if self._call_text is not None else ""
        raise ValueError(f"unknown stage {stage!r}: use one of {', '.join(STAGES)} or 'all'")

    @property
    def kernels(self) -> list:
        """Generated sources of the compiled units (empty for the reference backend)."""
        return list(self._node.exe.kernels)

    @property
    def loops(self) -> list:
        """What loop lifting did in this trace: ``"file:line: lifted (...)"`` per loop, or why
        it was not."""
        return [str(r) for r in self._node.traced.loops]

    @property
    def guards(self) -> list:
        """The guards of this trace: ``(index, "file:line", expected value)``."""
        out = []
        sites = self._node.traced.guard_sites
        for e in self.forward.walk():  # (loop bodies' guards too)
            if e.out is None and e.prim is guard_p:
                i = e.params["index"]
                out.append((i, str(sites[i]) if sites[i] else "?", e.params["expect"]))
        return out


class Compiled:
    """A compiled function. Call it like the original; inspect it with ``lower``/``cache_info``."""

    def __init__(self, fn, mode: str, argnums, has_aux: bool, target: str, value: bool,
                 retrace_limit: int | None) -> None:
        if mode != "jit":  # jit differentiates nothing: argnums does not apply
            _check_argnums(fn, argnums)
        self._fn = fn
        self._value = value
        self._rt = Runtime(fn, mode, argnums, has_aux, target, retrace_limit)
        # Whether _result returns the runtime's result as it is (else: its gradients, [1]).
        self._plain_result = mode == "jit" or value
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args, **kwargs):
        if trace_state.builder is None:
            random_calls[0] += 1  # a call's random draws: a stream of their own (ops/random.py)
        if not kwargs and trace_state.builder is None and not registry.eager_observers:
            # The steady state, with one layer between the user and the generated function:
            # on a scalar gradient the layers cost as much as the kernel.
            out = self._rt.call_steady(args)
            if out is not _MISS:
                return out if self._plain_result else out[1]
        if trace_state.builder is not None:
            return self._inline(args, kwargs)
        return self._result(self._rt.run(args, kwargs))

    def _inline(self, args, kwargs):
        """Called while another function is being traced: become part of that trace (so
        ``grad(grad(f))`` gives second derivatives)."""
        if self._rt.mode == "jit":
            return self._fn(*args, **kwargs)
        return self._result(self._rt.inline(args, kwargs))

    def _result(self, out):
        """The runtime's ``(value, grads)`` as this transform returns it."""
        if self._rt.mode == "jit" or self._value:
            return out
        value, grads = out
        return (grads, value[1]) if self._rt.has_aux else grads

    def __get__(self, obj, objtype=None):
        return self if obj is None else functools.partial(self, obj)

    def lower(self, *args, **kwargs) -> Lowered:
        """The stages of the trace these arguments take: where the function branches on
        values, the path these values follow (traced now if it is new).

        >>> import jitgrad
        >>> f = jitgrad.jit(lambda x: x * 2 if x.sum() > 0 else -x)
        >>> "mul" in f.lower(jitgrad.ones(2)).as_text("forward")
        True
        >>> "neg" in f.lower(-jitgrad.ones(2)).as_text("forward")
        True
        """
        rt = self._rt
        call = rt.prepare(args, kwargs)
        node = rt.node_for(call, args, kwargs)
        taken = rt.follow(call, node, args, kwargs)
        if isinstance(taken, str):
            raise RuntimeError(f"lower: no single trace serves these arguments: {taken}")
        rt.compile_now(taken[0])  # a deferred trace: its kernel is what lower() shows
        return Lowered(taken[0], rt.mode, lambda: rt.call_text(taken[0], call, args))

    def cache_info(self):
        """Traces, compiles, hits, misses, guard failures, and the reason for each re-trace."""
        return self._rt.cache_info()

    def cache_clear(self) -> None:
        self._rt.cache_clear()


def _check_argnums(fn, argnums) -> None:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise ValueError("argnums must name at least one argument")
    for a in nums:
        if not isinstance(a, int) or a < 0:
            raise ValueError(f"argnums must be non-negative integers, got {argnums!r}")
    import inspect
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return
    n = sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
    for a in nums:
        if a >= n:
            raise ValueError(f"argnums {argnums!r} is out of range: {_fname(fn)} takes {n} "
                             f"positional argument{'s' if n != 1 else ''}")


def _fname(fn) -> str:
    return getattr(fn, "__qualname__", type(fn).__name__)


def _make(mode: str, value: bool):
    def transform(fn=None, argnums=0, has_aux: bool = False, target: str = "cpu",
                  retrace_limit: int | None = None):
        if fn is None:
            return lambda f: Compiled(f, mode, argnums, has_aux, target, value, retrace_limit)
        return Compiled(fn, mode, argnums, has_aux, target, value, retrace_limit)
    return transform


_grad = _make("grad", False)
_value_and_grad = _make("grad", True)
_jit = _make("jit", False)


def grad(fn=None, argnums=0, has_aux: bool = False, target: str = "cpu",
         retrace_limit: int | None = None):
    """Compile the gradient of scalar-valued ``fn`` with respect to argument(s) ``argnums``.

    Usable bare (``@jitgrad.grad``) or with options (``@jitgrad.grad(argnums=(0, 1))``). The
    gradient of an ``nn.Module`` argument is a dict keyed like ``named_parameters()``.

    >>> import jitgrad
    >>> df = jitgrad.grad(lambda x, y: (x * y).sum(), argnums=(0, 1))
    >>> df(jitgrad.tensor([1.0, 2.0]), jitgrad.tensor([3.0, 4.0]))
    (tensor([3., 4.]), tensor([1., 2.]))
    """
    return _grad(fn, argnums, has_aux, target, retrace_limit)


def value_and_grad(fn=None, argnums=0, has_aux: bool = False, target: str = "cpu",
                   retrace_limit: int | None = None):
    """Like ``grad``, returning ``(value, gradient)`` (``((value, aux), gradient)`` with aux).

    >>> import jitgrad
    >>> jitgrad.value_and_grad(lambda x: (x * x).sum())(jitgrad.tensor([3.0]))
    (tensor(9.), tensor([6.]))
    """
    return _value_and_grad(fn, argnums, has_aux, target, retrace_limit)


def jit(fn=None, target: str = "cpu", retrace_limit: int | None = None):
    """Compile ``fn``'s forward computation.

    >>> import jitgrad
    >>> jitgrad.jit(lambda x: x.exp() + 1)(jitgrad.zeros(2))
    tensor([2., 2.])
    """
    return _jit(fn, 0, False, target, retrace_limit)
