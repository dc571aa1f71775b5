"""What a compiled function reads besides its arguments: its *implicit* inputs.

A trace reads tensors and Python values the caller never passed: globals, closure cells and
default arguments of the function and of every user function it can reach through them, and the
attributes of the Modules and objects those hold. Tensors found so are live inputs (read afresh at
every call, even after the name is rebound to a new tensor); Python numbers and strings found so
are baked into the trace, so their values join the cache key (a changed one re-traces instead of
running a stale trace).

>>> import jitgrad
>>> from jitgrad.trace.implicit import Implicit
>>> W = jitgrad.ones(2)
>>> def helper(x):
...     return x * W
>>> len(Implicit(lambda x: helper(x).sum()).state()[0])
1
"""

from __future__ import annotations

import dis
import os
import sys
import sysconfig
import types

from jitgrad.tensor import Tensor

_MAX_SCAN = 1000   # elements of one container scanned
_MAX_FUNCS = 256   # functions walked from one compiled function
_SCALARS = (bool, int, float, complex, str)
_PLAIN = (Tensor, type(None)) + _SCALARS
_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})

# Code that holds no user state: jitgrad itself, the standard library and installed packages.
# Walking them would cost time at every re-scan and find nothing of the user's.
_LIB_DIRS = tuple({os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep} |
                  {os.path.abspath(p) + os.sep for k, p in sysconfig.get_paths().items()
                   if k in ("stdlib", "platstdlib", "purelib", "platlib")})


def _user(code: types.CodeType) -> bool:
    return not os.path.abspath(code.co_filename).startswith(_LIB_DIRS)


_USER_CLASSES: dict = {}


def _user_class(cls: type) -> bool:
    """A class the user wrote: defined in a file outside the library folders (or in ``__main__``
    without a file, as in an interactive session)."""
    got = _USER_CLASSES.get(cls)
    if got is None:
        mod = sys.modules.get(cls.__module__)
        path = getattr(mod, "__file__", None) if mod is not None else None
        if cls.__module__ == "builtins" or mod is None:
            got = False
        elif path is None:
            got = cls.__module__ == "__main__"
        else:
            got = not os.path.abspath(path).startswith(_LIB_DIRS)
        _USER_CLASSES[cls] = got
    return got


_NAMES: dict = {}  # code object -> the global names it (and code nested in it) loads


def global_names(code: types.CodeType) -> tuple:
    """Names ``code`` loads as globals (attribute names do not count), nested code included."""
    got = _NAMES.get(code)
    if got is None:
        out: set = set()
        stack = [code]
        while stack:
            c = stack.pop()
            out.update(i.argval for i in dis.get_instructions(c) if i.opname in _GLOBAL_OPS)
            stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
        got = _NAMES[code] = tuple(sorted(out))
    return got


def _is_module(obj) -> bool:
    return isinstance(obj, _pytree.Module)


def _user_functions_of(obj) -> list:
    """User functions defined on ``obj``'s class (its methods), for Modules and user objects."""
    out = []
    for cls in type(obj).__mro__:
        if not _user_class(cls):
            continue
        for v in vars(cls).values():
            if isinstance(v, (staticmethod, classmethod)):
                v = v.__func__
            if isinstance(v, types.FunctionType) and _user(v.__code__):
                out.append(v)
    return out


class _Slots:
    """Where implicit values live: closure cells, (globals, name) pairs, functions' defaults, and
    the owner of a bound method or a Module's ``forward``."""

    def __init__(self, fn) -> None:
        self.owner = None
        target = fn
        if _is_module(fn):
            self.owner = fn
            target = type(fn).forward
        if isinstance(target, types.MethodType):
            self.owner = target.__self__
            target = target.__func__
        elif not isinstance(target, types.FunctionType) and _user_object(target):
            self.owner = target  # an object of the user's with __call__: its methods and state
        self.cells: list = []
        self.names: list = []    # (globals dict, name)
        self.funcs: list = []    # functions whose defaults are read
        seen: set = set()
        stack = [target] if isinstance(target, types.FunctionType) else []
        if self.owner is not None:
            stack += _user_functions_of(self.owner)
        while stack and len(seen) < _MAX_FUNCS:
            f = stack.pop()
            if id(f) in seen:
                continue
            seen.add(id(f))
            self.funcs.append(f)
            self.cells.extend(f.__closure__ or ())
            g = f.__globals__
            self.names.extend((g, n) for n in global_names(f.__code__))
            for v in self._values_of(f):
                stack.extend(_callees(v))
        # The function reaches nothing: never any implicit values.
        self.fixed = self.owner is None and not self.cells and not self.names and \
            not any(f.__defaults__ or f.__kwdefaults__ for f in self.funcs)

    def _values_of(self, f) -> list:
        out = []
        for c in f.__closure__ or ():
            try:
                out.append(c.cell_contents)
            except ValueError:  # an empty cell
                pass
        g = f.__globals__
        out.extend(g.get(n) for n in global_names(f.__code__))
        out.extend(f.__defaults__ or ())
        out.extend((f.__kwdefaults__ or {}).values())
        return out

    def roots(self) -> list:
        out = [self.owner]
        for cell in self.cells:
            try:
                out.append(cell.cell_contents)
            except ValueError:
                out.append(None)
        out.extend([g.get(n) for g, n in self.names])
        for f in self.funcs:
            out.append(f.__defaults__)
            out.append(f.__kwdefaults__)
        return out


