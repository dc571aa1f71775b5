"""Shape and argument rules as torch checks them: what torch refuses, jitgrad refuses with a clear
error (never a wrapped dim, a truncated range or a silent copy); what torch accepts gives torch's
shape and values. Compiled results keep eager shapes (a 0-d element stays 0-d)."""

import numpy as np
import pytest

import jitgrad as jg

torch = pytest.importorskip("torch", reason="the rules are checked against PyTorch")

# (what, a call written once for either module m) on x of shape (2, 3)
CASES = [
    ("stack dim past the end", lambda m, x: m.stack([x, x], dim=5)),
    ("stack dim before the start", lambda m, x: m.stack([x, x], dim=-4)),
    ("stack last dim", lambda m, x: m.stack([x, x], dim=-1)),
    ("narrow past the end", lambda m, x: x.narrow(1, 1, 5)),
    ("narrow from a negative start", lambda m, x: x.narrow(1, -1, 1)),
    ("narrow", lambda m, x: x.narrow(0, 1, 1)),
    ("sum over a repeated dim", lambda m, x: x.sum(dim=(0, 0))),
    ("amax over a repeated dim", lambda m, x: x.amax(dim=(1, -1))),
    ("mean over two dims", lambda m, x: x.mean(dim=(0, 1))),
    ("view of a transpose", lambda m, x: x.t().view(-1)),
    ("view of a strided slice", lambda m, x: x[:, ::2].view(-1)),
    ("view of a row slice", lambda m, x: x[1:].view(-1)),
    ("view", lambda m, x: x.view(3, 2)),
    ("reshape of a transpose", lambda m, x: x.t().reshape(-1)),
    ("integer floor division by zero", lambda m, x: m.tensor([1, 2]) // m.tensor([0, 1])),
    ("integer remainder by zero", lambda m, x: m.tensor([1, 2]) % m.tensor([1, 0])),
    ("integer division by a zero scalar", lambda m, x: m.tensor([1, 2]) // 0),
    ("float division by zero", lambda m, x: m.tensor([1.0, 2.0]) / 0),
    ("an integer too large for int64", lambda m, x: m.tensor(2 ** 70)),
    ("gelu", lambda m, x: m.nn.functional.gelu(x * 1.5 - 2)),
    ("gelu, tanh approximation", lambda m, x: m.nn.functional.gelu(x - 1, approximate="tanh")),
    ("element of a vector", lambda m, x: x[0, 1]),
]


def _run(mod, fn):
    x = mod.tensor(np.arange(6.0).reshape(2, 3) / 7)
    try:
        return fn(mod, x), None
    except Exception as e:  # noqa: BLE001  (compared between the two frameworks)
        return None, e


@pytest.mark.parametrize("what,fn", CASES, ids=[c[0] for c in CASES])
def test_as_torch(what, fn):
    got, err = _run(jg, fn)
    want, terr = _run(torch, fn)
    if terr is not None:
        assert err is not None, f"{what}: torch raises {terr!r}, jitgrad gave {got!r}"
        assert "Traceback" not in str(err) and len(str(err)) > 10
        return
    assert err is None, f"{what}: {err!r}"
    assert tuple(got.shape) == tuple(want.shape), what
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7, err_msg=what)


@pytest.mark.parametrize("target", ["reference", "cpu"])
def test_compiled_elements_are_0d(target):
    x = jg.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=jg.float64)
    for f in (lambda x: x[0, 1], lambda x: x.sum(0)[1], lambda x: x[-1, ..., -2], lambda x: x[0][1]):
        assert jg.jit(f, target=target)(x).shape == f(x).shape == ()

    def put(s):
        y = jg.zeros(3, dtype=jg.float64)
        y[0] = s
        return (y * 2).sum()
    s = jg.tensor(1.5, dtype=jg.float64)
    g = jg.grad(put, target=target)(s)
    assert g.shape == () and g.item() == 2.0
