"""What a compiled function reads besides its arguments: its *implicit* inputs.

A trace reads tensors and Python values the caller never passed: globals, closure cells and
default arguments of the function and of every user function it can reach through them, and the
attributes of the Modules and objects those hold. Tensors found so are live inputs (read afresh at
every call, even after the name is rebound to a new tensor); NumPy arrays found so are live too
(zero-copy: ``jitgrad.tensor(TABLE)`` or ``x * TABLE`` reads TABLE's current values at each call);
Python numbers and strings found so are baked into the trace, so their values join the cache key (a
changed one re-traces instead of running a stale trace).

The walk is bounded (containers of up to ``_MAX_SCAN`` elements, ``_MAX_DEPTH`` levels deep). A
tensor the trace reads from past those bounds, or through an object the walk does not look into,
is located after the trace (``Implicit.adopt``) and its path re-read at every call; one that
cannot be located makes the function run eagerly, with a warning: slower, never stale.

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
import functools
import os
import sys
import sysconfig
import types
import warnings

import numpy as np

from jitgrad import dtypes
from jitgrad.tensor import Tensor

_MAX_SCAN = 1000   # elements of one container scanned at every call
_MAX_DEPTH = 6     # levels of containers and objects scanned below a root
_MAX_SEARCH = 200_000  # objects visited when locating a tensor the scan did not find
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
        self.cell_names: list = []
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
            self.cell_names.extend(f.__code__.co_freevars[:len(f.__closure__ or ())])
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

    def keys(self) -> list:
        """What each of ``roots()`` is, as hashable descriptors that outlive a re-made
        ``_Slots`` (a located path starts from one), and name it in messages."""
        out = [("owner", id(self.owner))]
        out += [("closure", id(c), n) for c, n in zip(self.cells, self.cell_names)]
        out += [("global", id(g), n) for g, n in self.names]
        for f in self.funcs:
            out += [("defaults", id(f), f.__qualname__), ("kwdefaults", id(f), f.__qualname__)]
        return out

    def holders(self) -> list:
        """The objects ``keys()`` names by id (kept alive while a path starts from them)."""
        return [self.owner] + list(self.cells) + [g for g, _ in self.names] + self.funcs

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
        self._arrays: dict = {}  # id(array) -> (array, its Tensor wrapper), stable across calls
        # Tensors located after a trace (``adopt``): (root key, steps), re-read at every call.
        # Every adoption starts a new epoch of the key: the trace that read those tensors held
        # them by reference, and must never serve a call again.
        self._paths: list = []
        self._found: list = []   # what the paths gave at the last call
        self._epoch = 0
        self._holders: list = []  # the roots' holders the paths name by id, kept alive
        self._index: dict = {}    # root key -> its position in roots()
        self._warned: set = set()
        # NumPy arrays the walk found, by path: any may have been read by NumPy code in the
        # function (a value fixed in the trace), so their contents are compared with a
        # snapshot at each call and a change re-traces (slower, never stale).
        self._array_paths: list = []   # (path, array) of the last scan
        self._snaps: dict = {}         # path -> [snapshot, generation]

    def state(self) -> tuple:
        if self.fixed:
            return self._tensors, self.extra
        roots = self._slots.roots()
        old = self._roots
        if old is not None:
            same_version = self._version == _pytree.module_version()
            changed = [a for a, b in zip(roots, old) if a is not b]
            if not changed and same_version and not self._volatile and \
                    (not self._paths or self._same_paths(roots)) and not self._arrays_changed():
                return self._tensors, self.extra
            if not same_version or any(not isinstance(a, _PLAIN) for a in changed):
                # A function, Module or object was rebound: what is reachable may differ (the
                # located paths start from roots named by key, wherever they are now).
                self._slots = _Slots(self.fn)
                roots = self._slots.roots()
        keys = self._slots.keys()
        self._index = {k: i for i, k in enumerate(keys)}
        tensors: list = []
        scalars: list = []
        volatile = False
        walk = _Walk(self._arrays, self._warned)
        for i, r in enumerate(roots):
            if isinstance(r, _SCALARS):
                scalars.append((i, r))
            elif r is not None:
                volatile |= walk.scan(r, tensors, scalars, 0, (keys[i],))
        self._warn_stops(walk.stops)
        self._arrays = walk.fresh
        self._array_paths = walk.array_paths
        if self._array_paths:
            self._arrays_changed()
            scalars.append(("arrays", tuple(self._snaps[p][1] if p in self._snaps else 0
                                            for p, _ in self._array_paths)))
        n_scanned = len(tensors)
        self._found = [_resolve(roots, self._index, p) for p in self._paths]
        tensors.extend(t for t in self._found if t is not None)
        first: dict = {}
        pattern = tuple(first.setdefault(id(t), j) for j, t in enumerate(tensors))
        same = pattern != tuple(range(len(tensors)))
        # Containers and plain objects can change behind an unchanged identity: those that
        # contributed anything are scanned again at every call.
        self._roots = roots
        self._volatile = volatile
        self._tensors = tensors
        extra = (tuple(scalars), pattern if same else None) if scalars or same else ()
        if self._paths:
            # Which inputs the located tensors fill, and which paths gave none: part of the key,
            # so a trace never runs with its inputs in other places.
            extra = (extra, self._epoch, n_scanned, tuple(p for p in self._paths),
                     tuple(t is None for t in self._found))
        self.extra = extra
        self._version = _pytree.module_version()
        return tensors, self.extra

    def _arrays_changed(self) -> bool:
        """Compare the arrays with their snapshots; True (and a new generation, which changes
        the key) where one changed. All of them: an array read through jitgrad may also have
        been read by NumPy code in the function (``x + from_numpy(T)`` beside
        ``float(T.mean())``), whose value the trace holds fixed, and nothing tells the two
        reads apart."""
        changed = False
        for path, arr in self._array_paths:
            snap = self._snaps.get(path)
            if snap is None:
                self._snaps[path] = [arr.copy(), 0]
            elif snap[0].shape != arr.shape or snap[0].dtype != arr.dtype or \
                    not np.array_equal(snap[0], arr, equal_nan=arr.dtype.kind == "f"):
                snap[0] = arr.copy()
                snap[1] += 1
                changed = True
        return changed

    def _same_paths(self, roots) -> bool:
        return all(_resolve(roots, self._index, p) is t for p, t in zip(self._paths, self._found))

    def adopt(self, refs: list) -> list:
        """After a trace: locate the tensors it read that the scan did not find (``refs``) from
        the roots, so later calls re-read their paths. Returns those that cannot be located."""
        refs = [t for t in refs if not getattr(t, "always_live", False)]
        if not refs:
            return []
        roots, keys = self._slots.roots(), self._slots.keys()
        found = _locate(roots, {id(t): t for t in refs})
        missing = [t for t in refs if id(t) not in found]
        new = [(keys[i], steps) for i, steps in dict.fromkeys(found.values())]
        new = [p for p in new if p not in self._paths]
        if new:
            self._paths.extend(new)
            self._holders = list({id(h): h for h in self._holders + self._slots.holders()}
                                 .values())
        if found:
            # The trace that met them held them by reference: a new epoch of the key, so it
            # serves no later call (the next one traces with them as live inputs)
            self._epoch += 1
            self._roots = None
        return missing

    def _warn_stops(self, stops: list) -> None:
        for where in stops:
            if where not in self._warned:
                self._warned.add(where)
                warnings.warn(
                    f"jitgrad: {_name(self.fn)} reaches {where}, past what is scanned for live "
                    f"values at each call (containers of up to {_MAX_SCAN} elements, "
                    f"{_MAX_DEPTH} levels deep): Python numbers read from it are fixed when "
                    "the function is traced. Pass them as arguments, or hold them in tensors "
                    "(which are re-read).", LiveStateWarning, stacklevel=5)


class LiveStateWarning(UserWarning):
    """A compiled function reaches state it cannot re-read at every call."""


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


class _Walk:
    """One scan of the roots: tensors, live NumPy arrays (as zero-copy tensors) and Python
    scalars, with the containers it stopped at (``stops``) for numbers it could not see."""

    def __init__(self, arrays: dict, warned: set = frozenset()) -> None:
        self.warned = warned  # containers warned of already: not looked through again
        self.arrays = arrays  # the last scan's wrappers, reused while the array is the same
        self.fresh: dict = {}
        self.array_paths: list = []
        self.seen: set = set()
        self.stops: list = []

    def array(self, arr: np.ndarray, path: tuple) -> Tensor | None:
        if arr.dtype not in dtypes._BY_NP:
            return None
        self.array_paths.append((path, arr))
        hit = self.fresh.get(id(arr)) or self.arrays.get(id(arr))
        if hit is not None and hit[0] is arr:
            t = hit[1]
        else:
            t = Tensor._wrap(arr)
            t._np_source = arr  # the trace maps the array itself to this input
        self.fresh[id(arr)] = (arr, t)
        return t

    def scan(self, obj, tensors: list, scalars: list, depth: int, path: tuple) -> bool:
        """Collect what ``obj`` holds; True when ``obj`` is a mutable container or plain object
        that contributed anything (so it must be scanned at every call)."""
        if isinstance(obj, Tensor):
            tensors.append(obj)
            return False
        if type(obj) is np.ndarray:
            t = self.array(obj, path)
            if t is not None:
                tensors.append(t)
            return False
        if _is_module(obj):
            # parameters, buffers, tensor attributes and Python values, kept until a Module
            # changes
            _, _, params, others, values = module_flat(obj)
            tensors.extend(params)
            tensors.extend(others)
            if values:
                scalars.append((path, id(obj), values))
            return False
        if isinstance(obj, types.MethodType):
            return self.scan(obj.__self__, tensors, scalars, depth, path)
        if isinstance(obj, (list, tuple, dict)):
            items = obj.items() if isinstance(obj, dict) else enumerate(obj)
            size = len(obj)
        elif isinstance(obj, functools.partial):  # its bound arguments, as a closure's
            items = [("args", obj.args), ("keywords", obj.keywords)]
            size = 2
        elif _user_object(obj) or type(obj) is types.SimpleNamespace:
            items, size = vars(obj).items(), len(vars(obj))
        else:
            return False
        if id(obj) in self.seen:  # a cycle, or one object reached twice: scanned once
            return False
        if depth >= _MAX_DEPTH or size > _MAX_SCAN:
            where = _describe(path, obj)
            if where not in self.warned and _holds_numbers(obj):
                self.stops.append(where)
            return False
        self.seen.add(id(obj))
        n_t, n_s = len(tensors), len(scalars)
        volatile = not isinstance(obj, tuple)
        for k, x in list(items):
            if isinstance(x, _SCALARS):
                scalars.append((path + (k,), x))
            else:
                volatile |= self.scan(x, tensors, scalars, depth + 1, path + (k,))
        return volatile and (len(tensors) > n_t or len(scalars) > n_s)


def _holds_numbers(obj, depth: int = 0, seen: set | None = None) -> bool:
    """Whether a container the scan stops at holds Python numbers anywhere below it (tensors
    past the bounds are located after the trace instead; numbers cannot be)."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 64:
        return False
    seen.add(id(obj))
    if isinstance(obj, dict):
        vals = obj.values()
    elif isinstance(obj, (list, tuple)):
        vals = obj
    elif _user_object(obj) or type(obj) is types.SimpleNamespace:
        vals = vars(obj).values()
    else:
        return False
    for x in vals:
        if isinstance(x, _SCALARS) and not isinstance(x, str):
            return True
        if (isinstance(x, (list, tuple, dict)) or type(x) is types.SimpleNamespace or
                _user_object(x)) and _holds_numbers(x, depth + 1, seen):
            return True
    return False


