"""The differential test bed: random programs over the op registry, run with random changes of
the world between calls, each compiled call checked against eager jitgrad (and PyTorch where it
is installed).

A program is Python source, generated from choices a ``pick(n)`` callable makes (hypothesis
draws them in ``test_fuzz.py``, so failures shrink; ``fuzz_long.py`` draws them from a seeded
``random.Random``). The same source runs on jitgrad and on torch (``T`` names the module), so
the PyTorch cross-check needs no translation. A program reads its arguments and, besides them,
everything a compiled function must treat as live: a global tensor ``G``, a global Python float
``K``, a helper function with globals of its own (``H``, ``K2``), a closure cell ``C``, and a
Module ``MOD`` (a parameter, a buffer, a plain tensor attribute and a Python float attribute).
Some programs also read *pieces* (``PIECES``) that lie past what the walk for live state scans,
or through objects it does not scan: one or two elements of a list of 1200 to 3000 tensors
(``BIG``), the leaf of containers nested 4 to 9 deep (``DEEP``), a tensor in an attribute of an
attribute of an object of a user class, a class with ``__slots__`` or a class the walk does not
look into (``OBJ.inner.t``), a ``SimpleNamespace`` (``NS.t``), a ``functools.partial``'s argument
(``PART``) and a global NumPy array (``TABLE``: through ``T.tensor``, ``T.from_numpy``, as an
operand, or read by NumPy code).

Between calls the world changes: globals, cells, Module attributes and the pieces are rebound,
replaced, moved, aliased or edited in place, the call runs under ``no_grad``, the argument is the
global itself, and shapes and dtypes change. After every call the results must match eager to
1e-12 (float64), must not share memory with each other, the arguments or the world; then every
result is written in place (``add_``, ``mul_``, ``zero_``, ...), which must change that result
and nothing else: not the other results, the arguments, the world, earlier results or the next
call's.
"""

from __future__ import annotations

import dataclasses
import functools
import textwrap
import types
import warnings

import numpy as np

import jitgrad as jg
from jitgrad.runtime import nodes
from jitgrad.trace.implicit import LiveStateWarning

# -- programs ----------------------------------------------------------------------------------
UNARY = ["{0}.sin()", "{0}.cos()", "{0}.tanh()", "({0} * 0.1).exp()", "{0}.sigmoid()",
         "{0}.relu()", "{0}.abs()", "({0} * {0} + 1).sqrt()", "(-{0})", "{0}.clamp(-1.0, 1.0)",
         "{0} ** 2", "({0}.abs() + 1).log()", "({0} * {0}).log1p()", "{0}.tanh().expm1()",
         "T.nn.functional.softplus({0})", "{0} * K", "{0}.erf()", "({0}.floor() * 0.5 + {0})",
         "(T.sign({0}) * {0})", "({0} % 0.7)", "({0}.abs() + 1) ** 1.5",
         "({0}.abs() + 0.5) ** {0}.tanh()", "T.where(T.isnan({0}) | T.isinf({0}), 0.0, {0})"]
NONSMOOTH = ("relu", "abs", "clamp", "maximum", "minimum", "amax", "max(", "min(", "where",
             "> 0.0", "floor", "sign", "%", "argm")
BINARY = ["({0} + {1})", "({0} - {1})", "({0} * {1})", "({0} / ({1} * {1} + 1))",
          "T.maximum({0}, {1})", "T.minimum({0}, {1})", "T.where({0} > {1}, {0}, {1})"]
REDUCE = ["{0}.sum({d}, keepdim={k})", "{0}.mean({d}, keepdim={k})",
          "{0}.amax({d}, keepdim={k})", "{0}.max({d}, keepdim={k}).values",
          "{0}.norm(dim={d}, keepdim={k})", "({0}.tanh() + 1.5).prod({d}, keepdim={k})",
          "T.logsumexp({0}, {d}, keepdim={k})", "{0}.min({d}, keepdim={k}).values",
          "({0} * ({0}.argmax({d}, keepdim=True) + {0}.argmin({d}, keepdim=True) * 2)"
          ".to({0}.dtype)).sum({d}, keepdim={k})"]


PIECES = ["BIG", "DEEP", "OBJ", "NS", "PART", "TABLE"]


def deep_source(steps: tuple) -> str:
    return "".join(f"[{k!r}]" if kind == "d" else f"[{k}]" for kind, k in steps)


def _bcast(a: tuple, b: tuple) -> tuple | None:
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and x != 1 and y != 1:
            return None
        out.append(y if x == 1 else x)
    return tuple(reversed(out))


