"""The reference backend: the NumPy interpreter behind the backend interface."""

from __future__ import annotations

from jitgrad.backends.base import Backend, Executable
from jitgrad.ir.graph import Graph
from jitgrad.ir.interpret import interpret


class ReferenceExecutable(Executable):
    __slots__ = ("graph", "note")

    def __init__(self, graph: Graph, note: str | None = None) -> None:
        self.graph = graph
        self.note = note  # why a compiling backend handed this trace to the interpreter

    def __call__(self, args: list) -> list:
        return interpret(self.graph, args)

    @property
    def kernels(self) -> list:
        return []

    def text(self) -> str:
        why = f" ({self.note})" if self.note else ""
        return (f"# reference backend{why}: no generated kernels; the NumPy interpreter runs "
                "the optimized IR\n" + str(self.graph))


class ReferenceBackend(Backend):
    name = "reference"

    def compile(self, graph: Graph) -> ReferenceExecutable:
        return ReferenceExecutable(graph)
