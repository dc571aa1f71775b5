"""The integer dtypes torch has (uint8, int8, int16, int32 beside int64): promotion, reductions,
wrap-around, conversions and compiled code, each against PyTorch."""

import itertools

import numpy as np
import pytest

import jitgrad as jg

torch = pytest.importorskip("torch")

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float32", "float64"]
TORCH = {"bool": torch.bool, "uint8": torch.uint8, "int8": torch.int8, "int16": torch.int16,
         "int32": torch.int32, "int64": torch.int64, "float32": torch.float32,
         "float64": torch.float64}


def _jt(name):
    return getattr(jg, name if name != "bool" else "bool")


def _pair(values, name):
    return jg.tensor(values, dtype=_jt(name)), torch.tensor(values, dtype=TORCH[name])


@pytest.mark.parametrize("a,b", list(itertools.product(NAMES, NAMES)))
def test_promotion_of_two_tensors_is_torchs(a, b):
    x, tx = _pair([1, 0, 1], a)
    y, ty = _pair([1, 1, 0], b)
    assert (x + y).dtype.name == str((tx + ty).dtype).removeprefix("torch.")
    assert (x * y[0]).dtype.name == str((tx * ty[0]).dtype).removeprefix("torch.")  # 0-d


@pytest.mark.parametrize("name", NAMES[1:6])
def test_integers_with_python_numbers_reductions_and_wraparound(name):
    x, tx = _pair([3, 100, 7], name)
    for got, want in ((x + 5, tx + 5), (x * 2.5, tx * 2.5), (x.sum(), tx.sum()),
                      (x.prod(), tx.prod()), (x.cumsum(0), tx.cumsum(0)), (x.max(), tx.max()),
                      (x // 2, tx // 2), (x % 3, tx % 3), (x * x * x, tx * tx * tx),
                      (x.argmax(), tx.argmax()), (x / 2, tx / 2)):
        assert got.dtype.name == str(want.dtype).removeprefix("torch."), (got, want)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_conversions_and_constructors():
    x = jg.ones(2)
    assert (x.int().dtype, x.short().dtype, x.char().dtype, x.byte().dtype, x.long().dtype) == \
        (jg.int32, jg.int16, jg.int8, jg.uint8, jg.int64)
    assert jg.int is jg.int32 and jg.short is jg.int16
    assert jg.IntTensor([1, 2]).dtype is jg.int32 and jg.ByteTensor(3).dtype is jg.uint8
    assert jg.tensor(np.arange(3, dtype=np.int16)).dtype is jg.int16
    assert jg.from_numpy(np.arange(3, dtype=np.uint8)).dtype is jg.uint8
    t = jg.tensor([1, 2], dtype=jg.int32)
    assert repr(t) == repr(torch.tensor([1, 2], dtype=torch.int32)).replace("torch", "jitgrad")
    assert str(jg.int32) == "jitgrad.int32"
    np.testing.assert_array_equal(jg.arange(5.0)[jg.tensor([4, 1], dtype=jg.int32)].numpy(),
                                  [4.0, 1.0])


@pytest.mark.parametrize("name", ["uint8", "int16", "int32"])
def test_compiled_integer_code_equals_eager(name):
    def f(a, b):
        c = a * b + 3
        return c, (a * b).sum(), a // 2, a % 5, a > 100, (c * c * c).max(), c.to(jg.float32)
    big = {"uint8": 200, "int16": 30000, "int32": 2_000_000_000}[name]
    a, ta = _pair([1, 2, big], name)
    b, tb = _pair([3, 5, 2], name)
    got = jg.jit(f, target="numba-cpu")(a, b)
    want = f(a, b)
    for g, w in zip(got, want):
        assert g.dtype is w.dtype
        np.testing.assert_array_equal(g.numpy(), w.numpy())
    tw = (ta * tb + 3, (ta * tb).sum(), ta // 2, ta % 5, ta > 100)
    for g, w in zip(got, tw):
        np.testing.assert_array_equal(g.numpy(), w.numpy())
