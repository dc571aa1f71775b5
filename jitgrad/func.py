"""Composable function transforms, as ``torch.func``: ``grad``, ``grad_and_value``, ``vjp``,
``jvp``, ``jacrev``, ``jacfwd``, ``hessian``, ``vmap``, ``functional_call`` and
``stack_module_state``.

Each one traces the function into IR on the values it is called with and transforms the graph:
reverse mode by the autodiff pass, forward mode by a JVP rule per primitive, ``vmap`` by a
batching rule per primitive (``jitgrad.transforms``). The result is replayed through the op
layer, so a transform runs eagerly, composes with the others (``vmap(grad(f))``,
``jacfwd(jacrev(f))``), and compiles whole under ``jitgrad.jit``.

Per-example gradients, the showcase:

>>> import jitgrad
>>> from jitgrad.func import grad, vmap
>>> w = jitgrad.tensor([1.0, 2.0])
>>> loss = lambda w, x, y: ((x * w).sum() - y) ** 2
>>> xs, ys = jitgrad.tensor([[1.0, 0.0], [0.0, 1.0]]), jitgrad.tensor([0.0, 1.0])
>>> vmap(grad(loss), in_dims=(None, 0, 0))(w, xs, ys)
tensor([[2., 0.],
        [0., 2.]])
>>> jitgrad.func.hessian(lambda x: (x ** 3).sum())(jitgrad.tensor([1.0, 2.0]))
tensor([[ 6.,  0.],
        [ 0., 12.]])
"""

from __future__ import annotations

import functools

import numpy as np

from jitgrad import dtypes
from jitgrad.ops import registry
from jitgrad.tensor import Tensor
from jitgrad.trace.pytree import Kind, flatten, map_leaves, num_leaves, unflatten
from jitgrad.transforms.autodiff import seeded_vjp_graph, vjp_graph
from jitgrad.transforms.batching import DataDependent, batch_replay
from jitgrad.transforms.forward import jvp_replay
from jitgrad.transforms.replay import replay, trace_graph, zeros

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "vmap",
           "functional_call", "stack_module_state"]


def _name(func) -> str:
    return getattr(func, "__name__", type(func).__name__)


def _argnums(argnums, n: int, api: str) -> tuple:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums or not all(isinstance(a, int) for a in nums):
        raise TypeError(f"{api}: argnums must be an int or a non-empty tuple of ints, got "
                        f"{argnums!r}")
    out = []
    for a in nums:
        if not -n <= a < n:
            raise ValueError(f"{api}: Got argnums={argnums!r}, but only {n} positional "
                             f"argument{'s' if n != 1 else ''} were passed")
        out.append(a % n)
    return tuple(out)


def _floats_as_tensors(args: tuple, nums: tuple) -> tuple:
    """Python numbers differentiated with respect to become tensors (as JAX takes them)."""
    return tuple(registry.scalar(float(a), dtypes.default_float)
                 if i in nums and isinstance(a, (int, float)) and not isinstance(a, bool) else a
                 for i, a in enumerate(args))


def _check_wrt(fn, wrt: tuple, api: str) -> None:
    for k in wrt:
        dt = fn.graph.inputs[k].aval.dtype
        if not dt.is_floating_point:
            raise TypeError(f"{api}: only floating-point inputs can be differentiated, but "
                            f"argument {fn.leaf_args[k]} has a tensor of dtype {dt.name}")


def _split_aux(fn, out: list, has_aux: bool, api: str):
    """The traced result's (value leaves, value tree, aux) from its output leaves."""
    tree = fn.out_tree
    if not has_aux:
        return out, tree, None
    if tree[0] not in (Kind.TUPLE, Kind.LIST) or len(tree[1]) != 2:
        raise TypeError(f"{api}(f, has_aux=True): f must return a pair (output, aux), "
                        f"got {_describe(tree)}")
    n = num_leaves(tree[1][0])
    return out[:n], tree[1][0], unflatten(tree[1][1], out[n:])


