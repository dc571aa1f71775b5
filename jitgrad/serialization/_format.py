"""jitgrad's own file format: a NumPy ``.npz`` archive of the arrays, and a JSON record of the
structure around them. Nothing in it is a pickle: an instance is recorded as its class's name
and its state, a class or function held as a value as its name.

Records (JSON): ``None``, booleans and strings stand for themselves; every other value is an
object with one tag: ``int``, ``float``, ``complex``, ``bytes`` (an array), ``dtype``,
``device``, ``tensor``, ``ndarray``, ``dict``, ``list``, ``tuple``, ``set``, ``frozenset``,
``object`` (class name, ``state``, and the items of a dict, list or tuple subclass, or the
``value`` of a str, int, float, bytes or complex subclass), ``enum``,
``global`` (a class or function by name), or ``ref`` (an object recorded earlier). Values that
can be shared (tensors, arrays, containers, instances) carry an ``id``; a second occurrence is a
``ref`` to it, so tied weights stay one Parameter and cycles close.
"""

from __future__ import annotations

import copyreg
import enum
import pickle
import types
from collections import OrderedDict

import numpy as np

from jitgrad import dtypes
from jitgrad.ops.memory_format import dense
from jitgrad.serialization import _allow
from jitgrad.tensor import Tensor

FORMATS = ("jitgrad-save-1", "jitgrad-save-2")  # version 1 had no instances nor references
_TAGS = ("object", "enum", "global", "tensor", "ndarray", "dict", "list", "tuple", "set",
         "frozenset", "int", "float", "complex", "bytes", "dtype", "device")
_NO_STATE = (types.ModuleType, types.FrameType, types.GeneratorType, types.CodeType)
# Immutable builtins whose subclasses hold a value besides their __dict__: saved as the value,
# rebuilt as base.__new__(cls, value) (as a tuple subclass is from its items).
_VALUE_TYPES = (str, int, float, bytes, complex)
# object.__getstate__ exists from Python 3.11 only; None before.
_OBJECT_GETSTATE = getattr(object, "__getstate__", None)
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class defined in Python, not in C


def _own_getstate(cls):
    """The class's ``__getstate__`` unless it is object's default (or there is none), else
    None."""
    getstate = getattr(cls, "__getstate__", None)
    return None if getstate is _OBJECT_GETSTATE else getstate


def _default_state(obj):
    """What Python 3.11's ``object.__getstate__`` gives, on any version: the ``__dict__`` (None
    when empty), or with ``__slots__`` ``(__dict__ or None, {slot: value})`` when any slot is
    set."""
    state = getattr(obj, "__dict__", None) or None
    slots = {}
    for name in copyreg._slotnames(type(obj)):  # mangled names, as pickle uses
        try:
            slots[name] = getattr(obj, name)
        except AttributeError:  # an unset slot
            pass
    return (state, slots) if slots else state


def _state_of(obj):
    """An instance's state: its own ``__getstate__()``, or else what 3.11's default gives."""
    getstate = _own_getstate(type(obj))
    return getstate(obj) if getstate is not None else _default_state(obj)


def _hidden_base(cls):
    """A base of ``cls`` implemented in C whose contents an ``object`` record would not hold
    (set, deque, bytearray: besides object and the dict, list, tuple and value types whose
    items or value it holds), or None."""
    for c in cls.__mro__:
        if c is not object and not c.__flags__ & _HEAPTYPE and \
                not issubclass(c, (dict, list, tuple) + _VALUE_TYPES):
            return c
    return None


def _value_type(cls):
    """The immutable builtin (str, int, ...) a class derives from, or None."""
    if not isinstance(cls, type):
        return None
    return next((base for base in _VALUE_TYPES if issubclass(cls, base)), None)


class Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self._ids: dict[int, int] = {}
        self._keep: list = []  # holds what __getstate__ returned, so its id() is not reused
        self._open_tuples: set[int] = set()

    def _array(self, arr: np.ndarray) -> str:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = dense(arr)
        return key

    def encode(self, obj, where: str = "obj"):
        if obj is None:
            return obj
        if isinstance(obj, enum.Enum):  # before int and str: an IntEnum is an int too
            return {"enum": self._name(type(obj), where), "value": self.encode(obj.value, where)}
        if isinstance(obj, (bool, str)) and type(obj) in (bool, str):
            return obj
        if isinstance(obj, np.bool_):
            return bool(obj)
        if type(obj) is int or isinstance(obj, np.integer):
            return {"int": int(obj)}
        if type(obj) is float or isinstance(obj, np.floating):
            return {"float": repr(float(obj))}
        if type(obj) is complex:
            return {"complex": [repr(obj.real), repr(obj.imag)]}
        if type(obj) is bytes:
            return {"bytes": self._array(np.frombuffer(obj, np.uint8))}
        if isinstance(obj, dtypes.DType):
            return {"dtype": obj.name}
        from jitgrad.devices import device
        if isinstance(obj, device):
            return {"device": str(obj)}
        if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            return {"global": self._name(obj, where)}
        if id(obj) in self._ids:
            return {"ref": self._ids[id(obj)]}
        if isinstance(obj, tuple):  # built after its items on load, so never shared or cyclic
            if id(obj) in self._open_tuples:
                raise ValueError(f"jitgrad.save: {where} is a tuple that contains itself")
            self._open_tuples.add(id(obj))
            try:
                if type(obj) is tuple:
                    return {"tuple": self._seq(obj, where)}
                return self._instance(obj, None, where)
            finally:
                self._open_tuples.discard(id(obj))
        n = self._ids[id(obj)] = len(self._ids)
        self._keep.append(obj)
        if isinstance(obj, Tensor):
            from jitgrad.nn.parameter import Parameter
            return {"id": n, "tensor": self._array(obj.detach().numpy()),
                    "requires_grad": bool(obj.requires_grad),
                    "parameter": isinstance(obj, Parameter)}
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                raise TypeError(f"jitgrad.save: {where} is a NumPy array of Python objects")
            return {"id": n, "ndarray": self._array(obj)}
        if type(obj) in (dict, OrderedDict):
            return {"id": n, "dict": self._items(obj, where), "ordered": type(obj) is not dict}
        if type(obj) in (list, set, frozenset):
            return {"id": n, type(obj).__name__: self._seq(obj, where)}
        return self._instance(obj, n, where)

    def _items(self, d: dict, where: str) -> list:
        return [[self.encode(k, f"{where} (a key)"), self.encode(v, f"{where}[{k!r}]")]
                for k, v in d.items()]

    def _seq(self, seq, where: str) -> list:
        return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(seq)]

    def _name(self, obj, where: str) -> str:
        module, qualname = _allow.qualified_name(obj)
        if "<" in qualname:  # <locals>, <lambda>: nothing a later process can find by name
            raise TypeError(f"jitgrad.save: {where} is {module}.{qualname}, which has no name a "
                            "file can record (a lambda, or defined inside a function); define "
                            "it at the top level of a module")
        return f"{module}:{qualname}"

    def _instance(self, obj, n: int | None, where: str) -> dict:
        cls = type(obj)
        base = _value_type(cls)
        if isinstance(obj, _NO_STATE) or (not hasattr(obj, "__dict__") and not any(
                "__slots__" in vars(c) for c in cls.__mro__[:-1])
                and _own_getstate(cls) is None and base is None
                and not isinstance(obj, (dict, list, tuple))):
            raise TypeError(f"jitgrad.save: {where} is a {cls.__name__}, whose state jitgrad "
                            "cannot read (it has no __dict__ and no __getstate__)")
        hidden = _hidden_base(cls) if _own_getstate(cls) is None else None
        if hidden is not None:  # its items would be lost: never a silently empty object
            raise TypeError(f"jitgrad.save: {where} is a {cls.__name__}, a {hidden.__name__} "
                            "whose contents a file cannot hold; save them as a list")
        rec = {"object": self._name(cls, where)}
        if n is not None:
            rec["id"] = n
        if isinstance(obj, dict):
            rec["dictitems"] = self._items(obj, where)
        elif isinstance(obj, (list, tuple)):
            rec["tuple" if isinstance(obj, tuple) else "listitems"] = self._seq(obj, where)
        if base is not None:  # the value itself; __getnewargs__ of the base runs no user code
            rec["value"] = self.encode(base(*base.__getnewargs__(obj)), f"{where} (its value)")
        state = _state_of(obj)
        if state:
            self._keep.append(state)
            rec["state"] = self.encode(state, f"{where}.__dict__" if isinstance(state, dict)
                                       else f"{where} (its state)")
        return rec


