"""What the functional transforms (``jitgrad.func``) share: tracing a function into a graph, and
replaying a graph through ``bind``.

A transform traces the user's function on the values it is called with, rewrites or walks the
graph (the autodiff pass, a JVP or batching rule per primitive), and replays the result through
``bind``. So the same transform runs eagerly (each op executes, with ``grad_fn`` recorded where
inputs need gradients) and inside an enclosing trace (each op becomes an equation of
``jitgrad.jit``'s or ``jitgrad.grad``'s graph, which then compiles), and transforms compose:
``vmap(grad(f))`` batches the graph that ``grad`` replayed into ``vmap``'s trace.

>>> import jitgrad
>>> from jitgrad.transforms.replay import trace_graph, replay
>>> fn = trace_graph(lambda x: x.sin() * 2, (jitgrad.tensor([0.0, 1.0]),))
>>> print(fn.graph)
{ lambda ; a:f32[2]. let
    b:f32[2] = sin a          # <doctest ...>:1
    c:f32[2] = mul b 2.0:f32  # <doctest ...>:1
  in (c,) }
>>> replay(fn.graph, fn.inputs((jitgrad.tensor([0.0, 3.0]),)))[0]
tensor([0.0000, 0.2822])
"""

from __future__ import annotations

import contextlib

import numpy as np

from jitgrad import dtypes
from jitgrad.autograd import grad_mode
from jitgrad.ir.graph import Graph, Lit
from jitgrad.loops.lift import lift_loops, unlifted
from jitgrad.ops import registry
from jitgrad.ops.control import guard_p
from jitgrad.tensor import Tensor
from jitgrad.trace.builder import TRACE_ROOTS, Builder, locate
from jitgrad.trace.pytree import flatten
from jitgrad.trace.views import current
from jitgrad.trace.tracer import _rebuild, module_leaves
from jitgrad._settings import config
from jitgrad.transforms.autodiff import Sweep, _emitting


TRACE_ROOTS.add(__file__)  # (trace_graph calls the function a transform traces)


class TracedFn:
    """A function traced on some arguments: its graph, the treedefs of its arguments and result,
    and the outside tensors it read (closures, globals, Module parameters not passed in), which
    are the graph's last inputs."""

    __slots__ = ("graph", "arg_trees", "out_tree", "n_leaves", "refs", "leaf_args")

    def __init__(self, graph, arg_trees, out_tree, n_leaves, refs, leaf_args) -> None:
        self.graph = graph
        self.arg_trees = arg_trees
        self.out_tree = out_tree
        self.n_leaves = n_leaves
        self.refs = refs
        self.leaf_args = leaf_args  # per leaf: the index of the positional argument it is in

    def inputs(self, args: tuple) -> list:
        """The graph's inputs for ``args`` (of the traced structure): their leaves, then the
        outside tensors."""
        leaves = [_as_tensor(x) for x in flatten(tuple(args), where="argument")[0]]
        return leaves + list(self.refs)

    def leaves_of(self, argnums: tuple) -> tuple:
        """Positions of the leaves of the positional arguments ``argnums``."""
        return tuple(i for i, a in enumerate(self.leaf_args) if a in argnums)


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor._wrap(np.asarray(x))


def trace_graph(fn, args: tuple, values: list | None = None, where: str = "the function") \
        -> TracedFn:
    """Trace ``fn(*args)`` into a graph. ``values``: the concrete value to trace each leaf at,
    when it is not the leaf's own (``vmap`` traces one example of a batch)."""
    trees, leaves = [], []
    leaf_args: list = []
    for i, a in enumerate(args):
        ls, tree = flatten(a, where=f"argument {i}")
        trees.append(tree)
        leaves.extend(_as_tensor(x) for x in ls)
        leaf_args.extend([i] * len(ls))
    trees.append(flatten({}, where="keywords")[1])
    b = Builder(concrete=True)
    b.in_transform = True
    tracers = [b.new_input(np.asarray(v) if values is not None else leaf._value)
               for leaf, v in zip(leaves, values if values is not None else leaves)]
    for k in module_leaves(trees):
        b.register_outside(leaves[k], tracers[k])
    new_args, _ = _rebuild(args, {}, trees, tracers)
    registry.trace_state.push(b)
    try:
        with grad_mode.enable_grad():
            out = fn(*new_args)
        out_leaves, out_tree = flatten(out, where=f"the result of {where}")
        for t in out_leaves:
            current(t)  # (rebinds views whose base was written since)
        outputs = tuple(b.atom(t) for t in out_leaves)
    except (ValueError, IndexError, RuntimeError) as e:
        new = locate(e)
        if new is e:
            raise
        raise new from None
    finally:
        registry.trace_state.pop()
    graph = Graph(b.consts, b.inputs, b.eqns, outputs)
    outer = registry.trace_state.builder
    if outer is not None:  # a transform inside a compiled function: its report shows its loops
        compiled = _in_compiled_trace()
        if config.lift_loops and _lifting.on and compiled:
            # Lifted here, the loop reaches the compiled function as one ``while`` that each
            # transform rewrites (a JVP, a batched or a reverse loop): one compile for every
            # trip count. (Eagerly the function is traced again at every call: nothing to gain.)
            # (The runtime traces again with this off where a transform needs the reverse of a
            # batched reverse loop, which has none: errors.ReverseOfLoopReverse.)
            lifted, reports = lift_loops(graph, b.guard_sites, b.guard_context)
            if _guard_in_a_body(lifted):
                # a guard kept inside a lifted body (an if on data the traced iterations all
                # took one way) is numbered in this trace, not the compiled function's: the
                # loops stay unrolled
                reports = tuple(r._replace(lifted=False, reason=(
                    "an if on data inside the loop went one way in the trace: one trace per "
                    "trip count")) for r in reports)
            else:
                graph = lifted
            outer.nested_loops += b.nested_loops + [
                r if r.lifted else r._replace(reason=f"in a function transform of {where} "
                                              f"(jitgrad.func): {r.reason}") for r in reports]
        else:
            why = ("loop lifting is off (config.lift_loops)" if not config.lift_loops else
                   "a transform takes the reverse of a reverse loop that forward mode "
                   "went through after jacrev batched it (grad of the hessian of a "
                   "function with more than one output), which lifted loops do not have yet"
                   if not _lifting.on else
                   "it runs eagerly (traced again at every call)")
            outer.nested_loops += b.nested_loops + unlifted(
                graph, b.guard_sites, b.guard_context,
                f"it runs in a function transform of {where} (jitgrad.func) inside this trace "
                f"and {why}: one trace per trip count")
    return TracedFn(graph, trees[:-1], out_tree, len(leaves), [t for _, t in b.refs], leaf_args)