def _describe(path: tuple, obj) -> str:
    kind = type(obj).__name__
    size = len(obj) if isinstance(obj, (list, tuple, dict)) else len(vars(obj))
    root = path[0]
    name = {"owner": "the function's object", "global": f"global {root[-1]!r}",
            "closure": f"closure variable {root[-1]!r}"}.get(root[0], f"the {root[0]} of {root[-1]}")
    steps = "".join(f"[{k!r}]" for k in path[1:])
    return f"a {kind} of {size} elements ({name}{steps})"


def _children(obj):
    """(step, value) pairs of what a located path may go through. A step into a list records
    its length: an index means the same element only while no element was added or removed
    (``big[-1]`` is at 1499 until an append)."""
    if isinstance(obj, (list, tuple)):
        n = len(obj)
        return [(("i", k, n), x) for k, x in enumerate(obj)]
    if isinstance(obj, dict):
        return [(("k", k), x) for k, x in obj.items()]
    if isinstance(obj, (type, types.ModuleType, types.FunctionType, types.CodeType,
                        np.ndarray, str, bytes)):
        return []
    if isinstance(obj, types.MethodType):
        return [(("a", "__self__"), obj.__self__)]
    if isinstance(obj, functools.partial):
        return [(("a", "args"), obj.args), (("a", "keywords"), obj.keywords)]
    out = []
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        out.extend((("a", k), x) for k, x in d.items() if isinstance(k, str))
    for cls in type(obj).__mro__:
        for k in cls.__dict__.get("__slots__", ()) if isinstance(cls.__dict__.get(
                "__slots__", ()), (tuple, list)) else ():
            if k not in ("__dict__", "__weakref__") and hasattr(obj, k):
                out.append((("a", k), getattr(obj, k)))
    return out


