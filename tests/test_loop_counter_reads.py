"""A loop's counter read in its body (``trace/numbers.py``): the variable of a ``for`` over a
range that the lifted loop carries, used in arithmetic (``lr * 0.9 ** i``, ``i * dt``), as a
dynamic index (``x[i]``) or in comparisons that feed tensor code, is computed by the IR from the
carried int64, so one trace serves every trip count. Read as a Python value (``if i < 2:``, a
list's index, ``math.exp(-i)``), it is guarded and the loop stays one trace per trip count. Each
program is checked against eager at every call, values and gradients."""

import math

import numpy as np
import pytest

import jitgrad as jg
from tests.test_loops import check


def decay(x, n):
    # gradient steps on (x^2 - 2)^2 / 4 with a decaying rate: Python floats from the counter
    lr = 0.3
    for i in range(int(n.item())):
        x = x - lr * 0.9 ** i * (x * x - 2.0) * x
    return x.sum()


def rows(x, n):
    # the counter indexes a tensor from both ends: a dynamic index, gradients scattered back
    y = x[0]
    for i in range(int(n.item())):
        y = jg.tanh(y * x[i] + x[n - 1 - i] * 0.5 * 0.9 ** i)
    return y.sum()


def clock(x, n):
    # Python's arithmetic on ints and floats: true and floor division, remainder, powers
    dt = 0.1
    for i in range(int(n.item())):
        t = i * dt
        x = x + dt * jg.sin(x * (1 + t)) + i / 3 * 1e-2 + (i // 2) * (i % 3) * 1e-3 \
            - (-i) ** 2 * 1e-3 + 2 ** i * 1e-4
    return x.sum()


def masked(x, n):
    # comparisons that feed tensor code: a tensor against the counter, a bool as a factor
    for i in range(int(n.item())):
        x = jg.where(x > i, x * 0.5, x * 1.5) + x * (i < 2) * 0.25 + (i == 3)
    return x.sum()


def relax(x, a):
    # a for-range with a break on data whose step grows with the counter (Heron's root)
    y = x
    for i in range(40):
        w = 1 - 0.5 ** (i + 1)
        y = x + w * (0.5 * (x + a / x) - x)
        if ((y - x).abs() < 1e-12 * y.abs()).all():
            break
        x = y
    return y.sum()


def python_if(x, n):
    for i in range(int(n.item())):
        if i < 2:
            x = x * 1.5
        else:
            x = x * 2.0
    return x.sum()


WEIGHTS = [0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5]


def list_index(x, n):
    for i in range(int(n.item())):
        x = x * WEIGHTS[i]
    return x.sum()


def math_float(x, n):
    for i in range(int(n.item())):
        x = x * math.exp(-i)
    return x.sum()


def count_after(x, n):
    i = 0
    for i in range(int(n.item())):
        x = x * (1.0 + 0.1 * i)
    return x.sum() * i  # read after the loop: Python's own range


COUNTS = [3, 5, 0, 2, 7, 1, 4]


def _args(counts, shape=(3,)):
    base = np.linspace(0.6, 1.4, int(np.prod(shape))).reshape(shape)
    return [(base, np.array(k, dtype=np.int64)) for k in counts]


@pytest.mark.parametrize("fn", [decay, rows, clock, masked])
def test_a_counter_the_ir_computes_is_one_trace_for_every_count(fn):
    args = _args([k for k in COUNTS if k] if fn is rows else COUNTS,
                  (8, 3) if fn is rows else (3,))
    f = check(fn, args, target="reference")
    info = f.cache_info()
    assert info.traces == 1 and info.guard_failures == 0, info
    assert len(info.loops) == 1 and ": lifted (" in info.loops[0], info.loops


def test_the_counter_is_carried_int64_arithmetic_in_the_ir():
    f = jg.jit(decay, target="reference")
    text = f.lower(jg.ones(3), jg.tensor(3)).as_text("forward")
    assert "while[" in text and "astype[dtype=f64]" in text and "pow 0.9:f64" in text
    assert "guard" not in text  # a float base's power needs no guard on the counter


@pytest.mark.parametrize("target", ["numba-cpu", "cuda"])
def test_counter_reads_compile_once_on_the_cpu_and_the_gpu(target):
    f = check(rows, _args([2, 5, 1, 7], (8, 3)), target=target)
    assert f.cache_info().traces == 1 and f.cache_info().compiles <= 1


def test_a_for_range_with_a_break_reads_its_counter_and_lifts():
    scales = [4.0, 100.0, 2.0, 1e4, 0.25, 9.0]
    f = check(relax, [[np.ones(3), np.array([1.0, 2.0, 3.0]) * s] for s in scales],
              argnums=(0, 1), target="reference")
    info = f.cache_info()
    assert any(": lifted (" in s for s in info.loops), info.loops
    assert info.traces == 1, info


@pytest.mark.parametrize("fn", [list_index, math_float, count_after])
def test_a_counter_read_as_a_python_value_stays_one_trace_per_count(fn):
    f = check(fn, _args(COUNTS), target="reference")
    info = f.cache_info()
    assert not any(": lifted (" in s for s in info.loops), info.loops
    assert info.traces == len(set(COUNTS)), info
    if fn is not count_after:
        assert any("as a different Python number" in s for s in info.loops), info.loops


def test_an_if_on_the_counter_is_guarded_and_right():
    # the trace's guards on i < 2 keep every call right, lifted where the traced iterations
    # took one side (a cond where the branch rewrite can make one)
    f = check(python_if, _args(COUNTS), target="reference")
    assert f.cache_info().traces < len(COUNTS)


# -- the review's cases: each compiled function against eager Python at several trip counts --
def _same(got, want):
    """Equal values of equal Python types (a tensor's dtype too), at any depth."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, (list, tuple)):
        assert len(got) == len(want), (got, want)
        for g, w in zip(got, want):
            _same(g, w)
    elif isinstance(want, jg.Tensor):
        assert got.dtype is want.dtype, (got, want)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    else:
        assert got == want and math.copysign(1, got) == math.copysign(1, want), (got, want)


def _against_eager(fn, counts, x=(0.9, 1.3, 2.0)):
    f = jg.jit(fn, target="reference")
    for k in counts:
        args = (jg.tensor(list(x)), jg.tensor(k))
        _same(f(*args), fn(*args))
    return f


def returns_counter(x, n):
    for i in range(int(n.item())):
        x = x * 0.5
        if x.sum() < .3:
            return x, i
    return x, -1


def collects_counter(x, n):
    out = []
    for i in range(int(n.item())):
        x = x * 0.9
        out.append(i)
        out.append(i * 0.5)
    return x, out


@pytest.mark.parametrize("fn", [returns_counter, collects_counter])
def test_a_counter_the_function_returns_is_a_python_number(fn):
    # a traced number leaves the trace as the Python number it stands for (read by a guard)
    _against_eager(fn, [3, 5, 1, 0, 4, 2, 6])


def counter_to_functions(x, n):
    m = x > 1.0
    k = jg.tensor([1, 2, 3])
    w, h, y = x, k, x
    for i in range(int(n.item())):
        w = jg.where(m, 0.5 ** i, 0.0)
        h = k.mul(0.5 ** i)
        y = y + jg.maximum(x, i * 0.1) + jg.where(m, i, 0)
    return w, h, y, k.add(n.item())


def test_a_counter_passed_to_a_function_is_a_python_scalar_of_its_kind():
    # float32 with a float, int64 with an int, as eagerly (not the counter's float64)
    _against_eager(counter_to_functions, [3, 1, 4, 2])


def reciprocal_to_zero(x, n):
    for i in range(int(n.item())):
        x = x * abs(2 - i) ** -1  # (abs: a base that reaches 0 by non-negative values)
    return x.sum()


def zero_to_the_counter(x, n):
    for i in range(int(n.item())):
        x = x + 0.0 ** (2 - i)
    return x.sum()


@pytest.mark.parametrize("fn, raising", [(reciprocal_to_zero, (3, 4)),
                                         (zero_to_the_counter, (4, 5))])
def test_zero_to_a_negative_power_raises_as_in_python(fn, raising):
    f = _against_eager(fn, [2, 1, 0, 2])
    for k in raising:  # 0 ** -1 at the third iteration, or the fourth
        args = (jg.ones(3), jg.tensor(k))
        with pytest.raises(ZeroDivisionError):
            fn(*args)
        with pytest.raises(ZeroDivisionError):
            f(*args)
    _same(f(jg.ones(3), jg.tensor(2)), fn(jg.ones(3), jg.tensor(2)))


def float_floor_division(x, n):
    for i in range(int(n.item())):
        x = x + (i // 0.1) + (-i // 0.3) * 1e-2 + (i + 1) // -0.7 * 1e-3
    return x


def test_float_floor_division_of_the_counter_is_pythons():
    # 1 // 0.1 is 9.0 (from fmod), not floor(1 / 0.1) == 10.0
    f = _against_eager(float_floor_division, [3, 5, 1, 0, 7])
    assert f.cache_info().traces == 1


def test_float_floor_divide_is_torchs_and_pythons_on_a_grid():
    vals = [1.0, -1.0, 0.1, -0.1, 0.3, -0.3, 0.7, -0.7, 2.0, -2.0, 7.5, -7.5, 3.0, 5.0, 0.5,
            0.0, -0.0, 1e-300, 1e300, math.inf, -math.inf]
    a = np.array([p for p in vals for _ in vals])
    b = np.array([q for _ in vals for q in vals])
    with np.errstate(all="ignore"):  # (x / 0, 1e300 as a float32: inf and NaN, as torch)
        got = (jg.tensor(a) // jg.tensor(b)).numpy()
        got32 = (jg.tensor(a, dtype=jg.float32) // jg.tensor(b, dtype=jg.float32)).numpy()
    for p, q, g in zip(a.tolist(), b.tolist(), got.tolist()):
        if q != 0 and math.isfinite(p) and math.isfinite(q) and math.isfinite(p / q):
            w = p // q  # Python's
            assert g == w and math.copysign(1, g) == math.copysign(1, w), (p, q, g, w)
    torch = pytest.importorskip("torch")
    for mine, dt in ((got, torch.float64), (got32, torch.float32)):
        want = torch.floor_divide(torch.tensor(a, dtype=dt), torch.tensor(b, dtype=dt)).numpy()
        np.testing.assert_array_equal(mine, want)
        num = ~np.isnan(want)  # (a NaN's sign is no one's promise)
        np.testing.assert_array_equal(np.signbit(mine[num]), np.signbit(want[num]))


def test_float_floor_divide_has_a_zero_gradient():
    x = jg.tensor([1.0, 2.5, -3.0], requires_grad=True)
    y = jg.tensor([0.1, -0.7, 0.3], requires_grad=True)
    q = x // y
    assert q.tolist() == [9.0, -4.0, -10.0]
    q.sum().backward()
    assert x.grad.tolist() == [0.0] * 3 and y.grad.tolist() == [0.0] * 3


def int_division(x, n):
    for i in range(int(n.item())):
        x = x + 7 // (i + 1) + 7 % (i + 1)
    return x.sum()


def test_an_integer_divisor_is_guarded_once():
    f = _against_eager(int_division, [3, 1, 4])
    text = f.lower(jg.ones(3), jg.tensor(3)).as_text("forward")
    # ops' own zero-divisor guard, one for // and one for %: numbers.py adds none
    assert text.count("guard") == 2, text


def alternating(x, n):
    for i in range(int(n.item())):
        x = x + (-1.0) ** i * 0.5 ** i + (-2) ** i * 1e-2 + (-3.0) ** -i
    return x.sum()


def test_a_negative_base_to_the_counter_lifts():
    # an int exponent gives no complex result: only a float exponent needs Python's own
    f = _against_eager(alternating, [3, 5, 1, 0, 6, 2])
    info = f.cache_info()
    assert info.traces == 1 and any(": lifted (" in s for s in info.loops), info


def test_the_loop_rules_share_their_helpers():
    # one ``full`` and one ``bind`` for the loop rules and the reverse of a loop's reverse
    from jitgrad.loops import primitives, rules, second_reverse
    assert rules.full is second_reverse.full is primitives.full
    assert rules.bind is second_reverse.bind is primitives.bind
    assert not hasattr(rules, "_bind") and not hasattr(second_reverse, "_bind")
