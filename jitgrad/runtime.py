"""The runtime behind compiled functions: a cache from argument signature to a *trace tree*.

Each trace is compiled once. Running it either returns outputs or reports the first guard that
failed, with the value it saw; the tree then follows (or grows, by tracing anew from the current
inputs) the child for that outcome. Past the re-trace limit, or when one value guard keeps
changing, the function warns once and runs eagerly from then on: slower, never wrong.
"""

from __future__ import annotations

import time
import warnings
from typing import NamedTuple

import numpy as np

from jitgrad._settings import config, log as _log
from jitgrad.errors import GuardFailure
from jitgrad.ir.graph import Var
from jitgrad.ir.verify import verify
from jitgrad.ops import registry
from jitgrad.nn.parameter import Parameter
from jitgrad.tensor import Tensor
from jitgrad.backends.device_array import DeviceLeaf
from jitgrad.trace.pytree import (TENSOR_LEAF, Kind, flatten, map_leaves, num_leaves, to_host,
                                  unflatten)
from jitgrad.trace.implicit import Implicit
from jitgrad.trace.tracer import module_leaves, trace
from jitgrad.transforms.loops import lift_loops
from jitgrad.transforms.autodiff import vjp_graph
from jitgrad.transforms.simplify import simplify


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


def _outcome_key(v):
    return "nan" if v != v else v


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
        self.copy_out = _shared_outputs(optimized, getattr(exe, "pools_intermediates", False))


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


