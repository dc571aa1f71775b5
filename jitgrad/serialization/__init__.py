"""``jitgrad.save`` and ``jitgrad.load``, as torch's: tensors, whole Modules and optimizers,
instances of user classes, and the containers and Python values around them.

A file is a NumPy ``.npz`` archive: the arrays, and a JSON record of the structure around them
(``_format``). Nothing in it is a pickle. An instance is recorded as its class's qualified name
and its state (``__getstate__`` or ``__dict__``); a tensor shared between places (tied weights)
is stored once and comes back as one tensor; a Parameter stays a Parameter.

Loading reads data only, like ``torch.load(weights_only=True)``: it rebuilds an instance only
when its class is allowed (jitgrad's own layers, Parameter, optimizers and containers, and what
``add_safe_globals`` or ``safe_globals`` allowed), as ``cls.__new__(cls)`` and its state, never
through ``__init__``; any other class is refused by name, with how to allow it.
``weights_only=False`` lifts the list (torch's semantics: trusted files only).

``load`` also reads what PyTorch's ``torch.save`` writes (its zip format) without torch:
tensors, state dicts and whole models, whose torch classes map to jitgrad's equivalents
(``torch.nn.modules.linear.Linear`` is ``jitgrad.nn.Linear``), under the same allow-list.

>>> import io, jitgrad
>>> buf = io.BytesIO()
>>> jitgrad.save({"w": jitgrad.ones(2), "step": 3}, buf)
>>> jitgrad.load(io.BytesIO(buf.getvalue()))
{'w': tensor([1., 1.]), 'step': 3}

A whole model; a class of one's own must be allowed to load:

>>> class Net(jitgrad.nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.fc = jitgrad.nn.Linear(2, 1)
>>> buf = io.BytesIO()
>>> jitgrad.save(Net(), buf)
>>> jitgrad.load(io.BytesIO(buf.getvalue()))
Traceback (most recent call last):
    ...
_pickle.UnpicklingError: jitgrad.load: the file needs jitgrad.serialization.Net, which is not ...
>>> with jitgrad.serialization.safe_globals([Net]):
...     net = jitgrad.load(io.BytesIO(buf.getvalue()))
>>> net
Net(
  (fc): Linear(in_features=2, out_features=1, bias=True)
)
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np

from jitgrad.serialization._allow import (  # noqa: F401  (torch.serialization's names)
    add_safe_globals,
    clear_safe_globals,
    get_safe_globals,
    safe_globals,
)
from jitgrad.serialization._format import FORMATS, Decoder, Encoder

__all__ = ["save", "load", "add_safe_globals", "safe_globals", "get_safe_globals",
           "clear_safe_globals"]


def save(obj, f, **kwargs) -> None:
    """Write ``obj`` to ``f``, a path or a binary file object: tensors, NumPy arrays, dicts,
    lists, tuples, sets, numbers, strings, None, dtypes, devices, and instances of classes
    defined at a module's top level (Modules, optimizers, one's own), by name and state.
    Torch's extra keywords (``pickle_protocol``, ``_use_new_zipfile_serialization``) are
    accepted and have no effect."""
    enc = Encoder()
    structure = {"format": FORMATS[-1], "obj": enc.encode(obj)}
    arrays = dict(enc.arrays)
    arrays["__structure__"] = np.frombuffer(json.dumps(structure).encode(), dtype=np.uint8)
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            np.savez(fh, **arrays)
    else:
        np.savez(f, **arrays)


def load(f, map_location=None, weights_only=None, **kwargs):
    """Read what ``save`` wrote, or what ``torch.save`` wrote (see the module docstring).
    ``weights_only`` is True unless given as False, as in torch: then any class the file names
    is imported and rebuilt, so pass False only for a file you trust. ``map_location`` is
    accepted for torch's signature: tensors load on the CPU."""
    weights_only = weights_only is not False
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
                # (imported here: only a torch file needs its reader, not import jitgrad)
                from jitgrad.serialization._torch_zip import load_torch_zip
                return load_torch_zip(zf, weights_only)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError) as e:
        raise RuntimeError(f"jitgrad.load: not a file written by jitgrad.save or torch.save "
                           f"({e})") from e
    if "__structure__" not in arrays:
        raise RuntimeError("jitgrad.load: the archive has no jitgrad structure record")
    structure = json.loads(arrays.pop("__structure__").tobytes().decode())
    if structure.get("format") not in FORMATS:
        raise RuntimeError(f"jitgrad.load: unknown format {structure.get('format')!r}")
    return Decoder(arrays, weights_only).decode(structure["obj"])
