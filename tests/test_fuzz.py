"""Differential fuzzing of compiled functions (see ``fuzzing.py``): random programs, random
changes of the world between calls, every call checked against eager jitgrad and, where torch
is installed, eager jitgrad against PyTorch.

The short profile runs in CI. The long one is run before each release:

    JITGRAD_FUZZ=long python -m pytest tests/test_fuzz.py -q -s

(``JITGRAD_FUZZ_EXAMPLES=N`` sets the number of programs per target; it prints a summary line
with the programs, calls, traces and mismatches per target.)
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jitgrad as jg
from jitgrad.runtime import nodes

from .test_tiers import _Clock
from .fuzzing import (ACTIONS, Program, State, World, apply_action, as_numpy, assert_close,
                      check_no_sharing, eager_result, eager_values)

try:
    import torch
except ImportError:  # the PyTorch cross-check is skipped without it
    torch = None

LONG = os.environ.get("JITGRAD_FUZZ") == "long"
# Programs per target: each CPU program costs Numba compiles (one per trace it takes).
EXAMPLES = {"reference": 10000 if LONG else 60, "cpu": 2000 if LONG else 12}
if "JITGRAD_FUZZ_EXAMPLES" in os.environ:
    EXAMPLES = dict.fromkeys(EXAMPLES, int(os.environ["JITGRAD_FUZZ_EXAMPLES"]))

STATS: dict = {}


def _settings(target: str):
    return settings(max_examples=EXAMPLES[target], deadline=None, database=None,
                    derandomize=not LONG, print_blob=True,
                    suppress_health_check=list(HealthCheck))


def run_program(data, target: str) -> None:
    def pick(n: int) -> int:
        return data.draw(st.integers(0, n - 1)) if n > 1 else 0

    program = Program(pick, n_ops=1 + pick(8))
    mode = ["value_and_grad", "grad", "jit"][pick(3)]
    argnums = [(0,), (0, 1), (1,)][pick(3)] if mode != "jit" else ()
    actions = [ACTIONS[pick(len(ACTIONS))] for _ in range(1 + pick(5))]
    rng = np.random.default_rng(pick(1 << 16))
    state = State.make(rng, 3 + pick(3), 3 + pick(4))
    worlds = [World(jg, program, state)]
    if torch is not None:
        worlds.append(World(torch, program, state))
    stats = STATS.setdefault(target, {"programs": 0, "calls": 0, "traces": 0, "invalid": 0})
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
    # A third of the CPU programs compile every trace at once; a third defer traces with
    # guards to their second call (config.defer_guarded); a third run each trace on the
    # interpreter for its first 1 to 4 calls (config.compile_after, on a clock that counts
    # calls), as users get them, so that traces change executables between calls.
    policy = pick(3) if target == "cpu" else 1
    after = pick(4) + 0.5 if policy == 2 else 0
    note = (f"program:\n{program.source}\nmode={mode} argnums={argnums} actions={actions} "
            f"defer_guarded={policy != 0} compile_after={after} (a call takes 1 s)")
    data.draw(st.just(note), label="program")
    clock = nodes.time
    with jg.config.patch(defer_guarded=policy != 0, compile_after=after):
        nodes.time = _Clock(1.0)
        try:
            _run_calls(program, mode, argnums, actions, rng, state, worlds, stats, target, note)
        finally:
            nodes.time = clock


def _run_calls(program, mode, argnums, actions, rng, state, worlds, stats, target, note):
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
        want_v, want_g = eager_result(worlds[0], state, argnums or (0,), x_is_global)
        if mode == "jit":
            want_vals = eager_values(worlds[0], state, x_is_global)
        what = f"call {step} after {action}"
        x = worlds[0].ns["G"] if x_is_global else jg.tensor(state.x)
        y = jg.tensor(state.y)
        if action == "no_grad_call":
            with jg.no_grad():
                out = f(x, y)
        elif action == "enable_grad_call":
            with jg.no_grad(), jg.enable_grad():
                out = f(x, y)
        else:
            out = f(x, y)
        stats["calls"] += 1
        if mode == "jit":
            value, grads = None, []
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
            results = ([] if value is None else [as_numpy(value)]) + [as_numpy(g) for g in grads]
        if value is not None:
            assert_close(results[0], want_v, state.dtype, f"{what}: value")
            assert results[0].dtype == want_v.dtype, f"{what}: value dtype"
        for i, (g, w) in enumerate(zip(results[len(results) - len(grads):], want_g)):
            assert g.shape == w.shape, f"{what}: gradient {i} shape {g.shape} != {w.shape}"
            assert g.dtype == w.dtype, f"{what}: gradient {i} dtype {g.dtype} != {w.dtype}"
            assert_close(g, w, state.dtype, f"{what}: gradient {i}")
        inputs = [x._value, y._value] + [t._value for t in worlds[0].tensors()]
        check_no_sharing(results, inputs, what)
        for old, then in kept:
            for r, v in zip(old, then):
                np.testing.assert_array_equal(r, v, err_msg=f"{what}: an earlier result changed")
        kept.append((results, [r.copy() for r in results]))
        if len(worlds) > 1 and state.dtype is np.float64:
            t_v, t_g = eager_result(worlds[1], state, argnums or (0,), x_is_global)
            np.testing.assert_allclose(want_v, t_v, rtol=1e-9, atol=1e-9,
                                       err_msg=f"{what}: eager value vs torch")
            if not program.nonsmooth:
                for i, (w, t) in enumerate(zip(want_g, t_g)):
                    np.testing.assert_allclose(w, t, rtol=1e-9, atol=1e-9,
                                               err_msg=f"{what}: eager gradient {i} vs torch")
    stats["traces"] += f.cache_info().traces
    stats["lifted"] = stats.get("lifted", 0) + sum(": lifted (" in r for r in f.cache_info().loops)
    if target == "cpu":
        # Every trace of registered primitives compiles with Numba: no silent interpreter runs
        # (a deferred trace compiles now).
        for n in list(_nodes(f)):
            f._rt.compile_now(n)
        fell_back = [n for n in _nodes(f) if type(n.exe).__name__ == "ReferenceExecutable"]
        stats["numba"] = stats.get("numba", 0) + len(list(_nodes(f))) - len(fell_back)
        stats["fallback"] = stats.get("fallback", 0) + len(fell_back)
        assert not fell_back, f"ran on the interpreter: {fell_back[0].exe.note}\n{note}"


def _nodes(f):
    """Every trace node of compiled function ``f``'s trace trees."""
    stack = list(f._rt.cache.values())
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children.values())


@_settings("reference")
@given(data=st.data())
def test_fuzz_reference(data):
    run_program(data, "reference")


@_settings("cpu")
@given(data=st.data())
def test_fuzz_cpu(data):
    run_program(data, "cpu")


def test_fuzz_summary():
    """Prints what the fuzz tests above ran (with ``-s``), and fails if they ran nothing."""
    if not STATS:
        pytest.skip("the fuzz tests did not run in this session")
    for target, s in STATS.items():
        compiled = f", {s['numba']} compiled by Numba, {s['fallback']} on the interpreter" \
            if "numba" in s else ""
        print(f"\nfuzz {target}: {s['programs']} programs, {s['calls']} calls, {s['traces']} "
              f"traces{compiled}, {s.get('lifted', 0)} lifted loops, {s['invalid']} generated "
              "programs skipped as invalid, 0 mismatches")
        assert s["programs"] > 0
