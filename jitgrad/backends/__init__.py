"""Backends: each compiles an optimized IR graph into an executable.

An executable is called with a list of NumPy arrays (the graph's inputs, in order) and returns
the list of output arrays, or raises ``GuardFailure`` for the first guard that does not hold.
``kernels`` lists generated sources and ``text()`` is the "kernel" stage of ``lower()``.
"""

from __future__ import annotations

from jitgrad.backends.reference import ReferenceBackend

_BACKENDS: dict[str, object] = {"reference": ReferenceBackend()}


def _numba_cpu():
    from jitgrad.backends.numba_cpu import NumbaCPUBackend
    return NumbaCPUBackend()


def get_backend(target: str):
    """The backend for ``target``: "cpu" (the default), "reference", or "cuda"."""
    if target == "cpu":
        target = _cpu_default()
    b = _BACKENDS.get(target)
    if b is not None:
        return b
    if target == "numba-cpu":
        b = _BACKENDS[target] = _numba_cpu()
        return b
    if target == "cuda":
        from jitgrad.backends.numba_cuda import NumbaCUDABackend, check_available
        check_available()
        b = _BACKENDS[target] = NumbaCUDABackend()
        return b
    raise ValueError(f"unknown target {target!r}: use 'cpu', 'cuda', 'numba-cpu' or 'reference'")


def _cpu_default() -> str:
    return "numba-cpu"
