"""Tensor basics: dtypes and promotion, factories, methods, printing."""

import numpy as np
import pytest

import jitgrad as jg


def test_default_dtypes_follow_torch():
    assert jg.tensor(1.0).dtype is jg.float32
    assert jg.tensor([1, 2]).dtype is jg.int64
    assert jg.tensor([True]).dtype is jg.bool
    assert jg.tensor(np.zeros(2)).dtype is jg.float64  # a NumPy array keeps its dtype
    assert jg.Tensor([1, 2]).dtype is jg.float32
    assert jg.arange(3).dtype is jg.int64 and jg.arange(3.0).dtype is jg.float32


def test_promotion():
    f32, f64, i64 = jg.ones(2), jg.ones(2, dtype=jg.float64), jg.ones(2, dtype=jg.int64)
    assert (f32 * 2.5).dtype is jg.float32
    assert (f32 * f64).dtype is jg.float64
    assert (i64 * 2).dtype is jg.int64
    assert (i64 * 2.5).dtype is jg.float32
    assert (i64 / 2).dtype is jg.float32
    assert (f32 * jg.tensor(2.0, dtype=jg.float64)).dtype is jg.float32  # 0-d ranks lower


def test_factories_and_seed():
    jg.manual_seed(1)
    a = jg.randn(3)
    jg.manual_seed(1)
    assert np.array_equal(a.numpy(), jg.randn(3).numpy())
    assert jg.zeros(2, 3).shape == (2, 3) and jg.ones((2,)).tolist() == [1.0, 1.0]
    assert jg.full((2,), 7).dtype is jg.int64
    assert jg.eye(2).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    np.testing.assert_allclose(jg.linspace(0, 1, 3).numpy(), [0, 0.5, 1])
    arr = np.arange(3.0)
    t = jg.from_numpy(arr)
    arr[0] = 5
    assert t[0].item() == 5  # shares memory


def test_methods():
    x = jg.arange(6.0).reshape(2, 3)
    assert x.t().shape == (3, 2) and x.T.shape == (3, 2)
    assert x.sum(1).tolist() == [3.0, 12.0]
    assert x.mean().item() == 2.5
    assert x.max(1).indices.tolist() == [2, 2]
    assert x.view(-1).shape == (6,) and x.flatten().shape == (6,)
    assert x.unsqueeze(0).shape == (1, 2, 3) and x.unsqueeze(0).squeeze().shape == (2, 3)
    assert x.double().dtype is jg.float64 and x.float().dtype is jg.float32
    assert x.to(jg.float64).dtype is jg.float64
    assert x.clone().data.tolist() == x.tolist()
    assert float(x[1, 2]) == 5.0 and int(x[0, 1]) == 1
    assert jg.stack([x, x]).shape == (2, 2, 3) and jg.cat([x, x], 1).shape == (2, 6)
    assert np.asarray(x).shape == (2, 3)
    assert x.size() == (2, 3) and x.size(1) == 3 and x.ndim == 2 and x.numel() == 6


def test_requires_grad_is_settable_on_leaves():
    x = jg.ones(2)
    x.requires_grad = True
    y = x * 2
    assert y.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False
    assert x.requires_grad_(False) is x and not x.requires_grad


def test_numpy_of_tensor_requiring_grad():
    x = jg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    assert x.detach().numpy().tolist() == [1.0, 1.0]


def test_views_share_version_counter():
    x = jg.zeros(4)
    v = x[1:3]
    v.add_(1)
    assert x.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert x._version == v._version == 1


def test_bool_of_multi_element_tensor():
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(jg.ones(2))


def test_device_objects_as_pytorch_code_uses_them():
    cpu = jg.device("cpu")
    assert repr(cpu) == "device(type='cpu')" and str(cpu) == "cpu" and cpu.type == "cpu"
    assert cpu.index is None and cpu == jg.device(cpu) and cpu == "cpu" and cpu != "cuda"
    assert {cpu: 1}[jg.device("cpu")] == 1
    d1 = jg.device("cuda:1")
    assert (d1.type, d1.index, str(d1)) == ("cuda", 1, "cuda:1") and d1 == jg.device("cuda", 1)
    assert repr(d1) == "device(type='cuda', index=1)"
    # What tutorials write before anything else.
    dev = jg.device("cuda" if jg.cuda.is_available() else "cpu")
    assert dev == cpu and jg.cuda.device_count() == 0
    for make in (lambda: jg.linspace(0, 1, 5, device=dev), lambda: jg.zeros(2, device=dev),
                 lambda: jg.randn(2, device=dev), lambda: jg.arange(3, device=dev),
                 lambda: jg.eye(2, device=dev), lambda: jg.tensor([1.0], device=dev),
                 lambda: jg.zeros_like(jg.ones(2), device="cpu")):
        t = make()
        assert t.device == cpu and t.device == "cpu" and str(t.device) == "cpu"
    t = jg.tensor([1.0, 2.0])
    assert t.to(dev) is t and t.to(dev, jg.float64).dtype is jg.float64
    assert t.to(device="cpu", dtype=jg.float64).dtype is jg.float64
    m = jg.nn.Linear(2, 1).to(dev)
    assert m.to(dev, jg.float64).weight.dtype is jg.float64