class Decoder:
    def __init__(self, arrays: dict, weights_only: bool) -> None:
        self.arrays, self.weights_only = arrays, weights_only
        self._memo: dict[int, object] = {}
        self._resolved: dict[str, object] = {}  # a file names each class many times

    def decode(self, rec):
        if rec is None or isinstance(rec, (bool, str)):
            return rec
        if "ref" in rec:
            return self._memo[rec["ref"]]
        tag = next((t for t in _TAGS if t in rec), None)  # "object" first: it has "tuple" too
        if tag is None:
            raise RuntimeError(f"jitgrad.load: an unknown record {sorted(rec)}")
        return getattr(self, f"_{tag}")(rec)

    def _keep(self, rec, obj):
        if "id" in rec:
            self._memo[rec["id"]] = obj
        return obj

    def _int(self, rec):
        return int(rec["int"])

    def _float(self, rec):
        return float(rec["float"])

    def _complex(self, rec):
        return complex(float(rec["complex"][0]), float(rec["complex"][1]))

    def _bytes(self, rec):
        return self.arrays[rec["bytes"]].tobytes()

    def _dtype(self, rec):
        return dtypes._BY_NAME[rec["dtype"]]

    def _device(self, rec):
        from jitgrad.devices import device
        return device(rec["device"])

    def _tensor(self, rec):
        t = Tensor._wrap(np.array(self.arrays[rec["tensor"]]))
        if rec.get("parameter"):
            from jitgrad.nn.parameter import Parameter
            t = Parameter(t, requires_grad=rec["requires_grad"])
        elif rec["requires_grad"]:
            t.requires_grad_()
        return self._keep(rec, t)

    def _ndarray(self, rec):
        return self._keep(rec, np.array(self.arrays[rec["ndarray"]]))

    def _dict(self, rec):
        d = self._keep(rec, OrderedDict() if rec.get("ordered") else {})
        for k, v in rec["dict"]:
            key = self.decode(k)
            d[key] = self.decode(v)
        return d

    def _list(self, rec):
        out = self._keep(rec, [])
        out.extend(self.decode(v) for v in rec["list"])
        return out

    def _tuple(self, rec):
        return self._keep(rec, tuple(self.decode(v) for v in rec["tuple"]))

    def _set(self, rec):
        return self._keep(rec, {self.decode(v) for v in rec["set"]})

    def _frozenset(self, rec):
        return self._keep(rec, frozenset(self.decode(v) for v in rec["frozenset"]))

    def _global(self, rec):
        return self._resolve(rec["global"])

    def _enum(self, rec):
        cls = self._resolve(rec["enum"])
        if not (isinstance(cls, type) and issubclass(cls, enum.Enum)):  # a call would construct
            raise pickle.UnpicklingError(f"jitgrad.load: the file names {rec['enum']!r} as an "
                                         "enum, and it is not an Enum class")
        return cls(self.decode(rec["value"]))  # an Enum call looks a member up, builds nothing

    def _resolve(self, name: str):
        if name not in self._resolved:
            module, _, qualname = name.partition(":")
            self._resolved[name] = _allow.resolve(module, qualname, self.weights_only)
        return self._resolved[name]

    def _object(self, rec):
        cls = self._resolve(rec["object"])
        where = rec["object"].replace(":", ".")
        if "tuple" in rec:  # a tuple subclass (Size, a namedtuple) holds its items from birth
            obj = tuple.__new__(cls, [self.decode(v) for v in rec["tuple"]])
            self._keep(rec, obj)
        elif "value" in rec:  # a str, int, float, bytes or complex subclass: its value from birth
            base, value = _value_type(cls), self.decode(rec["value"])
            if base is None or type(value) is not base:
                raise pickle.UnpicklingError(f"jitgrad.load: {where} is given a value of type "
                                             f"{type(value).__name__}, which it cannot hold")
            obj = self._keep(rec, base.__new__(cls, value))
        else:
            obj = self._keep(rec, _allow.new_instance(cls, where))
        for k, v in rec.get("dictitems", ()):
            key = self.decode(k)
            obj[key] = self.decode(v)
        for v in rec.get("listitems", ()):
            obj.append(self.decode(v))
        if "state" in rec:
            _allow.restore(obj, self.decode(rec["state"]))
        return obj
