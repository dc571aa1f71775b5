"""Differential fuzzing of compiled functions (see ``fuzzing.py``): random programs, random
changes of the world between calls (pieces of live state past the walk's bounds among them),
every call checked against eager jitgrad and, where torch is installed, eager jitgrad against
PyTorch; every result written in place after its call.

The short profile runs in CI. The long one is run before each release:

    JITGRAD_FUZZ=long python -m pytest tests/test_fuzz.py -q -s

or, with counts of mismatches and exceptions instead of a stop at the first failure and the
failing programs written to a folder:

    python tests/fuzz_long.py --target reference --programs 10000

(``JITGRAD_FUZZ_EXAMPLES=N`` sets the number of programs per target; it prints a summary line
with the programs, calls, traces and mismatches per target.)
"""

from __future__ import annotations

import functools
import os
import types
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jitgrad as jg
from jitgrad.trace.implicit import LiveStateWarning

from .fuzzing import new_stats, run_program

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


def _run(data, target: str) -> None:
    def pick(n: int) -> int:
        return data.draw(st.integers(0, n - 1)) if n > 1 else 0

    run_program(pick, target, STATS.setdefault(target, new_stats()), torch,
                on_note=lambda note: data.draw(st.just(note), label="program"))


@_settings("reference")
@given(data=st.data())
def test_fuzz_reference(data):
    _run(data, "reference")


@_settings("cpu")
@given(data=st.data())
def test_fuzz_cpu(data):
    _run(data, "cpu")


def test_fuzz_summary():
    """Prints what the fuzz tests above ran (with ``-s``), and fails if they ran nothing."""
    if not STATS:
        pytest.skip("the fuzz tests did not run in this session")
    for target, s in STATS.items():
        compiled = f", {s['numba']} compiled by Numba, {s['fallback']} on the interpreter" \
            if target == "cpu" else ""
        pieces = ", ".join(f"{k} {v}" for k, v in s["pieces"].items())
        print(f"\nfuzz {target}: {s['programs']} programs ({pieces}), {s['calls']} calls "
              f"({s['compiled_calls']} compiled), {s['traces']} traces{compiled}, "
              f"{s['lifted']} lifted loops, {s['writes']} results written in place, "
              f"{s['eager_fallbacks']} eager fallbacks, {s['invalid']} generated programs "
              "skipped as invalid, 0 mismatches")
        assert s["programs"] > 0


# -- what the fuzzers found, minimized (fixed: located paths are keyed by their root and outlive -----
# a re-made walk, a list index holds while the list keeps its length, numbers are scanned or warned of)
_NS = None  # a global the function below reads through


def test_located_tensor_stays_live_after_module_change():
    ns = types.SimpleNamespace(t=jg.tensor([1.0, 2.0, 3.0]))
    other = jg.nn.Linear(2, 2)  # never read by the function
    g = jg.jit(lambda x: (x * ns.t).sum(), target="reference")
    x = jg.ones(3)
    assert g(x).item() == 6.0
    ns.t = jg.tensor([10.0, 20.0, 30.0])
    assert g(x).item() == 60.0
    other.alpha = 2.0  # any Module attribute set, anywhere
    assert g(x).item() == 60.0  # 6.0: the first call's tensor


def test_located_tensor_stays_live_after_rebinding_its_holder():
    global _NS
    g = jg.jit(lambda x: (x * _NS.t).sum(), target="reference")
    x = jg.ones(3)
    got = []
    for v in (1.0, 10.0, 100.0):
        _NS = types.SimpleNamespace(t=jg.tensor([v, 2 * v, 3 * v]))
        got.append(g(x).item())
    assert got == [6.0, 60.0, 600.0]  # [6.0, 60.0, 6.0]


def test_negative_index_past_the_bound_follows_the_list():
    big = [jg.tensor([float(i)]) for i in range(1500)]  # past the walk's 1000 elements
    g = jg.jit(lambda x: (x * big[-1]).sum(), target="reference")
    x = jg.ones(1)
    g(x)
    g(x)
    big.append(jg.tensor([1500.0]))
    assert g(x).item() == 1500.0  # 1499.0


# (it took the allocator giving a dropped input tracer's id to v1, as CPython 3.11 does)
def test_write_into_a_new_tensor_with_a_tensor_read_twice():
    w = jg.ones(3)
    pair = [w, w]  # one tensor in two places the walk scans

    def f(x):
        v0 = x.flatten().reshape(x.shape)
        v1 = x.clone()
        v1[0] = 2.0  # TraceError: "cannot modify its inputs or tensors from outside it"
        return (v0 * pair[0]).sum() + v1.sum()

    # 12 from v0, 9 from v1 (its row 0 is overwritten): torch's x.grad.sum() is 21
    assert jg.grad(f, target="reference")(jg.ones(4, 3)).sum().item() == 21.0


@pytest.mark.parametrize("where", ["namespace", "partial", "deep", "big"])
def test_numbers_past_the_walk_are_reread_or_warned(where):
    box = types.SimpleNamespace(k=2.0)
    part = [functools.partial(lambda s, v: v * s, 2.0)]
    deep = {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 2.0}}}}}}}}
    big = [jg.ones(1)] * 100 + [2.0] * 1400
    read = {"namespace": lambda x: x * box.k, "partial": lambda x: part[0](x),
            "deep": lambda x: x * deep["a"]["b"]["c"]["d"]["e"]["f"]["g"]["h"],
            "big": lambda x: x * big[500]}[where]
    g = jg.jit(lambda x: read(x).sum(), target="reference")
    x = jg.ones(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert g(x).item() == 6.0
        box.k = 3.0
        part[0] = functools.partial(lambda s, v: v * s, 3.0)
        deep["a"]["b"]["c"]["d"]["e"]["f"]["g"]["h"] = 3.0
        big[500] = 3.0
        got = g(x).item()
    assert got == 9.0 or any(issubclass(w.category, LiveStateWarning) for w in caught)
