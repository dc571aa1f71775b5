"""Files written by PyTorch's ``torch.save`` (its zip format), read without torch.

``<name>/data.pkl`` pickles the object; each tensor's storage is a persistent id
``("storage", <torch.XStorage>, key, location, numel)`` whose bytes are the record
``<name>/data/<key>``; tensors are rebuilt by ``torch._utils._rebuild_tensor_v2`` from (storage,
offset, size, stride, requires_grad, hooks). The pickle is read by an unpickler of our own that
calls only torch's tensor-rebuilding functions and the plain containers; a class it names must
pass the allow-list (``_allow.resolve``, torch's names mapped to jitgrad's equivalents), and an
instance of one is rebuilt as ``cls.__new__(cls)`` plus its state: no constructor, no other
callable from the file ever runs.
"""

from __future__ import annotations

import codecs
import enum
import pickle
import zipfile
from collections import OrderedDict

import numpy as np

from jitgrad import dtypes
from jitgrad.serialization import _allow
from jitgrad.tensor import Tensor

_STORAGES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    """Stands for a ``torch.XStorage`` class named in the pickle."""

    def __init__(self, name: str) -> None:
        self.name, self.np = name, np.dtype(_STORAGES[name])


def _as_jitgrad(arr: np.ndarray, storage: str) -> np.ndarray:
    """Storage elements as an array of a jitgrad dtype: half and bfloat16 become float32, the
    float dtype jitgrad computes in."""
    if storage == "BFloat16Storage":  # the high half of a float32's bits
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32) if arr.dtype == np.float16 else arr


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None,
                    metadata=None) -> Tensor:
    arr, kind = storage
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(f"jitgrad.load: a tensor has size {size} but stride {stride}")
    if all(size):
        last = offset + sum((n - 1) * st for n, st in zip(size, stride))
        if offset < 0 or min(stride, default=0) < 0 or last >= arr.size:
            raise RuntimeError(f"jitgrad.load: a tensor of size {size}, stride {stride} and "
                               f"offset {offset} reaches past its storage of {arr.size} elements")
        view = np.lib.stride_tricks.as_strided(
            arr[offset:], shape=size, strides=tuple(st * arr.itemsize for st in stride))
    else:
        view = np.zeros(size, arr.dtype)
    t = Tensor._wrap(np.array(_as_jitgrad(view, kind)))  # a copy: the file's buffer is freed
    return t.requires_grad_() if requires_grad else t


def _rebuild_parameter(data: Tensor, requires_grad: bool, hooks=None, state=None):
    from jitgrad.nn.parameter import Parameter
    return Parameter(data, requires_grad=bool(requires_grad))


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles spell bytes objects as _codecs.encode(text, "latin1").
    if encoding.lower().replace("-", "") != "latin1":
        raise pickle.UnpicklingError(f"jitgrad.load: unexpected bytes encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _reconstructor(cls, base, state):
    # copyreg's way (protocol 0 and 1) to make an instance without calling its __init__
    if not isinstance(cls, type):
        raise pickle.UnpicklingError(f"jitgrad.load: cannot rebuild {cls!r}, not a class")
    return object.__new__(cls) if base is object else base.__new__(cls, state)


def _callables() -> dict:
    """What the pickle may call (its REDUCE opcode): torch's tensor rebuilders and plain
    containers, under the names torch files use."""
    from jitgrad.devices import device
    return {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("copyreg", "_reconstructor"): _reconstructor,
        ("collections", "OrderedDict"): OrderedDict,
        ("torch", "Size"): tuple,
        ("torch", "device"): device,
        ("_codecs", "encode"): _latin1_bytes,
        ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): bytearray, ("builtins", "complex"): complex,
    }