@pytest.mark.parametrize("bad", [lambda: jg.zeros(2, device="cuda"),
                                 lambda: jg.linspace(0, 1, 3, device=jg.device("cuda:0")),
                                 lambda: jg.tensor([1.0]).to(jg.device("cuda")),
                                 lambda: jg.tensor([1.0]).to(device="cuda:0"),
                                 lambda: jg.nn.Linear(2, 1).to("cuda")])
def test_a_gpu_device_for_eager_tensors_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="not available to eager tensors.*target='cuda'"):
        bad()


def test_bad_device_strings_are_named():
    with pytest.raises(ValueError, match="unknown device type 'gpu'"):
        jg.device("gpu")
    with pytest.raises(ValueError, match="invalid index"):
        jg.device("cuda:x")
    with pytest.raises(TypeError, match="expected a string"):
        jg.device(3)


def test_out_writes_into_the_given_tensor_as_pytorch_does():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    c = jg.zeros(3, 2, dtype=jg.float64)
    view, arr = c[0], c.numpy()  # both share c's storage
    assert jg.matmul(jg.tensor(a), jg.tensor(b), out=c) is c
    np.testing.assert_allclose(c.numpy(), a @ b, rtol=1e-12)
    np.testing.assert_allclose(view.numpy(), (a @ b)[0], rtol=1e-12)
    np.testing.assert_allclose(arr, a @ b, rtol=1e-12)
    x = jg.tensor(a)
    for fn, ref in ((lambda o: jg.mul(x, 2.0, out=o), a * 2),
                    (lambda o: jg.exp(x, out=o), np.exp(a)),
                    (lambda o: jg.add(x, x, alpha=2, out=o), a + 2 * a),
                    (lambda o: jg.clamp(x, -0.5, 0.5, out=o), np.clip(a, -0.5, 0.5)),
                    (lambda o: jg.where(x > 0, x, 0.0, out=o), np.where(a > 0, a, 0.0))):
        o = jg.empty(3, 4, dtype=jg.float64)
        assert fn(o) is o
        np.testing.assert_allclose(o.numpy(), ref, rtol=1e-12)
    o = jg.empty(0, dtype=jg.float64)  # an empty out grows silently
    jg.sum(x, 1, out=o)
    np.testing.assert_allclose(o.numpy(), a.sum(1), rtol=1e-12)
    with pytest.warns(UserWarning, match="resized since it had shape \\[2\\]"):
        jg.cat([x, x], out=jg.zeros(2, dtype=jg.float64))
    f32 = jg.zeros(3, 4)  # float64 results into float32: a same-kind cast, as torch
    jg.sin(x, out=f32)
    assert f32.dtype is jg.float32
    np.testing.assert_allclose(f32.numpy(), np.sin(a).astype(np.float32))


def test_out_refuses_gradients_bad_dtypes_and_compiled_code():
    w = jg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="mul\\(\\): functions with out=.*requires grad"):
        jg.mul(w, 2.0, out=jg.zeros(2))
    with jg.no_grad():  # nothing to differentiate: allowed
        np.testing.assert_array_equal(jg.mul(w, 2.0, out=jg.zeros(2)).numpy(), [2.0, 2.0])
    with pytest.raises(RuntimeError, match="out= was given a tensor that requires grad"):
        jg.add(jg.ones(2), 1.0, out=jg.zeros(2, requires_grad=True))
    with pytest.raises(RuntimeError, match="result type float32 can't be cast.*int64"):
        jg.add(jg.ones(2), 1.0, out=jg.zeros(2, dtype=jg.int64))
    with pytest.raises(TypeError, match="out= must be a Tensor"):
        jg.exp(jg.ones(2), out=np.zeros(2))
    f = jg.jit(lambda x: jg.exp(x, out=jg.zeros(2)), target="reference")
    with pytest.raises(jg.TraceError, match="out=.*inside a compiled function"):
        f(jg.ones(2))
