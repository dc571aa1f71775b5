"""The reference backend: the NumPy interpreter behind the backend interface."""

from __future__ import annotations

from jitgrad.ir.graph import Graph
from jitgrad.ir.interpret import interpret


class ReferenceExecutable:
    __slots__ = ("graph",)

    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    def __call__(self, args: list) -> list:
        return interpret(self.graph, args)

    @property
    def kernels(self) -> list:
        return []

    def text(self) -> str:
        return ("# reference backend: no generated kernels; the NumPy interpreter runs the "
                "optimized IR\n" + str(self.graph))


class ReferenceBackend:
    name = "reference"

    def compile(self, graph: Graph) -> ReferenceExecutable:
        return ReferenceExecutable(graph)