class _TorchUnpickler(pickle._Unpickler):
    """Reads ``data.pkl``. The pure-Python unpickler, so that the opcodes that call or build
    (REDUCE, NEWOBJ, BUILD) go through the checks below; a ``data.pkl`` holds no tensor bytes
    (those are separate records), so its speed does not matter."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, fh, zf: zipfile.ZipFile, prefix: str, byteorder: str,
                 weights_only: bool) -> None:
        super().__init__(fh)
        self._zf, self._prefix, self._byteorder = zf, prefix, byteorder
        self._weights_only = weights_only
        self._storages: dict = {}
        self._callables = _callables()
        self._callable_ids = {id(f) for f in self._callables.values()}
        self._resolved: dict[tuple[str, str], object] = {}

    def find_class(self, module: str, name: str):
        if module == "__builtin__":  # protocol 2 spells builtins the Python 2 way
            module = "builtins"
        if module == "torch" and name in _STORAGES:
            return _StorageType(name)
        if (module, name) in self._callables:
            return self._callables[(module, name)]
        if module == "torch" and name in dtypes._BY_NAME:
            return dtypes._BY_NAME[name]
        if (module, name) not in self._resolved:
            self._resolved[(module, name)] = _allow.resolve(module, name, self._weights_only)
        return self._resolved[(module, name)]

    def _load_reduce(self):
        args = self.stack.pop()
        func = self.stack[-1]
        if id(func) not in self._callable_ids and not (
                isinstance(func, type) and issubclass(func, enum.Enum)):  # a call that looks a member up
            # An allowed class may be rebuilt, never constructed: its __init__ is code
            raise pickle.UnpicklingError(
                f"jitgrad.load: the file calls {getattr(func, '__qualname__', func)!r}"
                f"{args!r}; jitgrad.load never runs code from a file, it only rebuilds "
                "instances of allowed classes from their state")
        self.stack[-1] = func(*args)

    def _load_newobj(self):
        args = self.stack.pop()
        cls = self.stack.pop()
        if not isinstance(cls, type):
            raise pickle.UnpicklingError(f"jitgrad.load: cannot rebuild {cls!r}, not a class")
        if args and not issubclass(cls, tuple):
            raise pickle.UnpicklingError(f"jitgrad.load: {cls.__qualname__}.__new__ with "
                                         "arguments is not a plain rebuild")
        self.append(cls.__new__(cls, *args))

    def _load_build(self):
        state = self.stack.pop()
        _allow.restore(self.stack[-1], state, from_torch=True)

    dispatch[pickle.REDUCE[0]] = _load_reduce
    dispatch[pickle.NEWOBJ[0]] = _load_newobj
    dispatch[pickle.BUILD[0]] = _load_build
    # NEWOBJ_EX (keywords to __new__) and protocol 0's INST and OBJ (which call the class) are
    # refused: torch.save never writes them
    del dispatch[pickle.NEWOBJ_EX[0]], dispatch[pickle.INST[0]], dispatch[pickle.OBJ[0]]

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage" or len(pid) != 5:
            raise pickle.UnpicklingError(f"jitgrad.load: unknown persistent id {pid!r}")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageType):
            raise pickle.UnpicklingError(f"jitgrad.load: unsupported storage type {kind!r}")
        if key not in self._storages:
            raw = self._zf.read(f"{self._prefix}data/{key}")
            dt = kind.np.newbyteorder("<" if self._byteorder == "little" else ">")
            arr = np.frombuffer(raw, dtype=dt, count=int(numel))
            self._storages[key] = (arr.astype(kind.np, copy=False), kind.name)
        return self._storages[key]


def load_torch_zip(zf: zipfile.ZipFile, weights_only: bool):
    names = zf.namelist()
    pkl = next(n for n in names if n.endswith("/data.pkl"))
    prefix = pkl[:-len("data.pkl")]
    if f"{prefix}constants.pkl" in names or any(n.startswith(f"{prefix}code/") for n in names):
        raise RuntimeError("jitgrad.load: this is a TorchScript archive (torch.jit.save), "
                           "which holds code; jitgrad reads only torch.save files")
    byteorder = "little"
    if f"{prefix}byteorder" in names:
        byteorder = zf.read(f"{prefix}byteorder").decode().strip()
    with zf.open(pkl) as fh:
        try:
            return _TorchUnpickler(fh, zf, prefix, byteorder, weights_only).load()
        except KeyError as e:  # the pure-Python unpickler's answer to an opcode it lacks
            if not (e.args and isinstance(e.args[0], int)):
                raise
            raise pickle.UnpicklingError(f"jitgrad.load: the pickle uses opcode {bytes([e.args[0]])!r}"
                                         ", which builds objects by calling them; refused") from None
