"""When a CPU trace compiles (``config.compile_after``): the interpreter runs its calls until
they have taken as long as a compile is expected to, and the values are the same either way.

The suite compiles at once (``JITGRAD_COMPILE_AFTER=0`` in conftest.py); these tests set the
policy themselves, and a clock that the tests move stands in for the interpreter's time."""

import numpy as np
import pytest

import jitgrad as jg
from jitgrad._settings import _compile_after
from jitgrad.backends import numba_cpu
from jitgrad.backends.numba_cpu import NumbaExecutable
from jitgrad.runtime import nodes
from jitgrad.runtime.nodes import _Deferred


class _Clock:
    """``time.perf_counter`` for the runtime's nodes: each read moves it on by ``step``, so
    that every interpreted call (two reads) takes ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def perf_counter(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def policy(monkeypatch):
    """Set ``config.compile_after`` and the clock; restores the suite's policy after."""
    def set_policy(after, step: float = 0.1, cost: float | None = None):
        monkeypatch.setattr(jg.config, "compile_after", after)
        monkeypatch.setattr(nodes, "time", _Clock(step))
        if cost is not None:
            _predict(monkeypatch, cost)
    return set_policy


def _predict(monkeypatch, seconds: float) -> None:
    """Every compile is predicted to take ``seconds``."""
    monkeypatch.setattr(numba_cpu.NumbaCPUBackend, "compile_cost", lambda self, g: seconds)


def _sin_x(x):
    return (jg.sin(x) * x).sum()


def _want(x):
    return np.sin(x) + x * np.cos(x)


def _exe(f, x):
    return f._rt.node_for(f._rt.prepare((x,), {}), (x,), {}).exe


def test_a_trace_compiles_once_its_calls_took_as_long_as_its_compile_is_predicted_to(policy):
    policy(None, step=0.1, cost=0.35)
    f = jg.grad(_sin_x)
    xs = [np.linspace(-1, 1, 5) * k for k in range(1, 7)]
    for k, x in enumerate(xs):
        np.testing.assert_allclose(f(jg.tensor(x)).numpy(), _want(x), rtol=1e-12)
        # 0.1 s a call: after the fourth, the interpreter's 0.4 s pass the compile's 0.35 s
        assert f.cache_info().compiles == (0 if k < 3 else 1), k
    assert type(_exe(f, jg.tensor(xs[0]))) is NumbaExecutable
    assert f.cache_info().traces == 1 and f.cache_info().interpreted == 4


def test_a_number_of_seconds_is_the_budget_and_zero_compiles_at_once(policy):
    policy(0.25, step=0.1)
    f = jg.grad(_sin_x)
    x = np.linspace(0.5, 2.0, 4)
    for k in range(4):
        np.testing.assert_allclose(f(jg.tensor(x)).numpy(), _want(x), rtol=1e-12)
        assert f.cache_info().compiles == (0 if k < 2 else 1), k  # 0.3 s after the third
    policy(0)
    g = jg.grad(_sin_x)
    g(jg.tensor(x))
    assert g.cache_info().compiles == 1


def test_a_trace_with_guards_waits_for_a_second_call_even_with_no_budget(policy):
    policy(0)

    def f(x):
        y = jg.sin(x) if x.sum() > 0 else jg.cos(x) * 2
        return (y * y).sum()

    g = jg.grad(f)
    x = np.array([0.3, 0.4])
    g(jg.tensor(x))
    assert g.cache_info().compiles == 0 and type(_exe(g, jg.tensor(x))) is _Deferred
    np.testing.assert_allclose(g(jg.tensor(x)).numpy(), 2 * np.sin(x) * np.cos(x), rtol=1e-12)
    assert g.cache_info().compiles == 1