def _describe(tree) -> str:
    return {Kind.TENSOR: "a tensor", Kind.NONE: "None", Kind.STATIC: "a Python number"}.get(
        tree[0], "a container")


def _per_arg(fn, nums: tuple, leaves: list):
    """Results aligned with the leaves of the positional arguments ``nums``, in their
    structures: one for an int argnums, a tuple for a tuple."""
    out, k = [], 0
    for i in nums:
        n = sum(1 for a in fn.leaf_args if a == i)
        out.append(unflatten(fn.arg_trees[i], leaves[k:k + n]))
        k += n
    return out


# -- reverse mode ------------------------------------------------------------------------------
def grad_and_value(func, argnums=0, has_aux: bool = False):
    """``func``'s gradient with respect to argument ``argnums`` and its value, as
    ``torch.func.grad_and_value``.

    >>> import jitgrad
    >>> g, v = jitgrad.func.grad_and_value(lambda x: (x * x).sum())(jitgrad.tensor([1.0, 2.0]))
    >>> g, v
    (tensor([2., 4.]), tensor(5.))
    """
    @functools.wraps(func)
    def wrapped(*args):
        nums = _argnums(argnums, len(args), "grad")
        args = _floats_as_tensors(args, nums)
        fn = trace_graph(func, args, where=_name(func))
        wrt = fn.leaves_of(nums)
        _check_wrt(fn, wrt, "grad")
        value = fn.graph.outputs[0] if fn.graph.outputs else None
        n_val = num_leaves(fn.out_tree[1][0]) if has_aux and fn.out_tree[0] in (
            Kind.TUPLE, Kind.LIST) and len(fn.out_tree[1]) == 2 else len(fn.graph.outputs)
        if value is None or n_val != 1 or value.aval.shape != ():
            what = ("None" if value is None else f"a tensor with {len(value.aval.shape)} dims"
                    if n_val == 1 else f"{n_val} tensors")
            raise RuntimeError(f"grad(f)(*args): Expected f(*args) to return a scalar Tensor, "
                               f"got {what}. Maybe you wanted to use the vjp or jacrev APIs "
                               "instead?")
        if not value.aval.dtype.is_floating_point:
            raise TypeError(f"grad(f)(*args): f must return a floating-point scalar, got "
                            f"{value.aval.dtype.name}")
        res = replay(vjp_graph(fn.graph, wrt), fn.inputs(args))
        n = len(fn.graph.outputs)
        val, _, aux = _split_aux(fn, res[:n], has_aux, "grad")
        grads = _per_arg(fn, nums, res[n:])
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        return (g, (val[0], aux)) if has_aux else (g, val[0])
    return wrapped


def grad(func, argnums=0, has_aux: bool = False):
    """The gradient of a scalar function, as ``torch.func.grad``; composes with ``vmap``,
    ``jacfwd`` and the rest, and compiles under ``jitgrad.jit``.

    >>> import jitgrad
    >>> jitgrad.func.grad(jitgrad.sin)(jitgrad.tensor(0.0))
    tensor(1.)
    """
    gv = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapped(*args):
        g, v = gv(*args)
        return (g, v[1]) if has_aux else g
    return wrapped