class Runtime:
    def __init__(self, fn, mode: str, argnums, has_aux: bool, target: str,
                 retrace_limit: int | None) -> None:
        self.fn = fn
        self.mode = mode  # "grad" (value and gradients) or "jit"
        self.argnums = argnums
        self.has_aux = has_aux
        self.target = target
        self.retrace_limit = retrace_limit
        self.cache: dict[tuple, TraceNode] = {}
        self.traces = self.compiles = self.hits = self.misses = 0
        self.guard_failures = self.eager_calls = 0
        self.compile_seconds = 0.0
        self.retraces: list[str] = []
        self.site_retraces: dict = {}
        self.fallback: str | None = None
        self._last_key = None
        self._backend = None
        self._names = _param_names(fn)
        self.implicit = Implicit(fn)
        # Calls whose arguments are all plain tensors skip flattening: their (shape, dtype)s
        # and the closure's key straight to the trace tree's root.
        self.fast: dict[tuple, tuple] = {}
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
        if self.mode == "grad":
            for a in self._argnums():
                if a >= len(args):
                    raise ValueError(f"argnums {self.argnums!r} is out of range: the call passed "
                                     f"{len(args)} positional argument{'s' if len(args) != 1 else ''}")
        dyn = set(self._argnums()) if self.mode == "grad" else set()
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
        if self.target != "cuda":
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
        key = (tuple(trees), tuple((x._value.shape, x._value.dtype) for x in leaves),
               tuple((x._value.shape, x._value.dtype) for x in implicit), extra, aliases)
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
        t0 = time.perf_counter()
        grad = self.mode == "grad"
        leaves = call.leaves
        if any(type(x) is DeviceLeaf for x in leaves):  # tracing computes on host copies
            leaves = [x.host() if type(x) is DeviceLeaf else x for x in leaves]
        traced = trace(self.fn, args, kwargs, call.trees, leaves, call.implicit,
                       scalar_output=grad, has_aux=self.has_aux)
        self.traces += 1
        if config.lift_loops:
            traced.graph, traced.loops = lift_loops(traced.graph, traced.guard_sites,
                                                    traced.guard_context)
            for rep in traced.loops:
                _log("retrace", f"{_name(self.fn)}: loop at {rep}")
        g = traced.graph
        if config.verify:
            verify(g)
        adjoint = vjp_graph(g, self.wrt(call)) if grad else g
        if config.verify and grad:
            verify(adjoint)
        optimized = simplify(adjoint, verify if config.verify else None)
        # Tracing time counts as compile time (it is what a call pays before running).
        self.compile_seconds += time.perf_counter() - t0
        if config.defer_guarded and optimized.guards and self.backend.name == "numba-cpu":
            # A trace that still branches on data may serve a single call (a trip count that a
            # lifted loop makes obsolete): the interpreter runs its calls until a second one
            # passes its guards, and then it compiles.
            exe = _Deferred(self, optimized)
            node = exe.node = TraceNode(traced, adjoint, optimized, exe)
            _log("compile", f"{_name(self.fn)}: trace {self.traces} with {len(g.eqns)} forward "
                            f"equations and {len(optimized.guards)} guards: interpreted until a "
                            "second call takes it")
            return node
        exe = self._compile(optimized)
        _log("compile", f"{_name(self.fn)}: trace {self.traces} with {len(g.eqns)} forward and "
                        f"{len(optimized.eqns)} optimized equations, {len(optimized.guards)} "
                        f"guards, compiled for {self.backend.name} in "
                        f"{(time.perf_counter() - t0) * 1e3:.1f} ms")
        return TraceNode(traced, adjoint, optimized, exe)

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
        for k in [k for k, v in self.fast.items() if v[1] is node]:
            del self.fast[k]
        self._last_steady = None

    def node_for(self, call: Call, args, kwargs) -> TraceNode:
        root = self.cache.get(call.key)
        if root is None:
            self.misses += 1
            if self.cache:
                reason = f"new signature: {_describe_change(self._last_key, call.key)}"
                self.retraces.append(reason)
                _log("retrace", f"{_name(self.fn)}: {reason}")
            root = self.cache[call.key] = self.new_trace(call, args, kwargs)
        else:
            self.hits += 1
        self._last_key = call.key
        return root

    # -- running -----------------------------------------------------------------------------
    def run(self, args: tuple, kwargs: dict, tried=None):
        """The result of calling the function. ``tried``: a steady-state function that already
        ran this call (``Compiled.__call__`` tries the last one) and whose guard failed."""
        if registry.eager_observers:
            t0, c0 = time.perf_counter(), self.compile_seconds
            out = self._run(args, kwargs, tried)
            dt = time.perf_counter() - t0 - (self.compile_seconds - c0)
            for o in registry.eager_observers:
                if hasattr(o, "compiled_call"):
                    o.compiled_call(self, _name(self.fn), dt)
            return out
        return self._run(args, kwargs, tried)

    def _run(self, args: tuple, kwargs: dict, tried=None):
        if self.fallback is not None:
            return self.eager(args, kwargs)
        if not kwargs:
            for a in args:
                if type(a) is not Tensor and type(a) is not Parameter:
                    if type(a) in _FAST_SCALARS:
                        return self._run_scalars(args, tried)
                    break
            else:
                implicit, extra = self.implicit.state()
                fkey = tuple([(a._value.shape, a._value.dtype) for a in args])
                if implicit or extra:
                    fkey = (fkey, tuple([(t._value.shape, t._value.dtype) for t in implicit]),
                            extra)
                hit = self.fast.get(fkey)
                if hit is None:
                    call = self.prepare(args, kwargs)
                    node = self.node_for(call, args, kwargs)
                    build = self._builder(node, call)
                    hit = self.fast[fkey] = (call, node, build,
                                             self._steady(node, call, build, args))
                else:
                    self.hits += 1
                template, node, build, steady = hit
                if not implicit and not node.traced.refs and not node.children and \
                        (steady is None or steady is not tried):
                    # The steady state: one trace, inputs are the arguments.
                    try:
                        if steady is not None:
                            out = steady(args)
                            if out is not _MISS:
                                self._last_steady = steady
                                return out
                        outs = node.exe([a._value for a in args])
                    except GuardFailure:
                        pass
                    else:
                        return build(outs)
                return self.execute(Call(template.key, args, template.trees, implicit), node,
                                    args, kwargs)
        call = self.prepare(args, kwargs)
        return self.execute(call, self.node_for(call, args, kwargs), args, kwargs)

    def _run_scalars(self, args: tuple, tried):
        """Plain calls with Python numbers among tensors: keyed by the numbers' types (and
        values, where they are static) without flattening, so their steady state is fast too."""
        dyn = self._argnums() if self.mode == "grad" else ()
        fkey = tuple([(a._value.shape, a._value.dtype) if type(a) is Tensor or
                      type(a) is Parameter else (type(a), None if i in dyn else a)
                      for i, a in enumerate(args)])
        implicit, extra = self.implicit.state()
        if implicit or extra:
            fkey = (fkey, tuple([(t._value.shape, t._value.dtype) for t in implicit]), extra)
        hit = self.fast.get(fkey)
        call = None
        if hit is None:
            call = self.prepare(args, {})
            node = self.node_for(call, args, {})
            build = self._builder(node, call)
            hit = self.fast[fkey] = (call, node, build, self._steady(node, call, build, args))
        else:
            self.hits += 1
        _, node, build, steady = hit
        if steady is not None and steady is not tried and not implicit and not node.children:
            try:
                out = steady(args)
            except GuardFailure:
                out = _MISS
            if out is not _MISS:
                self._last_steady = steady
                return out
        if call is None:  # this call's own leaves (the template holds the first call's)
            call = self.prepare(args, {})
            node = self.node_for(call, args, {})
        return self.execute(call, node, args, {})

    def execute(self, call: Call, node: TraceNode, args, kwargs):
        taken = self.follow(call, node, args, kwargs)
        if isinstance(taken, str):
            return self._give_up(args, kwargs, taken)
        node, outs = taken
        if node.build_trees != call.trees:  # equal trees build alike: no rebuild per call
            node.build, node.build_trees = self._builder(node, call), call.trees
        return node.build(outs)

    def follow(self, call: Call, node: TraceNode, args, kwargs):
        """Run ``node`` and, where a guard fails, the child for its outcome (traced anew when
        there is none) until a trace's guards all hold: ``(node, outputs)``; or, past the
        re-trace limits, the reason to give up (a string)."""
        base = [x._value for x in call.leaves]
        if call.implicit:
            base += [x._value for x in call.implicit]
        fresh = False
        link = (self.cache, call.key)  # where ``node`` hangs in the tree
        while True:
            inputs = base + [t._value for t in node.traced.refs] if node.traced.refs else base
            try:
                return node, node.exe(inputs)
            except GuardFailure as gf:
                if fresh:
                    return ("the function took a different path when traced again on the same "
                            "inputs (is it deterministic?)")
                self.guard_failures += 1
                key = (gf.index, _outcome_key(gf.observed))
                child = node.children.get(key)
                if child is None:
                    site = node.traced.guard_sites[gf.index]
                    expect = _expected(node, gf.index)
                    reason = f"guard at {site} changed ({expect!r} -> {gf.observed!r})"
                    self.retraces.append(reason)
                    _log("retrace", f"{_name(self.fn)}: {reason}")
                    n = self.site_retraces.get(site, 0) + 1
                    self.site_retraces[site] = n
                    limit = self.retrace_limit if self.retrace_limit is not None \
                        else config.retrace_limit
                    if self.traces >= limit:
                        return (f"it was traced {self.traces} times (the limit); the last guard "
                                f"to change is at {site}")
                    if not isinstance(gf.observed, bool) and n >= config.unstable_guard_limit:
                        return f"the value read at {site} changes on nearly every call"
                    child = node.children[key] = self.new_trace(call, args, kwargs)
                    fresh = True
                    if _lifted_at(child, node.traced.guard_context[gf.index][0]
                                  if gf.index < len(node.traced.guard_context) else None):
                        # The new trace lifted the loop whose header failed here: it serves
                        # every trip count, so it takes this trace's place in the tree.
                        del node.children[key]
                        link[0][link[1]] = child
                        self.forget(node)
                        node = child
                        continue
                else:
                    fresh = False
                link = (node.children, key)
                node = child

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
        # Device backends return DeviceArrays, which stay as they are.
        return self._structure(node.traced.out_tree, call,
                               [Tensor._wrap(o) if type(o) is np.ndarray else o for o in outs])

    def _plain(self, node: TraceNode, call: Call) -> bool:
        """Whether results can be built with straight-line code: host arrays, and a tensor in
        and out where the tree structure matters."""
        plain = node.traced.out_tree == _TENSOR and (self.mode == "jit" or all(
            call.trees[i] == _TENSOR for i in self._argnums()))
        return plain and self.target != "cuda" and not self.has_aux

    def _result_lines(self, node: TraceNode, outs: list[str]) -> list[str]:
        """Straight-line code building the result from output arrays ``outs`` (expressions):
        copies of aliased outputs, Tensor objects, the result tuple."""
        lines = []
        fresh = getattr(node.exe, "fresh", ())  # outputs the executable made anew on this call
        for i, src in enumerate(outs):
            if i in node.copy_out and i not in fresh:
                src += ".copy()"
            lines += [f"t{i} = new(Tensor)", f"t{i}._value = {src}", f"t{i}._rg = False",
                      f"t{i}.grad_fn = None", f"t{i}._vc = [0]"]
        n, nums = len(outs), self.argnums
        if self.mode == "jit":
            lines.append("return t0")
        elif isinstance(nums, int):
            lines.append("return t0, t1")
        else:
            lines.append(f"return t0, ({''.join(f't{i}, ' for i in range(1, n))})")
        return lines

    def _builder(self, node: TraceNode, call: Call):
        """``finish`` for one trace and call structure: straight-line code where ``_plain``
        (this is on every steady-state call); else the general path."""
        if not self._plain(node, call):
            return lambda outs: self.finish(node, call, outs)
        n = len(node.optimized.outputs)
        lines = ["def build(outs):"] + ["    " + line for line in self._result_lines(
            node, [f"outs[{i}]" for i in range(n)])]
        ns = {"new": object.__new__, "Tensor": Tensor}
        exec("\n".join(lines), ns)  # noqa: S102  (a fixed template over this trace's arity)
        ns["build"].source = "\n".join(lines)
        return ns["build"]

    def call_text(self, node: TraceNode, call: Call, args: tuple) -> str:
        """The Python that runs a steady-state call of ``node`` with arguments like ``args``:
        the generated function where there is one, else why the general path runs."""
        build = self._builder(node, call)
        steady = self._steady(node, call, build, args)
        if steady is not None:
            return steady.source
        why = []
        if getattr(node.exe, "steady", None) is None:
            why.append(f"the {type(node.exe).__name__} makes no call function")
        if not self._plain(node, call):
            why.append("the arguments or results are nested, on a device, or with aux")
        if call.implicit or node.traced.refs:
            why.append("the function reads tensors from globals, closures or Modules")
        head = "# the general call path (Runtime.execute): " + "; ".join(why) + "\n"
        return head + getattr(build, "source", "# results built by Runtime.finish")

    def _steady(self, node: TraceNode, call: Call, build, args: tuple):
        """The whole steady-state call in one generated function, where the executable can make
        one (the Numba CPU backend) and the call's inputs are its arguments ``args`` (tensors
        and Python numbers): it checks the arguments' types, shapes and dtypes (a static
        number's value), and that no closure or global holds a tensor, itself, and returns
        ``_MISS`` when any differs from this call's. A differentiated number becomes its 0-d
        input. Else None."""
        make = getattr(node.exe, "steady", None)
        if make is None or not self._plain(node, call) or call.implicit or node.traced.refs:
            return None
        n = len(args)
        ns = {"new": object.__new__, "Tensor": Tensor, "Parameter": Parameter, "build": build,
              "MISS": _MISS, "implicit": self.implicit.state, "EXTRA": self.implicit.extra}
        # Guards are compiled into the kernel: once the tree has children, this trace still
        # answers every call whose guards pass, and raises GuardFailure for the others.
        prologue = [f"if len(args) != {n}:", "    return MISS"]
        if not self.implicit.fixed:
            # A closure or global may come to hold a tensor, or a Python value the trace baked
            # in may have changed.
            prologue += ["its, iex = implicit()", "if its or (iex is not EXTRA and iex != EXTRA):",
                         "    return MISS"]
        prologue.append(f"{', '.join(f'a{i}' for i in range(n))}{',' if n == 1 else ''} = args")
        leaves = iter(call.leaves)
        j = 0
        for i, (a, tree) in enumerate(zip(args, call.trees)):
            if type(a) is Tensor or type(a) is Parameter:
                v = next(leaves)._value
                ns[f"S{j}"], ns[f"D{j}"] = v.shape, v.dtype
                prologue += [f"if type(a{i}) is not Tensor and type(a{i}) is not Parameter:",
                             "    return MISS",
                             f"v{j} = a{i}._value",
                             f"if v{j}.shape != S{j} or v{j}.dtype is not D{j}:",
                             "    return MISS"]
                j += 1
            elif tree == _TENSOR:  # a differentiated number: a 0-d input of the leaf's dtype
                ns[f"T{j}"] = next(leaves)._value.dtype.type
                prologue += [f"if type(a{i}) is not {type(a).__name__}:", "    return MISS",
                             f"v{j} = T{j}(a{i})"]
                j += 1
            else:  # static: part of the trace
                ns[f"K{i}"] = a
                prologue += [f"if type(a{i}) is not {type(a).__name__} or a{i} != K{i}:",
                             "    return MISS"]
        finish = self._result_lines(node, [f"o{i}" for i in range(len(node.optimized.outputs))])
        return make(prologue, finish, ns)

    def _structure(self, tree, call: Call, tensors: list):
        if tree == _TENSOR and self.mode == "grad":  # common cases, without walking trees
            nums = self.argnums
            if isinstance(nums, int):
                if len(tensors) == 2 and call.trees[nums] == _TENSOR:
                    return tensors[0], tensors[1]
            elif len(tensors) == len(nums) + 1 and all(call.trees[i] == _TENSOR for i in nums):
                return tensors[0], tuple(tensors[1:])
        n_fwd = num_leaves(tree)
        value = unflatten(tree, tensors[:n_fwd])
        if self.mode == "jit":
            return value
        grads = iter(tensors[n_fwd:])
        per_arg = []
        for i in self._argnums():
            t = call.trees[i]
            per_arg.append(unflatten(t, [next(grads) for _ in range(num_leaves(t))]))
        g = per_arg[0] if isinstance(self.argnums, int) else tuple(per_arg)
        return value, g

    # -- eager fallback ----------------------------------------------------------------------
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

    def cache_info(self) -> CacheInfo:
        return CacheInfo(self.traces, self.compiles, self.hits, self.misses,
                         self.guard_failures, tuple(self.retraces), self.eager_calls,
                         self.fallback is not None, tuple(self._fallbacks()), self._loops())

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
            for name, src, why in getattr(node.exe, "host_ops", ()):
                where = f" at {src.file}:{src.line}" if src else ""
                yield f"{name}{where} runs on the host ({why})"
            note = getattr(node.exe, "note", None)
            if note:
                yield f"a trace runs on the interpreter ({note})"

    def cache_clear(self) -> None:
        self.fast.clear()
        self.__init__(self.fn, self.mode, self.argnums, self.has_aux, self.target,
                      self.retrace_limit)


