"""The IR's core: ``Aval``, ``Primitive`` (with its ``Reduction`` codegen spec) and the table
``PRIMITIVES`` that ``register`` fills. Nothing here knows about tensors or the eager engine:
``jitgrad.ops.registry`` adds ``bind`` (eager execution and tracing) on top, and the op modules
declare the primitives (see its docstring for the fields).

>>> from jitgrad.ir.primitive import PRIMITIVES
>>> PRIMITIVES["add"].kind
'elementwise'
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from jitgrad import dtypes


class Aval(NamedTuple):
    """An abstract value: what the IR knows about a value before it exists."""

    shape: tuple
    dtype: dtypes.DType


class Reduction(NamedTuple):
    """How a loop fuses a reduction: each element, through ``map`` (``{0}``: the element),
    is folded into an accumulator by ``combine`` (``"add"``, ``"mul"``, ``"max"`` or ``"min"``,
    the last two NaN-propagating); ``finish`` makes the result of the accumulator (``{0}``)
    and the number of elements reduced into it (``{n}``), calling functions of the module
    ``{m}`` (``math`` on one accumulator, ``np`` on an array of them). Accumulators are float64 for
    floating dtypes and int64 otherwise. ``atomic``: the ``cuda.atomic`` function that
    combines partial results across blocks (None: there is none, as for products)."""

    combine: str
    map: str = "{0}"
    finish: str = "{0}"
    atomic: str | None = "add"

    def identity(self, floating: bool) -> str:
        """The accumulator's starting value, as code."""
        if self.combine in ("add", "mul"):
            return "0" if self.combine == "add" else "1"
        sign = "-" if self.combine == "max" else ""
        return f"{sign}np.inf" if floating else (
            "np.iinfo(np.int64).min" if sign else "np.iinfo(np.int64).max")

    def of_one(self, x: str) -> str:
        """The reduction of the single value ``x`` (a reduction of a 0-d operand)."""
        return self.finish.format(self.map.format(x), n=1, m="math")

    def binary(self, a: str, b: str) -> str:
        """An expression combining two partial results (NaN-propagating max2/min2)."""
        if self.combine in ("add", "mul"):
            return f"{a} {'+' if self.combine == 'add' else '*'} {b}"
        return f"{self.combine}2({a}, {b})"


class Primitive:
    """A registered operation. See the module docstring for the fields."""

    __slots__ = ("name", "impl", "abstract", "vjp", "saves", "kind", "expr", "vector", "view",
                 "backward_name", "nondiff_inputs", "reads", "reduction", "layout")

    def __init__(self, name: str, impl: Callable, abstract: Callable, vjp: Callable | None,
                 *, saves: str, kind: str, expr: str | None, view: bool,
                 backward_name: str | Callable, nondiff_inputs: tuple, reads: Callable | None,
                 vector: dict | None = None, reduction: Reduction | None = None,
                 layout: Callable | None = None) -> None:
        self.name = name
        self.impl = impl
        self.abstract = abstract
        self.vjp = vjp
        # Which tensors the vjp reads: "inputs", "output", "both" or "none". Only those are
        # checked against in-place modification, exactly as torch checks only saved tensors.
        self.saves = saves
        self.kind = kind
        self.expr = expr
        self.view = view
        # The eager backward node's class name (``grad_fn``), or a function of the params that
        # gives it (indexing: SelectBackward0, SliceBackward0... as torch names them).
        self.backward_name = backward_name
        self.nondiff_inputs = nondiff_inputs
        # With saves="inputs": which inputs' values the vjp reads, given which inputs need a
        # gradient (None: all of them). Only those are checked for in-place modification, as
        # torch saves ``other`` of ``x * other`` only when ``x`` needs a gradient.
        self.reads = reads
        # Loop bodies over many elements use these templates instead of ``expr``: keyed by
        # "float64"/"float32", for vectorizable versions of libm's scalar calls.
        self.vector = vector or {}
        self.reduction = reduction
        # ``layout(out, inputs, params) -> out``: the eager result copied into the strides torch
        # gives it, where NumPy's differ, so that ``view`` raises exactly where torch's does
        # (``jitgrad.ops._layout``). None: the result is a view, or its layout is moot.
        self.layout = layout

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


PRIMITIVES: dict[str, Primitive] = {}


def register(name: str, impl: Callable, abstract: Callable, vjp: Callable | None = None, *,
             saves: str = "inputs", kind: str = "elementwise", expr: str | None = None,
             view: bool = False, backward_name: str | Callable | None = None,
             nondiff_inputs: tuple = (), reads: Callable | None = None,
             vector: dict | None = None, reduction: Reduction | None = None,
             layout: Callable | None = None) -> Primitive:
    """Declare a primitive. Registering a name twice is a bug, not an override."""
    if name in PRIMITIVES:
        raise ValueError(f"primitive {name!r} is already registered")
    if saves not in ("inputs", "output", "both", "none"):
        raise ValueError(f"saves must be inputs/output/both/none, got {saves!r}")
    if backward_name is None:
        backward_name = "".join(p.capitalize() for p in name.split("_")) + "Backward0"
    p = Primitive(name, impl, abstract, vjp, saves=saves, kind=kind, expr=expr, view=view,
                  backward_name=backward_name, nondiff_inputs=nondiff_inputs, reads=reads,
                  vector=vector, reduction=reduction, layout=layout)
    PRIMITIVES[name] = p
    return p


class TupleAval(NamedTuple):
    """The abstract value of a structured-control-flow result (``while``): a tuple of values,
    read by ``tuple_get``. It has no shape or dtype of its own."""

    avals: tuple
    shape: tuple = ()
    dtype: object = None
