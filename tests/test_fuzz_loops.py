"""Differential fuzzing of loops whose body branches: random programs with one to three
carried values that start as the arguments, as each other or as new values, an ``if`` whose
sides change random subsets of them (or none, with or without ``else``), hand on a value made
before the ``if``, or copy one carried value into another. Each program's compiled gradient
is called on many inputs, which take the sides in other orders than its first trace did, and
must equal eager on every one: a loop lifted from a trace that could not tell two programs
apart gives a wrong answer on some later input.

The same programs also run inside function transforms (jvp, jacfwd, hessian, vmap of grad
and of jvp, grad of grad, a third reverse, grad of hessian and of vmap of grad), compiled,
against the transform run eagerly (``JITGRAD_FUZZ_TRANSFORM_EXAMPLES`` of them; 6 by default;
200 gave no mismatch).

``JITGRAD_FUZZ_EXAMPLES=N`` sets the number of programs, ``JITGRAD_FUZZ_LOOP_TARGET`` the
backend (the reference interpreter unless told; a Numba target compiles each trace); ``-s``
prints a summary line.
"""

import os

import numpy as np
import pytest

import jitgrad as jg
from jitgrad.runtime import nodes

from .test_loops import _host
from .test_tiers import _Clock

PROGRAMS = int(os.environ.get("JITGRAD_FUZZ_EXAMPLES", 200))
INPUTS = 16
TARGET = os.environ.get("JITGRAD_FUZZ_LOOP_TARGET", "reference")
STATS: dict = {"programs": 0, "calls": 0, "traces": 0, "lifted": 0}


def _expr(rng, names: list) -> str:
    a, b = (round(float(v), 2) for v in rng.uniform(-1.2, 1.2, 2))
    v1, v2 = (names[int(rng.integers(len(names)))] for _ in range(2))
    forms = [f"{v1} * {a} + {b}", f"({v1} + {v2}).sin()", f"{v1} * 0.9 + {v2} * {a} * 0.1",
             f"({v1} * {a}).tanh() + {v2} * 0.5", v1]
    return forms[int(rng.integers(len(forms)))]


def make_program(seed: int, extras: bool = False) -> str:
    """The source of ``prog(x, w)``: a ``while`` of data-dependent length whose body branches;
    with ``extras``, some programs also ``break`` or ``continue`` on data, and each also gets
    ``prog_vec``, which returns the carried values themselves."""
    rng = np.random.default_rng(seed)
    more = np.random.default_rng(seed + 1_000_000) if extras else None
    k = 1 + int(rng.integers(3))
    carried = [f"c{i}" for i in range(k)]
    lines = ["def prog(x, w):", "    n = x.abs().sum() * 0.7"]
    for i, c in enumerate(carried):
        start = ["x", "w", "x * 0.5 + 0.1", "w.sin()"] + carried[:i]
        lines.append(f"    {c} = {start[int(rng.integers(len(start)))]}")
    lines.append("    while n < 6.0:")
    early = int(more.integers(4)) if more is not None else 0  # 1: break, 2: continue
    if early == 2:
        lines.append("        n = n + 1.0")  # before a continue can skip it
    body_names = carried + ["x", "w"]
    if rng.integers(2):
        lines.append(f"        t = {_expr(rng, carried + ['w'])}")
        body_names = body_names + ["t"]
    a, b = (round(float(v), 2) for v in rng.uniform(0.5, 3.0, 2))
    lines.append(f"        if ({body_names[int(rng.integers(len(body_names)))]}.sum() * {a} + "
                 f"n * {b}).sin() > 0:")

    def side() -> list:
        out = []
        for c in carried:
            r = int(rng.integers(4))
            if r == 1:
                out.append(f"            {c} = {_expr(rng, body_names)}")
            elif r == 2:  # in place, on a tensor of its own (an argument's alias would change it)
                out += [f"            {c} = {c} * 0.95", f"            {c} += {_expr(rng, body_names)}"]
        return out or ["            pass"]

    lines += side()
    if rng.integers(2):
        lines += ["        else:"] + side()
    tail = [f"        {c} = {_expr(rng, carried + ['x', 'w'])}" for c in carried
            if rng.integers(3) == 0]
    if early in (1, 2):
        a = round(float(more.uniform(0.5, 3.0)), 2)
        word = "break" if early == 1 else "continue"
        at = int(more.integers(len(tail) + 1))
        tail[at:at] = [f"        if ({carried[-1]}.sum() * {a}).cos() > 0.6:",
                       f"            {word}"]
    lines += tail
    if early != 2:
        lines.append("        n = n + 1.0")
    coefs = [round(float(v), 2) for v in rng.uniform(-1, 1, k)]
    lines.append("    return " + " + ".join(f"({c} * {s}).sum()" for c, s in zip(carried, coefs))
                 + " + (x * w).sum() * 0.01")
    if more is not None:
        lines += ["", lines[0].replace("prog(", "prog_vec(")] + lines[1:-1] + [
            "    return " + ", ".join(carried) + ","]
    return "\n".join(lines)


