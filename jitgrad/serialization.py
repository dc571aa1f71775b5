"""``jitgrad.save`` and ``jitgrad.load``: tensors, state dicts (of Modules and optimizers) and
the containers and Python values they hold, in a safe format. A file is a NumPy ``.npz``
archive: the arrays, and a JSON description of the structure around them. Loading reads data
only (``allow_pickle=False``): it never runs code from the file, whatever the file holds.

``load`` also reads files written by PyTorch's ``torch.save`` (its zip format), without
torch: tensors, parameters, state dicts and the containers around them. Their pickle is read
by an unpickler that knows only torch's tensor-rebuilding functions, storage types and plain
containers, and refuses anything else, as ``torch.load(weights_only=True)`` does.

>>> import io, jitgrad
>>> buf = io.BytesIO()
>>> jitgrad.save({"w": jitgrad.ones(2), "step": 3}, buf)
>>> _ = buf.seek(0)
>>> jitgrad.load(buf)
{'w': tensor([1., 1.]), 'step': 3}
"""

from __future__ import annotations

import codecs
import io
import json
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np

from jitgrad import dtypes
from jitgrad.ops.memory_format import dense
from jitgrad.tensor import Tensor

_FORMAT = "jitgrad-save-1"


def save(obj, f) -> None:
    """Write ``obj`` (tensors, dicts, lists, tuples, numbers, strings, None, NumPy arrays) to
    ``f``, a path or a binary file object."""
    arrays: dict[str, np.ndarray] = {}
    structure = {"format": _FORMAT, "obj": _encode(obj, arrays, "obj")}
    arrays["__structure__"] = np.frombuffer(json.dumps(structure).encode(), dtype=np.uint8)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            np.savez(fh, **arrays)
    else:
        np.savez(f, **arrays)


def load(f, map_location=None, weights_only=None, **kwargs):
    """Read what ``save`` wrote, or what ``torch.save`` wrote (see the module docstring).
    ``map_location`` and ``weights_only`` are accepted for torch's signature: tensors load on
    the CPU, and only data is ever loaded, whatever ``weights_only`` says."""
    source = open(f, "rb") if isinstance(f, (str, os.PathLike)) else f
    try:
        data = source.read()
    finally:
        if source is not f:
            source.close()
    is_zip = zipfile.is_zipfile(io.BytesIO(data))
    if data[:1] == b"\x80" and not is_zip:
        raise RuntimeError("jitgrad.load: this file is a bare pickle (torch's legacy pre-1.6 "
                           "format, or pickle.dump), and jitgrad never loads pickles, which can "
                           "run code; re-save it with torch.save's default zip format")
    if is_zip:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            if any(n.endswith("/data.pkl") for n in zf.namelist()):
                return _load_torch_zip(zf)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as e:
        raise RuntimeError(f"jitgrad.load: not a file written by jitgrad.save or torch.save "
                           f"({e})") from e
    if "__structure__" not in arrays:
        raise RuntimeError("jitgrad.load: the archive has no jitgrad structure record")
    structure = json.loads(arrays.pop("__structure__").tobytes().decode())
    if structure.get("format") != _FORMAT:
        raise RuntimeError(f"jitgrad.load: unknown format {structure.get('format')!r}")
    return _decode(structure["obj"], arrays)


def _encode(obj, arrays: dict, where: str):
    if isinstance(obj, Tensor):
        key = f"a{len(arrays)}"
        arrays[key] = dense(obj.detach().numpy())
        from jitgrad.nn.parameter import Parameter
        return {"tensor": key, "requires_grad": bool(obj.requires_grad),
                "parameter": isinstance(obj, Parameter)}
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError(f"jitgrad.save: {where} is a NumPy array of Python objects")
        key = f"a{len(arrays)}"
        arrays[key] = dense(obj)
        return {"ndarray": key}
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return {"int": int(obj)}
    if isinstance(obj, (float, np.floating)):
        return {"float": repr(float(obj))}
    if isinstance(obj, dtypes.DType):
        return {"dtype": obj.name}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise TypeError(f"jitgrad.save: {where} has a key of type {type(k).__name__}; "
                                "keys may be strings, numbers, booleans or None")
            items.append([_encode(k, arrays, where), _encode(v, arrays, f"{where}[{k!r}]")])
        return {"dict": items, "ordered": isinstance(obj, OrderedDict)}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    from jitgrad.nn.module import Module
    hint = " (save its state_dict(), and load that into a new instance)" \
        if isinstance(obj, Module) else ""
    raise TypeError(f"jitgrad.save: {where} is a {type(obj).__name__}, which a safe file cannot "
                    f"hold{hint}")