def vjp(func, *primals, has_aux: bool = False):
    """``(func(*primals), vjp_fn)``, where ``vjp_fn(cotangent)`` gives the vector-Jacobian
    product for each primal, as ``torch.func.vjp``.

    >>> import jitgrad
    >>> out, vjp_fn = jitgrad.func.vjp(lambda x: x * 3, jitgrad.tensor([1.0, 2.0]))
    >>> vjp_fn(jitgrad.tensor([1.0, 10.0]))
    (tensor([ 3., 30.]),)
    """
    nums = tuple(range(len(primals)))
    primals = _floats_as_tensors(primals, nums)
    fn = trace_graph(func, primals, where=_name(func))
    inputs = fn.inputs(primals)
    res = replay(fn.graph, inputs)
    val, tree, aux = _split_aux(fn, res, has_aux, "vjp")
    wrt = tuple(k for k in range(fn.n_leaves) if fn.graph.inputs[k].aval.dtype.is_floating_point)
    seeded = []  # built at the first call of vjp_fn

    def vjp_fn(*cotangents):
        ct = cotangents[0] if len(cotangents) == 1 else cotangents
        leaves, ct_tree = flatten(ct, where="the cotangent")
        if len(leaves) != len(val):
            raise ValueError(f"vjp_fn: expected a cotangent with the structure of the output "
                             f"({len(val)} tensor{'s' if len(val) != 1 else ''}), got "
                             f"{len(leaves)}")
        cts = []
        for i, (c, o) in enumerate(zip(leaves, val)):
            if tuple(c.shape) != tuple(o.shape):
                raise ValueError(f"vjp_fn: cotangent {i} has shape {tuple(c.shape)}, but the "
                                 f"output it goes with has shape {tuple(o.shape)}")
            cts.append(c if c.dtype is o.dtype else c.to(o.dtype))
        cts += [zeros(tuple(a.shape), a.dtype) for a in res[len(val):]]  # aux: no cotangent
        if not seeded:
            seeded.append(seeded_vjp_graph(fn.graph, wrt))
        got = replay(seeded[0], inputs + cts)
        full, it = [], iter(got)
        for k in range(fn.n_leaves):
            full.append(next(it) if k in wrt else None)
        return tuple(_per_arg(fn, nums, full))

    out = unflatten(tree, val)
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


# -- forward mode ------------------------------------------------------------------------------
def jvp(func, primals, tangents, *, has_aux: bool = False):
    """``(func(*primals), J @ tangents)``, the Jacobian-vector product by forward mode, as
    ``torch.func.jvp``.

    >>> import jitgrad
    >>> jitgrad.func.jvp(jitgrad.exp, (jitgrad.tensor(0.0),), (jitgrad.tensor(2.0),))
    (tensor(1.), tensor(2.))
    """
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple):
        raise TypeError("jvp(f, primals, tangents): primals and tangents must be tuples")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: got {len(primals)} primals but {len(tangents)} tangents")
    primals = _floats_as_tensors(primals, tuple(range(len(primals))))
    tangents = _floats_as_tensors(tangents, tuple(range(len(tangents))))
    fn = trace_graph(func, primals, where=_name(func))
    t_leaves, t_tree = flatten(tangents, where="tangents")
    p_leaves = fn.inputs(primals)[:fn.n_leaves]
    if t_tree != flatten(primals)[1]:
        raise ValueError("jvp: the tangents must have the structure of the primals (a tensor "
                         "for each tensor, and the same Python values)")
    tans = []
    for i, (t, p) in enumerate(zip(t_leaves, p_leaves)):
        if tuple(t.shape) != tuple(p.shape):
            raise ValueError(f"jvp: tangent {i} has shape {tuple(t.shape)}, but its primal has "
                             f"shape {tuple(p.shape)}: they must match")
        tans.append(t.to(p.dtype) if p.dtype.is_floating_point and t.dtype is not p.dtype
                    else t if p.dtype.is_floating_point else None)
    tans += [None] * len(fn.refs)
    outs, touts = jvp_replay(fn.graph, fn.inputs(primals), tans)
    touts = [t if t is not None else zeros(tuple(o.shape), o.dtype)
             for o, t in zip(outs, touts)]
    val, tree, aux = _split_aux(fn, outs, has_aux, "jvp")
    tval = touts[:len(val)]
    res = (unflatten(tree, val), unflatten(tree, tval))
    return res + (aux,) if has_aux else res


# -- vmap --------------------------------------------------------------------------------------
def _move(x: Tensor, src: int, dst: int) -> Tensor:
    return x if src == dst else x.movedim(src, dst)


def vmap(func, in_dims=0, out_dims=0, randomness: str = "error", *, chunk_size=None):
    """Map ``func`` over a batch axis of its arguments, as ``torch.func.vmap``: the function
    is traced on one example and run for the whole batch by each primitive's batching rule.

    >>> import jitgrad
    >>> jitgrad.func.vmap(jitgrad.dot)(jitgrad.ones(3, 2), jitgrad.ones(3, 2))
    tensor([2., 2., 2.])
    """
    if randomness not in ("error", "different", "same"):
        raise ValueError(f"vmap: randomness must be 'error', 'different' or 'same', got "
                         f"{randomness!r}")

    @functools.wraps(func)
    def wrapped(*args):
        dims = _in_dims(in_dims, args)
        leaves, moved, batched, size = [], [], [], None
        for i, (a, d) in enumerate(zip(args, dims)):
            ls, _ = flatten(a, where=f"argument {i}")
            for x in ls:
                x = x if isinstance(x, Tensor) else Tensor._wrap(np.asarray(x))
                leaves.append(x)
                if d is None:
                    moved.append(x)
                    batched.append(False)
                    continue
                if not -x.ndim <= d < max(x.ndim, 1) or x.ndim == 0:
                    raise ValueError(f"vmap: in_dim {d} is out of range for argument {i}, a "
                                     f"tensor of shape {tuple(x.shape)}")
                d %= x.ndim
                if size is not None and x.shape[d] != size:
                    raise ValueError(f"vmap: Expected all tensors to have the same size in the "
                                     f"mapped dimension, got sizes {size} and {x.shape[d]} "
                                     f"(argument {i}, in_dim {d})")
                size = x.shape[d]
                moved.append(_move(x, d, 0))
                batched.append(True)
        if size is None:
            raise ValueError("vmap: at least one argument must be mapped (in_dims is None for "
                             "all of them)")
        if size == 0:
            raise ValueError("vmap: the mapped dimension has size 0; there is no example to "
                             "trace the function on")
        values = [m._value[0] if b else m._value for m, b in zip(moved, batched)]
        fn = trace_graph(func, args, values=values, where=_name(func))
        try:
            outs, flags = batch_replay(fn.graph, moved + list(fn.refs),
                                       batched + [False] * len(fn.refs), size)
        except DataDependent:
            return _per_example(func, args, dims, size, out_dims)
        outs = [o if b else o.expand(size, *o.shape) for o, b in zip(outs, flags)]
        return _place(outs, fn.out_tree, out_dims)
    return wrapped


def _in_dims(in_dims, args) -> list:
    if in_dims is None or isinstance(in_dims, int):
        return [in_dims] * len(args)
    if not isinstance(in_dims, (tuple, list)) or len(in_dims) != len(args):
        raise ValueError(f"vmap: in_dims is not compatible with the structure of the inputs: "
                         f"{len(args)} positional argument{'s' if len(args) != 1 else ''} but "
                         f"in_dims={in_dims!r}")
    for d in in_dims:
        if d is not None and not isinstance(d, int):
            raise ValueError(f"vmap: in_dims must be ints or None per argument, got {d!r}")
    return list(in_dims)


def _place(outs: list, tree, out_dims):
    """vmap's outputs, the batch axis moved to ``out_dims`` (an int for all of them, or one
    per element of a tuple result)."""
    if isinstance(out_dims, int):
        dims = [out_dims] * len(outs)
    else:
        if tree[0] not in (Kind.TUPLE, Kind.LIST) or len(tree[1]) != len(out_dims):
            raise ValueError(f"vmap: out_dims={out_dims!r} does not match the structure of the "
                             f"result ({_describe(tree)})")
        dims = [d for d, t in zip(out_dims, tree[1]) for _ in range(num_leaves(t))]
    return unflatten(tree, [_move(o, 0, d % o.ndim) for o, d in zip(outs, dims)])


def _per_example(func, args, dims, size, out_dims):
    """vmap's path for functions whose Python control flow depends on each example's data."""
    from jitgrad.ops.shape import stack
    results, tree = [], None
    for k in range(size):
        leaves, tree = flatten(func(*[a if d is None else _take(a, d, k)
                                      for a, d in zip(args, dims)]), where="the result")
        results.append(leaves)
    outs = [stack([r[j] for r in results]) for j in range(len(results[0]))]
    return _place(outs, tree, out_dims)


def _take(a, d: int, k: int):
    leaves, tree = flatten(a)
    return unflatten(tree, [x.select(d, k) for x in leaves])


