"""Which classes and functions a file may name, and how an instance is rebuilt from its state.

A file names a class (or a function held as an attribute, such as a layer's ``activation``) by
its module and qualified name. Loading resolves that name only against the allow-list: jitgrad's
own plain-data classes, and the objects a user allowed with ``add_safe_globals`` or inside
``safe_globals``. Resolving never imports a module: a name is looked up among the allowed
objects and the modules already imported. ``weights_only=False`` lifts the list (torch's
semantics: for trusted files only), and then a module is imported by name.

Rebuilding an instance never calls its constructor: ``cls.__new__(cls)``, then its
``__setstate__`` with the saved state, or its ``__dict__`` updated with it.
"""

from __future__ import annotations

import contextlib
import importlib
import pickle
import sys
from collections import OrderedDict

_user: list = []  # what add_safe_globals and safe_globals allowed, in order


def add_safe_globals(safe_globals: list) -> None:
    """Allow classes and functions for ``jitgrad.load`` (as ``torch.serialization``). Each item
    is the object, or ``(object, "module.qualname")`` to allow it under that name too.

    >>> import jitgrad
    >>> class Point:
    ...     pass
    >>> jitgrad.serialization.add_safe_globals([Point])
    >>> Point in jitgrad.serialization.get_safe_globals()
    True
    >>> jitgrad.serialization.clear_safe_globals()
    """
    _user.extend(safe_globals)


def get_safe_globals() -> list:
    """The objects allowed with ``add_safe_globals`` or an enclosing ``safe_globals``."""
    return list(_user)


def clear_safe_globals() -> None:
    """Forget what ``add_safe_globals`` allowed (jitgrad's own classes stay allowed)."""
    _user.clear()


@contextlib.contextmanager
def safe_globals(safe_globals: list):
    """Allow classes and functions for the loads inside the ``with`` block only.

    >>> import io, jitgrad
    >>> class Point:
    ...     pass
    >>> p = Point(); p.x = jitgrad.ones(2)
    >>> buf = io.BytesIO(); jitgrad.save(p, buf)
    >>> with jitgrad.serialization.safe_globals([Point]):
    ...     q = jitgrad.load(io.BytesIO(buf.getvalue()))
    >>> type(q) is Point, q.x
    (True, tensor([1., 1.]))
    """
    saved = list(_user)
    _user.extend(safe_globals)
    try:
        yield
    finally:
        _user[:] = saved


def qualified_name(obj) -> tuple[str, str]:
    """The (module, qualname) a file records for a class or function."""
    return getattr(obj, "__module__", None) or "builtins", obj.__qualname__


def _user_by_name() -> dict:
    table = {}
    for item in _user:
        obj, alias = item if isinstance(item, tuple) else (item, None)
        table[".".join(qualified_name(obj))] = obj
        if alias:
            table[alias] = obj
    return table


def _default_allowed(obj) -> bool:
    """jitgrad's own classes that hold only data: the layers, Parameter, optimizers, the
    containers; and the functions of ``jitgrad.nn.functional`` (a layer may hold one)."""
    from jitgrad.nn import functional
    from jitgrad.nn.module import Module, _Registry
    from jitgrad.nn.parameter import Parameter
    from jitgrad.optim.optimizer import Optimizer
    from jitgrad.tensor import Size, Tensor
    if obj in (Tensor, Parameter, Size, OrderedDict, _Registry):
        return True
    if isinstance(obj, type):
        return issubclass(obj, (Module, Optimizer)) and obj.__module__.startswith("jitgrad.")
    return callable(obj) and any(obj is v for k, v in vars(functional).items()
                                 if not k.startswith("_"))


def _jitgrad_spelling(module: str) -> str:
    # A torch file names torch's modules; jitgrad keeps its equivalents under the same paths
    # (jitgrad.nn.modules.linear.Linear for torch.nn.modules.linear.Linear).
    return "jitgrad" + module[len("torch"):] if module.split(".")[0] == "torch" else module


