"""The IR: a small, closed, immutable SSA.

- ``Var``: a value with an ``Aval`` (shape, dtype), identified by object identity; names are
  given only by the printer, so they are deterministic.
- ``Lit``: a Python scalar literal with a dtype (shape ``()``).
- ``Eqn``: one primitive applied to atoms (``Var`` or ``Lit``), with hashable params, binding one
  output ``Var`` (``None`` for effects such as guards) and the user's source line when known.
- ``Graph``: constants (``Var`` bound to arrays), inputs, equations, outputs.

>>> import jitgrad
>>> from jitgrad.ir import Var, Graph, Eqn
>>> from jitgrad.ops import PRIMITIVES, Aval
>>> a = Var(Aval((3,), jitgrad.float32))
>>> b = Var(Aval((3,), jitgrad.float32))
>>> g = Graph((), (a,), (Eqn(PRIMITIVES["sin"], (a,), b, {}, None),), (b,))
>>> print(g)
{ lambda ; a:f32[3]. let
    b:f32[3] = sin a
  in (b,) }
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jitgrad import dtypes
from jitgrad.ir.primitive import Aval, Primitive, TupleAval

SHORT = {dtypes.float32: "f32", dtypes.float64: "f64", dtypes.int64: "i64", dtypes.int32: "i32",
         dtypes.int16: "i16", dtypes.int8: "i8", dtypes.uint8: "u8", dtypes.bool_: "bool"}
FROM_SHORT = {v: k for k, v in SHORT.items()}


def aval_str(aval: Aval) -> str:
    if type(aval) is TupleAval:
        return "(" + ", ".join(aval_str(a) for a in aval.avals) + ")"
    return f"{SHORT[aval.dtype]}[{','.join(str(s) for s in aval.shape)}]"


class Var:
    """An SSA value. Compared by identity."""

    __slots__ = ("aval", "__weakref__")

    def __init__(self, aval: Aval) -> None:
        self.aval = aval

    def __repr__(self) -> str:
        return f"Var({aval_str(self.aval)})"


class Lit:
    """A scalar literal operand (``2.0:f32``)."""

    __slots__ = ("value", "aval")

    def __init__(self, value, dtype: dtypes.DType) -> None:
        self.value = dtype.np.type(value).item()
        self.aval = Aval((), dtype)

    def __repr__(self) -> str:
        return f"Lit({self.value!r}:{SHORT[self.aval.dtype]})"

    def key(self) -> tuple:
        v = self.value
        # -0.0 and 0.0 are different literals; NaN equals itself here.
        return ("lit", self.aval.dtype.name, repr(v))


class Source(NamedTuple):
    """Where an equation came from in the user's code."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file.rsplit('/', 1)[-1]}:{self.line}"


class Eqn:
    """``out = prim(*inputs, **params)``; ``out`` is None for effects (guards)."""

    __slots__ = ("prim", "inputs", "out", "params", "src")

    def __init__(self, prim: Primitive, inputs: tuple, out: Var | None, params: dict,
                 src: Source | None) -> None:
        self.prim = prim
        self.inputs = tuple(inputs)
        self.out = out
        self.params = params
        self.src = src

    def __repr__(self) -> str:
        return f"Eqn({self.prim.name})"


class Graph:
    """A whole traced program. Immutable by convention: passes build new graphs."""

    __slots__ = ("consts", "inputs", "eqns", "outputs", "_run", "__weakref__")

    def __init__(self, consts: tuple, inputs: tuple, eqns: tuple, outputs: tuple) -> None:
        self.consts = tuple(consts)      # ((Var, np.ndarray), ...)
        self.inputs = tuple(inputs)
        self.eqns = tuple(eqns)
        self.outputs = tuple(outputs)
        self._run = None  # the interpreter's function for this graph, made at its first run

    def __str__(self) -> str:
        from jitgrad.ir.printer import format_graph
        return format_graph(self)

    __repr__ = __str__

    @property
    def guards(self) -> list:
        """The guards, loop bodies' included."""
        return [e for e in self.walk() if e.out is None and e.prim.kind == "guard"]

    def walk(self):
        """Every equation, and those of the graphs nested in them (loop bodies), in order."""
        for e in self.eqns:
            yield e
            for v in e.params.values():
                if isinstance(v, Graph):
                    yield from v.walk()

    def fingerprint(self) -> str:
        """A stable hash of the printed graph and its constants (keys for caches)."""
        import hashlib
        h = hashlib.sha256(str(self).encode())
        for _, arr in self.consts:
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:32]