def test_interpreted_guards_fail_and_retrace_as_compiled_ones_do(policy):
    policy(None, cost=1e9)  # never compiles here

    def f(x):
        y = jg.sin(x) if x.sum() > 0 else jg.cos(x) * 2
        return (y * y).sum()

    g = jg.grad(f)
    for s in (1, -1, 1, -1, 2, -3):
        x = np.array([0.3, 0.4]) * s
        want = 2 * np.sin(x) * np.cos(x) if x.sum() > 0 else -8 * np.cos(x) * np.sin(x)
        np.testing.assert_allclose(g(jg.tensor(x)).numpy(), want, rtol=1e-12)
    info = g.cache_info()
    assert (info.traces, info.compiles, info.interpreted) == (2, 0, 6)


def test_a_lifted_loop_runs_on_the_interpreter_for_any_trip_count(policy):
    policy(None, cost=1e9)

    def doubling(x):
        y = x * 2
        while y.norm() < 1000:
            y = y * 2
        return (y * jg.tensor([0.1, 1.0, 1e-4], dtype=jg.float64)).sum()

    f = jg.grad(doubling)
    for scale in (1.0, 1e-3, 30.0, 1e-6, 0.4):
        x = np.array([0.3, -0.2, 0.05]) * scale
        n, y = 1, x * 2
        while np.linalg.norm(y) < 1000:
            y, n = y * 2, n + 1
        np.testing.assert_allclose(f(jg.tensor(x)).numpy(), 2.0 ** n * np.array([0.1, 1, 1e-4]),
                                   rtol=1e-12)
    info = f.cache_info()
    assert info.traces == 1 and info.compiles == 0 and "lifted" in info.loops[0]


def test_lower_compiles_an_interpreted_trace_at_once(policy):
    policy(None, cost=1e9)
    f = jg.grad(_sin_x)
    x = jg.tensor(np.linspace(0.0, 1.0, 3))
    f(x)
    assert f.cache_info().compiles == 0
    assert len(f.lower(x).kernels) == 1 and f.cache_info().compiles == 1
    np.testing.assert_allclose(f(x).numpy(), _want(x.numpy()), rtol=1e-12)


def test_the_environment_variable_is_seconds_or_auto():
    assert _compile_after(None) is None and _compile_after("auto") is None
    assert _compile_after("0") == 0.0 and _compile_after(" 1.5 ") == 1.5
    for bad in ("-1", "soon", "nan"):
        with pytest.raises(ValueError, match="JITGRAD_COMPILE_AFTER"):
            _compile_after(bad)


def test_config_patch_sets_for_a_block_and_names_an_unknown_setting():
    with jg.config.patch(compile_after=2.5, retrace_limit=3):
        assert (jg.config.compile_after, jg.config.retrace_limit) == (2.5, 3)
    assert (jg.config.compile_after, jg.config.retrace_limit) == (0, 32)

    @jg.config.patch(lift_loops=False)
    def inside():
        return jg.config.lift_loops
    assert inside() is False and jg.config.lift_loops is True
    with pytest.raises(AttributeError, match="compile_afterr"):
        with jg.config.patch(compile_afterr=0):
            pass


def test_a_trace_compiles_in_a_build_process_while_the_interpreter_serves(monkeypatch):
    """With compile_in_background, the call that makes a compile due starts a build process and
    returns at once (interpreted); later calls stay interpreted until the build is done, and
    then load its kernel from the disk cache; every value equals the interpreter's."""
    import time

    from jitgrad.backends import numba_build
    monkeypatch.setattr(jg.config, "compile_after", None)
    monkeypatch.setattr(jg.config, "compile_in_background", True)
    _predict(monkeypatch, 1e-9)  # a compile is due at once

    def f(x):
        return ((x * 1.5).sin() * x.exp()).sum()

    c = jg.grad(f, target="numba-cpu")
    r = jg.grad(f, target="reference")
    x = jg.tensor(np.linspace(-1, 1, 7))
    t0 = time.perf_counter()
    np.testing.assert_allclose(c(x).numpy(), r(x).numpy(), rtol=1e-12)
    node = next(iter(c._rt.cache.values()))
    assert isinstance(node.exe, _Deferred) and node.exe.build is not None  # the build runs
    assert time.perf_counter() - t0 < 5.0  # and the call did not wait for it
    deadline = time.time() + 120
    while not isinstance(node.exe, NumbaExecutable) and time.time() < deadline:
        np.testing.assert_allclose(c(x).numpy(), r(x).numpy(), rtol=1e-12)
        time.sleep(0.05)
    assert isinstance(node.exe, NumbaExecutable)
    assert c.cache_info().compiles == 1 and c.cache_info().interpreted >= 1
    np.testing.assert_allclose(c(x * 0.5).numpy(), r(x * 0.5).numpy(), rtol=1e-12)
    assert all(p.poll() is not None for p in numba_build._running)