def _lifted_at(node: TraceNode, site_key) -> bool:
    return site_key is not None and any(r.lifted and r.key == site_key for r in node.traced.loops)


class _Deferred:
    """The executable of a trace with guards until a second call passes them: the interpreter
    runs the first two, and then it compiles (``config.defer_guarded``)."""

    def __init__(self, rt: "Runtime", graph) -> None:
        from jitgrad.backends.reference import ReferenceExecutable
        from jitgrad.ops.control import guard_types
        self.rt, self.graph, self.node = rt, graph, None
        self.interp = ReferenceExecutable(graph)
        self.guard_types = guard_types(graph)
        self.calls = 0

    def __call__(self, inputs: list) -> list:
        out = self.interp(inputs)  # a failed guard raises before anything compiles
        self.calls += 1
        if self.calls >= 2:
            self.promote()
        return out

    def promote(self):
        """Compile now; the node runs the compiled executable from here on."""
        exe = self.rt._compile(self.graph)
        self.node.exe = exe
        self.rt.forget(self.node)
        return exe

    host_ops: tuple = ()
    kernels: tuple = ()

    def text(self) -> str:
        return self.promote().text()


_TENSOR = TENSOR_LEAF
_FAST_SCALARS = (float, int, bool)  # argument types the plain-call paths take besides tensors
_MISS = object()  # a steady-state function's "not this call": take the general path


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


def _expected(node: TraceNode, index: int):
    for e in node.traced.graph.eqns:
        if e.out is None and e.prim.name == "guard" and e.params["index"] == index:
            return e.params["expect"]
    return None


def _describe_change(old, new) -> str:
    if old is None:
        return "first call"
    if old[0] != new[0]:
        return "the argument structure or a static argument changed"
    for i, (a, b) in enumerate(zip(old[1], new[1])):
        if a != b:
            return f"input {i} was {_sig(a)}, now {_sig(b)}"
    if len(old[1]) != len(new[1]):
        return "the number of inputs changed"
    for i, (a, b) in enumerate(zip(old[2], new[2])):
        if a != b:
            return f"closure tensor {i} was {_sig(a)}, now {_sig(b)}"
    return "a closure tensor was added or removed"


def _sig(s) -> str:
    from jitgrad.dtypes import _BY_NP
    from jitgrad.ir.graph import SHORT
    return f"{SHORT[_BY_NP[s[1]]]}[{','.join(map(str, s[0]))}]"


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _param_names(fn) -> list:
    import inspect
    try:
        return list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []
