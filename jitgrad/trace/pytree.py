"""Pytrees: nested tuples, lists, dicts and None around Tensors, NumPy arrays and numbers, and
``nn.Module``s (a pytree of their parameters, keyed like ``named_parameters()``).

``flatten`` gives the leaves and a hashable ``treedef``; Python numbers are *static* (part of the
treedef, hence of the cache key) unless the caller asks for them as dynamic leaves.

>>> import jitgrad
>>> from jitgrad.trace.pytree import flatten, unflatten
>>> leaves, tree = flatten({"w": jitgrad.ones(2), "n": 3})
>>> len(leaves), unflatten(tree, leaves)["n"]
(1, 3)
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from jitgrad import dtypes
from jitgrad.tensor import Tensor

_SCALARS = (bool, int, float)


class Kind(str, Enum):
    """What a treedef node is: treedefs are tuples ``(kind, ...)`` (a namedtuple's node has its
    type as the kind), hashable and compared by value, and they key the compiled functions'
    caches. A str enum, so that a treedef prints and pickles plainly."""

    TENSOR = "T"   # (TENSOR,): a tensor leaf
    STATIC = "S"   # (STATIC, type name, value): a Python number, part of the trace
    NONE = "N"     # (NONE,)
    LIST = "L"     # (LIST, children)
    TUPLE = "U"    # (TUPLE, children)
    DICT = "D"     # (DICT, ((key, child), ...))
    MODULE = "M"   # (MODULE, id, training, parameter names, Python values)

    __hash__ = str.__hash__  # (Enum's own hashes the name in Python: treedefs are hashed often)


TENSOR_LEAF = (Kind.TENSOR,)


def flatten(obj, where: str = "argument", dynamic_scalars: bool = False,
            extras: list | None = None) -> tuple[list, tuple]:
    """Leaves and treedef of ``obj``. ``extras``, when given, receives the other tensors of
    Module leaves (buffers, tensor attributes): live inputs that are not differentiated."""
    leaves: list = []
    tree = _flatten(obj, where, leaves, dynamic_scalars, extras)
    return leaves, tree


def module_flat(m) -> tuple:
    """``(version, parameter names, parameters, other tensors, Python values)`` of Module ``m``
    and its sub-modules, kept until any Module changes (``module_version``): walking the tree
    costs microseconds on every compiled call."""
    flat = m.__dict__.get("_flat_params")
    if flat is None or flat[0] != module_version():
        ps = list(m.named_parameters())
        others, values = [], []
        for name, sub in m.named_modules():
            others.extend(b for b in sub._buffers.values() if b is not None)
            for k, v in sub.__dict__.items():
                if k.startswith("_"):
                    continue
                if isinstance(v, Tensor):
                    others.append(v)
                elif isinstance(v, (_SCALARS, str)):
                    values.append((name, k, v))
        flat = (module_version(), tuple(n for n, _ in ps), [p for _, p in ps], others,
                tuple(values))
        object.__setattr__(m, "_flat_params", flat)
    return flat


def _flatten(obj, where: str, leaves: list, dyn: bool, extras: list | None):
    if isinstance(obj, Tensor):
        if type(obj) is not Tensor and getattr(type(obj), "_python_number", False):
            # A traced Python number (a loop counter's, trace/numbers.py) stands for a Python
            # number: it leaves as one, read through a guard (fixed in the trace, as any
            # Python value the function returns), not as a tensor
            return _flatten(obj._py(), where, leaves, dyn, extras)
        leaves.append(obj)
        return (Kind.TENSOR,)
    if isinstance(obj, np.bool_):
        obj = bool(obj)
    elif isinstance(obj, (np.ndarray, np.generic)):
        arr = np.asarray(obj)
        if arr.dtype not in dtypes._BY_NP:
            raise TypeError(f"{where} is a NumPy array of dtype {arr.dtype}, which jitgrad does not "
                            f"support (use one of {dtypes._SUPPORTED})")
        leaves.append(Tensor._wrap(arr))
        return (Kind.TENSOR,)
    if isinstance(obj, _SCALARS):
        if dyn and not isinstance(obj, bool):
            dt = dtypes.int64 if isinstance(obj, int) else dtypes.default_float
            leaves.append(Tensor._wrap(np.array(obj, dtype=dt.np)))
            return (Kind.TENSOR,)
        return (Kind.STATIC, type(obj).__name__, obj)
    if obj is None:
        return (Kind.NONE,)
    if isinstance(obj, (tuple, list)):
        kind = Kind.LIST if isinstance(obj, list) else (Kind.TUPLE if type(obj) is tuple else type(obj))
        return (kind, tuple(_flatten(x, f"{where}[{i}]", leaves, dyn, extras)
                            for i, x in enumerate(obj)))
    if isinstance(obj, dict):
        return (Kind.DICT, tuple((k, _flatten(v, f"{where}[{k!r}]", leaves, dyn, extras))
                           for k, v in obj.items()))
    if isinstance(obj, Module):
        # Walking the module tree costs microseconds on every compiled call: keep the walk
        # until any Module's registries change (module_version).
        flat = module_flat(obj)
        leaves.extend(flat[2])
        if extras is not None:
            extras.extend(flat[3])
        return (Kind.MODULE, id(obj), obj.training, flat[1], flat[4])
    for is_leaf, make in _LEAF_TYPES:
        if is_leaf(obj):
            leaves.append(make(obj, where))
            return (Kind.TENSOR,)
    t = type(obj)
    name = t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    raise TypeError(f"{where} has type {name}, which jitgrad's compiled functions do "
                    "not accept: pass Tensors, NumPy arrays, Python numbers, None, tuples/lists/"
                    "dicts of them, or nn.Modules")


# Hooks for the types defined above this layer, so that trace/ imports neither nn/ nor
# backends/: nn.Module registers itself (``register_module``) and the CUDA backend its device
# arrays (``register_leaf_type``) when they are imported.
_LEAF_TYPES: list = []   # (is_leaf(obj), make(obj, where) -> a leaf with .host())
Module: type = type("Module", (), {})   # replaced by nn.Module when it registers
_version = [lambda: 0]


def register_module(cls: type, version) -> None:
    """Make ``cls`` (nn.Module) a pytree node: its parameters are leaves, and ``version()``
    changes whenever any Module's registries or attributes do."""
    global Module
    Module = cls
    _version[0] = version