def _eager(prog, x, w):
    tx, tw = jg.tensor(x, requires_grad=True), jg.tensor(w, requires_grad=True)
    out = prog(tx, tw)
    out.backward()
    return out.item(), tx.grad.numpy(), tw.grad.numpy()


@pytest.mark.parametrize("seed", range(PROGRAMS))
def test_fuzz_loop_sides(seed, monkeypatch):
    # On the CPU, each trace runs on the interpreter for its first 1 to 4 calls (on a clock
    # that counts calls), so that the kernel takes over between calls.
    monkeypatch.setattr(jg.config, "compile_after", seed % 4 + 0.5)
    monkeypatch.setattr(nodes, "time", _Clock(1.0))
    src = make_program(seed, extras=True)
    ns: dict = {}
    exec(compile(src, f"<loop program {seed}>", "exec"), ns)
    prog = ns["prog"]
    f = jg.value_and_grad(prog, argnums=(0, 1), target=TARGET)
    fv = jg.jit(ns["prog_vec"], target=TARGET)
    rng = np.random.default_rng(10_000 + seed)
    for i in range(INPUTS):
        x, w = rng.uniform(-3, 3, 2), rng.uniform(-2, 2, 2)
        tx, tw = jg.tensor(x), jg.tensor(w)
        v, (gx, gw) = f(tx, tw)
        ve, gxe, gwe = _eager(prog, x, w)
        what = f"program {seed}, input {i}:\n{src}\n{f.cache_info().loops}"
        for got, want in ((v, ve), (gx, gxe), (gw, gwe)):
            np.testing.assert_allclose(_host(got), want, rtol=1e-10, atol=1e-12, err_msg=what)
        outs = [_host(o) for o in fv(tx, tw)]
        wants = ns["prog_vec"](jg.tensor(x), jg.tensor(w))
        for k, (got, want) in enumerate(zip(outs, wants)):
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{what}\njit result {k}")
            assert not any(np.shares_memory(got, a) for a in [tx.numpy(), tw.numpy()] + outs[:k]), \
                f"{what}\njit result {k} shares memory"
    info = f.cache_info()
    STATS["programs"] += 1
    STATS["calls"] += INPUTS
    STATS["traces"] += info.traces
    STATS["lifted"] += sum(": lifted (" in r for r in info.loops)


def test_fuzz_loop_sides_summary():
    """Prints what the programs above ran (with ``-s``) and that some loops were lifted."""
    if not STATS["programs"]:
        pytest.skip("the loop fuzz tests did not run in this session")
    print(f"\nloop fuzz ({TARGET}): {STATS['programs']} programs, {STATS['calls']} calls, "
          f"{STATS['traces']} traces, {STATS['lifted']} lifted loops, 0 mismatches")
    assert STATS["lifted"] > 0


# (each program's eager reference traces the transform again at every call: a few seconds)
# (the suite's six: a grad of hessian, its loop unrolled by an if in the body, and a grad of vmap
# of grad, a jacfwd, a vmap of grad, a third reverse and a grad of grad whose loops lift)
TRANSFORM_SEEDS = (range(int(os.environ["JITGRAD_FUZZ_TRANSFORM_EXAMPLES"]))
                   if "JITGRAD_FUZZ_TRANSFORM_EXAMPLES" in os.environ else (2, 3, 5, 7, 9, 19))
