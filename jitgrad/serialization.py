"""``jitgrad.save`` and ``jitgrad.load``: tensors, state dicts (of Modules and optimizers) and
the containers and Python values they hold, in a safe format. A file is a NumPy ``.npz``
archive: the arrays, and a JSON description of the structure around them. Loading reads data
only (``allow_pickle=False``): it never runs code from the file, whatever the file holds.

>>> import io, jitgrad
>>> buf = io.BytesIO()
>>> jitgrad.save({"w": jitgrad.ones(2), "step": 3}, buf)
>>> _ = buf.seek(0)
>>> jitgrad.load(buf)
{'w': tensor([1., 1.]), 'step': 3}
"""

from __future__ import annotations

import io
import json
import os
from collections import OrderedDict

import numpy as np

from jitgrad import dtypes
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
    """Read what ``save`` wrote. ``map_location`` and ``weights_only`` are accepted for torch's
    signature: tensors load on the CPU, and only data is ever loaded."""
    source = open(f, "rb") if isinstance(f, (str, os.PathLike)) else f
    try:
        data = source.read()
    finally:
        if source is not f:
            source.close()
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as e:
        raise RuntimeError(f"jitgrad.load: not a file written by jitgrad.save ({e}); files "
                           "written by torch.save are pickles, which jitgrad never loads") from e
    if "__structure__" not in arrays:
        raise RuntimeError("jitgrad.load: the archive has no jitgrad structure record")
    structure = json.loads(arrays.pop("__structure__").tobytes().decode())
    if structure.get("format") != _FORMAT:
        raise RuntimeError(f"jitgrad.load: unknown format {structure.get('format')!r}")
    return _decode(structure["obj"], arrays)


def _encode(obj, arrays: dict, where: str):
    if isinstance(obj, Tensor):
        key = f"a{len(arrays)}"
        arrays[key] = np.ascontiguousarray(obj.detach().numpy())
        from jitgrad.nn.parameter import Parameter
        return {"tensor": key, "requires_grad": bool(obj.requires_grad),
                "parameter": isinstance(obj, Parameter)}
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError(f"jitgrad.save: {where} is a NumPy array of Python objects")
        key = f"a{len(arrays)}"
        arrays[key] = np.ascontiguousarray(obj)
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
