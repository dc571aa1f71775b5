"""jitgrad's own disk cache for generated kernels.

Numba cannot cache functions made with ``exec`` (numba#3501), so each kernel's source is written
to a file under ``JITGRAD_CACHE_DIR`` (default: the user's cache folder), named by a hash of the
source, the helpers it inlines and the jitgrad/Numba/NumPy versions, and imported from there, so
Numba's own ``cache=True`` works. Writes are atomic (a temporary file, then ``os.replace``), so
two processes can share the folder; an entry whose text differs from what it should hold is
rewritten, and a Numba cache entry that fails to load is deleted and compiled again. Numba's
files for a kernel load only when they match the digests recorded beside the kernel when they
were written (a file swapped in from another kernel would otherwise run the other kernel's code).

A cache can never break a run: when the folder cannot be made or written (read-only, below a
file, a file itself, a full disk), jitgrad warns once, says why, and compiles in memory.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import types
import warnings

import numpy as np

from jitgrad._version import __version__


class CacheWarning(UserWarning):
    """The disk cache cannot be used: kernels are compiled in memory."""


_state: dict[str, str | None] = {}  # the configured folder -> itself if usable, else None


def configured_dir() -> str:
    d = os.environ.get("JITGRAD_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "jitgrad")
    return d


def cache_dir() -> str | None:
    """The cache folder, made if need be, or None when it cannot be used (checked once per
    process and folder, by writing a file there)."""
    d = configured_dir()
    if d in _state:
        return _state[d]
    try:
        if os.path.exists(d) and not os.path.isdir(d):
            raise NotADirectoryError(f"{d!r} is a file, not a folder")
        os.makedirs(d, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=d, prefix=".probe-")
        try:
            os.write(fd, b"jitgrad")
        finally:
            os.close(fd)
            os.remove(probe)
    except OSError as e:
        disable(f"{d!r} cannot be used ({_reason(e)})")
        return None
    _state[d] = d
    return d


def disable(why: str) -> None:
    """Stop using the disk cache in this process, saying why once."""
    d = configured_dir()
    if _state.get(d, d) is not None:
        warnings.warn(f"jitgrad: not caching compiled kernels on disk: the cache folder {why}; "
                      "kernels are compiled in memory (set JITGRAD_CACHE_DIR to a writable "
                      "folder to cache them)", CacheWarning, stacklevel=3)
    _state[d] = None


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


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
    return digest(__version__, _numba_version(), np.__version__, _helpers(), source)


@functools.lru_cache(maxsize=None)
def _numba_version() -> str:
    """Numba's version, read from its installed metadata: without importing Numba (half a
    second), which a kernel built ahead of time never needs and the rule of when to compile
    must not pay to look at the disk cache."""
    from importlib import metadata
    try:
        return metadata.version("numba")
    except metadata.PackageNotFoundError:  # (not installed as a distribution)
        import numba
        return numba.__version__


def source_path(source: str) -> tuple[str | None, str]:
    """Write ``source`` (if the cache does not hold exactly it) and return (path, key); the
    path is None when there is no usable cache (``load`` then compiles in memory)."""
    k = key(source)
    d = cache_dir()
    if d is None:
        return None, k
    path = os.path.join(d, f"jg_{k}.py")
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == source:
                return path, k
    except (OSError, UnicodeDecodeError):
        pass
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(source)
        os.replace(tmp, path)
    except OSError as e:  # a full disk, or the folder went away
        if tmp is not None:
            _remove(tmp)
        disable(f"{d!r} cannot be written ({_reason(e)})")
        return None, k
    purge_numba_cache(path)  # whatever Numba cached for an older text of this file is stale
    return path, k


def load(path: str | None, k: str, source: str | None = None, verify: bool = True):
    """The kernel module of ``path`` (Numba's cached files for it checked first, ``verify``),
    or, when ``path`` is None, of ``source`` compiled in memory (no Numba cache)."""
    name = f"jitgrad_kernel_{k}"
    mod = sys.modules.get(name)
    if mod is not None and getattr(mod, "__file__", None) == path:
        return mod
    if path is None:
        mod = types.ModuleType(name)
        mod.__file__ = None
        code = compile(source, f"<jitgrad kernel {k}>", "exec")
        exec(code, mod.__dict__)  # noqa: S102  (generated kernel source)
        sys.modules[name] = mod
        return mod
    if verify:
        check_numba_cache(path)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules[name] = mod
    return mod


def _numba_files(path: str) -> list[str]:
    stem = os.path.splitext(os.path.basename(path))[0]
    return sorted(glob.glob(os.path.join(os.path.dirname(path), "__pycache__", f"{stem}.*")))


def _file_digest(f: str) -> str:
    with open(f, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def check_numba_cache(path: str) -> None:
    """Delete Numba's cached files for ``path`` unless each matches the digest recorded when it
    was written (``record_numba_cache``)."""
    files = _numba_files(path)
    if not files:
        return
    try:
        with open(path + ".numba.json", encoding="utf-8") as f:
            want = json.load(f)
        ok = isinstance(want, dict) and all(
            want.get(os.path.basename(f)) == _file_digest(f) for f in files)
    except (OSError, ValueError):
        ok = False
    if not ok:
        purge_numba_cache(path)


def record_numba_cache(path: str | None) -> None:
    """Record the digests of the files Numba just cached for ``path``."""
    if path is None:
        return
    tmp = None
    try:
        sums = {os.path.basename(f): _file_digest(f) for f in _numba_files(path)}
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(sums, f)
        os.replace(tmp, path + ".numba.json")
    except OSError:  # unrecorded files are deleted and compiled again next time: only slower
        if tmp is not None:
            _remove(tmp)


def purge_numba_cache(path: str) -> None:
    for f in _numba_files(path) + [path + ".numba.json"]:
        _remove(f)


def _remove(f: str) -> None:
    try:
        os.remove(f)
    except OSError:
        pass