def _callees(v) -> list:
    """User functions that value ``v`` may call into when the trace uses it."""
    if isinstance(v, types.FunctionType):
        return [v] if _user(v.__code__) else []
    if isinstance(v, types.MethodType):
        return _callees(v.__func__) + _callees(v.__self__)
    if _is_module(v):
        out = []
        for m in v.modules():
            out.extend(_user_functions_of(m))
        return out
    if isinstance(v, functools_partial):
        return _callees(v.func)
    return []


class Implicit:
    """The implicit inputs of one compiled function. ``state()`` gives the tensors (in a fixed
    order) and ``extra``, a hashable key part: the Python values baked into the trace and which
    tensors are one and the same. It remembers the objects the roots held, so an unchanged world
    costs a few identity checks per call instead of a scan."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self._slots = _Slots(fn)
        self.fixed = self._slots.fixed
        self._roots: list | None = None
        self._volatile = False
        self._tensors: list = []
        self.extra: tuple = ()
        self._version = -1

    def state(self) -> tuple:
        if self.fixed:
            return self._tensors, self.extra
        roots = self._slots.roots()
        old = self._roots
        if old is not None:
            same_version = self._version == _pytree.module_version()
            changed = [a for a, b in zip(roots, old) if a is not b]
            if not changed and same_version and not self._volatile:
                return self._tensors, self.extra
            if not same_version or any(not isinstance(a, _PLAIN) for a in changed):
                # A function, Module or object was rebound: what is reachable may differ.
                self._slots = _Slots(self.fn)
                roots = self._slots.roots()
        tensors: list = []
        scalars: list = []
        volatile = False
        for i, r in enumerate(roots):
            if isinstance(r, _SCALARS):
                scalars.append((i, r))
            elif r is not None:
                volatile |= _scan(r, tensors, scalars, 0, (i,))
        first: dict = {}
        pattern = tuple(first.setdefault(id(t), j) for j, t in enumerate(tensors))
        same = pattern != tuple(range(len(tensors)))
        # Containers and plain objects can change behind an unchanged identity: those that
        # contributed anything are scanned again at every call.
        self._roots = roots
        self._volatile = volatile
        self._tensors = tensors
        self.extra = (tuple(scalars), pattern if same else None) if scalars or same else ()
        self._version = _pytree.module_version()
        return tensors, self.extra


def _scan(obj, tensors: list, scalars: list, depth: int, path: tuple) -> bool:
    """Collect the tensors and Python scalars ``obj`` holds; True when ``obj`` is a mutable
    container or plain object that contributed any (so it must be scanned at every call)."""
    if isinstance(obj, Tensor):
        tensors.append(obj)
        return False
    if _is_module(obj):
        # parameters, buffers, tensor attributes and Python values, kept until a Module changes
        _, _, params, others, values = module_flat(obj)
        tensors.extend(params)
        tensors.extend(others)
        if values:
            scalars.append((path, id(obj), values))
        return False
    if depth >= 3:
        return False
    n_t, n_s = len(tensors), len(scalars)
    volatile = False
    if isinstance(obj, (list, tuple)) and len(obj) <= _MAX_SCAN:
        for j, x in enumerate(obj):
            if isinstance(x, _SCALARS):
                scalars.append((path + (j,), x))
            else:
                volatile |= _scan(x, tensors, scalars, depth + 1, path + (j,))
        volatile |= not isinstance(obj, tuple)
    elif isinstance(obj, dict) and len(obj) <= _MAX_SCAN:
        for k, x in obj.items():
            if isinstance(x, _SCALARS):
                scalars.append((path + (k,), x))
            else:
                volatile |= _scan(x, tensors, scalars, depth + 1, path + (k,))
        volatile = True
    elif isinstance(obj, types.MethodType):
        return _scan(obj.__self__, tensors, scalars, depth, path)
    elif _user_object(obj):
        for k, x in list(vars(obj).items())[:_MAX_SCAN]:
            if isinstance(x, _SCALARS):
                scalars.append((path + (k,), x))
            else:
                _scan(x, tensors, scalars, depth + 1, path + (k,))
        volatile = True
    else:
        return False
    return volatile and (len(tensors) > n_t or len(scalars) > n_s)


def _user_object(obj) -> bool:
    """An instance of a class the user wrote (its attributes may be read by the trace)."""
    if isinstance(obj, (type, types.ModuleType, types.FunctionType)):
        return False
    return hasattr(obj, "__dict__") and _user_class(type(obj))


from functools import partial as functools_partial  # noqa: E402
from jitgrad.trace import pytree as _pytree  # noqa: E402
from jitgrad.trace.pytree import module_flat  # noqa: E402