class Program:
    """``source`` defines ``build(T, MOD)`` returning ``(prog, prog_vec, set_cell)``:
    ``prog(x, y)`` is a scalar, ``prog_vec(x, y)`` the pair of values it sums."""

    def __init__(self, pick, n_ops: int) -> None:
        self.pick = pick
        self.uses: set = set()       # the PIECES the program reads
        self.big_idx: list = []      # the indices it reads BIG at
        self.deep_path: tuple = ()   # DEEP's steps to its leaf: ("d", key) or ("l", index)
        # name -> symbolic shape ("A", "B": the dims of x; ints are literal)
        self.pool = [("x", ("A", "B")), ("y", ("B",)), ("G", ("A", "B")), ("C", ("A", 1))]
        self.lines: list[str] = []
        self.n = 0
        for _ in range(n_ops):
            self.step()
        last = self.pool[-1][0]
        other = self.pool[pick(len(self.pool))][0]
        # x and y always reach the output, so every gradient is defined eagerly too
        self.out = f"{last}.sum() + 0.25 * {other}.sum() + 0.125 * (x * y).sum()"
        body = textwrap.indent("\n".join(self.lines + [f"return {self.out}"]), " " * 8)
        # The same body returning two intermediate values (for jit: shapes and dtypes checked)
        body_vec = textwrap.indent("\n".join(self.lines + [f"return {last}, {other}"]), " " * 8)
        self.source = (
            "def build(T, MOD):\n"
            "    C = T.tensor(C0)\n"
            "    def set_cell(v):\n"
            "        nonlocal C\n"
            "        C = v\n"
            "    def prog(x, y):\n"
            f"{body}\n"
            "    def prog_vec(x, y):\n"
            f"{body_vec}\n"
            "    return prog, prog_vec, set_cell\n")
        self.nonsmooth = any(s in self.source for s in NONSMOOTH)
        # torch takes a NumPy operand (t * TABLE) only where t requires no gradient
        self.torch_ok = "* TABLE)" not in self.source

    def choose(self, cond=lambda s: True):
        cands = [p for p in self.pool if cond(p[1])]
        return cands[self.pick(len(cands))] if cands else None

    def emit(self, expr: str, shape: tuple) -> None:
        name = f"v{self.n}"
        self.n += 1
        self.lines.append(f"{name} = {expr}")
        self.pool.append((name, shape))

    def step(self) -> None:
        kind = self.pick(13)
        a, sa = self.choose()
        if kind <= 2:
            self.emit(UNARY[self.pick(len(UNARY))].format(a), sa)
        elif kind == 3:
            pb = self.choose(lambda s: _bcast(sa, s) is not None)
            op = BINARY[self.pick(len(BINARY))]
            self.emit(op.format(a, pb[0]), _bcast(sa, pb[1]))
        elif kind == 4 and sa:
            d = self.pick(len(sa))
            k = bool(self.pick(2))
            shape = tuple(1 if i == d else s for i, s in enumerate(sa)) if k else \
                sa[:d] + sa[d + 1:]
            self.emit(REDUCE[self.pick(len(REDUCE))].format(a, d=d - len(sa), k=k), shape)
        elif kind == 5:
            self.implicit(a, sa)
        elif kind == 6 and sa:
            self.movement(a, sa)
        elif kind == 7 and sa:
            self.index(a, sa)
        elif kind == 8 and sa:
            self.matmul_or_join(a, sa)
        elif kind == 9:
            [self.branch, self.update][self.pick(2)](a, sa)
        elif kind == 10:
            self.loop(a, sa)
        elif kind >= 11:  # 2 in 13 steps
            self.piece(a, sa)
        else:
            self.emit(f"T.{['softmax', 'log_softmax'][self.pick(2)]}({a}, -1)" if sa else
                      f"{a}.tanh()", sa)

    def implicit(self, a: str, sa: tuple) -> None:
        if sa and sa[-1] == "B":
            if self.pick(2):
                self.emit(f"MOD({a})", sa)
            else:
                self.emit(f"helper({a})", _bcast(sa, (1, "B")))
        elif _bcast(sa, ("A", "B")) is not None:
            self.emit(f"({a} * G)", _bcast(sa, ("A", "B")))
        else:
            self.emit(f"({a} + K)", sa)

    def piece(self, a: str, sa: tuple) -> None:
        """Read one of the PIECES (past the walk's bounds, or through an object it does not
        scan) and combine it with ``a``."""
        kind = PIECES[self.pick(len(PIECES))]
        self.uses.add(kind)
        if kind == "BIG":
            expr = f"BIG[{self.big_index()}]"
            if self.pick(2):
                expr = f"({expr} + BIG[{self.big_index()}] * 0.5)"
            self.combine(a, sa, expr, ("B",))
        elif kind == "DEEP":
            if not self.deep_path:
                steps = []
                for i in range(4 + self.pick(6)):  # 4 to 6 levels scanned, 7 to 9 past them
                    steps.append(("d", f"k{i}") if self.pick(2) else ("l", self.pick(3)))
                self.deep_path = tuple(steps)
            self.combine(a, sa, "DEEP" + deep_source(self.deep_path), ("A", "B"))
        elif kind == "OBJ":
            r = self.pick(3)
            if r == 0 and _bcast(sa, ("B",)) is not None:
                self.emit(f"OBJ.apply({a})", _bcast(sa, ("B",)))  # a method reads self.inner.t
            else:
                self.combine(a, sa, "OBJ.inner.t", ("B",))
        elif kind == "NS":
            self.combine(a, sa, "NS.t", ("A", 1))
        elif kind == "PART":
            if _bcast(sa, ("B",)) is not None and self.pick(2):
                self.emit(f"PART({a})", _bcast(sa, ("B",)))
            else:
                self.emit(f"PART({a}.sum())", ("B",))
        else:  # TABLE
            r = self.pick(5)
            if r == 2 and _bcast(sa, ("A", "B")) is not None:
                self.emit(f"({a} * TABLE)", _bcast(sa, ("A", "B")))
            elif r == 4:  # NumPy code reads it: a value fixed in the trace
                self.emit(f"({a} * float(TABLE.mean()))", sa)
            else:
                self.combine(a, sa, ["T.tensor(TABLE)", "T.from_numpy(TABLE)",
                                     "T.tensor(TABLE)", "T.tensor(np.tanh(TABLE) * 0.5)",
                                     ][r], ("A", "B"))

    def big_index(self) -> int:
        # Both ends, the bound and its neighbours, and any index every length has.
        i = [0, 999, 1000, 1199, -1, -2, -1200, None][self.pick(8)]
        i = self.pick(1200) if i is None else i
        self.big_idx.append(i)
        return i

    def combine(self, a: str, sa: tuple, expr: str, shape: tuple) -> None:
        if _bcast(sa, shape) is not None:
            self.emit(f"({a} {'*+'[self.pick(2)]} {expr})", _bcast(sa, shape))
        else:
            self.emit(f"({a} + {expr}.sum())", sa)

    def movement(self, a: str, sa: tuple) -> None:
        r = self.pick(4)
        if len(sa) == 2 and r == 0:
            self.emit([f"{a}.T", f"{a}.transpose(0, 1)", f"{a}.permute(1, 0)"][self.pick(3)],
                      (sa[1], sa[0]))
        elif r == 1 and len(sa) < 3:
            self.emit(f"{a}.unsqueeze(0)", (1,) + sa)
        elif r == 2 and 1 in sa:
            d = sa.index(1)
            self.emit(f"{a}.squeeze({d})", sa[:d] + sa[d + 1:])
        elif r == 3 and len(sa) == 2 and sa[0] == 1:
            self.emit(f"{a}.expand(x.shape[0], {a}.shape[1])", ("A", sa[1]))
        else:
            self.emit(f"{a}.flatten().reshape({a}.shape)", sa)

    def index(self, a: str, sa: tuple) -> None:
        r = self.pick(5)
        if r == 0:
            self.emit(f"{a}[0]", sa[1:])
        elif r == 1 and sa[0] in ("A", "B"):
            self.emit(f"{a}[1:]", (f"{sa[0]}-1",) + sa[1:])
        elif r == 2 and sa[-1] in ("A", "B"):
            self.emit(f"{a}[..., :2]", sa[:-1] + (2,))
        elif r == 3 and sa[0] in ("A", "B"):
            self.emit(f"{a}[::2]", (f"{sa[0]}/2",) + sa[1:])
        elif sa[0] != 1:
            self.emit(f"{a}[T.tensor([0, 0, 1])]", (3,) + sa[1:])
        else:
            self.emit(f"{a}[0]", sa[1:])

    def matmul_or_join(self, a: str, sa: tuple) -> None:
        r = self.pick(4)
        if r == 0 and len(sa) == 2:
            self.emit(f"({a} @ {a}.transpose(0, 1))", (sa[0], sa[0]))
            return
        if r == 1:
            b = self.choose(lambda s: len(s) in (1, 2) and s[0] == sa[-1])
            if b is not None:
                self.emit(f"({a} @ {b[0]})", sa[:-1] + b[1][1:])
                return
        if r == 2:
            b = self.choose(lambda s: len(s) == len(sa) and s[1:] == sa[1:])
            self.emit(f"T.cat([{a}, {b[0]}], 0)", (f"({sa[0]}+{b[1][0]})",) + sa[1:])
            return
        b = self.choose(lambda s: s == sa)
        self.emit(f"T.stack([{a}, {b[0]} * 0.5], 0)", (2,) + sa)

    def update(self, a: str, sa: tuple) -> None:
        # An in-place update of a copy (index_update in the trace).
        name = f"v{self.n}"
        self.n += 1
        if sa:
            self.lines += [f"{name} = {a}.clone()", f"{name}[0] = {name}[-1] * 2.0"]
        else:
            self.lines += [f"{name} = {a}.clone()", f"{name} += 1.0"]
        self.pool.append((name, sa))

    def loop(self, a: str, sa: tuple) -> None:
        # A data-dependent while loop (lifted into one loop when it can be): growing to a
        # bound, contracting with a tape, two carried values and an invariant, a rebinding, or
        # a for over range(int(n.item())), or an if in the body; an iteration cap (a Python
        # counter the header tests, either order), or a for over a static range with a break.
        name = f"v{self.n}"
        self.n += 1
        kind = self.pick(12)
        if kind == 9:  # the data test first, then the cap (which the body may read)
            _, read = self._counter_read(name, a, f"{name}_it")
            self.lines += [f"{name} = {a}.abs() + 0.01", f"{name}_it = 0",
                           f"while {name}.sum() < 40.0 and {name}_it < 4:",
                           f"    {name} = {name} * 1.7{read}",
                           f"    {name}_it += 1"]
        elif kind == 10:  # the cap first: a trace stopped by it has no exit of the data test
            _, read = self._counter_read(name, a, f"{name}_it")
            self.lines += [f"{name} = {a}.tanh()", f"{name}_it = 0",
                           f"while {name}_it < 5 and {name}.abs().max() > 0.05:",
                           f"    {name} = 0.6 * {name} + 0.05 * {name}.sin(){read}",
                           f"    {name}_it = {name}_it + 1"]
        elif kind == 11:  # a static range with a break on data
            var, read = self._counter_read(name, a)
            self.lines += [f"{name} = {a} * 1.0",
                           f"for {var} in range(5):",
                           f"    {name} = {name} * 0.8 + {name}.sin() * 0.3 + 0.2{read}",
                           f"    if {name}.abs().sum() > 8.0:",
                           "        break"]
        elif kind == 6:  # an if without else, the carried value starting as another name's
            self.lines += [f"{name} = {a}", f"{name}_w = {a}.abs() + 0.5",
                           f"while {name}_w.sum() < 20.0:",
                           f"    if ({name}_w.sum() * 3.0).sin() > 0.0:",
                           f"        {name} = {name} * 1.3 + 0.1",
                           f"    {name}_w = {name}_w + {name}.abs() * 0.2 + {a}.abs() * 0.1 + 0.3"]
            self.pool.append((f"{name}_w", sa))
        elif kind == 7:  # a value made before the if, carried as it is by one side
            self.lines += [f"{name} = {a} * 1.0",
                           f"while {name}.abs().sum() < 25.0:",
                           f"    {name}_t = {name} * 1.5 + 0.1",
                           f"    if {name}_t.sum() > 0.0:",
                           f"        {name} = {name}_t.sin() + {name}_t",
                           "    else:",
                           f"        {name} = {name}_t"]
        elif kind == 8:  # a side that changes one of two carried values, with a temporary
            self.lines += [f"{name} = {a}.abs() + 0.2", f"{name}_k = {a} * 0.5",
                           f"while {name}.sum() < 15.0:",
                           f"    if ({name}.sum() * 2.0).cos() > 0.0:",
                           f"        {name}_d = {name}_k * 0.3",
                           f"        {name}_k = {name}_k + {name}_d.tanh()",
                           f"    {name} = {name} * 1.4 + {name}_k.abs() * 0.1"]
            self.pool.append((f"{name}_k", sa))
        elif kind == 5:  # an if on data in the body whose sides alternate: a cond in the loop
            self.lines += [f"{name} = {a}.tanh() + 0.1",
                           f"while {name}.abs().sum() < 30.0:",
                           f"    if {name}.sum() > 0.0:",
                           f"        {name} = {name} * -1.6 - 0.1",
                           "    else:",
                           f"        {name} = {name} * -1.3 + 0.2"]
        elif kind == 4:  # a for over a range whose length is a tensor's value
            var, read = self._counter_read(name, a)
            self.lines += [f"{name}_n = ({a}.abs().sum() * 2.0).clamp(max=6.0).floor()",
                           f"{name} = {a} * 1.0",
                           f"for {var} in range(int({name}_n.item())):",
                           f"    {name} = {name} * 0.8 + {name}.sin() * 0.3{read}"]
        elif kind == 3:  # a rebinding of one tensor to two names: y, z = z, y + z
            self.lines += [f"{name} = {a}.abs() + 0.1", f"{name}_z = {name}",
                           f"while {name}.sum() < 30.0:",
                           f"    {name}, {name}_z = {name}_z, {name} + {name}_z"]
        elif kind == 0:
            self.lines += [f"{name} = {a}.abs() + 0.01",
                           f"while {name}.sum() < 40.0:", f"    {name} = {name} * 1.7"]
        elif kind == 1:
            self.lines += [f"{name} = {a}.tanh()", f"while {name}.abs().max() > 0.05:",
                           f"    {name} = 0.6 * {name} + 0.05 * {name}.sin()"]
        else:
            pb = self.choose(lambda s: _bcast(sa, s) == tuple(sa))
            self.lines += [f"{name} = {a} * 1.0", f"{name}_s = {a}.sum() * 0.0",
                           f"while {name}_s < 3.0:",
                           f"    {name}_s = {name}_s + {name}.abs().mean() + 0.5",
                           f"    {name} = {name} * 0.9 + {pb[0]}"]  # pb's cotangent: the carried one's
        self.pool.append((name, sa))

    def _counter_read(self, name: str, a: str, counter: str | None = None) -> tuple:
        """The variable of a ``for`` over a range (or the ``counter`` of a capped ``while``),
        and a term of its body that reads it (or none): Python arithmetic on it, a comparison
        as a factor, or an index into a tensor (each computed by the lifted loop from its
        counter: ``trace/numbers.py``, ``Builder.count_here``)."""
        form = self.pick(4)
        if form == 0:
            return counter or "_", ""
        var = counter or f"{name}_i"
        if form == 1:
            return var, f" * 0.9 ** {var} + {var} / 4"
        if form == 2:
            return var, f" + ({var} < 2) * 0.5 + {name} * ({var} % 2)"
        return var, f" + {a}.reshape(-1)[{var} % {a}.numel()] * 0.1"

    def branch(self, a: str, sa: tuple) -> None:
        # Python control flow on a tensor value: a guard in compiled code.
        name = f"v{self.n}"
        self.n += 1
        self.lines += [f"if {a}.sum() > 0.0:", f"    {name} = {a} * 2.0", "else:",
                       f"    {name} = {a}.sin()"]
        self.pool.append((name, sa))


