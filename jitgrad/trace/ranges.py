"""``for _ in range(int(n.item()))`` as a loop the trace can lift.

A ``for`` over a range whose length is read from a tensor unrolls in the trace like any Python
loop, and asks for the tensor's value once (a guard on it, so every new length re-traced).
While a function is traced, the ``range`` its module's code calls is this module's
``TracingRange``: when the call is exactly ``range(int(X.item()))``, ``range(int(X))``,
``range(X.item())`` or ``range(X)`` with ``X`` a local tensor of the trace, read straight from
the bytecode at the call, and the loop variable is read in the loop only (or not at all), it
hands out the same numbers but tells the builder at every header (each ``__next__``): the
builder then guards
``counter < N`` there, with ``N = int(X)`` taken in the trace, instead of guarding ``X``'s value.
Those guards are a ``while`` loop's headers, which ``loops/lift.py`` lifts (one compile
for every length); where it does not, they still hold exactly when the length is the same.

A ``for`` over ``range(N)`` with ``N`` a Python int (a constant or a local) is taken too when its
body can ``break`` (a jump from the body past the loop): ``for _ in range(200): ...; if done:
break``. Its headers guard ``counter < N`` with ``N`` a literal, so that the ``if`` on data is a
loop header of its own, which lifting rolls into one ``while`` for every iteration count at
which it breaks; a call that runs all ``N`` iterations fails the header's guard in that loop and
re-traces once. The Python state the lifting compares leaves the loop variable out at every
guard of the loop: a body that reads it gets the counter of the trace as a traced number
(``trace/numbers.py``: ``0.9 ** i`` and ``x[i]`` are computed by the lifted loop from its
counter; ``if i < 2:`` or a list's ``xs[i]`` read its value through a guard).

Anything else (another expression, a keyword, a loop variable read after the loop or by a
closure, ``range`` rebound in the module, a static range without a ``break``) gets Python's
own ``range``.

>>> import jitgrad
>>> def f(x, n):
...     for _ in range(int(n.item())):
...         x = x * 2
...     return x.sum()
>>> g = jitgrad.grad(f, target="reference")
>>> [g(jitgrad.ones(2), jitgrad.tensor(k)).tolist() for k in (2, 3, 5)]
[[4.0, 4.0], [8.0, 8.0], [32.0, 32.0]]
>>> g.cache_info().loops
('...:2: lifted (2 iterations traced; one kernel for any count)',)
"""

from __future__ import annotations

import builtins
import dis
import sys

from jitgrad.ops import registry
from jitgrad.trace.liveness import live_at
from jitgrad.trace.numbers import number

_range = builtins.range
_CALLS = ("CALL", "CALL_FUNCTION", "CALL_METHOD")
_SKIP = ("PRECALL", "CACHE", "PUSH_NULL", "NOP", "EXTENDED_ARG")
# Names through which code can read its locals without naming them.
_INTROSPECTION = frozenset({"locals", "vars", "eval", "exec", "_getframe", "currentframe"})


class _RangeType(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, _range)


class TracingRange(metaclass=_RangeType):
    """``range`` for the module of a function being traced (see the module docstring)."""

    def __new__(cls, *args):
        if len(args) == 1:
            b = registry.trace_state.builder
            if b is not None and b.concrete:
                frame = sys._getframe(1)
                match = _match(frame.f_code, frame.f_lasti)
                if match is not None:
                    loop = b.range_loop(frame, match, args[0])
                    if loop is not None:
                        return loop
        return _range(*args)


_MATCHES: dict = {}


def _match(code, lasti: int):
    """``(tensor name, kind, loop variable, breaks, reads)`` when the call at ``lasti`` is
    one of the patterns and starts a ``for`` whose variable nothing reads after the loop,
    else None."""
    key = (code, lasti)
    if key not in _MATCHES:
        _MATCHES[key] = _find(code, lasti)
    return _MATCHES[key]


def _norm(ins) -> tuple:
    op = ins.opname
    if op in _CALLS:
        return ("call", ins.arg)
    if op == "LOAD_GLOBAL":
        return ("global", ins.argval)
    if op == "LOAD_FAST":
        return ("fast", ins.argval)
    if op in ("LOAD_METHOD", "LOAD_ATTR"):
        return ("attr", ins.argval)
    return (op, ins.argval)


_PATTERNS = {
    "int_item": [("global", "range"), ("global", "int"), ("fast", None), ("attr", "item"),
                 ("call", 0), ("call", 1), ("call", 1)],
    "int": [("global", "range"), ("global", "int"), ("fast", None), ("call", 1), ("call", 1)],
    "item": [("global", "range"), ("fast", None), ("attr", "item"), ("call", 0), ("call", 1)],
    "tensor": [("global", "range"), ("fast", None), ("call", 1)],
    "const": [("global", "range"), ("LOAD_CONST", None), ("call", 1)],
}


def _find(code, lasti: int):
    if _INTROSPECTION & set(code.co_names):
        return None
    ins = [i for i in dis.get_instructions(code) if i.opname not in _SKIP]
    at = next((k for k, i in enumerate(ins) if i.offset == lasti), None)
    if at is None or ins[at].opname not in _CALLS:
        return None
    after = ins[at + 1:at + 4]
    if len(after) < 3 or [a.opname for a in after[:2]] != ["GET_ITER", "FOR_ITER"] or \
            after[2].opname != "STORE_FAST":
        return None
    var = after[2].argval
    # Any instruction naming the variable but a plain store reads it, or might (the
    # superinstructions and borrowed loads of Python 3.12+ included). A read by a closure
    # (a cell) gets Python's own range; so does one after the loop (the variable would leave
    # the loop as a traced number, trace/numbers.py). Read in the loop only, it is one.
    if var in code.co_cellvars:
        return None
    reads = any(var in (i.argval if isinstance(i.argval, tuple) else (i.argval,)) and
                i.opname not in ("STORE_FAST", "STORE_FAST_STORE_FAST") and
                ("FAST" in i.opname or "DEREF" in i.opname or "CLOSURE" in i.opname)
                for i in ins)
    exits = _exits(ins, at + 2)
    if reads and (not exits or any(var in live_at(code, off) for off in exits)):
        return None
    for kind, pat in _PATTERNS.items():
        seq = [_norm(i) for i in ins[max(0, at + 1 - len(pat)):at + 1]]
        if len(seq) == len(pat) and all(p[0] == s[0] and (p[1] is None or p[1] == s[1])
                                        for p, s in zip(pat, seq)):
            name = seq[2][1] if kind.startswith("int") else seq[1][1]
            if kind in ("tensor", "const"):  # with a Python int: only a loop that can break
                return name, kind, var, len(exits) > 1, reads
            return name, kind, var, False, reads
    return None


def _exits(ins: list, for_iter: int) -> list:
    """Where the ``for`` whose ``FOR_ITER`` is ``ins[for_iter]`` is left: its end (the range
    done), then the target of each jump from its body past it (a ``break``)."""
    end = ins[for_iter].argval  # where the loop goes when the range is done
    offsets = [i.offset for i in ins]
    if end not in offsets:
        return []
    stop = offsets.index(end)
    return [end] + [i.argval for i in ins[for_iter + 1:stop]
                    if "JUMP" in i.opname and isinstance(i.argval, int) and i.argval >= end]


class LoopRange:
    """The numbers ``0..n-1``, telling the builder at each header of the ``for`` loop."""

    def __init__(self, builder, n: int, header, reads: bool) -> None:
        self.builder = builder
        self.n = n
        self.i = 0
        self.header = header  # header(i, last): the guard at this hit; returns the counter
        self.reads = reads

    def __iter__(self):
        return self

    def __next__(self):
        if registry.trace_state.builder is not self.builder:
            raise RuntimeError("a range made while tracing was iterated outside its trace")
        i = self.i
        counter = self.header(i, i >= self.n)
        if i >= self.n:
            raise StopIteration
        self.i = i + 1
        # A body that reads the variable gets the trace's counter, as a traced Python int
        return number(counter, int) if self.reads else i

    def __len__(self) -> int:
        return self.n


def _jitgrads(glb: dict) -> bool:
    """Whether ``glb`` is the namespace of one of jitgrad's own modules (not a copy, as a
    doctest's is)."""
    name = glb.get("__name__", "")
    mod = sys.modules.get(name) if name == "jitgrad" or name.startswith("jitgrad.") else None
    return mod is not None and getattr(mod, "__dict__", None) is glb


class inject:
    """Put ``TracingRange`` in the globals of the traced function's module while it is traced
    (nothing is changed where the module has a ``range`` of its own). A wrapper's
    (``functools.wraps``: ``jitgrad.func.grad(f)``) module is the wrapped function's: jitgrad's
    own modules keep Python's ``range``."""

    def __init__(self, fn) -> None:
        self.glbs: list[dict] = []
        seen: set[int] = set()
        while fn is not None and id(fn) not in seen:
            seen.add(id(fn))
            glb = getattr(fn, "__globals__", None)
            if glb is None:
                glb = getattr(getattr(type(fn), "forward", None), "__globals__", None)
            if glb is not None and not _jitgrads(glb) and all(g is not glb for g in self.glbs):
                self.glbs.append(glb)
            fn = getattr(fn, "__wrapped__", None)

    def __enter__(self):
        self.done = [g for g in self.glbs if "range" not in g]
        for g in self.done:
            g["range"] = TracingRange

    def __exit__(self, *exc) -> None:
        for g in self.done:
            if g.get("range") is TracingRange:
                del g["range"]
