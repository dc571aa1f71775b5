"""The differential test bed: random programs over the op registry, run with random changes of
the world between calls, each compiled call checked against eager jitgrad (and PyTorch where it
is installed).

A program is Python source, generated from choices a ``pick(n)`` callable makes (hypothesis
draws them in ``test_fuzz.py``, so failures shrink). The same source runs on jitgrad and on
torch (``T`` names the module), so the PyTorch cross-check needs no translation. A program
reads its arguments and, besides them, everything a compiled function must treat as live: a
global tensor ``G``, a global Python float ``K``, a helper function with globals of its own
(``H``, ``K2``), a closure cell ``C``, and a Module ``MOD`` (a parameter, a buffer, a plain tensor
attribute and a Python float attribute).

Between calls the world changes: globals, cells and Module attributes are rebound or edited in
place, the call runs under ``no_grad``, the argument is the global itself, and shapes and dtypes
change. After every call the results must match eager to 1e-12 (float64), must not share memory
with each other, the arguments or the world, and the results of earlier calls must be unchanged.
"""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np

import jitgrad as jg

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

    def choose(self, cond=lambda s: True):
        cands = [p for p in self.pool if cond(p[1])]
        return cands[self.pick(len(cands))] if cands else None

    def emit(self, expr: str, shape: tuple) -> None:
        name = f"v{self.n}"
        self.n += 1
        self.lines.append(f"{name} = {expr}")
        self.pool.append((name, shape))

    def step(self) -> None:
        kind = self.pick(11)
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
        # a for over range(int(n.item())), or an if in the body.
        name = f"v{self.n}"
        self.n += 1
        kind = self.pick(9)
        if kind == 6:  # an if without else, the carried value starting as another name's
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
            self.lines += [f"{name}_n = ({a}.abs().sum() * 2.0).clamp(max=6.0).floor()",
                           f"{name} = {a} * 1.0",
                           f"for _ in range(int({name}_n.item())):",
                           f"    {name} = {name} * 0.8 + {name}.sin() * 0.3"]
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
    """NumPy values of everything a program reads; both frameworks' objects are made from it."""

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
    K: float = 0.75
    K2: float = -0.5
    alpha: float = 1.25

    @staticmethod
    def make(rng, A: int, B: int, dtype=np.float64) -> "State":
        def r(*s):
            return rng.standard_normal(s).astype(dtype)
        return State(A, B, dtype, r(A, B), r(B), r(A, B), r(1, B), r(A, 1), r(B), r(B), r())


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


class World:
    """One framework's live objects for a program: its globals, helper, cell and Module."""

    def __init__(self, T, program: Program, st: State) -> None:
        self.T = T
        mod_ns = {"T": T}
        exec(MODULE_SOURCE, mod_ns)  # noqa: S102  (fixed source)
        self.mod = mod_ns["Mod"](st.weight, st.shift, st.gain, st.alpha)
        self.helper_ns = {"H": T.tensor(st.H), "K2": st.K2}
        exec(HELPER_SOURCE, self.helper_ns)  # noqa: S102
        self.ns = {"T": T, "G": T.tensor(st.G), "K": st.K, "helper": self.helper_ns["helper"],
                   "MOD": self.mod, "C0": st.C}
        exec(program.source, self.ns)  # noqa: S102  (generated from the fixed templates)
        self.prog, self.prog_vec, self.set_cell = self.ns["build"](T, self.mod)
        self.cell = T.tensor(st.C)
        self.set_cell(self.cell)

    def tensors(self) -> list:
        return [self.ns["G"], self.helper_ns["H"], self.cell, self.mod.weight, self.mod.shift,
                self.mod.gain]

    def rebind_all(self, st: State) -> None:
        T = self.T
        self.ns["G"] = T.tensor(st.G)
        self.helper_ns["H"] = T.tensor(st.H)
        self.cell = T.tensor(st.C)
        self.set_cell(self.cell)
        self.mod.weight = T.nn.Parameter(T.tensor(st.weight))
        self.mod.shift = T.tensor(st.shift)
        self.mod.gain = T.tensor(st.gain)


# -- changes between calls ---------------------------------------------------------------------
def _fresh(rng, arr):
    return rng.standard_normal(arr.shape).astype(arr.dtype)


ACTIONS = ["new_args", "rebind_G", "inplace_G", "rebind_H", "rebind_cell", "inplace_param",
           "replace_buffer", "inplace_buffer", "set_alpha", "rebind_K", "rebind_K2",
           "no_grad_call", "enable_grad_call", "arg_is_global", "reshape", "dtype"]


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
    return st


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
