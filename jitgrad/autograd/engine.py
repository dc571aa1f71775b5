"""The backward engine: iterative (no recursion, so a 100,000-node chain is fine), Kahn-ordered so
every node runs once with its full gradient, accumulating into leaves or capturing for ``grad``.
"""

from __future__ import annotations

from jitgrad.autograd import grad_mode


def _collect(roots: list) -> dict:
    """Number of incoming edges of every node and leaf reachable from ``roots`` (by id)."""
    deps: dict[int, int] = {}
    seen = {id(t) for t in roots}
    stack = list(roots)
    pop, push, get = stack.pop, stack.append, deps.get
    while stack:
        target = pop()
        if isinstance(target, Tensor):
            continue
        for e in target.edges:
            if e is None:
                continue
            nxt = e[0]
            k = id(nxt)
            deps[k] = get(k, 0) + 1
            if k not in seen:
                seen.add(k)
                push(nxt)
    return deps


def run_backward(roots: list, root_grads: list, *, retain_graph: bool, create_graph: bool,
                 capture: list | None = None, allow_unused: bool = False):
    """Propagate ``root_grads`` from ``roots`` (tensors). With ``capture`` (a list of tensors),
    return their gradients instead of accumulating into leaves' ``.grad``."""
    state = grad_mode.state
    prev, state.enabled = state.enabled, create_graph
    try:
        return _run(roots, root_grads, retain_graph, create_graph, capture, allow_unused)
    finally:
        state.enabled = prev


def _run(roots, root_grads, retain_graph, create_graph, capture, allow_unused):
    targets = []
    buffers: dict[int, list] = {}
    for t, g in zip(roots, root_grads):
        if t.grad_fn is not None:
            target, nr = t.grad_fn, t._output_nr
        elif t.requires_grad:
            target, nr = t, 0
        else:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
        targets.append(target)
        _add(buffers, target, nr, g)
    deps = _collect(targets)

    # What to capture: leaf tensors by id, non-leaf tensors by (node id, output number).
    cap_leaf: dict[int, int] = {}
    cap_node: dict[tuple, int] = {}
    if capture is not None:
        for i, t in enumerate(capture):
            if t.grad_fn is not None:
                cap_node[(id(t.grad_fn), t._output_nr)] = i
            else:
                cap_leaf[id(t)] = i
    captured: list = [None] * (len(capture) if capture is not None else 0)

    ready = []
    seen_roots = set()
    for target in targets:
        if id(target) not in seen_roots and deps.get(id(target), 0) == 0:
            seen_roots.add(id(target))
            ready.append(target)
    anomaly = grad_mode.state.anomaly
    observers = registry.eager_observers
    pop_buffer, push_ready = buffers.pop, ready.append
    while ready:
        target = ready.pop()
        grads = pop_buffer(id(target), None)
        if isinstance(target, Tensor):
            g = grads[0] if grads else None
            if g is None:
                continue
            g = _run_hooks(target._hooks, g)
            if capture is not None:
                i = cap_leaf.get(id(target))
                if i is not None:
                    captured[i] = g
            else:
                _accumulate(target, g, create_graph)
            continue
        if grads is None:
            grads = [None] * target.n_outputs
        if target.pre_hooks:
            for nr, hook in list(target.pre_hooks):
                if grads[nr] is not None:
                    grads[nr] = _run_hooks((hook,), grads[nr])
        if cap_node:
            for nr in range(len(grads)):
                i = cap_node.get((id(target), nr))
                if i is not None:
                    captured[i] = grads[nr]
        if observers:
            toks = [(o, o.begin(target.name())) for o in observers if hasattr(o, "begin")]
            cts = target.apply(grads, create_graph)
            for o, tok in toks:
                o.end(tok)
        else:
            cts = target.apply(grads, create_graph)
        if anomaly:
            _check_nan(target, cts)
        if not retain_graph:
            target.release()
        for e, ct in zip(target.edges, cts):
            if e is None:
                continue
            nxt = e[0]
            k = id(nxt)
            if ct is not None:
                buf = buffers.get(k)
                nr = e[1]
                if buf is None and nr == 0 and (isinstance(nxt, Tensor) or nxt.n_outputs == 1):
                    buffers[k] = [ct]  # (what _add makes here, without its look-ups)
                else:
                    _add(buffers, nxt, nr, ct)
            left = deps[k] - 1
            deps[k] = left
            if left == 0:
                push_ready(nxt)
        grads = cts = ct = None  # this node's cotangents are in the buffers now: drop ours
    if capture is not None:
        for i, g in enumerate(captured):
            if g is None and not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors (input {i}) appears to not have been used "
                    "in the graph. Set allow_unused=True if this is the desired behavior.")
        return captured
    return None


def _add(buffers: dict, target, nr: int, g) -> None:
    k = id(target)
    buf = buffers.get(k)
    if buf is None:
        n = 1 if isinstance(target, Tensor) else target.n_outputs
        buf = buffers[k] = [None] * n
    buf[nr] = g if buf[nr] is None else buf[nr] + g


def _run_hooks(hooks, g):
    if not hooks:
        return g
    for h in hooks:
        r = h(g)
        if r is not None:
            g = r
    return g


def _accumulate(leaf, g, create_graph: bool) -> None:
    if g.dtype is not leaf.dtype:
        g = g.to(leaf.dtype)
    if leaf.grad is None:
        # A fresh buffer (the cotangent may alias a tensor the user still holds), laid out as
        # torch lays out a leaf's .grad: like the leaf.
        leaf.grad = g if create_graph else Tensor._wrap(_layout.for_grad(g._value, leaf._value))
    elif create_graph or leaf.grad.requires_grad:
        # (detached unless create_graph: a sum of the graph's tensors would record a node)
        leaf.grad = leaf.grad + (g if create_graph else g.detach())
    else:
        leaf.grad._value += g._value
        leaf.grad._vc[0] += 1


def _check_nan(node, cts) -> None:
    for i, ct in enumerate(cts):
        if ct is not None and ct.dtype.is_floating_point and ops.isnan(ct).any().item():
            where = "".join(node.forward_stack or ["(forward stack not recorded)\n"])
            raise RuntimeError(
                f"Function '{node.name()}' returned nan values in its {i}th output.\n"
                f"The forward call that created {node.name()} ({node.prim.name}) was:\n{where}")


from jitgrad import ops  # noqa: E402
from jitgrad.ops import _layout  # noqa: E402
from jitgrad.ops import registry  # noqa: E402
from jitgrad.tensor import Tensor  # noqa: E402