# -- the world the programs read -----------------------------------------------------------------
@dataclasses.dataclass
class State:
    """NumPy values of everything a program reads; both frameworks' objects are made from it.
    For the pieces, the values they are built from (later changes draw fresh values)."""

    A: int
    B: int
    dtype: type
    x: np.ndarray
    y: np.ndarray
    G: np.ndarray
    H: np.ndarray
    C: np.ndarray
    weight: np.ndarray
    shift: np.ndarray
    gain: np.ndarray
    big: list            # BIG's elements, (B,) each: 1200 to 3000 of them
    deep: np.ndarray     # DEEP's leaf (A, B)
    obj: np.ndarray      # OBJ.inner.t (B,)
    obj_kind: int        # OBJ's classes: see make_obj
    nst: np.ndarray      # NS.t (A, 1)
    part: np.ndarray     # PART's argument (B,)
    table: np.ndarray    # TABLE (A, B)
    K: float = 0.75
    K2: float = -0.5
    alpha: float = 1.25

    @staticmethod
    def make(rng, A: int, B: int, dtype=np.float64) -> "State":
        def r(*s):
            return rng.standard_normal(s).astype(dtype)
        n = int(rng.integers(1200, 3001))
        return State(A, B, dtype, r(A, B), r(B), r(A, B), r(1, B), r(A, 1), r(B), r(B), r(),
                     list(r(n, B)), r(A, B), r(B), int(rng.integers(3)), r(A, 1), r(B), r(A, B))


