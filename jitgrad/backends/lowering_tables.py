"""The lowering tables, one per backend (``CPU``, ``CUDA``): the registry that the code
generators' modules register their rules in when imported. ``lowering`` names them too and reads
them (``coverage``); this module imports no backend, so the backends' modules register here
without reaching back to the module that imports them."""

from __future__ import annotations

from typing import Callable


class Lowerings:
    """One backend's rules: ``rules[prim](codegen, eqn)``, and the primitives it runs on the host
    on purpose (``host[prim]``: the reason)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.rules: dict = {}
        self.host: dict = {}
        self.builtins: dict = {}
        self.templates: dict = {}

    def register(self, *prims) -> Callable:
        """A decorator registering ``fn`` as the lowering of each of ``prims``."""
        def deco(fn: Callable) -> Callable:
            for p in prims:
                if p in self.rules:
                    raise ValueError(f"{self.backend}: {p.name} already has a lowering")
                self.rules[p] = fn
            return fn
        return deco

    def builtin(self, prim, how: str) -> None:
        """Declare that this backend's code generator handles ``prim`` itself, and how."""
        self.builtins[prim] = how

    def template(self, prim, text: str) -> None:
        """This backend's scalar template for ``prim``, where the registry's (``Primitive.expr``)
        does not compile for it."""
        self.templates[prim] = text

    def on_host(self, prim, reason: str) -> None:
        """Declare that ``prim`` runs on the host on this backend, and why."""
        self.host[prim] = reason


CPU = Lowerings("numba-cpu")
CUDA = Lowerings("numba-cuda")
TABLES = {t.backend: t for t in (CPU, CUDA)}