def test_background_compile_off_compiles_in_place(monkeypatch):
    monkeypatch.setattr(jg.config, "compile_after", None)
    monkeypatch.setattr(jg.config, "compile_in_background", False)
    _predict(monkeypatch, 1e-9)
    c = jg.grad(lambda x: (x * x.cos()).sum(), target="numba-cpu")
    c(jg.tensor(np.linspace(0, 1, 5)))
    assert isinstance(next(iter(c._rt.cache.values())).exe, NumbaExecutable)


def test_the_compile_is_predicted_from_the_kernels_size_and_the_cache(tmp_path, monkeypatch):
    """Two kernels of a different size: the larger is predicted to take longer, in proportion
    to its lines; once compiled (in the disk cache) either is a load; and a compile's measured
    time sets the pace of later predictions."""
    from jitgrad.backends import disk_cache
    monkeypatch.setenv("JITGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(numba_cpu, "_pace", 1.0)
    backend = numba_cpu.NumbaCPUBackend()

    def graph(f, x):
        return jg.grad(f, target="reference").lower(x)._node.optimized

    small = graph(_sin_x, jg.tensor(np.linspace(0, 1, 5)))
    big = graph(lambda x: sum(((x * k).sin() * (x + k).exp()).sum() for k in range(1, 6)),
                jg.tensor(np.linspace(0, 1, 5)))
    lines = [numba_cpu.Codegen(g).generate().count("\n") for g in (small, big)]
    cost = [backend.compile_cost(g) for g in (small, big)]
    for c, n in zip(cost, lines):  # (Numba is loaded in this process: no import to pay)
        assert c == pytest.approx(numba_cpu.UNIT_SECONDS + numba_cpu.LINE_SECONDS * n)
    assert lines[1] > lines[0] and cost[1] > cost[0]
    numba_cpu.compile_source(numba_cpu.Codegen(small).generate(), small, aot_ok=False)
    assert backend.compile_cost(small) == numba_cpu.LOAD_SECONDS  # its module is cached now
    measured = numba_cpu._pace
    assert measured != 1.0 and 0.25 <= measured <= 4.0  # what this compile took / predicted
    assert backend.compile_cost(big) == pytest.approx(cost[1] * measured)
    assert disk_cache.cache_dir() == str(tmp_path)
    assert numba_cpu.predicted_seconds([]) == 0.0  # (every piece built ahead of time)


def test_a_deferred_trace_needs_only_what_it_is_handed(monkeypatch):
    """``_Deferred`` reaches no runtime: a graph, its calls before compiling and ``Hooks`` of
    values and callables serve it (here a backend, a compile and two notes of our own)."""
    from types import SimpleNamespace

    from jitgrad.backends import get_backend
    monkeypatch.setattr(jg.config, "compile_after", 0)
    x = np.array([0.5, 1.0])
    graph = jg.grad(_sin_x, target="reference").lower(jg.tensor(x))._node.optimized
    seen = []
    ref = get_backend("reference")
    hooks = nodes.Hooks("f", ref, lambda g: seen.append("compile") or ref.compile(g),
                        lambda node: seen.append("promoted"), lambda: seen.append("interpreted"))
    exe = _Deferred(graph, 2, hooks)
    exe.node = SimpleNamespace(exe=exe)
    for _ in range(2):  # outputs: the value, then the gradient
        np.testing.assert_allclose(exe([x])[1], _want(x))
    assert seen == ["interpreted", "interpreted", "compile", "promoted"]
    assert exe.node.exe is not exe  # the node runs the compiled executable from here on
    np.testing.assert_allclose(exe.node.exe([x])[1], _want(x))
