"""Tracing a Python function into forward IR.

Explicit arguments are flattened into leaves (tensors become input tracers; a Module's parameters
are mapped to input tracers by identity). Tensors the function reaches through its closure cells
and the globals it names are *implicit* inputs, found afresh at every call, so a compiled function
always sees their current values, even when the name is rebound to a new tensor. Any other outside
tensor met during the trace is a live input held by reference (its current value is read at each
call).
"""

from __future__ import annotations

import types

from jitgrad import dtypes
from jitgrad.ir.graph import Graph
from jitgrad.ops import registry
from jitgrad.tensor import Tensor
from jitgrad.trace.builder import Builder, locate
from jitgrad.trace.pytree import flatten, num_leaves, unflatten

_MAX_SCAN = 1000  # elements of a container scanned for tensors


def _code_names(code: types.CodeType, out: set) -> set:
    out.update(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _code_names(c, out)
    return out


def _scan(obj, out: list, depth: int) -> None:
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, Module):
        out.extend(p for _, p in obj.named_parameters())
    elif depth < 3 and isinstance(obj, (list, tuple)) and len(obj) <= _MAX_SCAN:
        for x in obj:
            _scan(x, out, depth + 1)
    elif depth < 3 and isinstance(obj, dict) and len(obj) <= _MAX_SCAN:
        for x in obj.values():
            _scan(x, out, depth + 1)


class Implicit:
    """The tensors a function reaches through its closure cells, the globals it names, and a
    bound Module. It remembers the objects those roots held, so an unchanged closure costs a few
    identity checks per call instead of a scan."""

    def __init__(self, fn) -> None:
        self.owner = None
        target = fn
        if isinstance(fn, Module):
            self.owner = fn
            target = type(fn).forward
        if isinstance(target, types.MethodType):
            self.owner = target.__self__
            target = target.__func__
        code = getattr(target, "__code__", None)
        self.cells = tuple(getattr(target, "__closure__", None) or ()) if code else ()
        self.globals = getattr(target, "__globals__", {}) if code else {}
        self.names = tuple(sorted(_code_names(code, set()))) if code else ()
        # The function reaches nothing (no closure, globals or owner): never any tensors.
        self.fixed = self.owner is None and not self.cells and not self.names
        self._roots: tuple | None = None
        self._tensors: list = []
        self._version = -1

    def roots(self) -> tuple:
        out = [self.owner]
        for cell in self.cells:
            try:
                out.append(cell.cell_contents)
            except ValueError:  # an empty cell
                out.append(None)
        g = self.globals
        out.extend(g.get(n) for n in self.names)
        return tuple(out)

    def tensors(self) -> list:
        if self.fixed:
            return self._tensors
        roots = self.roots()
        old = self._roots
        if old is not None and self._version == module_version() and len(old) == len(roots) \
                and all(a is b for a, b in zip(roots, old)):
            return self._tensors
        out: list = []
        simple = True
        for r in roots:
            n = len(out)
            _scan(r, out, 0)
            # Containers can change behind an unchanged identity: rescan every call when one
            # contributed tensors.
            if len(out) > n and isinstance(r, (list, tuple, dict)):
                simple = False
        self._roots = roots if simple else None
        self._tensors = out
        self._version = module_version()
        return out


class Traced:
    """One trace: the forward graph and what the runtime needs to feed and read it."""

    __slots__ = ("graph", "out_tree", "refs", "guard_sites")

    def __init__(self, graph, out_tree, refs, guard_sites) -> None:
        self.graph = graph
        self.out_tree = out_tree
        self.refs = refs
        self.guard_sites = guard_sites


def trace(fn, args: tuple, kwargs: dict, arg_trees: list, leaves: list, implicit: list,
          scalar_output: bool, has_aux: bool) -> Traced:
    """Run ``fn`` once on tracers. ``leaves`` are the flattened explicit leaves (Tensors) that
    ``arg_trees`` describe; ``implicit`` are the closure/global tensors."""
    b = Builder(concrete=True)
    tracers = []
    for leaf in leaves:
        t = b.new_input(leaf._value)
        # By identity too: a Module's parameters are reached through the module, not the args.
        b.register_outside(leaf, t)
        tracers.append(t)
    for t in implicit:
        if id(t) not in b.known:
            b.register_outside(t, b.new_input(t._value))
        else:
            b.new_input(t._value)  # keep positions aligned with the implicit list
    new_args, new_kwargs = _rebuild(args, kwargs, arg_trees, tracers)
    registry.trace_state.push(b)
    try:
        out = fn(*new_args, **new_kwargs)
        aux = None
        if has_aux:
            if not isinstance(out, tuple) or len(out) != 2:
                raise TypeError("has_aux=True needs the function to return a pair (output, aux)")
            out, aux = out
        if scalar_output:
            out = _check_scalar(out)
        out_leaves, out_tree = flatten((out, aux) if has_aux else out, where="the result")
        outputs = tuple(b.atom(t) if t._ir is None else t._ir for t in out_leaves)
    except (ValueError, IndexError, RuntimeError) as e:
        # Shape and index errors name the user's line, wherever in jitgrad they were raised.
        new = e if isinstance(e, RecursionError) else locate(e)
        if new is e:
            raise
        raise new from None
    finally:
        registry.trace_state.pop()
    graph = Graph(b.consts, b.inputs, b.eqns, outputs)
    return Traced(graph, out_tree, [t for _, t in b.refs], list(b.guard_sites))


def _rebuild(args, kwargs, arg_trees, tracers):
    """Put tracers in place of the leaves; Modules stay themselves (their parameters are mapped
    to tracers by identity)."""
    it = iter(tracers)
    out = []
    for a, tree in zip(list(args) + [kwargs], arg_trees):
        if tree[0] == "M":
            for _ in tree[3]:
                next(it)
            out.append(a)
            continue
        sub = [next(it) for _ in range(num_leaves(tree))]
        out.append(unflatten(tree, sub))
    return out[:-1], out[-1]


def _check_scalar(out):
    if out is None:
        raise TypeError("the function returned None; grad needs it to return a scalar tensor "
                        "(did you forget a return statement?)")
    if not isinstance(out, Tensor):
        if isinstance(out, (int, float)) and not isinstance(out, bool):
            return registry.scalar(float(out), dtypes.default_float)  # a constant: zero gradient
        raise TypeError(f"grad needs the function to return a scalar tensor, got "
                        f"{type(out).__name__}")
    if out.numel() != 1:
        raise ValueError(f"grad: the function's output must be a scalar, but it has shape "
                         f"{tuple(out.shape)}; reduce it (e.g. .sum()) or use jitgrad.jit with "
                         "an explicit vector-Jacobian product")
    if not out.dtype.is_floating_point:
        raise TypeError(f"grad requires a floating-point scalar output, got {out.dtype.name}")
    return out.reshape(()) if out.ndim else out


from jitgrad.nn.module import Module, module_version  # noqa: E402