def abstract_graph(fn, avals: list) -> Graph:
    """The graph of ``fn`` applied to abstract tensors of ``avals`` (shape and dtype only):
    ``fn`` takes the list of inputs and returns the list of outputs."""
    b = Builder(concrete=False)
    ins = [b.new_input(None, a) for a in avals]
    with _emitting(b):
        atoms = tuple(b.atom(o) for o in fn(ins))
    return Graph(b.consts, b.inputs, b.eqns, atoms)


class _Lifting:
    on = True


_lifting = _Lifting()


@contextlib.contextmanager
def unrolled_transforms():
    """Function transforms traced inside leave their loops unrolled (one trace per trip
    count): what a compiled function falls back to when they need what lifted loops lack."""
    prev, _lifting.on = _lifting.on, False
    try:
        yield
    finally:
        _lifting.on = prev


def _guard_in_a_body(g: Graph, nested: bool = False) -> bool:
    """Whether a graph nested in ``g`` (a loop's body, a cond's side) holds a guard."""
    for e in g.eqns:
        if nested and e.prim is guard_p:
            return True
        if any(isinstance(v, Graph) and _guard_in_a_body(v, True) for v in e.params.values()):
            return True
    return False


def _in_compiled_trace() -> bool:
    """Whether a compiled function's trace (not only function transforms' traces) is active:
    eagerly, a transform traces its function at every call, and lifting gains nothing."""
    st = registry.trace_state
    return any(x is not None and not getattr(x, "in_transform", False)
               for x in [*st.stack, st.builder])


def const(arr: np.ndarray) -> Tensor:
    """A constant array as a tensor: a constant of the active trace, if there is one."""
    b = registry.trace_state.builder
    return b.const(arr) if b is not None else Tensor._wrap(arr)


def emit(e, args: list):
    """Apply equation ``e``'s primitive to ``args`` through ``bind``, attributed to its line.
    A guard becomes the enclosing trace's guard (so a compiled caller re-checks the decision);
    eagerly it holds, as the values are those it was traced at."""
    b = registry.trace_state.builder
    if e.prim is guard_p:
        if b is not None and args[0]._ir is not None:
            b.replay_guard(args[0], e.params["expect"], e.src)
        return None
    if b is not None:
        return b.bind_at(e.src, e.prim, tuple(args), e.params)
    return registry.bind(e.prim, tuple(args), e.params)


def replay(g: Graph, inputs: list) -> list:
    """Run ``g`` on tensors ``inputs`` through ``bind``: eagerly, or into the active trace."""
    env: dict[int, Tensor] = {id(v): const(arr) for v, arr in g.consts}
    for v, t in zip(g.inputs, inputs):
        env[id(v)] = t

    def read(a):
        if isinstance(a, Lit):
            return registry.scalar(a.value, a.aval.dtype)
        return env[id(a)]

    for e in g.eqns:
        out = emit(e, [read(a) for a in e.inputs])
        if e.out is not None:
            env[id(e.out)] = out
    return [read(o) for o in g.outputs]


def attributed(src):
    """Ops bound inside are attributed to ``src`` when a trace is active (a rule applied for an
    equation points at that equation's line)."""
    b = registry.trace_state.builder
    return b.at(src) if b is not None else contextlib.nullcontext()


def zeros(shape: tuple, dtype: dtypes.DType) -> Tensor:
    z = registry.scalar(0, dtype)
    return z.expand(*shape) if shape else z


def zeros_like(x) -> Tensor:
    return zeros(tuple(x.shape), x.dtype)


# The VJP of a loop body, for a forward or batching rule that makes a transformed loop's reverse
# the reverse of the transformed loop (``loops/rules.py``)
body_vjp = Sweep.body_vjp