def _decode(rec, arrays: dict):
    if rec is None or isinstance(rec, (bool, str)):
        return rec
    if "tensor" in rec:
        t = Tensor._wrap(np.array(arrays[rec["tensor"]]))
        if rec.get("parameter"):
            from jitgrad.nn.parameter import Parameter
            return Parameter(t, requires_grad=rec["requires_grad"])
        return t.requires_grad_() if rec["requires_grad"] else t
    if "ndarray" in rec:
        return np.array(arrays[rec["ndarray"]])
    if "int" in rec:
        return int(rec["int"])
    if "float" in rec:
        return float(rec["float"])
    if "dtype" in rec:
        return dtypes._BY_NAME[rec["dtype"]]
    if "dict" in rec:
        pairs = [(_decode(k, arrays), _decode(v, arrays)) for k, v in rec["dict"]]
        return OrderedDict(pairs) if rec.get("ordered") else dict(pairs)
    if "list" in rec:
        return [_decode(v, arrays) for v in rec["list"]]
    if "tuple" in rec:
        return tuple(_decode(v, arrays) for v in rec["tuple"])
    raise RuntimeError(f"jitgrad.load: an unknown record {sorted(rec)}")


# -- files written by torch.save ---------------------------------------------------------------
# torch's zip format: ``<name>/data.pkl`` pickles the object; each tensor's storage is a
# persistent id ``("storage", <torch.XStorage>, key, location, numel)`` whose bytes are the
# record ``<name>/data/<key>``; tensors are rebuilt by ``torch._utils._rebuild_tensor_v2``
# from (storage, offset, size, stride, requires_grad, hooks).
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


def _safe_globals() -> dict:
    from jitgrad.devices import device
    table = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("collections", "OrderedDict"): OrderedDict,
        ("torch", "Size"): tuple,
        ("torch", "device"): device,
        ("_codecs", "encode"): _latin1_bytes,
        ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
        ("builtins", "bytearray"): bytearray, ("builtins", "complex"): complex,
    }
    table.update({("torch", d.name): d for d in dtypes.ALL})
    return table


class _TorchUnpickler(pickle.Unpickler):
    """Reads ``data.pkl``: torch's tensor globals map to jitgrad's, anything else is refused."""

    def __init__(self, fh, zf: zipfile.ZipFile, prefix: str, byteorder: str) -> None:
        super().__init__(fh)
        self._zf, self._prefix, self._byteorder = zf, prefix, byteorder
        self._storages: dict = {}
        self._globals = _safe_globals()

    def find_class(self, module: str, name: str):
        if module == "__builtin__":  # protocol 2 spells builtins the Python 2 way
            module = "builtins"
        if module == "torch" and name in _STORAGES:
            return _StorageType(name)
        found = self._globals.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"jitgrad.load: the file needs {module}.{name}, which is not a tensor, a storage "
                "or a plain container; jitgrad reads only data from torch files (as torch.load "
                "with weights_only=True) and never runs code from a file. Save a state_dict "
                "(model.state_dict()) rather than a whole object")
        return found

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


def _load_torch_zip(zf: zipfile.ZipFile):
    names = zf.namelist()
    pkl = next(n for n in names if n.endswith("/data.pkl"))
    prefix = pkl[:-len("data.pkl")]
    if f"{prefix}constants.pkl" in names or any(n.startswith(f"{prefix}code/") for n in names):
        raise RuntimeError("jitgrad.load: this is a TorchScript archive (torch.jit.save), "
                           "which holds code; jitgrad reads only torch.save files of tensors "
                           "and state dicts")
    byteorder = "little"
    if f"{prefix}byteorder" in names:
        byteorder = zf.read(f"{prefix}byteorder").decode().strip()
    with zf.open(pkl) as fh:
        return _TorchUnpickler(fh, zf, prefix, byteorder).load()