MODULE_SOURCE = """
class Mod(T.nn.Module):
    def __init__(self, weight, shift, gain, alpha):
        super().__init__()
        self.weight = T.nn.Parameter(T.tensor(weight))
        self.register_buffer("shift", T.tensor(shift))
        self.gain = T.tensor(gain)
        self.alpha = alpha

    def forward(self, v):
        return (v * self.weight + self.shift) * self.gain * self.alpha
"""

HELPER_SOURCE = """
def helper(t):
    return t * H + K2
"""

HOLDER_SOURCE = """
class Inner:
    def __init__(self, t):
        self.t = t


class SlotInner:
    __slots__ = ("t",)

    def __init__(self, t):
        self.t = t


class Holder:
    def __init__(self, inner):
        self.inner = inner

    def apply(self, v):
        return v * self.inner.t
"""
# OBJ's classes, twice: defined in this file (classes of the user's, whose attributes the walk
# scans; a ``__slots__`` one it does not) and made by exec without a module (``builtins``: the
# walk does not look into their instances, so the tensor is located after the trace).
_WALKED: dict = {"__name__": __name__}
exec(HOLDER_SOURCE, _WALKED)  # noqa: S102  (fixed source)
_UNWALKED: dict = {}
exec(HOLDER_SOURCE, _UNWALKED)  # noqa: S102


def make_obj(kind: int, t):
    """OBJ holding ``t`` at ``.inner.t``: kind 0 user classes, 1 a ``__slots__`` inner object,
    2 classes the walk does not look into."""
    ns = _UNWALKED if kind == 2 else _WALKED
    return ns["Holder"](ns["SlotInner" if kind == 1 else "Inner"](t))


def _pscale(w, v):
    return v * w


def deep_at(root, steps: tuple):
    for _, k in steps:
        root = root[k]
    return root