# -- Jacobians ---------------------------------------------------------------------------------
def _select(func, args, nums):
    def g(*sel):
        full = list(args)
        for i, a in zip(nums, sel):
            full[i] = a
        return func(*full)
    return g


def _basis(n: int, shape: tuple, dtype) -> Tensor:
    from jitgrad.factories import eye
    return eye(n, dtype=dtype).reshape(n, *shape)


def jacrev(func, argnums=0, *, has_aux: bool = False):
    """The Jacobian by reverse mode: ``vmap`` of the VJP over the output's basis, as
    ``torch.func.jacrev``. Its shape is the output's followed by the input's.

    >>> import jitgrad
    >>> jitgrad.func.jacrev(lambda x: x ** 2)(jitgrad.tensor([1.0, 2.0]))
    tensor([[2., 0.],
            [0., 4.]])
    """
    @functools.wraps(func)
    def wrapped(*args):
        nums = _argnums(argnums, len(args), "jacrev")
        args = _floats_as_tensors(args, nums)
        got = vjp(_select(func, args, nums), *[args[i] for i in nums], has_aux=has_aux)
        out, vjp_fn = got[0], got[1]
        o_leaves, o_tree = flatten(out, where="the output")
        per_out = []
        for j, o in enumerate(o_leaves):
            n = int(np.prod(o.shape, dtype=np.int64))

            def row(e, j=j):
                return vjp_fn(unflatten(o_tree, [e if q == j else zeros(tuple(p.shape), p.dtype)
                                                 for q, p in enumerate(o_leaves)]))
            basis = _basis(n, tuple(o.shape), o.dtype)
            # (one row, a scalar's gradient, needs no vmap: so a lifted loop's reverse stays
            # the loop's own reverse, which forward mode and a further reverse go through)
            rows = vmap(row)(basis) if n != 1 else map_leaves(
                lambda x: x.unsqueeze(0), row(basis[0]))
            # each row is the gradient's pytree (a dict of a model's parameters, say)
            jac = [map_leaves(lambda x, o=o: x.reshape(*o.shape, *x.shape[1:]), r)
                   for r in rows]
            per_out.append(jac[0] if isinstance(argnums, int) else tuple(jac))
        res = unflatten(o_tree, per_out) if o_tree[0] != Kind.TENSOR else per_out[0]
        return (res, got[2]) if has_aux else res
    return wrapped


def jacfwd(func, argnums=0, has_aux: bool = False, *, randomness: str = "error"):
    """The Jacobian by forward mode: ``vmap`` of the JVP over each input's basis, as
    ``torch.func.jacfwd``.

    >>> import jitgrad
    >>> jitgrad.func.jacfwd(lambda x: x.sin())(jitgrad.tensor([0.0, 0.0]))
    tensor([[1., 0.],
            [0., 1.]])
    """
    @functools.wraps(func)
    def wrapped(*args):
        nums = _argnums(argnums, len(args), "jacfwd")
        args = _floats_as_tensors(args, nums)
        prim = [args[i] for i in nums]
        for i, p in zip(nums, prim):
            if not isinstance(p, Tensor):
                raise TypeError(f"jacfwd: argument {i} must be a Tensor, got {type(p).__name__}")
        g = _select(func, args, nums)
        jacs, out_tree = [], None
        for k, p in enumerate(prim):
            def col(t, k=k):
                tans = tuple(t if q == k else zeros(tuple(x.shape), x.dtype)
                             for q, x in enumerate(prim))
                return jvp(g, tuple(prim), tans, has_aux=has_aux)[1]
            cols = vmap(col, out_dims=-1)(_basis(p.numel(), tuple(p.shape), p.dtype))
            leaves, out_tree = flatten(cols)
            jacs.append([c.reshape(*c.shape[:-1], *p.shape) for c in leaves])
        per_leaf = [jacs[0][j] if isinstance(argnums, int) else tuple(j_[j] for j_ in jacs)
                    for j in range(len(jacs[0]))]
        res = unflatten(out_tree, per_leaf) if out_tree[0] != Kind.TENSOR else per_leaf[0]
        if has_aux:
            aux = jvp(g, tuple(prim), tuple(zeros(tuple(x.shape), x.dtype) for x in prim),
                      has_aux=True)[2]
            return res, aux
        return res
    return wrapped


def hessian(func, argnums=0):
    """The Hessian, ``jacfwd(jacrev(func))``, as ``torch.func.hessian``.

    >>> import jitgrad
    >>> jitgrad.func.hessian(lambda x: (x[0] * x[1]) ** 2)(jitgrad.tensor([1.0, 2.0]))
    tensor([[8., 8.],
            [8., 2.]])
    """
    return jacfwd(jacrev(func, argnums), argnums)


# -- modules -----------------------------------------------------------------------------------
def functional_call(module, parameter_and_buffer_dicts, args=(), kwargs=None, *,
                    tie_weights: bool = True, strict: bool = False):
    """Call ``module`` with some of its parameters and buffers replaced by the given tensors,
    as ``torch.func.functional_call``: the way to differentiate a model's output with respect
    to its parameters with ``grad`` or ``vmap``.

    >>> import jitgrad
    >>> m = jitgrad.nn.Linear(2, 1)
    >>> p = {"weight": jitgrad.ones(1, 2), "bias": jitgrad.zeros(1)}
    >>> jitgrad.func.functional_call(m, p, (jitgrad.tensor([1.0, 2.0]),))
    tensor([3.])
    """
    dicts = parameter_and_buffer_dicts
    if isinstance(dicts, dict):
        dicts = (dicts,)
    merged: dict = {}
    for d in dicts:
        for k, v in d.items():
            if k in merged:
                raise ValueError(f"functional_call: {k!r} appears in more than one dict")
            merged[k] = v
    if not isinstance(args, tuple):
        args = (args,)
    saved = []
    try:
        for name, value in merged.items():
            owner, leaf = _owner(module, name, strict)
            if owner is None:
                continue
            reg = owner._parameters if leaf in owner._parameters else owner._buffers
            saved.append((reg, leaf, reg[leaf]))
            reg[leaf] = value
        if strict:
            missing = [n for n, _ in module.named_parameters() if n not in merged]
            if missing:
                raise RuntimeError(f"functional_call: missing key(s) with strict=True: "
                                   f"{', '.join(missing)}")
        return module(*args, **(kwargs or {}))
    finally:
        for reg, leaf, old in reversed(saved):
            reg[leaf] = old


def _owner(module, name: str, strict: bool):
    *path, leaf = name.split(".")
    m = module
    for p in path:
        m = m._modules.get(p)
        if m is None:
            break
    if m is None or (leaf not in m._parameters and leaf not in m._buffers):
        if strict:
            raise RuntimeError(f"functional_call: unexpected key {name!r} with strict=True")
        raise AttributeError(f"functional_call: {type(module).__name__} has no parameter or "
                             f"buffer named {name!r}")
    return m, leaf