def module_version() -> int:
    return _version[0]()


def register_leaf_type(is_leaf, make) -> None:
    """Accept objects for which ``is_leaf(obj)`` holds as tensor leaves, made by
    ``make(obj, where)`` (a GPU array argument becomes a ``DeviceLeaf``)."""
    _LEAF_TYPES.append((is_leaf, make))


def map_leaves(fn, obj):
    """``obj`` with ``fn`` applied to everything that is not a dict, list or tuple (namedtuples
    keep their type)."""
    if isinstance(obj, dict):
        return {k: map_leaves(fn, v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [map_leaves(fn, v) for v in obj]
    if type(obj) is tuple:
        return tuple(map_leaves(fn, v) for v in obj)
    if isinstance(obj, tuple):  # a namedtuple
        return type(obj)(*[map_leaves(fn, v) for v in obj])
    return fn(obj)


def to_host(obj):
    """``obj`` with every device array and NumPy array (or scalar) replaced by a host Tensor,
    as compiled code sees them (the eager fallback's input); Modules and everything else stay
    as they are."""
    return map_leaves(_host_leaf, obj)


def _host_leaf(obj):
    if isinstance(obj, (Tensor, Module)) or obj is None or isinstance(obj, (_SCALARS, np.bool_)):
        return obj
    if isinstance(obj, (np.ndarray, np.generic)):
        return Tensor._wrap(np.asarray(obj))
    for is_leaf, make in _LEAF_TYPES:
        if is_leaf(obj):
            return make(obj, "argument").host()
    return obj


def unflatten(tree: tuple, leaves) -> object:
    it = iter(leaves)
    out = _build(tree, it)
    return out


def _build(tree, it):
    kind = tree[0]
    if kind == Kind.TENSOR:
        return next(it)
    if kind == Kind.STATIC:
        return tree[2]
    if kind == Kind.NONE:
        return None
    if kind == Kind.LIST:
        return [_build(t, it) for t in tree[1]]
    if kind == Kind.TUPLE:
        return tuple(_build(t, it) for t in tree[1])
    if kind == Kind.DICT:
        return {k: _build(t, it) for k, t in tree[1]}
    if kind == Kind.MODULE:
        # A Module's gradient comes back as a dict keyed like named_parameters().
        return {n: next(it) for n in tree[3]}
    return kind(*[_build(t, it) for t in tree[1]])  # a namedtuple type


def num_leaves(tree: tuple) -> int:
    kind = tree[0]
    if kind == Kind.TENSOR:
        return 1
    if kind in (Kind.STATIC, Kind.NONE):
        return 0
    if kind == Kind.DICT:
        return sum(num_leaves(t) for _, t in tree[1])
    if kind == Kind.MODULE:
        return len(tree[3])
    return sum(num_leaves(t) for t in tree[1])