def deep_chain(T, steps: tuple, leaf, st: State, level: int = 0):
    """The containers of ``steps`` from position ``level`` down to ``leaf`` (the object that
    ``level`` steps from DEEP lead to), each with tensors beside the way down."""
    node = leaf
    for i in range(len(steps) - 1, level - 1, -1):
        kind, k = steps[i]
        sides = [T.tensor(np.full(st.B, i + j * 0.125, dtype=st.dtype)) for j in range(3)]
        if kind == "d":
            node = {"side": sides[0], k: node}
        else:
            sides[k] = node
            node = sides
    return node


class World:
    """One framework's live objects for a program: its globals, helper, cell, Module and the
    pieces it reads."""

    def __init__(self, T, program: Program, st: State) -> None:
        self.T = T
        self.program = program
        mod_ns = {"T": T}
        exec(MODULE_SOURCE, mod_ns)  # noqa: S102  (fixed source)
        self.mod = mod_ns["Mod"](st.weight, st.shift, st.gain, st.alpha)
        self.helper_ns = {"H": T.tensor(st.H), "K2": st.K2}
        exec(HELPER_SOURCE, self.helper_ns)  # noqa: S102
        self.ns = {"T": T, "np": np, "G": T.tensor(st.G), "K": st.K,
                   "helper": self.helper_ns["helper"], "MOD": self.mod, "C0": st.C}
        self.build_pieces(st)
        exec(program.source, self.ns)  # noqa: S102  (generated from the fixed templates)
        self.prog, self.prog_vec, self.set_cell = self.ns["build"](T, self.mod)
        self.cell = T.tensor(st.C)
        self.set_cell(self.cell)

    def build_pieces(self, st: State) -> None:
        T, uses, ns = self.T, self.program.uses, self.ns
        if "BIG" in uses:
            ns["BIG"] = [T.tensor(a) for a in st.big]
        if "DEEP" in uses:
            ns["DEEP"] = deep_chain(T, self.program.deep_path, T.tensor(st.deep), st)
        if "OBJ" in uses:
            ns["OBJ"] = make_obj(st.obj_kind, T.tensor(st.obj))
        if "NS" in uses:
            ns["NS"] = types.SimpleNamespace(t=T.tensor(st.nst), note="not a tensor")
        if "PART" in uses:
            ns["PART"] = functools.partial(_pscale, T.tensor(st.part))
        if "TABLE" in uses:
            ns["TABLE"] = st.table.copy()

    def tensors(self) -> list:
        out = [self.ns["G"], self.helper_ns["H"], self.cell, self.mod.weight, self.mod.shift,
               self.mod.gain]
        p, ns = self.program, self.ns
        if "BIG" in p.uses:
            out += [ns["BIG"][i] for i in p.big_idx]
        if "DEEP" in p.uses:
            out.append(deep_at(ns["DEEP"], p.deep_path))
        if "OBJ" in p.uses:
            out.append(ns["OBJ"].inner.t)
        if "NS" in p.uses:
            out.append(ns["NS"].t)
        if "PART" in p.uses:
            out.append(ns["PART"].args[0])
        return out

    def arrays(self) -> list:
        """The NumPy arrays the program reads from outside (TABLE)."""
        return [self.ns["TABLE"]] if "TABLE" in self.program.uses else []

    def rebind_all(self, st: State) -> None:
        T = self.T
        self.ns["G"] = T.tensor(st.G)
        self.helper_ns["H"] = T.tensor(st.H)
        self.cell = T.tensor(st.C)
        self.set_cell(self.cell)
        self.mod.weight = T.nn.Parameter(T.tensor(st.weight))
        self.mod.shift = T.tensor(st.shift)
        self.mod.gain = T.tensor(st.gain)
        self.build_pieces(st)


# -- changes between calls ---------------------------------------------------------------------
def _fresh(rng, arr):
    return rng.standard_normal(arr.shape).astype(arr.dtype)


ACTIONS = ["new_args", "rebind_G", "inplace_G", "rebind_H", "rebind_cell", "inplace_param",
           "replace_buffer", "inplace_buffer", "set_alpha", "rebind_K", "rebind_K2",
           "no_grad_call", "enable_grad_call", "arg_is_global", "reshape", "dtype", "repeat"]
# The changes of each piece, drawn only for programs that read it.
PIECE_ACTIONS = {
    "BIG": ["big_replace", "big_inplace", "big_insert", "big_append", "big_pop", "big_swap",
            "big_alias", "big_rebind"],
    "DEEP": ["deep_leaf", "deep_inplace", "deep_branch", "deep_is_G"],
    "OBJ": ["obj_leaf", "obj_inner", "obj_inplace", "obj_rebind"],
    "NS": ["ns_leaf", "ns_inplace", "ns_rebind"],
    "PART": ["part_inplace", "part_rebind"],
    "TABLE": ["table_inplace", "table_row", "table_rebind"],
}


def actions_for(program: Program) -> list:
    return ACTIONS + [a for p in PIECES if p in program.uses for a in PIECE_ACTIONS[p]]


