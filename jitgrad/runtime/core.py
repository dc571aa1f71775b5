"""The runtime behind compiled functions: a cache from argument signature to a *trace tree*.

Each trace is compiled once. Running it either returns outputs or reports the first guard that
failed, with the value it saw; the tree then follows (or grows, by tracing anew from the current
inputs) the child for that outcome. Past the re-trace limit, or when one value guard keeps
changing, the function warns once and runs eagerly from then on: slower, never wrong.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from jitgrad._settings import config, log as _log
from jitgrad.errors import GuardFailure
from jitgrad.ir.verify import verify
from jitgrad.ops import registry
from jitgrad.tensor import Tensor
from jitgrad.backends.device_array import DeviceLeaf
from jitgrad.trace.pytree import Kind, flatten, num_leaves
from jitgrad.trace.implicit import Implicit
from jitgrad.trace.tracer import Traced, module_leaves, trace
from jitgrad.loops.lift import lift_loops
from jitgrad.transforms.replay import unrolled_transforms
from jitgrad.errors import ReverseOfLoopReverse
from jitgrad.transforms.autodiff import vjp_graph
from jitgrad.transforms.simplify import simplify
from jitgrad.runtime.eager import EagerMixin
from jitgrad.runtime.callkey import CallKey, plain_args, plain_key
from jitgrad.runtime.nodes import (_MISS, CacheInfo, Call, CallSite, Hooks, RetraceWarning,
                                   TraceNode, _Deferred, _name)
from jitgrad.runtime.results import ResultsMixin
from jitgrad.runtime.tree import TreeMixin


class Runtime(ResultsMixin, EagerMixin, TreeMixin):
    """One compiled function's traces, caches and counters, and its call path."""

    def __init__(self, fn, mode: str, argnums, has_aux: bool, target: str,
                 retrace_limit: int | None) -> None:
        self.fn = fn
        self.mode = mode  # "grad" (value and gradients) or "jit"
        self.argnums = argnums
        self.has_aux = has_aux
        self.target = target
        self.retrace_limit = retrace_limit
        self.cache: dict[CallKey, TraceNode] = {}
        self.traces = self.compiles = self.hits = self.misses = 0
        self._unrolled = False  # its transforms' loops stay unrolled (new_trace)
        self._counters: frozenset = frozenset()  # loop counters read in bodies (_new_trace)
        self.guard_failures = self.eager_calls = self.interpreted = 0
        self.compile_seconds = 0.0
        self.retraces: list[str] = []
        self.site_retraces: dict = {}
        self.fallback: str | None = None
        self._last_key = None
        self._backend = None
        self._deferral = None  # _hooks()
        self._names = _param_names(fn)
        # Positions of the arguments whose numbers are differentiated: inputs, not static.
        self._dynamic = self._argnums() if mode == "grad" else ()
        self.implicit = Implicit(fn)
        # Plain calls skip flattening: their CallKey straight to the trace tree's root.
        self.fast: dict[CallKey, CallSite] = {}
        self._last_steady = None

    @property
    def backend(self):
        if self._backend is None:
            from jitgrad.backends import get_backend
            self._backend = get_backend(self.target)
        return self._backend

    # -- signatures --------------------------------------------------------------------------
    def _argnums(self) -> tuple:
        a = self.argnums
        return (a,) if isinstance(a, int) else tuple(a)

    def prepare(self, args: tuple, kwargs: dict) -> Call:
        dyn = self._dynamic  # (the differentiated arguments' positions; none but for grad)
        for a in dyn:
            if a >= len(args):
                raise ValueError(f"argnums {self.argnums!r} is out of range: the call passed "
                                 f"{len(args)} positional argument{'s' if len(args) != 1 else ''}")
        leaves: list = []
        trees = []
        extras: list = []  # Module arguments' buffers and tensor attributes
        names = self._names
        for i, a in enumerate(args):
            where = f"argument {i}" + (f" ({names[i]!r})" if i < len(names) else "")
            ls, t = flatten(a, where, dynamic_scalars=i in dyn, extras=extras)
            leaves.extend(ls)
            trees.append(t)
        ls, t = flatten(kwargs, "keyword arguments", extras=extras)
        leaves.extend(ls)
        trees.append(t)
        if not self.backend.on_device:
            for x in leaves:
                if type(x) is DeviceLeaf:
                    raise TypeError(f"{x.where} is a CUDA device array, but this function was "
                                    f"compiled for target={self.target!r}: use target='cuda', or "
                                    "copy it to the host (np.asarray)")
        implicit, extra = self.implicit.state()
        if extras:
            implicit = implicit + extras
        aliases = None
        if implicit and any(t[0] == Kind.MODULE for t in trees):
            # Which implicit tensors are parameters of a Module argument: the trace maps those
            # to the argument's input, so the pattern is part of the key.
            params = {id(leaves[k]): k for k in module_leaves(trees)}
            aliases = tuple(params.get(id(t), -1) for t in implicit)
        key = CallKey.flat(tuple(trees), leaves, implicit, extra, aliases)
        return Call(key, leaves, trees, implicit)

    def wrt(self, call: Call) -> tuple:
        """Input positions of the leaves being differentiated (argnums' leaves)."""
        offs, out = 0, []
        for i, t in enumerate(call.trees[:-1]):
            n = num_leaves(t)
            if i in self._argnums():
                for j in range(offs, offs + n):
                    leaf = call.leaves[j]
                    if not leaf.dtype.is_floating_point:
                        raise TypeError(f"grad: argument {i} holds a {leaf.dtype.name} tensor; "
                                        "only floating-point inputs can be differentiated")
                    out.append(j)
            offs += n
        return tuple(out)

    # -- tracing and compiling ---------------------------------------------------------------
    def new_trace(self, call: Call, args, kwargs) -> TraceNode:
        if not self._unrolled:
            traces = self.traces
            try:
                return self._new_trace(call, args, kwargs)
            except ReverseOfLoopReverse:
                # a transform reverses a reverse loop it cannot reverse (grad of the hessian
                # of a function with several outputs): trace again, and from now on, with
                # those loops unrolled (exact, one trace per trip count); the attempt left no
                # trace
                self._unrolled, self.traces = True, traces
        with unrolled_transforms():
            return self._new_trace(call, args, kwargs)

    def _new_trace(self, call: Call, args, kwargs) -> TraceNode:
        t0 = time.perf_counter()
        grad = self.mode == "grad"
        leaves = call.leaves
        if any(type(x) is DeviceLeaf for x in leaves):  # tracing computes on host copies
            leaves = [x.host() if type(x) is DeviceLeaf else x for x in leaves]
        traced = trace(self.fn, args, kwargs, call.trees, leaves, call.implicit,
                       scalar_output=grad, has_aux=self.has_aux, count_locals=self._counters)
        if config.lift_loops:
            traced.graph, lifted = lift_loops(traced.graph, traced.guard_sites,
                                              traced.guard_context)
            new = {r.count for r in lifted if r.count} - self._counters
            if new:
                # a loop whose body reads its counter: traced again (this trace is dropped)
                # with the counter a traced number from its header on, which lifts it
                self._counters |= new
                return self._new_trace(call, args, kwargs)
            traced.loops = lifted + traced.loops  # (then those of transforms inside it)
            for rep in traced.loops:
                _log("retrace", f"{_name(self.fn)}: loop at {rep}")
        self._adopt(traced)  # (the trace that is kept: a dropped one adopts nothing)
        self.traces += 1
        return self.stages(traced, call, t0)

    def _adopt(self, traced: Traced) -> None:
        """Tensors the trace read that the walk for live state did not find: their paths are
        re-read from now on; one that cannot be found again would be stale at a later call, so
        the function runs eagerly from the next call on (this call's trace read it just now)."""
        missing = self.implicit.adopt(traced.refs)
        if missing and self.fallback is None:
            t = missing[0]
            ids = {id(v) for v, r in zip(traced.graph.inputs[-len(traced.refs):], traced.refs)
                   if r is t}
            src = next((e.src for e in traced.graph.eqns if e.src is not None and
                        any(id(a) in ids for a in e.inputs)), None)
            where = f" at {src.file}:{src.line}" if src is not None else ""
            self.fallback = (f"it reads a {t.dtype.name}{list(t.shape)} tensor{where} through an "
                             "object that is not looked into for live values at each call (it "
                             "would go stale there); pass the tensor as an argument, or hold it "
                             "in a list, dict, Module or an object of your own class")
            self._last_steady = None
            warnings.warn(f"jitgrad: {_name(self.fn)} runs eagerly from the next call on: "
                          f"{self.fallback}. Results stay exact.", RetraceWarning, stacklevel=5)

    def stages(self, traced, call: Call, t0: float) -> TraceNode:
        """The node of a forward trace: its adjoint, simplified, compiled (or deferred)."""
        grad = self.mode == "grad"
        g = traced.graph
        if config.verify:
            verify(g)
        adjoint = vjp_graph(g, self.wrt(call)) if grad else g
        if config.verify and grad:
            verify(adjoint)
        optimized = simplify(adjoint, verify if config.verify else None)
        # Tracing time counts as compile time (it is what a call pays before running).
        self.compile_seconds += time.perf_counter() - t0
        guarded = config.defer_guarded and bool(optimized.guards)
        if self.backend.defers_compile and (guarded or config.compile_after != 0):
            # The interpreter runs the trace's first calls (config.compile_after): a trace
            # that still branches on data may serve a single call (a trip count that a lifted
            # loop makes obsolete), and any may serve fewer calls than a compile would repay.
            exe = _Deferred(optimized, 2 if guarded else 1, self._hooks())
            node = exe.node = TraceNode(traced, adjoint, optimized, exe)
            if not guarded and exe.due_before_a_call():
                exe.promote()  # its kernel was built ahead of time: it loads at once
            else:
                after = config.compile_after
                until = ("a second call passes its guards" if after == 0 else
                         f"its calls have taken {after} s" if after is not None else
                         "its calls have taken as long as its compile is predicted to"
                         + ("" if guarded else f" ({exe.cost():.2f} s)"))
                _log("compile", f"{_name(self.fn)}: trace {self.traces} with {len(g.eqns)} "
                                f"forward equations and {len(optimized.guards)} guards: "
                                f"interpreted until {until}")
            return node
        exe = self._compile(optimized)
        _log("compile", f"{_name(self.fn)}: trace {self.traces} with {len(g.eqns)} forward and "
                        f"{len(optimized.eqns)} optimized equations, {len(optimized.guards)} "
                        f"guards, compiled for {self.backend.name} in "
                        f"{(time.perf_counter() - t0) * 1e3:.1f} ms")
        return TraceNode(traced, adjoint, optimized, exe)

    def _hooks(self) -> Hooks:
        """What this runtime's deferred traces need from it (``_Deferred``), made once."""
        if self._deferral is None:
            self._deferral = Hooks(_name(self.fn), self.backend, self._compile, self.forget,
                                   self._interpreted_call)
        return self._deferral

    def _interpreted_call(self) -> None:
        self.interpreted += 1

    def _compile(self, graph):
        t0 = time.perf_counter()
        exe = self.backend.compile(graph)
        self.compiles += 1
        self.compile_seconds += time.perf_counter() - t0
        return exe

    def compile_now(self, node: TraceNode) -> None:
        """Compile a deferred trace (``lower()`` shows its kernel)."""
        if type(node.exe) is _Deferred:
            node.exe.promote()

    def forget(self, node: TraceNode) -> None:
        """Drop the fast paths built for ``node`` (its executable or place in the tree
        changed)."""
        for k in [k for k, v in self.fast.items() if v.node is node]:
            del self.fast[k]
        self._last_steady = None

    def node_for(self, call: Call, args, kwargs) -> TraceNode:
        root = self.cache.get(call.key)
        if root is None:
            self.misses += 1
            if self.cache:
                reason = f"new signature: {call.key.describe_change(self._last_key)}"
                self.retraces.append(reason)
                _log("retrace", f"{_name(self.fn)}: {reason}")
            root = self.cache[call.key] = self.new_trace(call, args, kwargs)
        else:
            self.hits += 1
        self._last_key = call.key
        return root

    # -- running -----------------------------------------------------------------------------
    def call_steady(self, args: tuple):
        """A plain call through the last plain call's whole path (``_steady``), when it still
        fits: the result, or ``_MISS`` for the general path. A failed guard there grows or walks
        the tree from now on."""
        last = self._last_steady
        if last is None:
            return _MISS
        try:
            out = last(args)
        except GuardFailure:
            self._last_steady = None
            return self.run(args, {}, tried=last)
        if out is not _MISS:
            self.hits += 1
        return out

    def run(self, args: tuple, kwargs: dict, tried=None):
        """The result of calling the function. ``tried``: a steady-state function that already
        ran this call (``Compiled.__call__`` tries the last one) and whose guard failed."""
        if registry.eager_observers:
            t0, c0 = time.perf_counter(), self.compile_seconds
            out = self._dispatch(args, kwargs, tried)
            dt = time.perf_counter() - t0 - (self.compile_seconds - c0)
            for o in registry.eager_observers:
                if hasattr(o, "compiled_call"):
                    o.compiled_call(self, _name(self.fn), dt)
            return out
        return self._dispatch(args, kwargs, tried)

    def _dispatch(self, args: tuple, kwargs: dict, tried=None):
        if self.fallback is not None:
            return self.eager(args, kwargs)
        if not kwargs:
            parts = plain_args(args, self._dynamic)
            if parts is not None:
                implicit, extra = self.implicit.state()
                return self._run_plain(plain_key(parts, implicit, extra), args, implicit, tried)
        call = self.prepare(args, kwargs)
        return self.execute(call, self.node_for(call, args, kwargs), args, kwargs)

    def _run_plain(self, key: tuple, args: tuple, implicit: list, tried):
        """A plain call (tensors, NumPy arrays and scalars, Python numbers; no keywords): its
        ``CallSite`` by its key (``plain_key``), without flattening, and the site's steady
        function, which checks the call itself; else the general path."""
        site, call = self._site(key, args)
        node, steady = site.node, site.steady
        if not node.children and (steady is None or steady is not tried):
            # The steady state: one trace (the generated function reads the tensors of
            # closures and globals itself).
            try:
                if steady is not None:
                    out = steady(args)
                    if out is not _MISS:
                        self._last_steady = steady
                        return out
                elif site.direct:
                    return site.build(node.exe([a._value for a in args]))
            except GuardFailure:
                pass
        if call is None:
            if site.leaves:
                call = Call(site.template.key, args, site.template.trees, implicit)
            else:  # this call's own leaves (the template holds the first call's numbers)
                call = self.prepare(args, {})
                node = self.node_for(call, args, {})
        return self.execute(call, node, args, {})

    def _site(self, key: tuple, args: tuple) -> tuple:
        """The CallSite of a plain call's key (made at its first call), and the call prepared
        then (None when it was there already: a hit)."""
        hit = self.fast.get(key)
        if hit is not None:
            self.hits += 1
            return hit, None
        call = self.prepare(args, {})
        node = self.node_for(call, args, {})
        build = self._builder(node, call)
        key = CallKey.of(key)  # (the record: equal to the plain tuple each call looks up)
        leaves = key.args_are_leaves
        hit = self.fast[key] = CallSite(call, node, build, self._steady(node, call, build, key),
                                        leaves, leaves and not key.implicit and
                                        not node.traced.refs)
        return hit, call

    def execute(self, call: Call, node: TraceNode, args, kwargs):
        taken = self.follow(call, node, args, kwargs)
        if isinstance(taken, str):
            return self._give_up(args, kwargs, taken)
        node, outs = taken
        if node.build_trees != call.trees:  # equal trees build alike: no rebuild per call
            node.build, node.build_trees = self._builder(node, call), call.trees
        return node.build(outs)

    def inline(self, args: tuple, kwargs: dict):
        """Trace the gradient inside the active trace and replay it there."""
        outer = registry.trace_state.builder
        call = self.prepare(args, kwargs)
        traced = trace(self.fn, args, kwargs, call.trees, call.leaves, call.implicit,
                       scalar_output=True, has_aux=self.has_aux)
        joint = vjp_graph(traced.graph, self.wrt(call))
        outs = outer.inline(joint, list(call.leaves) + list(call.implicit) + traced.refs)
        return self._structure(traced.out_tree, call, outs)

    def finish(self, node: TraceNode, call: Call, outs: list):
        for i in node.copy_out:
            outs[i] = outs[i].copy()  # ndarray or DeviceArray: a copy either way
        if not node.exe.dense_outputs:
            # As ``_result_lines``: every host result is a dense, writable array of its own.
            for i, o in enumerate(outs):
                if type(o) is np.ndarray and not (o.flags.writeable and o.flags.c_contiguous):
                    outs[i] = o.copy()
        # Device backends return DeviceArrays, which stay as they are.
        return self._structure(node.traced.out_tree, call,
                               [Tensor._wrap(o) if type(o) is np.ndarray else o for o in outs])

    def cache_info(self) -> CacheInfo:
        return CacheInfo(self.traces, self.compiles, self.hits, self.misses,
                         self.guard_failures, tuple(self.retraces), self.eager_calls,
                         self.fallback is not None, tuple(self._fallbacks()), self._loops(),
                         self.interpreted)

    def _loops(self) -> tuple:
        seen: dict = {}
        stack = list(self.cache.values())
        while stack:
            node = stack.pop()
            stack.extend(node.children.values())
            for rep in node.traced.loops:
                seen.setdefault(str(rep), None)
        return tuple(seen)

    def _fallbacks(self):
        stack = list(self.cache.values())
        while stack:
            node = stack.pop()
            stack.extend(node.children.values())
            for name, src, why in node.exe.host_ops:
                where = f" at {src.file}:{src.line}" if src else ""
                yield f"{name}{where} runs on the host ({why})"
            note = node.exe.note
            if note:
                yield f"a trace runs on the interpreter ({note})"

    def cache_clear(self) -> None:
        self.fast.clear()
        self.__init__(self.fn, self.mode, self.argnums, self.has_aux, self.target,
                      self.retrace_limit)


def _param_names(fn) -> list:
    import inspect
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []
