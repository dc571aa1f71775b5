"""Tracing a Python function into forward IR.

Explicit arguments are flattened into leaves (tensors become input tracers; a Module's parameters
are mapped to input tracers by identity). Tensors the function reaches through closure cells,
globals, defaults and Module attributes are *implicit* inputs (``implicit.py``), found afresh at
every call, so a compiled function always sees their current values, even when the name is
rebound to a new tensor. An argument is its own input even when the same tensor is also reached
implicitly (as in JAX: the gradient is with respect to the argument alone). Any other outside
tensor met during the trace is a live input held by reference (its current value is read at each
call).
"""

from __future__ import annotations

from jitgrad import dtypes
from jitgrad.autograd import grad_mode
from jitgrad.ir.graph import Graph
from jitgrad.ops import registry
from jitgrad.tensor import Tensor
from jitgrad.trace import ranges
from jitgrad.trace.builder import Builder, locate
from jitgrad.trace.pytree import Kind, flatten, unflatten
from jitgrad.trace.views import current

class Traced:
    """One trace: the forward graph and what the runtime needs to feed and read it."""

    __slots__ = ("graph", "out_tree", "refs", "guard_sites", "guard_context", "loops")

    def __init__(self, graph, out_tree, refs, guard_sites, guard_context=()) -> None:
        self.graph = graph
        self.out_tree = out_tree
        self.refs = refs
        self.guard_sites = guard_sites
        self.guard_context = guard_context  # per guard: builder.guard_context()
        self.loops: tuple = ()  # what loop lifting did (loops/lift.py)


def trace(fn, args: tuple, kwargs: dict, arg_trees: list, leaves: list, implicit: list,
          scalar_output: bool, has_aux: bool, count_locals: frozenset = frozenset()) -> Traced:
    """Run ``fn`` once on tracers. ``leaves`` are the flattened explicit leaves (Tensors) that
    ``arg_trees`` describe; ``implicit`` are the closure/global tensors; ``count_locals``: the
    loop counters to take as traced numbers (``Builder.count_here``)."""
    b = Builder(concrete=True)
    b.count_locals = count_locals
    tracers = [b.new_input(leaf._value) for leaf in leaves]
    for k in module_leaves(arg_trees):
        # By identity: a Module's parameters are reached through the module, not the args.
        b.register_outside(leaves[k], tracers[k])
    for t in implicit:
        if id(t) not in b.known:
            tr = b.new_input(t._value)
            b.register_outside(t, tr)
            src = t.__dict__.get("_np_source")
            if src is not None:  # a live NumPy array: the factories and ops that read it
                b.arrays[id(src)] = tr
        else:
            b.new_input(t._value)  # keep positions aligned with the implicit list
    new_args, new_kwargs = _rebuild(args, kwargs, arg_trees, tracers)
    registry.trace_state.push(b)
    # The caller's grad mode does not reach inside a compiled function (as in JAX and
    # torch.func): ``no_grad`` around a call must not turn its trace into a constant.
    try:
        with grad_mode.enable_grad(), ranges.inject(fn):
            out = fn(*new_args, **new_kwargs)
        aux = None
        if has_aux:
            if not isinstance(out, tuple) or len(out) != 2:
                raise TypeError("has_aux=True needs the function to return a pair (output, aux)")
            out, aux = out
        if scalar_output:
            out = _check_scalar(out)
        out_leaves, out_tree = flatten((out, aux) if has_aux else out, where="the result")
        for t in out_leaves:
            current(t)  # (rebinds views whose base was written since)
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
    traced = Traced(graph, out_tree, [t for _, t in b.refs], list(b.guard_sites),
                    list(b.guard_context))
    traced.loops = tuple(b.nested_loops)
    return traced


def _rebuild(args, kwargs, arg_trees, tracers):
    """Put tracers in place of the leaves; Modules, at any depth, stay themselves (their
    parameters are mapped to tracers by identity)."""
    it = iter(tracers)
    out = [_put(a, tree, it) for a, tree in zip(list(args) + [kwargs], arg_trees)]
    return out[:-1], out[-1]


def _put(obj, tree, it):
    kind = tree[0]
    if kind == Kind.TENSOR:
        return next(it)
    if kind == Kind.MODULE:
        for _ in tree[3]:
            next(it)
        return obj
    if kind in (Kind.STATIC, Kind.NONE):
        return unflatten(tree, ())
    if kind == Kind.DICT:
        return {k: _put(obj[k], t, it) for k, t in tree[1]}
    items = [_put(o, t, it) for o, t in zip(obj, tree[1])]
    return items if kind == Kind.LIST else tuple(items) if kind == Kind.TUPLE else kind(*items)


def module_leaves(trees) -> list:
    """Positions of the leaves that are parameters of Module arguments (at any depth)."""
    out: list = []
    it = iter(range(1 << 62))

    def walk(tree):
        kind = tree[0]
        if kind == Kind.TENSOR:
            next(it)
        elif kind == Kind.MODULE:
            out.extend(next(it) for _ in tree[3])
        elif kind == Kind.DICT:
            for _, t in tree[1]:
                walk(t)
        elif kind not in (Kind.STATIC, Kind.NONE):
            for t in tree[1]:
                walk(t)
    for tree in trees:
        walk(tree)
    return out


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