def apply_action(action: str, st: State, worlds: list, rng) -> State:
    """Change ``st`` and every world the same way; returns the new state."""
    if action == "new_args":
        st.x, st.y = _fresh(rng, st.x), _fresh(rng, st.y)
    elif action == "rebind_G":
        st.G = _fresh(rng, st.G)
        for w in worlds:
            w.ns["G"] = w.T.tensor(st.G)
    elif action == "inplace_G":
        st.G = st.G * st.dtype(0.5)
        for w in worlds:
            w.ns["G"].mul_(0.5)
    elif action == "rebind_H":
        st.H = _fresh(rng, st.H)
        for w in worlds:
            w.helper_ns["H"] = w.T.tensor(st.H)
    elif action == "rebind_cell":
        st.C = _fresh(rng, st.C)
        for w in worlds:
            w.cell = w.T.tensor(st.C)
            w.set_cell(w.cell)
    elif action == "inplace_param":
        delta = _fresh(rng, st.weight)
        st.weight = st.weight + delta
        for w in worlds:
            with w.T.no_grad():
                w.mod.weight.add_(w.T.tensor(delta))
    elif action == "replace_buffer":
        st.shift = _fresh(rng, st.shift)
        for w in worlds:
            w.mod.shift = w.T.tensor(st.shift)
    elif action == "inplace_buffer":
        st.shift = np.full_like(st.shift, 0.3)
        for w in worlds:
            w.mod.shift.fill_(0.3)
    elif action == "set_alpha":
        st.alpha = float(rng.uniform(-2, 2))
        for w in worlds:
            w.mod.alpha = st.alpha
    elif action == "rebind_K":
        st.K = float(rng.uniform(-2, 2))
        for w in worlds:
            w.ns["K"] = st.K
    elif action == "rebind_K2":
        st.K2 = float(rng.uniform(-2, 2))
        for w in worlds:
            w.helper_ns["K2"] = st.K2
    elif action in ("reshape", "dtype"):
        A, B = (int(rng.integers(3, 6)), int(rng.integers(3, 7))) if action == "reshape" \
            else (st.A, st.B)
        dtype = st.dtype if action == "reshape" else \
            (np.float32 if st.dtype is np.float64 else np.float64)
        new = State.make(rng, A, B, dtype)
        new.K, new.K2, new.alpha = st.K, st.K2, st.alpha
        st = new
        for w in worlds:
            w.rebind_all(st)
    elif action.split("_")[0] in ("big", "deep", "obj", "ns", "part", "table"):
        _change_piece(action, st, worlds, rng)
    return st


def _change_piece(action: str, st: State, worlds: list, rng) -> None:
    """The pieces' changes: the same fresh values go to every world."""
    p = worlds[0].program
    row = rng.standard_normal(st.B).astype(st.dtype)
    if action.startswith("big"):
        n = len(worlds[0].ns["BIG"])
        i = p.big_idx[int(rng.integers(len(p.big_idx)))]
        j = int(rng.integers(-n, n))
        for w in worlds:
            T, big = w.T, w.ns["BIG"]
            if action == "big_replace":  # the element read, and one elsewhere
                big[i] = T.tensor(row)
                big[j] = T.tensor(row * 2)
            elif action == "big_inplace":
                big[i].add_(T.tensor(row))
            elif action == "big_insert":  # every element moves one place on
                big.insert(0, T.tensor(row))
            elif action == "big_append":  # what negative indices read moves
                big.append(T.tensor(row))
            elif action == "big_pop" and n > 1200:
                big.pop(0)
            elif action == "big_swap":
                big[i], big[j] = big[j], big[i]
            elif action == "big_alias":  # one tensor in two places
                if j % 2:
                    big[j] = big[i]
                else:
                    big[i] = big[j]
            elif action == "big_rebind":  # a new list: the same tensors, the one read new
                w.ns["BIG"] = list(big)
                w.ns["BIG"][i] = T.tensor(row)
    elif action.startswith("deep"):
        steps = p.deep_path
        leaf = rng.standard_normal((st.A, st.B)).astype(st.dtype)
        level = int(rng.integers(len(steps)))
        for w in worlds:
            T = w.T
            inner = deep_at(w.ns["DEEP"], steps[:-1])
            if action == "deep_leaf":
                inner[steps[-1][1]] = T.tensor(leaf)
            elif action == "deep_inplace":
                inner[steps[-1][1]].add_(T.tensor(leaf))
            elif action == "deep_is_G":
                inner[steps[-1][1]] = w.ns["G"]
            elif level == 0:  # deep_branch: a new chain from some level down
                w.ns["DEEP"] = deep_chain(T, steps, T.tensor(leaf), st)
            else:
                parent = deep_at(w.ns["DEEP"], steps[:level - 1])
                parent[steps[level - 1][1]] = deep_chain(T, steps, T.tensor(leaf), st, level)
    elif action.startswith("obj"):
        kind = int(rng.integers(3))
        for w in worlds:
            T, obj = w.T, w.ns["OBJ"]
            if action == "obj_leaf":
                obj.inner.t = T.tensor(row)
            elif action == "obj_inner":
                obj.inner = type(obj.inner)(T.tensor(row))
            elif action == "obj_inplace":
                obj.inner.t.mul_(-0.5)
            else:  # obj_rebind, maybe to other classes
                w.ns["OBJ"] = make_obj(kind, T.tensor(row))
    elif action.startswith("ns"):
        col = rng.standard_normal((st.A, 1)).astype(st.dtype)
        for w in worlds:
            T = w.T
            if action == "ns_leaf":
                w.ns["NS"].t = T.tensor(col)
            elif action == "ns_inplace":
                w.ns["NS"].t.add_(T.tensor(col))
            else:
                w.ns["NS"] = types.SimpleNamespace(t=T.tensor(col), note="not a tensor")
    elif action.startswith("part"):
        for w in worlds:
            if action == "part_inplace":
                w.ns["PART"].args[0].add_(w.T.tensor(row))
            else:
                w.ns["PART"] = functools.partial(_pscale, w.T.tensor(row))
    else:
        table = rng.standard_normal((st.A, st.B)).astype(st.dtype)
        for w in worlds:
            if action == "table_inplace":
                w.ns["TABLE"] *= st.dtype(0.5)
            elif action == "table_row":
                w.ns["TABLE"][0] = row
            else:
                w.ns["TABLE"] = table.copy()


# -- one call, checked -------------------------------------------------------------------------
def eager_result(world: World, st: State, argnums: tuple, x_is_global: bool):
    """(value, grads) of the program run eagerly with ``world``'s framework."""
    T = world.T
    args = [world.ns["G"].detach().clone() if x_is_global else T.tensor(st.x), T.tensor(st.y)]
    for i in argnums:
        args[i].requires_grad_(True)
    with T.enable_grad():
        out = world.prog(*args)
        gs = T.autograd.grad(out, [args[i] for i in argnums], allow_unused=True)
    grads = [np.zeros(args[i].shape, dtype=st.dtype) if g is None else
             g.detach().numpy().copy() for i, g in zip(argnums, gs)]
    return np.array(out.detach().numpy()), grads