def _locate(roots: list, targets: dict) -> dict:
    """Shortest paths (root index, steps) from the roots to the tensors in ``targets`` (by id),
    breadth first through containers and objects' attributes."""
    found: dict = {}
    seen: set = set()
    frontier = [(r, (i, ())) for i, r in enumerate(roots) if r is not None]
    visits = 0
    while frontier and len(found) < len(targets) and visits < _MAX_SEARCH:
        nxt = []
        for obj, (i, steps) in frontier:
            if isinstance(obj, Tensor):
                if id(obj) in targets and id(obj) not in found:
                    found[id(obj)] = (i, steps)
                continue
            if id(obj) in seen or isinstance(obj, _SCALARS):
                continue
            seen.add(id(obj))
            visits += 1
            try:
                kids = _children(obj)
            except Exception:  # an object whose attributes cannot be read: not a path
                continue
            nxt.extend((x, (i, steps + (step,))) for step, x in kids)
        frontier = nxt
    return found


def _resolve(roots: list, index: dict, where: tuple):
    """The tensor at a located path now, or None where the path no longer leads to one."""
    key, steps = where
    i = index.get(key)
    if i is None:
        return None
    obj = roots[i]
    try:
        for step in steps:
            if step[0] == "a":
                obj = getattr(obj, step[1])
            elif step[0] == "i":
                if len(obj) != step[2]:
                    return None
                obj = obj[step[1]]
            else:
                obj = obj[step[1]]
    except Exception:
        return None
    return obj if isinstance(obj, Tensor) else None


def _user_object(obj) -> bool:
    """An instance of a class the user wrote (its attributes may be read by the trace)."""
    if isinstance(obj, (type, types.ModuleType, types.FunctionType)):
        return False
    return hasattr(obj, "__dict__") and _user_class(type(obj))


from functools import partial as functools_partial  # noqa: E402
from jitgrad.trace import pytree as _pytree  # noqa: E402
from jitgrad.trace.pytree import module_flat  # noqa: E402
