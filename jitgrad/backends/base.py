"""The contract between the runtime and a backend: every field the runtime reads, declared once
with its default, so that a new backend learns what it may provide from here and the runtime
never probes an object for what it happens to have, nor asks a backend its name.

A backend compiles an optimized IR graph into an ``Executable``: called with the list of the
graph's input arrays, it returns the list of its output arrays, or raises ``GuardFailure`` for
the first guard that does not hold.

>>> from jitgrad.backends import get_backend
>>> from jitgrad.backends.base import Backend, Executable
>>> b = get_backend("reference")
>>> isinstance(b, Backend), b.defers_compile, b.on_device
(True, False, False)
>>> import jitgrad
>>> exe = b.compile(jitgrad.jit(lambda x: x + 1).lower(jitgrad.ones(2))._node.optimized)
>>> isinstance(exe, Executable), exe.steady, exe.new_outputs
(True, None, ())
"""

from __future__ import annotations


class Executable:
    """What ``Backend.compile`` returns. Subclasses override the fields they provide."""

    # Makes the whole steady-state call as one generated function (``steady(prologue,
    # finish, ns)``, see ``NumbaExecutable.steady``), or None: the general call path runs.
    steady = None
    # Positions of outputs made afresh on every call: never a view of an input or of another
    # output, so the runtime copies none of them.
    new_outputs: frozenset | tuple = ()
    # Every output is a writable, C-contiguous array of its own: the runtime skips the check
    # of each result's flags.
    dense_outputs: bool = False
    # Intermediates live in buffers the next call reuses: results that view one are copied.
    pools_intermediates: bool = False
    # (primitive, source, why) of the equations it runs on the host (cache_info's fallbacks).
    host_ops: tuple = ()
    # Why a compiling backend handed the trace to the interpreter, if it did.
    note: str | None = None
    # Generated sources (``lower().kernels``).
    kernels: tuple | list = ()

    def __call__(self, args: list) -> list:  # pragma: no cover - every executable has one
        raise NotImplementedError

    def text(self) -> str:
        """The "kernel" stage of ``lower()``."""
        return "\n".join(self.kernels)


class Backend:
    """A compiler from optimized IR graphs to ``Executable``s. Subclasses set ``name``."""

    name: str = ""
    # Results stay on a device (``DeviceArray``s): arguments may be device arrays, and eager
    # fallbacks move their results there too.
    on_device: bool = False
    # A new trace runs on the interpreter first and compiles once its calls repay the compile
    # (``runtime/nodes.py``'s ``_Deferred``); the methods below serve that.
    defers_compile: bool = False

    def compile(self, graph) -> Executable:  # pragma: no cover - every backend has one
        raise NotImplementedError

    def compile_cost(self, graph) -> float:
        """Predicted seconds to compile ``graph`` now (0: it is built already), for the rule
        of when to compile."""
        return 0.0

    def start_build(self, graph):
        """Start compiling ``graph`` off the caller's path; a handle with ``done()``, or None
        when it cannot (the caller then compiles in place)."""
        return None

    def build_later(self, graph) -> None:
        """Note that ``graph`` serves more than one call, for a later process to build."""