def eager_values(world: World, st: State, x_is_global: bool) -> list:
    """``prog_vec``'s two values, run eagerly (no gradient)."""
    T = world.T
    x = world.ns["G"] if x_is_global else T.tensor(st.x)
    with T.no_grad():
        return [np.array(v.numpy()) for v in world.prog_vec(x, T.tensor(st.y))]


def tolerance(dtype) -> tuple:
    return (1e-12, 1e-12) if dtype is np.float64 else (1e-4, 1e-5)


def assert_close(got, want, dtype, what: str) -> None:
    rtol, atol = tolerance(dtype)
    scale = max(1.0, float(np.nanmax(np.abs(np.where(np.isfinite(want), want, 0)), initial=0)))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=what)


def check_no_sharing(results: list, others: list, what: str) -> None:
    for i, r in enumerate(results):
        for j in range(i):
            assert not np.shares_memory(r, results[j]), f"{what}: results {j} and {i} share memory"
        for o in others:
            assert not np.shares_memory(r, o), f"{what}: result {i} shares memory with an input"


def as_numpy(t) -> np.ndarray:
    return t._value if isinstance(t, jg.Tensor) else np.asarray(t)


# In-place writes into a call's results: (name, write, what it makes of the values before).
WRITES = [("add_(1.5)", lambda t: t.add_(1.5), lambda a: a + 1.5),
          ("mul_(-0.5)", lambda t: t.mul_(-0.5), lambda a: a * -0.5),
          ("zero_()", lambda t: t.zero_(), np.zeros_like),
          ("+= 2.0", lambda t: t.__iadd__(2.0), lambda a: a + 2.0),
          ("fill_(3.0)", lambda t: t.fill_(3.0), lambda a: np.full_like(a, 3.0)),
          ("sub_(t * 0.5)", lambda t: t.sub_(t * 0.5), lambda a: a - a * 0.5)]


class CompiledRaised(Exception):
    """The compiled function, or a write into one of its results, raised where eager runs."""


class EagerRaised(Exception):
    """Eager jitgrad raised at a later call of a program it ran at first (the world changed)."""


def write_results(outs: list, pick, world: World, args: list, what: str) -> int:
    """Write into every result in place; the write must change that result only."""
    others = [np.array(t._value) for t in world.tensors()] + [a.copy() for a in world.arrays()]
    arg_vals = [np.array(a._value) for a in args]
    want = []
    for i, t in enumerate(outs):
        name, write, expect = WRITES[pick(len(WRITES))]
        before = np.array(as_numpy(t))
        want.append((name, np.asarray(expect(before), dtype=before.dtype)))
        try:
            write(t)
        except Exception as e:  # noqa: BLE001  (eager results take these writes)
            raise CompiledRaised(f"{what}: result {i}.{name} raised {e!r}") from e
    for i, (t, (name, w)) in enumerate(zip(outs, want)):
        r = as_numpy(t)
        assert r.shape == w.shape and r.dtype == w.dtype, f"{what}: result {i} after {name}"
        np.testing.assert_array_equal(r, w, err_msg=f"{what}: result {i} after {name} (each "
                                      "result written once, in order)")
    for i, (a, v) in enumerate(zip(args, arg_vals)):
        np.testing.assert_array_equal(a._value, v, err_msg=f"{what}: writes into the results "
                                      f"changed argument {i}")
    now = [t._value for t in world.tensors()] + world.arrays()
    for i, (a, v) in enumerate(zip(now, others)):
        np.testing.assert_array_equal(a, v, err_msg=f"{what}: writes into the results changed "
                                      f"the world's tensor {i}")
    return len(outs)


# -- one program, run and checked ---------------------------------------------------------------
class _CallClock:
    """``time.perf_counter`` for the runtime's nodes: every interpreted call takes ``step`` s
    (as tests/test_tiers.py's clock)."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def perf_counter(self) -> float:
        self.now += self.step
        return self.now


def new_stats() -> dict:
    return dict.fromkeys(["programs", "calls", "compiled_calls", "traces", "invalid", "lifted",
                          "writes", "eager_fallbacks", "numba", "fallback"], 0) | \
        {"pieces": dict.fromkeys(PIECES, 0), "warnings": {}}


def run_program(pick, target: str, stats: dict, torch=None, on_note=None) -> None:
    """Generate one program from ``pick``'s choices and run it with changes of the world between
    calls, every call checked. Raises AssertionError on a mismatch (compiled against eager, or
    eager against ``torch`` where given), ``CompiledRaised`` where the compiled function raises
    and eager does not; a program eager jitgrad refuses at its first call counts as invalid.
    ``on_note`` receives the program's description before its calls run."""
    program = Program(pick, n_ops=1 + pick(8))
    mode = ["value_and_grad", "grad", "jit"][pick(3)]
    argnums = [(0,), (0, 1), (1,)][pick(3)] if mode != "jit" else ()
    acts = actions_for(program)
    actions = [acts[pick(len(acts))] for _ in range(1 + pick(5))]
    rng = np.random.default_rng(pick(1 << 16))
    state = State.make(rng, 3 + pick(3), 3 + pick(4))
    worlds = [World(jg, program, state)]
    if torch is not None and program.torch_ok:
        worlds.append(World(torch, program, state))
    try:
        eager_result(worlds[0], state, argnums or (0,), False)
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        # A program whose shapes the generator got wrong: not a test, unless torch runs it
        if len(worlds) > 1:
            try:
                eager_result(worlds[1], state, argnums or (0,), False)
            except Exception:  # noqa: BLE001  (torch refuses it too)
                pass
            else:
                raise AssertionError(f"jitgrad raised {e!r} where torch runs:\n"
                                     f"{program.source}") from e
        stats["invalid"] += 1
        return
    stats["programs"] += 1
    for piece in program.uses:
        stats["pieces"][piece] += 1
    # A third of the CPU programs compile every trace at once; a third defer traces with
    # guards to their second call (config.defer_guarded); a third run each trace on the
    # interpreter for its first 1 to 4 calls (config.compile_after, on a clock that counts
    # calls), as users get them, so that traces change executables between calls.
    policy = pick(3) if target == "cpu" else 1
    after = pick(4) + 0.5 if policy == 2 else 0
    note = (f"program:\n{program.source}\nmode={mode} argnums={argnums} actions={actions} "
            f"defer_guarded={policy != 0} compile_after={after} (a call takes 1 s) "
            f"pieces={sorted(program.uses)} DEEP path={deep_source(program.deep_path)}")
    if on_note is not None:
        on_note(note)
    clock = nodes.time
    with jg.config.patch(defer_guarded=policy != 0, compile_after=after), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nodes.time = _CallClock(1.0)
        try:
            _run_calls(pick, program, mode, argnums, actions, rng, state, worlds, stats, target,
                       note)
        finally:
            nodes.time = clock
            for w in caught:
                name = w.category.__name__
                stats["warnings"][name] = stats["warnings"].get(name, 0) + 1
    live = [w for w in caught if issubclass(w.category, LiveStateWarning)]
    # The pieces hold no Python numbers: none is past the bounds, and nothing warns
    assert not live, f"{live[0].message}\n{note}"