TSTATS: dict = {"programs": 0, "lifted": 0, "unrolled": 0}
TRANSFORMS = {
    # each: the transform of prog(x, w), called with x (a 2-vector, or a batch of 3) and w
    "jvp": lambda prog: lambda x, w: jg.func.jvp(lambda a: prog(a, w), (x,),
                                                 (x.cos(),))[1],
    "jacfwd": lambda prog: lambda x, w: jg.func.jacfwd(prog, argnums=(0, 1))(x, w),
    "hessian": lambda prog: lambda x, w: jg.func.hessian(prog)(x, w),
    "vmap_grad": lambda prog: lambda x, w: jg.func.vmap(
        jg.func.grad(prog, argnums=(0, 1)), in_dims=(0, None))(
            x.reshape(1, 2) * jg.tensor([[1.0], [-0.4], [2.5]], dtype=x.dtype), w),
    # reverse over reverse, and a third reverse (the JVP of a reverse loop reversed again)
    "grad_grad": lambda prog: lambda x, w: jg.func.grad(
        lambda a, b: sum(g.sum() for g in jg.func.grad(prog, argnums=(0, 1))(a, b)),
        argnums=(0, 1))(x, w),
    "grad3": lambda prog: lambda x, w: jg.func.grad(
        lambda a: jg.func.grad(lambda c: jg.func.grad(prog)(c, w).sum())(a).sum())(x),
    "grad_vmap_grad": lambda prog: lambda x, w: jg.func.grad(
        lambda a: jg.func.vmap(jg.func.grad(prog, argnums=(0, 1)), in_dims=(0, None))(
            a.reshape(1, 2) * jg.tensor([[1.0], [-0.4], [2.5]], dtype=x.dtype), w)[0].sum())(x),
    "grad_hessian": lambda prog: lambda x, w: jg.func.grad(
        lambda a, b: jg.func.hessian(prog)(a, b).sum(), argnums=(0, 1))(x, w),
    "vmap_jvp": lambda prog: lambda x, w: jg.func.vmap(
        lambda a: jg.func.jvp(lambda b: prog(b, w), (a,), (jg.ones_like(a),))[1])(
            x.reshape(1, 2) * jg.tensor([[0.3], [1.0], [-2.0]], dtype=x.dtype)),
}


@pytest.mark.parametrize("seed", TRANSFORM_SEEDS)
def test_fuzz_transforms_around_loops(seed):
    """A transform of a generated loop program (``TRANSFORMS``), compiled: every call equals
    the same transform run eagerly (the loop unrolled there)."""
    src = make_program(5000 + seed, extras=True)
    ns: dict = {}
    exec(compile(src, f"<loop program {5000 + seed}>", "exec"), ns)
    name = sorted(TRANSFORMS)[seed % len(TRANSFORMS)]
    fn = TRANSFORMS[name](ns["prog"])
    with jg.config.patch(compile_after=0.0, compile_in_background=False, aot_builds=False):
        f = jg.jit(fn, target=TARGET)
        rng = np.random.default_rng(20_000 + seed)
        for i in range(6):
            tx, tw = jg.tensor(rng.uniform(-3, 3, 2)), jg.tensor(rng.uniform(-2, 2, 2))
            got, want = f(tx, tw), fn(tx, tw)
            got = got if isinstance(got, tuple) else (got,)
            want = want if isinstance(want, tuple) else (want,)
            what = f"{name} of program {5000 + seed}, input {i}:\n{src}\n{f.cache_info().loops}"
            for g, e in zip(got, want):
                np.testing.assert_allclose(_host(g), e.numpy(), rtol=1e-10, atol=1e-12,
                                           err_msg=what)
    loops = f.cache_info().loops
    TSTATS["programs"] += 1
    TSTATS["lifted"] += sum(": lifted (" in r for r in loops)
    TSTATS["unrolled"] += sum("not lifted" in r for r in loops)


def test_fuzz_transforms_summary():
    """Prints what the transform programs ran (with ``-s``); some of their loops lifted."""
    if not TSTATS["programs"]:
        pytest.skip("the transform fuzz tests did not run in this session")
    print(f"\ntransform fuzz ({TARGET}): {TSTATS['programs']} programs, {TSTATS['lifted']} "
          f"lifted loops, {TSTATS['unrolled']} loop reports not lifted, 0 mismatches")
    assert TSTATS["lifted"] > 0
