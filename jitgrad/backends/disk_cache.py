"""jitgrad's own disk cache for generated kernels.

Numba cannot cache functions made with ``exec`` (numba#3501), so each kernel's source is written
to a file under ``JITGRAD_CACHE_DIR`` (default: the user's cache folder), named by a hash of the
source, the helpers it inlines and the jitgrad/Numba/NumPy versions, and imported from there, so
Numba's own ``cache=True`` works. Writes are atomic (a temporary file, then ``os.replace``), so
two processes can share the folder; an entry whose text differs from what it should hold is
rewritten, and a Numba cache entry that fails to load is deleted and compiled again.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import sys
import tempfile

import numpy as np

import jitgrad


def cache_dir() -> str:
    d = os.environ.get("JITGRAD_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "jitgrad")
    os.makedirs(d, exist_ok=True)
    return d


# Kernels inline these modules' functions, and Numba's cache checks only the kernel's own file:
# their text is part of the key, so an edited helper never meets a kernel compiled with the old.
_HELPERS = ("_numba_helpers.py", "_vecmath.py", "_vecmath32.py", "_cuda_runtime.py")
_helpers_digest: str | None = None


def _helpers() -> str:
    global _helpers_digest
    if _helpers_digest is None:
        h = hashlib.sha256()
        for name in _HELPERS:
            with open(os.path.join(os.path.dirname(__file__), name), "rb") as f:
                h.update(f.read())
        _helpers_digest = h.hexdigest()
    return _helpers_digest


def digest(*parts: str) -> str:
    """A cache key: the hash of ``parts`` (a kernel's source and what its code depends on)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def key(source: str) -> str:
    import numba  # here, not at import: a kernel compiled ahead of time loads without Numba
    return digest(jitgrad.__version__, numba.__version__, np.__version__, _helpers(), source)


def source_path(source: str) -> tuple[str, str]:
    """Write ``source`` (if the cache does not hold exactly it) and return (path, key)."""
    k = key(source)
    path = os.path.join(cache_dir(), f"jg_{k}.py")
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == source:
                return path, k
    except (OSError, UnicodeDecodeError):
        pass
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(source)
    os.replace(tmp, path)
    purge_numba_cache(path)  # whatever Numba cached for an older text of this file is stale
    return path, k


def load(path: str, k: str):
    name = f"jitgrad_kernel_{k}"
    mod = sys.modules.get(name)
    if mod is not None and getattr(mod, "__file__", None) == path:
        return mod
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[name] = mod
    return mod


def purge_numba_cache(path: str) -> None:
    stem = os.path.splitext(os.path.basename(path))[0]
    for f in glob.glob(os.path.join(os.path.dirname(path), "__pycache__", f"{stem}.*")):
        try:
            os.remove(f)
        except OSError:
            pass