def _run_calls(pick, program, mode, argnums, actions, rng, state, worlds, stats, target, note):
    nums = argnums if len(argnums) != 1 else argnums[0]
    if mode == "jit":
        f = jg.jit(worlds[0].prog_vec, target=target)
    elif mode == "grad":
        f = jg.grad(worlds[0].prog, argnums=nums, target=target)
    else:
        f = jg.value_and_grad(worlds[0].prog, argnums=nums, target=target)
    kept: list = []  # (results of earlier calls, their values then)
    for step, action in enumerate(["first"] + actions):
        state = apply_action(action, state, worlds, rng)
        x_is_global = action == "arg_is_global"
        what = f"call {step} after {action}"
        try:
            want_v, want_g = eager_result(worlds[0], state, argnums or (0,), x_is_global)
            if mode == "jit":
                want_vals = eager_values(worlds[0], state, x_is_global)
        except Exception as e:  # noqa: BLE001
            raise EagerRaised(f"{what}: eager raised {e!r}\n{note}") from e
        x = worlds[0].ns["G"] if x_is_global else jg.tensor(state.x)
        y = jg.tensor(state.y)
        eager_before = f._rt.eager_calls
        try:
            if action == "no_grad_call":
                with jg.no_grad():
                    out = f(x, y)
            elif action == "enable_grad_call":
                with jg.no_grad(), jg.enable_grad():
                    out = f(x, y)
            else:
                out = f(x, y)
        except Exception as e:  # noqa: BLE001
            raise CompiledRaised(f"{what}: the compiled function raised {e!r}") from e
        stats["calls"] += 1
        stats["compiled_calls"] += f._rt.eager_calls == eager_before
        if mode == "jit":
            value, grads = None, []
            outs = list(out)
            results = [as_numpy(v) for v in out]
            for i, (r, w) in enumerate(zip(results, want_vals)):
                assert r.shape == w.shape, f"{what}: output {i} shape {r.shape} != {w.shape}"
                assert r.dtype == w.dtype, f"{what}: output {i} dtype {r.dtype} != {w.dtype}"
                assert_close(r, w, state.dtype, f"{what}: output {i}")
        elif mode == "grad":
            value, grads = None, [out] if len(argnums) == 1 else list(out)
        else:
            value, grads = out[0], [out[1]] if len(argnums) == 1 else list(out[1])
        if mode != "jit":
            outs = ([] if value is None else [value]) + grads
            results = [as_numpy(v) for v in outs]
        if value is not None:
            assert_close(results[0], want_v, state.dtype, f"{what}: value")
            assert results[0].dtype == want_v.dtype, f"{what}: value dtype"
        for i, (g, w) in enumerate(zip(results[len(results) - len(grads):], want_g)):
            assert g.shape == w.shape, f"{what}: gradient {i} shape {g.shape} != {w.shape}"
            assert g.dtype == w.dtype, f"{what}: gradient {i} dtype {g.dtype} != {w.dtype}"
            assert_close(g, w, state.dtype, f"{what}: gradient {i}")
        inputs = [x._value, y._value] + [t._value for t in worlds[0].tensors()] + \
            worlds[0].arrays()
        check_no_sharing(results, inputs, what)
        for old, then in kept:
            for r, v in zip(old, then):
                np.testing.assert_array_equal(as_numpy(r), v,
                                              err_msg=f"{what}: an earlier result changed")
        stats["writes"] += write_results(outs, pick, worlds[0], [x, y], what)
        kept.append((outs, [np.array(as_numpy(r)) for r in outs]))
        if len(worlds) > 1 and state.dtype is np.float64:
            t_v, t_g = eager_result(worlds[1], state, argnums or (0,), x_is_global)
            np.testing.assert_allclose(want_v, t_v, rtol=1e-9, atol=1e-9,
                                       err_msg=f"{what}: eager value vs torch")
            if not program.nonsmooth:
                for i, (w, t) in enumerate(zip(want_g, t_g)):
                    np.testing.assert_allclose(w, t, rtol=1e-9, atol=1e-9,
                                               err_msg=f"{what}: eager gradient {i} vs torch")
    info = f.cache_info()
    stats["traces"] += info.traces
    stats["eager_fallbacks"] += info.eager_fallback
    stats["lifted"] += sum(": lifted (" in r for r in info.loops)
    fallback = f._rt.fallback or ""
    # Every piece can be located from the function's globals: none makes it run eagerly
    assert "not looked into" not in fallback, f"{fallback}\n{note}"
    if target == "cpu":
        # Every trace of registered primitives compiles with Numba: no silent interpreter runs
        # (a deferred trace compiles now).
        for n in list(_nodes(f)):
            f._rt.compile_now(n)
        fell_back = [n for n in _nodes(f) if type(n.exe).__name__ == "ReferenceExecutable"]
        stats["numba"] += len(list(_nodes(f))) - len(fell_back)
        stats["fallback"] += len(fell_back)
        assert not fell_back, f"ran on the interpreter: {fell_back[0].exe.note}\n{note}"


def _nodes(f):
    """Every trace node of compiled function ``f``'s trace trees."""
    stack = list(f._rt.cache.values())
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children.values())