def _walk(obj, qualname: str):
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _imported(module: str, qualname: str):
    """The object by that name among the modules already imported (a module's attribute that
    is itself a module counts), or None. (``jitgrad.nn``, imported with ``jitgrad``, imports
    ``jitgrad.nn.modules``, which registers torch's module paths.)"""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        found = sys.modules.get(".".join(parts[:i]))
        if found is not None:
            return _walk(found, ".".join(parts[i:] + [qualname]))
    return None


def resolve(module: str, qualname: str, weights_only: bool):
    """The class or function a file names, if the allow-list (or ``weights_only=False``)
    admits it; otherwise an ``UnpicklingError`` that says how to allow it."""
    name = f"{module}.{qualname}"
    by_name = _user_by_name()
    if name in by_name:
        return by_name[name]
    target = _jitgrad_spelling(module)
    obj = _imported(target, qualname)
    if obj is not None and (_default_allowed(obj) or any(obj is o for o in by_name.values())):
        return obj
    if obj is None and target != module and weights_only:
        raise pickle.UnpicklingError(f"jitgrad.load: the file names {name}, and jitgrad has "
                                     "no equivalent of it")
    if not weights_only:
        # torch's own names resolve to jitgrad's equivalents only: a class of the real torch
        # would hold jitgrad tensors it cannot use
        try:
            obj = _walk(importlib.import_module(target), qualname)
        except ImportError:
            obj = None
        if obj is None:
            what = "jitgrad has no equivalent of it" if target != module else "it cannot be found"
            raise pickle.UnpicklingError(f"jitgrad.load: the file names {name}, and {what}")
        return obj
    raise pickle.UnpicklingError(
        f"jitgrad.load: the file needs {name}, which is not allowed by default: jitgrad.load "
        "reads data and never runs code from a file, so it rebuilds only classes it was told "
        f"to trust. If you trust {name}, allow it with "
        f"jitgrad.serialization.add_safe_globals([{name}]) or inside "
        f"`with jitgrad.serialization.safe_globals([{name}]):`, or load the file with "
        "weights_only=False (only for a file you trust: it imports any class the file names)")


# torch's Module bookkeeping that jitgrad's Modules do not keep (hooks, RNN weight caches).
_TORCH_MODULE_ONLY = frozenset((
    "_backward_pre_hooks", "_backward_hooks",
    "_is_full_backward_hook", "_forward_hooks", "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
    "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks", "_flat_weights", "_flat_weight_refs",
    "_flat_weights_names", "_all_weights"))


def new_instance(cls, where: str):
    if not isinstance(cls, type):
        raise pickle.UnpicklingError(f"jitgrad.load: {where} names {cls!r}, not a class")
    return cls.__new__(cls)


def restore(obj, state, from_torch: bool = False):
    """Give a rebuilt instance its saved state (what ``__getstate__`` or ``__dict__`` gave)."""
    from jitgrad.nn.module import Module, _Registry
    if isinstance(obj, Module) and isinstance(state, dict):
        state = dict(state)
        if from_torch:
            for key in _TORCH_MODULE_ONLY:
                state.pop(key, None)
            # torch's names of the buffers state_dict leaves out; jitgrad keeps them under its own
            gone = state.pop("_non_persistent_buffers_set", None)
            if gone:
                state["_non_persistent"] = set(gone)
        for key in ("_parameters", "_modules", "_buffers"):  # registries track changes
            reg = state.get(key)
            if not isinstance(reg, _Registry):
                state[key] = _Registry(reg or ())
        state.setdefault("training", True)
        obj.__dict__.update(state)
        return obj
    # Looked up on the class: an instance's __getattr__ may read state it does not have yet.
    setstate = getattr(type(obj), "__setstate__", None)
    if setstate is not None:
        setstate(obj, state)
        return obj
    slots = None
    if isinstance(state, tuple) and len(state) == 2:  # (__dict__ or None, {slot: value})
        state, slots = state
    if state:
        obj.__dict__.update(state)
    for key, value in (slots or {}).items():
        setattr(obj, key, value)
    return obj
