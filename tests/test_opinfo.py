"""PyTorch's own operator samples (op_db), run through jitgrad against torch (tests/opinfo.py).

Every op jitgrad has, under every public spelling (function, ``Tensor`` method, alias), is
checked forward and backward in float32 and float64 on the first ``TEST_MAX_SAMPLES`` samples;
a new op is picked up by name. What does not pass yet is in ``KNOWN_FAILURES`` (strict xfail:
a fix makes its test fail until the line goes). A few ops also run compiled. The full report,
every sample: ``python -m tests.opinfo``.
"""

import functools

import numpy as np
import pytest

import jitgrad

torch = pytest.importorskip("torch", reason="checked against PyTorch's op_db")

from tests import opinfo  # noqa: E402  (after the skip: it needs torch to measure anything)

try:
    ENTRIES = {e.label: e for e in opinfo.entries() if e.present}
except ImportError as exc:  # torch without its test utilities
    pytest.skip(f"torch.testing._internal op_db cannot be loaded: {exc}", allow_module_level=True)


def _params():
    for label, e in ENTRIES.items():
        known = opinfo.KNOWN_FAILURES.get(label)
        for dtype in opinfo.dtypes_of(e.op):
            phases = ["forward"] + (["backward"] if opinfo.differentiable(e.op, dtype) else [])
            for phase in phases:
                marks = ()
                if known and f"{dtype}-{phase}" in known[0].split():
                    marks = pytest.mark.xfail(strict=True, reason=known[1])
                yield pytest.param(label, dtype, phase, marks=marks,
                                   id=f"{label}-{dtype}-{phase}")


@functools.lru_cache(maxsize=None)
def _result(label: str, dtype: str) -> opinfo.Result:
    # forward and backward come from one run over the samples
    return opinfo.check(ENTRIES[label], dtype, max_samples=opinfo.TEST_MAX_SAMPLES)


def _assert_passes(result: opinfo.Result, phase: str) -> None:
    p = result.phases.get(phase)
    if p is None or not p.tested:
        pytest.skip(f"no {phase} sample to check (set aside: {dict(result.set_aside) or 'none'})")
    if p.failures:
        index, kind, message = p.failures[0]
        pytest.fail(f"{result.entry.label} {result.dtype} {phase}: {len(p.failures)}/{p.tested} "
                    f"samples fail; sample {index}: {kind}: {message}", pytrace=False)


@pytest.mark.parametrize("label,dtype,phase", list(_params()))
def test_eager_against_torch(label, dtype, phase):
    _assert_passes(_result(label, dtype), phase)


def test_known_failures_name_entries_jitgrad_has():
    """A known failure names an entry that exists and is tested (a renamed op leaves none)."""
    stale = sorted(set(opinfo.KNOWN_FAILURES) - set(ENTRIES))
    assert not stale, f"KNOWN_FAILURES names entries jitgrad no longer has: {stale}"


@pytest.mark.parametrize("name", opinfo.COMPILED_TESTS)
def test_compiled_against_torch(name):
    """``jitgrad.jit`` of the forward and ``jitgrad.grad`` of the backward, first sample."""
    entry = next(e for e in opinfo.entries([name]) if e.namespace != "Tensor")
    with jitgrad.config.patch(compile_after=0.0, compile_in_background=False,
                              defer_guarded=False):
        result = opinfo.check(entry, "float64", compiled="cpu", max_samples=1)
    _assert_passes(result, "compiled forward")
    _assert_passes(result, "compiled backward")


def test_harness_reports_wrong_values_and_gradients():
    """The harness itself: a wrong forward and a right forward with a wrong gradient are each
    caught as "wrong", and an op that raises as "error"."""
    sin = next(e for e in opinfo.entries(["sin"]) if e.label == "sin")

    def zero_grad_sin(x):
        return jitgrad.sin(x).detach() + 0 * x

    def raising(x):
        raise ValueError("no such op")

    cases = {"forward": jitgrad.cos, "backward": zero_grad_sin, "error": raising}
    for what, fn in cases.items():
        entry = opinfo.Entry("sin", "torch", sin.op, sin.torch_call, fn)
        r = opinfo.check(entry, "float64")
        phase = "forward" if what == "error" else what
        kinds = {f[1] for f in r.phases[phase].failures}
        assert kinds == ({"error"} if what == "error" else {"wrong"}), (what, r.phases)


def test_compare_tolerances_follow_the_dtype():
    """float32 is held to torch's float32 tolerance and float64 to float64's; an error within
    ten times it is "imprecise", beyond it "wrong"; integers are exact; dtypes must agree."""
    want = torch.tensor([1.0, 100.0], dtype=torch.float64)
    close = jitgrad.tensor(np.array([1.0, 100.0 + 5e-5]))
    assert opinfo.compare(want, close, "float32") is None
    assert opinfo._compare(want, close, "float64")[0] == "imprecise"
    assert opinfo._compare(want, jitgrad.tensor(np.array([1.0, 101.0])), "float64")[0] == "wrong"
    assert "dtype" in opinfo.compare(want, jitgrad.tensor([1.0, 100.0]), "float64")
    assert opinfo.compare(torch.tensor([3]), jitgrad.tensor([3]), "int64") is None
    assert "values" in opinfo.compare(torch.tensor([3]), jitgrad.tensor([4]), "int64")


def test_command_prints_the_report(capsys):
    assert opinfo.main(["--only", "neg", "exp"]) == 0
    out = capsys.readouterr().out
    assert "SILENT WRONG RESULTS" in out and "COVERAGE" in out and "FAILURES BY CAUSE" in out
    line = next(x for x in out.splitlines() if x.split()[:1] == ["all"])
    entries = int(line.split()[1])
    assert entries == len(opinfo.entries(["neg", "exp"])) > 0