def stack_module_state(models) -> tuple[dict, dict]:
    """The parameters and buffers of several models of one architecture, stacked along a new
    first dim and keyed by name, as ``torch.func.stack_module_state``: ready for ``vmap`` of
    ``functional_call`` over an ensemble. The stacked parameters are new leaves (an optimizer
    can train them); the models' own parameters are left alone.

    >>> import jitgrad
    >>> models = [jitgrad.nn.Linear(3, 2) for _ in range(4)]
    >>> params, buffers = stack_module_state(models)
    >>> {k: tuple(v.shape) for k, v in params.items()}, buffers
    ({'weight': (4, 2, 3), 'bias': (4, 2)}, {})
    >>> x = jitgrad.ones(5, 3)
    >>> out = vmap(lambda p, b: functional_call(models[0], (p, b), (x,)))(params, buffers)
    >>> jitgrad.allclose(out[2], models[2](x))
    True
    """
    from jitgrad.ops.shape import stack
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if len({bool(m.training) for m in models}) != 1:
        raise RuntimeError("stack_module_state: Expected all models to have the same "
                           "training/eval mode.")
    if len({type(m) for m in models}) != 1:
        raise RuntimeError(f"stack_module_state: Expected all models to be of the same class, "
                           f"got {sorted({type(m).__name__ for m in models})}")

    def stacked(kind: str, named) -> dict:
        per_model = [dict(named(m)) for m in models]
        names = list(per_model[0])
        for i, d in enumerate(per_model[1:], 1):
            if list(d) != names:
                raise RuntimeError(f"stack_module_state: model {i} has {kind} "
                                   f"{sorted(d)}, but model 0 has {sorted(names)}")
        out = {}
        for name in names:
            ts = [d[name] for d in per_model]
            shapes = {tuple(t.shape) for t in ts}
            if len(shapes) != 1:
                raise RuntimeError(f"stack_module_state: {kind[:-1]} {name!r} has different "
                                   f"shapes across the models: {sorted(shapes)}")
            grads = {bool(t.requires_grad) for t in ts}
            if len(grads) != 1:
                raise RuntimeError(f"stack_module_state: Expected {name} from each model to "
                                   "have the same .requires_grad")
            # A fresh leaf, unrelated to the models' parameters, as an optimizer wants it.
            t = stack([x.detach() for x in ts])
            out[name] = t.requires_grad_() if grads.pop() else t
        return out

    return (stacked("parameters", lambda m: m.named_parameters()),
            stacked("buffers", lambda m: m.named_buffers()))


# -- functorch's older module API --------------------------------------------------------------
class FunctionalModuleWithBuffers:
    """A module as a function of its parameters and buffers: ``fmodel(params, buffers, *args)``
    runs a copy of the module with those tensors (``functional_call`` by position)."""

    def __init__(self, module, param_names: list, buffer_names: list) -> None:
        import copy
        self.stateless_model = copy.deepcopy(module)
        self.param_names, self.buffer_names = param_names, buffer_names

    def __call__(self, params, buffers, *args, **kwargs):
        for what, got, names in (("params", params, self.param_names),
                                 ("buffers", buffers, self.buffer_names)):
            if len(got) != len(names):
                raise ValueError(f"expected {len(names)} {what} ({', '.join(names) or 'none'}), "
                                 f"got {len(got)}")
        return functional_call(self.stateless_model,
                               (dict(zip(self.param_names, params)),
                                dict(zip(self.buffer_names, buffers))), args, kwargs)


class FunctionalModule(FunctionalModuleWithBuffers):
    """``fmodel(params, *args)``: as ``FunctionalModuleWithBuffers`` for a module whose
    buffers stay its own."""

    def __call__(self, params, *args, **kwargs):
        return super().__call__(params, (), *args, **kwargs)


def make_functional_with_buffers(model, disable_autograd_tracking: bool = False):
    """``(fmodel, params, buffers)``, as functorch's: ``fmodel(params, buffers, x)`` equals
    ``model(x)``, so transforms can take the parameters as an argument.

    >>> import jitgrad
    >>> m = jitgrad.nn.Linear(2, 1)
    >>> fmodel, params, buffers = make_functional_with_buffers(m)
    >>> x = jitgrad.ones(1, 2)
    >>> jitgrad.allclose(fmodel(params, buffers, x), m(x))
    True
    """
    names, ps = _params(model, disable_autograd_tracking)
    buffers = dict(model.named_buffers())
    fmodel = FunctionalModuleWithBuffers(model, names, list(buffers))
    return fmodel, ps, tuple(buffers.values())


def make_functional(model, disable_autograd_tracking: bool = False):
    """``(fmodel, params)``, as functorch's: ``fmodel(params, x)`` equals ``model(x)``."""
    names, ps = _params(model, disable_autograd_tracking)
    return FunctionalModule(model, names, []), ps


def _params(model, detach: bool) -> tuple[list, tuple]:
    """A model's parameter names and parameters (detached for ``disable_autograd_tracking``)."""
    params = dict(model.named_parameters())
    return list(params), tuple(p.detach() if detach else p for p in params.values())
