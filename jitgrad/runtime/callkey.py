"""What makes two calls take the same trace, declared once.

A call's key is a ``CallKey``: an ``Arg`` for each argument (a plain call: tensors, NumPy
arrays and scalars, Python numbers) or for each flattened leaf (any call, with its pytree
structures), the same for the tensors the function reads from closures and globals, and the
Python values its trace baked in (``extra``). One record gives all three things a key is
used for, so they cannot drift apart:

- the key itself: ``Runtime.cache`` (roots of trace trees) and ``Runtime.fast`` (a plain
  call's ``CallSite``) are keyed by ``CallKey``s, a tuple of its fields, and a plain call
  looks its site up with those fields in a plain tuple (``plain_args``, ``plain_key``);
- the test that a call matches a key (``matches``);
- the lines with which a generated steady-state function checks its own call (``checks``):
  each ``Kind`` declares the test and the input binding of its arguments as text.

>>> import jitgrad
>>> key = CallKey.plain((jitgrad.ones(2), 3), dynamic=(), implicit=[], extra=())
>>> [a.kind.name for a in key.args], key.args[0].shape
(['tensor', 'static'], (2,))
>>> key.matches((jitgrad.zeros(2), 3), (), [], ()), key.matches((jitgrad.ones(2), 4), (), [], ())
(True, False)
>>> CallKey.plain((jitgrad.ones(2), "x"), (), [], ()) is None   # not a plain call
True
>>> raw = plain_key(plain_args((jitgrad.ones(2), 3), ()), [], ())   # as each call makes it
>>> raw == key and hash(raw) == hash(key) and type(raw) is tuple
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from jitgrad.nn.parameter import Parameter
from jitgrad.tensor import Tensor


@dataclass(frozen=True, eq=False)
class Kind:
    """How one kind of plain argument enters a call, as generated code: ``test`` is true when
    the argument ``{a}`` is not of this kind or not this key's (``{T}``: its type, ``{K}``: its
    static value); ``bind`` is the input array it becomes (``{N}``: the input's NumPy scalar
    type), None for a static argument, which is part of the trace; ``sized``: the input's
    shape and dtype are checked too. (Compared by identity: a key hashes it as an id.)"""

    name: str
    test: str
    bind: str | None
    sized: bool


TENSOR = Kind("tensor", "type({a}) is not Tensor and type({a}) is not Parameter", "{a}._value",
              True)
ARRAY = Kind("array", "type({a}) is not ndarray", "{a}", True)
NUMPY_SCALAR = Kind("NumPy scalar", "type({a}) is not {T}", "asarray({a})", False)
NUMBER = Kind("number", "type({a}) is not {T}", "{N}({a})", False)  # a differentiated one
STATIC = Kind("static", "type({a}) is not {T} or {a} != {K}", None, False)

# Argument types a plain call may have besides tensors. A NumPy bool is a static value, as
# ``pytree.flatten`` makes it; other NumPy scalar types take the general path.
_NUMBERS = frozenset((float, int, bool))
_TEMPLATE_NAMES = {"Tensor": Tensor, "Parameter": Parameter, "ndarray": np.ndarray,
                   "asarray": np.asarray}  # what the kinds' tests and bindings name
_NUMPY_SCALARS = frozenset((np.float64, np.float32, np.int64))


class Arg(NamedTuple):
    """One argument or leaf as the key sees it. On the path of every call that misses the
    steady state, ``plain_args`` writes these fields as a plain tuple (a NamedTuple takes
    twice as long to make), which equals and hashes as the ``Arg`` of the same fields does:
    ``CallKey.of`` gives the records where they are read."""

    kind: Kind
    type: type | None     # the Python type of a number or NumPy scalar (tensors: None)
    shape: tuple | None   # tensors and arrays
    dtype: object         # tensors and arrays: their np.dtype
    value: object         # a static argument's value

    @staticmethod
    def tensor(x) -> Arg:
        """A tensor's (or a flattened leaf's): its shape and dtype."""
        v = x._value
        return Arg(TENSOR, None, v.shape, v.dtype, None)

    def sig(self) -> str:
        """``f32[2,3]``, as the IR prints a tensor's type; a number's type name."""
        if self.shape is None:
            return self.type.__name__
        from jitgrad.dtypes import _BY_NP
        from jitgrad.ir.graph import SHORT
        return f"{SHORT[_BY_NP[self.dtype]]}[{','.join(map(str, self.shape))}]"


def plain_args(args: tuple, dynamic) -> tuple | None:
    """The ``Arg`` fields of each argument of a plain call (see ``Arg``), or None where one is
    of another type (the call is flattened then). This is what the key reads of an argument;
    ``Kind.test`` says the same in generated code."""
    parts = []
    for i, a in enumerate(args):
        t = type(a)
        if t is Tensor or t is Parameter:
            v = a._value
            parts.append((TENSOR, None, v.shape, v.dtype, None))
        elif t is np.ndarray:
            parts.append((ARRAY, None, a.shape, a.dtype, None))
        elif t in _NUMBERS:
            # a differentiated bool stays static, as pytree.flatten has it
            parts.append((NUMBER, t, None, None, None) if t is not bool and i in dynamic else
                         (STATIC, t, None, None, a))
        elif t in _NUMPY_SCALARS:
            parts.append((NUMPY_SCALAR, t, None, None, None))
        elif t is np.bool_:
            parts.append((STATIC, t, None, None, a))
        else:
            return None
    return tuple(parts)


def plain_key(parts: tuple, implicit: list, extra) -> tuple:
    """A plain call's key from its arguments' ``plain_args`` and its implicit state, as the
    plain tuple of ``CallKey``'s fields (``CallKey.of`` reads it)."""
    its = tuple([(TENSOR, None, x._value.shape, x._value.dtype, None) for x in implicit]) \
        if implicit else ()
    return parts, its, extra, None, None


def _checked_input(k: int, expr: str, arg: Arg, ns: dict) -> list[str]:
    """Lines binding input ``v{k}`` to the array ``expr`` and returning ``MISS`` unless it has
    ``arg``'s shape and dtype."""
    ns[f"S{k}"], ns[f"D{k}"] = arg.shape, arg.dtype
    return [f"v{k} = {expr}", f"if v{k}.shape != S{k} or v{k}.dtype is not D{k}:",
            "    return MISS"]


class CallKey(NamedTuple):
    """A call's key (see the module's docstring). ``plain`` makes a plain call's from its
    arguments, ``flat`` any call's from its flattened leaves and pytree structures; ``of``
    reads the plain tuple that the per-call path makes (``plain_key``)."""

    args: tuple      # an Arg per argument (plain) or per flattened leaf
    implicit: tuple  # an Arg per tensor read from closures, globals and Modules' buffers
    extra: object    # the Python values the trace baked in (``Implicit.state``)
    trees: tuple | None = None    # the arguments' pytree structures and static values (flat)
    aliases: tuple | None = None  # which implicit tensors are a Module argument's parameters

    @staticmethod
    def of(key: tuple) -> CallKey:
        """The record of a key made as a plain tuple (equal to it, and of equal hash)."""
        args, implicit, extra, trees, aliases = key
        return CallKey(tuple([Arg(*a) for a in args]), tuple([Arg(*a) for a in implicit]),
                       extra, trees, aliases)

    @staticmethod
    def plain(args: tuple, dynamic, implicit: list, extra) -> CallKey | None:
        """The key of a call whose arguments are all tensors, NumPy arrays, NumPy scalars or
        Python numbers (``dynamic``: the positions of numbers that are differentiated, and so
        inputs, not part of the trace); None for any other call."""
        parts = plain_args(args, dynamic)
        return None if parts is None else CallKey.of(plain_key(parts, implicit, extra))

    @staticmethod
    def flat(trees: tuple, leaves: list, implicit: list, extra, aliases) -> CallKey:
        """The key of any call: its arguments' pytree structures (with static values) and
        each leaf's shape and dtype."""
        return CallKey(tuple([Arg.tensor(x) for x in leaves]),
                       tuple([Arg.tensor(x) for x in implicit]), extra, trees, aliases)

    @property
    def args_are_leaves(self) -> bool:
        """Whether a plain call's arguments are its flattened leaves, as they are (tensors)."""
        return all(a.kind is TENSOR for a in self.args)

    def matches(self, args: tuple, dynamic, implicit: list, extra) -> bool:
        """Whether a plain call with these arguments and implicit state has this key: what the
        lines of ``checks`` test in generated code."""
        parts = plain_args(args, dynamic)
        return parts is not None and plain_key(parts, implicit, extra) == self

    def checks(self, leaves: list, ns: dict, implicit: bool) -> list[str]:
        """Lines of a generated function ``f(args)`` that return ``MISS`` unless its call has
        this (plain) key, binding the inputs to ``v0, v1, ...`` in the order of the trace's
        inputs: the arguments' leaves (``leaves``, the first call's: a differentiated number
        becomes a 0-d input of its leaf's dtype), then the implicit tensors. ``implicit``: the
        implicit state may change (``Implicit.fixed`` is false), so it is read and checked.
        The lines' names go in ``ns``: the values they compare against and what the kinds'
        templates name; ``MISS`` and ``implicit`` (``Implicit.state``) are the caller's."""
        ns.update(_TEMPLATE_NAMES)
        n = len(self.args)
        lines = [f"if len(args) != {n}:", "    return MISS"]
        if implicit:
            ns["EXTRA"] = self.extra
            lines += ["its, iex = implicit()",
                      f"if len(its) != {len(self.implicit)} or "
                      "(iex is not EXTRA and iex != EXTRA):", "    return MISS"]
            for m, arg in enumerate(self.implicit):
                lines += _checked_input(len(leaves) + m, f"its[{m}]._value", arg, ns)
        if n:  # (a function of no arguments unpacks nothing)
            lines.append(f"{', '.join(f'a{i}' for i in range(n))}{',' if n == 1 else ''} = args")
        j = 0  # the next input
        for i, arg in enumerate(self.args):
            kind, a = arg.kind, f"a{i}"
            ns[f"T{i}"], ns[f"K{i}"] = arg.type, arg.value
            lines += [f"if {kind.test.format(a=a, T=f'T{i}', K=f'K{i}')}:", "    return MISS"]
            if kind.bind is None:
                continue
            ns[f"N{j}"] = leaves[j]._value.dtype.type
            bind = kind.bind.format(a=a, N=f"N{j}")
            lines += _checked_input(j, bind, arg, ns) if kind.sized else [f"v{j} = {bind}"]
            j += 1
        return lines

    def describe_change(self, old: CallKey | None) -> str:
        """Why a call with this (flat) key missed the cache, whose last call had ``old``."""
        if old is None:
            return "first call"
        if old.trees != self.trees:
            return "the argument structure or a static argument changed"
        for i, (a, b) in enumerate(zip(old.args, self.args)):
            if a != b:
                return f"input {i} was {a.sig()}, now {b.sig()}"
        if len(old.args) != len(self.args):
            return "the number of inputs changed"
        for i, (a, b) in enumerate(zip(old.implicit, self.implicit)):
            if a != b:
                return f"closure tensor {i} was {a.sig()}, now {b.sig()}"
        return "a closure tensor was added or removed"


def refs_checks(refs: list, first: int, ns: dict) -> list[str]:
    """Lines that bind inputs ``v{first}, ...`` to the outside tensors a trace read by
    reference (re-read at every call), returning ``MISS`` unless each still has the shape and
    dtype it had when traced: not part of the call key (the trace node holds them), checked
    as its inputs are."""
    lines = []
    for r, t in enumerate(refs):
        k = first + r
        ns[f"R{k}"] = t
        lines += _checked_input(k, f"R{k}._value", Arg.tensor(t), ns)
    return lines
