"""The runtime's data: a trace node (its stages, executable and children by guard outcome),
the executable of a trace the interpreter runs until it compiles, a call's prepared arguments,
what ``cache_info()`` reports, and the small helpers the runtime's modules share."""

from __future__ import annotations

import time
from typing import Callable, NamedTuple

from jitgrad import _blas
from jitgrad._settings import config, log as _log
from jitgrad.backends.base import Backend, Executable
from jitgrad.ir.graph import Var
from jitgrad.trace.pytree import TENSOR_LEAF


class RetraceWarning(UserWarning):
    """A compiled function gave up on tracing and runs eagerly."""


class CacheInfo(NamedTuple):
    traces: int
    compiles: int
    hits: int
    misses: int
    guard_failures: int
    retraces: tuple
    eager_calls: int
    eager_fallback: bool
    # What a compiling backend did not compile: an equation run on the host inside a kernel,
    # or a whole trace handed to the interpreter, each with where and why.
    fallbacks: tuple = ()
    # Each data-dependent loop the traces met: lifted into one loop for any trip count, or
    # why not (file:line and the reason).
    loops: tuple = ()
    # Calls the interpreter ran while their trace had not compiled yet (config.compile_after).
    interpreted: int = 0


class TraceNode:
    """One trace in the tree: its stages, the compiled executable, and children by outcome."""

    __slots__ = ("traced", "adjoint", "optimized", "exe", "children", "copy_out", "build",
                 "build_trees")

    def __init__(self, traced, adjoint, optimized, exe) -> None:
        self.traced = traced
        self.adjoint = adjoint
        self.optimized = optimized
        self.exe = exe
        self.children: dict = {}
        self.build = self.build_trees = None  # Runtime._builder's result, for these arg trees
        self.copy_out = _shared_outputs(optimized, exe.pools_intermediates)


def _shared_outputs(graph, pooled: bool) -> tuple:
    """Positions of the outputs that must be copied so that no result shares memory with
    another result, an argument, a constant, or (``pooled``: a backend that keeps intermediates
    in buffers reused by the next call) scratch memory. A backend may return an input's reshape
    or transpose as a view of the caller's memory, and one value twice (the gradients of
    ``b + c`` with respect to ``b`` and ``c`` are one array)."""
    root: dict[int, int] = {}  # id(var) -> id of the var whose storage it views
    for e in graph.eqns:
        if e.out is not None and (e.prim.view or e.prim.name == "stop_gradient") and \
                isinstance(e.inputs[0], Var):
            root[id(e.out)] = root.get(id(e.inputs[0]), id(e.inputs[0]))
    bound = {id(v) for v in graph.inputs} | {id(v) for v, _ in graph.consts}
    results = {id(o) for o in graph.outputs if isinstance(o, Var)}
    seen: set = set()
    out = []
    for i, o in enumerate(graph.outputs):
        if not isinstance(o, Var):
            continue
        r = root.get(id(o), id(o))
        if r in bound or r in seen or (pooled and r not in results):
            out.append(i)
        seen.add(r)
    return tuple(out)


class Call(NamedTuple):
    """One call's flattened arguments."""

    key: tuple
    leaves: list
    trees: list
    implicit: list


class CallSite(NamedTuple):
    """What one plain call's key has: its prepared template call, the trace node it takes, the
    builder of its results, its generated steady function (None where the executable makes
    none), whether its arguments are its leaves as they are (tensors), and whether they are
    the trace's inputs as they are (``direct``: tensors, and no tensors read from elsewhere),
    so the executable can run on them."""

    template: Call
    node: "TraceNode"
    build: object
    steady: object
    leaves: bool
    direct: bool


class Hooks(NamedTuple):
    """What a deferred trace needs from the runtime that made it, handed over as values and
    callables: the runtime knows ``_Deferred``, and a ``_Deferred`` nothing of the runtime."""

    name: str               # the compiled function's, for the log
    backend: Backend        # its compile_cost, start_build and build_later
    compile: Callable       # graph -> Executable: the compile, counted as the runtime's
    promoted: Callable      # node -> None: the node's executable changed (its fast paths go)
    interpreted: Callable   # () -> None: one call ran on the interpreter


class _Deferred(Executable):
    """The executable of a CPU trace until it compiles: the interpreter runs its calls until
    ``min_calls`` of them passed its guards (two for a trace with guards,
    ``config.defer_guarded``) and they took ``config.compile_after`` seconds (by default, as
    long as compiling it is predicted to: ``compile_cost``)."""

    def __init__(self, graph, min_calls: int, hooks: Hooks) -> None:
        from jitgrad.backends.reference import ReferenceExecutable
        from jitgrad.ops.control import guard_types
        self.graph, self.hooks, self.node = graph, hooks, None
        self.interp = ReferenceExecutable(graph)
        self.guard_types = guard_types(graph)
        self.min_calls = min_calls
        self.calls = 0
        self.seconds = 0.0  # the interpreter's time on the calls so far
        self._cost: float | None = None  # the compile's predicted seconds (0: built ahead
        # of time, or Numba cannot take the trace and the interpreter runs it anyway)
        self.build = None  # the build process compiling it meanwhile (compile_in_background)

    def due(self) -> bool:
        """Whether the trace compiles now, after the calls so far."""
        return self.calls >= self.min_calls and self.due_before_a_call()

    def due_before_a_call(self) -> bool:
        """Whether the calls so far took as long as compiling is expected to."""
        after = config.compile_after
        if after is not None:
            return self.seconds >= after
        return self.cost() == 0.0 or self.seconds >= self.cost()

    def cost(self) -> float:
        """What compiling the trace is predicted to take (from its kernel's size and what
        the disk cache holds: looked at once)."""
        if self._cost is None:
            self._cost = self.hooks.backend.compile_cost(self.graph)
        return self._cost

    def __call__(self, inputs: list) -> list:
        _blas.tick()
        t0 = time.perf_counter()
        out = self.interp(inputs)  # a failed guard raises before anything compiles
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.hooks.interpreted()
        if self.build is not None:
            if self.build.done():  # its kernel is in the disk cache: it loads in place now
                self.build = None
                self.promote()
        elif self.due():
            if config.compile_in_background and config.compile_after != 0 and \
                    self.cost() != 0.0:
                self.build = self.hooks.backend.start_build(self.graph)
                if self.build is not None:
                    _log("compile", f"{self.hooks.name}: compiling a trace in a build process "
                                    f"after {self.calls} interpreted calls; the interpreter "
                                    "serves the calls meanwhile")
                    return out
            self.promote()
        elif self.calls == 2:  # it serves more than one call: a later process runs it compiled
            self.hooks.backend.build_later(self.graph)
        return out

    def promote(self):
        """Compile now; the node runs the compiled executable from here on."""
        exe = self.hooks.compile(self.graph)
        self.node.exe = exe
        self.hooks.promoted(self.node)
        if self.calls:
            _log("compile", f"{self.hooks.name}: compiled a trace after {self.calls} "
                            f"interpreted call{'s' if self.calls != 1 else ''} "
                            f"({self.seconds * 1e3:.1f} ms)")
        return exe

    def text(self) -> str:
        return self.promote().text()


_TENSOR = TENSOR_LEAF
_MISS = object()  # a steady-state function's "not this call": take the general path


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__
