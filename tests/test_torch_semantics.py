"""Eager semantics where jitgrad once gave a quietly different answer from PyTorch, checked
against PyTorch itself (skipped when it is not installed): positional bools and single dims,
``norm`` for every ``p``, NumPy conversion of tensors that require grad, integer-and-tensor
indexing, and the memory layout that decides whether ``view`` works."""

import math

import numpy as np
import pytest

import jitgrad

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)
M55 = rng.standard_normal((5, 5))
V5 = rng.standard_normal(5)
A46 = rng.standard_normal((4, 6))
B234 = rng.standard_normal((2, 3, 4))
C4 = rng.standard_normal((2, 3, 5, 5))
W4 = rng.standard_normal((4, 3, 3, 3))
MASK = rng.standard_normal((5, 5)) > 0


def _outcome(lib, fn):
    """("raises", error type) or ("ok", the result as NumPy arrays, nested like it)."""
    try:
        return "ok", _arrays(fn(lib))
    except Exception as e:  # noqa: BLE001  (which error is compared by the caller)
        return "raises", type(e)


def _arrays(r):
    if isinstance(r, (tuple, list)):
        return tuple(_arrays(x) for x in r)
    if isinstance(r, (torch.Tensor, jitgrad.Tensor)):
        return np.asarray(r.detach().numpy())
    return r


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.allclose(
            a.astype(np.float64), b.astype(np.float64), rtol=1e-6, atol=1e-9, equal_nan=True)
    return a == b


def _check(fn):
    want, got = _outcome(torch, fn), _outcome(jitgrad, fn)
    if want[0] == "raises":
        assert got[0] == "raises", f"torch raises {want[1].__name__}, jitgrad gives {got[1]!r}"
        if want[1] is TypeError:  # a misread argument: the same kind of error
            assert got[1] is TypeError, got
    else:
        assert got[0] == "ok", f"jitgrad raises {got[1].__name__}; torch gives {want[1]!r}"
        assert _same(want[1], got[1]), (want[1], got[1])


# -- 1. positional bools and ints --------------------------------------------------------------
X = lambda t: t.tensor(M55)  # noqa: E731
V = lambda t: t.tensor(V5)  # noqa: E731
B = lambda t: t.tensor(MASK)  # noqa: E731

SIGNATURES = {
    # std/var: (input, unbiased: bool), (input, dim, unbiased, keepdim), (input, dim, *, correction)
    "x.std(False)": lambda t: X(t).std(False),
    "x.std(True)": lambda t: X(t).std(True),
    "v.std(False)": lambda t: V(t).std(False),
    "v.var(True)": lambda t: V(t).var(True),
    "x.var(False)": lambda t: X(t).var(False),
    "torch.std(x, False)": lambda t: t.std(X(t), False),
    "torch.var(x, False)": lambda t: t.var(X(t), False),
    "torch.var(v, True)": lambda t: t.var(V(t), True),
    "x.std(0)": lambda t: X(t).std(0),
    "x.std(1, False)": lambda t: X(t).std(1, False),
    "x.var(0, False, True)": lambda t: X(t).var(0, False, True),
    "x.var((0, 1), False)": lambda t: X(t).var((0, 1), False),
    "x.std(None, False)": lambda t: X(t).std(None, False),
    "x.std(unbiased=False)": lambda t: X(t).std(unbiased=False),
    "x.var(correction=0)": lambda t: X(t).var(correction=0),
    "x.var(dim=0, correction=2)": lambda t: X(t).var(dim=0, correction=2),
    "x.std(1, keepdim=True)": lambda t: X(t).std(1, keepdim=True),
    "x.std(True, True)": lambda t: X(t).std(True, True),
    "x.var(False, keepdim=True)": lambda t: X(t).var(False, keepdim=True),
    "x.std(0, unbiased=False, correction=0)": lambda t: X(t).std(0, unbiased=False, correction=0),
    # a bool where a dim goes
    "x.sum(True)": lambda t: X(t).sum(True),
    "x.sum(dim=False)": lambda t: X(t).sum(dim=False),
    "x.mean(False)": lambda t: X(t).mean(False),
    "x.prod(True)": lambda t: X(t).prod(True),
    "x.amax(False)": lambda t: X(t).amax(False),
    "x.amin(True, True)": lambda t: X(t).amin(True, True),
    "x.max(True)": lambda t: X(t).max(True),
    "x.min(False)": lambda t: X(t).min(False),
    "torch.max(x, True)": lambda t: t.max(X(t), True),
    "x.argmax(True)": lambda t: X(t).argmax(True),
    "x.argmin(False)": lambda t: X(t).argmin(False),
    "x.norm(1, False)": lambda t: X(t).norm(1, False),
    "x.norm(2, True, True)": lambda t: X(t).norm(2, True, True),
    "x.norm(p=1, dim=True)": lambda t: X(t).norm(p=1, dim=True),
    "x.logsumexp(True)": lambda t: X(t).logsumexp(True),
    "x.cumsum(False)": lambda t: X(t).cumsum(False),
    "x.softmax(True)": lambda t: X(t).softmax(True),
    "x.log_softmax(False)": lambda t: X(t).log_softmax(False),
    "F.softmax(x, True)": lambda t: t.nn.functional.softmax(X(t), True),
    "x.squeeze(True)": lambda t: X(t).squeeze(True),
    "x.unsqueeze(True)": lambda t: X(t).unsqueeze(True),
    "x.flatten(True)": lambda t: X(t).flatten(True),
    "x.flatten(0, True)": lambda t: X(t).flatten(0, True),
    "x.transpose(True, False)": lambda t: X(t).transpose(True, False),
    "x.permute(True, False)": lambda t: X(t).permute(True, False),
    "x.movedim(True, 0)": lambda t: X(t).movedim(True, 0),
    "x.select(True, 1)": lambda t: X(t).select(True, 1),
    "x.narrow(True, 1, 2)": lambda t: X(t).narrow(True, 1, 2),
    "x.split(2, True)": lambda t: X(t).split(2, True),
    "x.chunk(2, True)": lambda t: X(t).chunk(2, True),
    "x.unbind(True)": lambda t: X(t).unbind(True),
    "torch.cat(.., True)": lambda t: t.cat([X(t), X(t)], True),
    "torch.stack(.., True)": lambda t: t.stack([X(t), X(t)], True),
    "b.all(True)": lambda t: B(t).all(True),
    "b.any(False)": lambda t: B(t).any(False),
    "torch.all(b, True)": lambda t: t.all(B(t), True),
    "x.size(True)": lambda t: X(t).size(True),
    # an int where keepdim (a bool) goes: x.sum(0, 1) is not dims 0 and 1
    "x.sum(0, 1)": lambda t: X(t).sum(0, 1),
    "x.mean(1, 0)": lambda t: X(t).mean(1, 0),
    "x.max(0, 1)": lambda t: X(t).max(0, 1),
    "x.argmax(0, 1)": lambda t: X(t).argmax(0, 1),
    "b.any(0, 1)": lambda t: B(t).any(0, 1),
    # a tuple where one dim goes is not its first entry
    "x.max((0, 1))": lambda t: X(t).max((0, 1)),
    "x.argmax((0, 1))": lambda t: X(t).argmax((0, 1)),
    "x.cumsum((0, 1))": lambda t: X(t).cumsum((0, 1)),
    "x.softmax((0, 1))": lambda t: X(t).softmax((0, 1)),
    "x.flatten((0, 1))": lambda t: X(t).flatten((0, 1)),
    # the forms that stay valid
    "x.sum(0, True)": lambda t: X(t).sum(0, True),
    "x.sum((0, 1), True)": lambda t: X(t).sum((0, 1), True),
    "x.max(1, True)": lambda t: X(t).max(1, True),
    "x.argmax(None, True)": lambda t: X(t).argmax(None, True),
    "x.argmin(dim=None, keepdim=True)": lambda t: X(t).argmin(dim=None, keepdim=True),
    "x.argmax(-1, True)": lambda t: X(t).argmax(-1, True),
    "x.squeeze(0, 1)": lambda t: X(t).reshape(1, 25, 1).squeeze(0, 2),
    "x.logsumexp((0, 1), True)": lambda t: X(t).logsumexp((0, 1), True),
    "x.norm(2, 1)": lambda t: X(t).norm(2, 1),
    "x.norm(1, 0, True)": lambda t: X(t).norm(1, 0, True),
    "x.softmax(0, float64)": lambda t: X(t).softmax(0, t.float64),
    "b.all(1, True)": lambda t: B(t).all(1, True),
    "x.transpose(0, -1)": lambda t: X(t).transpose(0, -1),
    "x.cumsum(dim=-1)": lambda t: X(t).cumsum(dim=-1),
}


@pytest.mark.parametrize("name", SIGNATURES)
def test_positional_arguments_read_as_torch_reads_them(name):
    _check(SIGNATURES[name])


def test_std_of_a_bool_is_over_every_element():
    # The reported case: x.std(False) was the std along dim 0.
    x = jitgrad.arange(5.0)
    assert x.std(False).item() == pytest.approx(torch.arange(5.0).std(False).item())
    assert x.std(False).item() == pytest.approx(math.sqrt(2.0))
    assert jitgrad.ones(5, 5).std(True).shape == ()


# -- 2. norm -------------------------------------------------------------------------------------
NORM_INPUTS = {
    "matrix": M55, "vector": V5, "3d": rng.standard_normal((2, 3, 4)),
    "with zeros": np.array([[0.0, 2.0, -3.0], [1.0, 0.0, 0.5]]), "all zero": np.zeros((3, 4)),
}
NORM_PS = [2, 1, math.inf, -math.inf, 0, 0.5, 1.5, 3, -1, -0.5, "fro", None]


def _norm_run(lib, arr, p, dim, keepdim):
    x = lib.tensor(arr, requires_grad=True)
    y = x.norm(dim=dim, keepdim=keepdim) if p is None else lib.norm(x, p=p, dim=dim,
                                                                     keepdim=keepdim)
    y.sum().backward()
    # torch leaves p=0's gradient undefined (None): it is zero here
    g = x.grad.numpy() if x.grad is not None else np.zeros_like(arr)
    return y.detach().numpy(), g


@pytest.mark.parametrize("name", NORM_INPUTS)
@pytest.mark.parametrize("p", NORM_PS, ids=str)
def test_norm_matches_torch_for_every_p(name, p):
    arr = NORM_INPUTS[name]
    dims = [None, 0, -1] + ([(0, 1)] if arr.ndim > 1 else [])
    for dim in dims:
        for keepdim in (False, True):
            (y1, g1), (y2, g2) = (_norm_run(lib, arr, p, dim, keepdim) for lib in (torch, jitgrad))
            assert y1.shape == y2.shape, (dim, keepdim)
            np.testing.assert_allclose(y2, y1, rtol=1e-10, atol=1e-12, err_msg=f"{dim} {keepdim}")
            np.testing.assert_allclose(g2, g1, rtol=1e-8, atol=1e-12, err_msg=f"{dim} {keepdim}")


def test_norm_minus_inf_of_a_matrix_is_the_smallest_magnitude():
    x = np.array([[3.0, -0.25, 7.0], [-2.0, 5.0, 1.0]])
    assert jitgrad.norm(jitgrad.tensor(x), p=float("-inf")).item() == 0.25
    assert torch.norm(torch.tensor(x), p=float("-inf")).item() == 0.25


def test_norm_nuc_is_the_sum_of_singular_values_and_unknown_p_is_an_error():
    want = np.linalg.svd(np.asarray(M55, dtype=np.float64), compute_uv=False).sum()
    np.testing.assert_allclose(jitgrad.tensor(M55, dtype=jitgrad.float64).norm(p="nuc").item(),
                               want, rtol=1e-12)
    with pytest.raises(RuntimeError, match="2-D"):
        jitgrad.ones(2, 2, 2).norm(p="nuc")
    with pytest.raises(ValueError, match="norm type"):
        jitgrad.tensor(M55).norm(p="bogus")


# -- 3. NumPy conversion of a tensor that requires grad ------------------------------------------
TO_NUMPY = {"np.asarray": np.asarray, "np.array": np.array, "numpy()": lambda t: t.numpy(),
            "__array__": lambda t: t.__array__(), "np.asarray(dtype)":
                lambda t: np.asarray(t, dtype=np.float32), "np.exp": np.exp}


@pytest.mark.parametrize("name", TO_NUMPY)
def test_numpy_of_a_tensor_that_requires_grad_raises_as_torch(name):
    conv = TO_NUMPY[name]
    with pytest.raises(RuntimeError, match="requires grad") as want:
        conv(torch.tensor([1.0, 2.0], requires_grad=True))
    with pytest.raises(RuntimeError) as got:
        conv(jitgrad.tensor([1.0, 2.0], requires_grad=True))
    assert str(got.value) == str(want.value)
    want = np.exp([1.0, 2.0]) if name == "np.exp" else np.array([1.0, 2.0])
    for lib in (torch, jitgrad):  # no grad, or detached: an array
        np.testing.assert_allclose(np.asarray(conv(lib.tensor([1.0, 2.0]))), want)
        np.testing.assert_allclose(
            np.asarray(conv(lib.tensor([1.0, 2.0], requires_grad=True).detach())), want)


def test_scalars_and_lists_of_a_tensor_that_requires_grad_still_work():
    for lib in (torch, jitgrad):
        x = lib.tensor([1.5, 2.0], requires_grad=True)
        assert float(x[0]) == 1.5 and x[1].item() == 2.0 and x.tolist() == [1.5, 2.0]
        assert int(x[1]) == 2 and f"{x[0]:.1f}" == "1.5" and len(repr(x)) > 0
        y = (x * 2).sum()
        assert float(y) == 7.0 and y.item() == 7.0


def test_internal_uses_read_values_not_numpy():
    # Everything that handles parameters by value keeps working on tensors requiring grad.
    import io
    layer = jitgrad.nn.Linear(3, 2)
    opt = jitgrad.optim.Adam(layer.parameters(), lr=0.1)
    loss = layer(jitgrad.ones(4, 3)).pow(2).sum()
    loss.backward()
    jitgrad.nn.utils.clip_grad_norm_(layer.parameters(), 0.5)
    opt.step()
    buf = io.BytesIO()
    jitgrad.save(layer.state_dict(), buf)
    buf.seek(0)
    layer.load_state_dict(jitgrad.load(buf))
    repr(layer.weight)
    x = jitgrad.tensor([0.3, -0.7], dtype=jitgrad.float64, requires_grad=True)
    assert jitgrad.autograd.gradcheck(lambda x: (x * x).sin().sum(), (x,))
    assert jitgrad.allclose(layer.weight, layer.weight)
    assert jitgrad.tensor(layer.weight).shape == (2, 3)


# -- 4. integer and tensor indices together ------------------------------------------------------
I2 = [0, 1]
INDEXES = {
    "0, :, idx": (0, slice(None), I2), ":, 0, :, idx": (slice(None), 0, slice(None), I2),
    "0, ..., idx": (0, Ellipsis, I2), "idx, :, 0": (I2, slice(None), 0), "0, idx": (0, I2),
    "idx, 0, idx": (I2, 0, I2), "1, None, :, idx, 2": (1, None, slice(None), I2, 2),
    "0, mask": (0, np.array([True, False, True])), "idx2d, :, 0": ([[0, 1], [1, 0]], slice(None), 0),
    "-1, idx, None, 0": (-1, I2, None, 0),
}


def _index(lib, idx):
    return tuple(lib.tensor(a) if isinstance(a, (list, np.ndarray)) else a for a in idx)


@pytest.mark.parametrize("name", INDEXES)
def test_int_and_tensor_indices_select_first_as_torch(name):
    arr = np.arange(120.0).reshape(2, 3, 4, 5)
    res = []
    for lib in (torch, jitgrad):
        idx = _index(lib, INDEXES[name])
        x = lib.tensor(arr, requires_grad=True)
        y = x[idx]
        w = lib.arange(float(y.numel()), dtype=lib.float64).reshape(y.shape)
        (y * w).sum().backward()
        z = lib.tensor(arr)
        z[idx] = w  # of the shape the read has
        res.append((y.detach().numpy(), x.grad.numpy(), z.numpy()))
    for want, got in zip(*res):
        assert want.shape == got.shape
        np.testing.assert_array_equal(got, want)


# -- 5. layout: view raises exactly where torch's does -------------------------------------------
def _t(lib, a):
    return lib.tensor(a)


LAYOUTS = {
    # elementwise results keep the layout of the operand that decides (torch's TensorIterator)
    "x.t() * 2": lambda t: _t(t, A46).t() * 2,
    "2 * x.t()": lambda t: 2 * _t(t, A46).t(),
    "x.t() + x.t()": lambda t: _t(t, A46).t() + _t(t, A46).t(),
    "x.t() + contiguous": lambda t: _t(t, A46).t() + _t(t, A46.T.copy()),
    "contiguous + x.t()": lambda t: _t(t, A46.T.copy()) + _t(t, A46).t(),
    "x.t() + row": lambda t: _t(t, A46).t() + _t(t, A46[0, :4].copy()),
    "row + x.t()": lambda t: _t(t, A46[0, :4].copy()) + _t(t, A46).t(),
    "x.t().exp()": lambda t: _t(t, A46).t().exp(),
    "maximum(x.t(), c)": lambda t: t.maximum(_t(t, A46).t(), _t(t, A46.T.copy())),
    "where(x.t() > 0, x.t(), 0)": lambda t: t.where(_t(t, A46).t() > 0, _t(t, A46).t(), 0.0),
    "x.t() > 0": lambda t: _t(t, A46).t() > 0,
    "sub(x.t(), c, alpha=2)": lambda t: t.sub(_t(t, A46).t(), _t(t, A46.T.copy()), alpha=2),
    "x[:, ::2].exp()": lambda t: _t(t, A46)[:, ::2].exp(),
    "x[:, ::2] + x[:, 1::2]": lambda t: _t(t, A46)[:, ::2] + _t(t, A46)[:, 1::2],
    "permute(2, 0, 1).exp()": lambda t: _t(t, B234).permute(2, 0, 1).exp(),
    "permute(1, 2, 0) + bcast": lambda t: _t(t, B234).permute(1, 2, 0) + _t(t, np.ones(2)),
    "expand + 0": lambda t: _t(t, A46[:1]).expand(3, 6) + 0,
    "expand.t() * 1": lambda t: _t(t, A46[:, :1]).expand(4, 6).t() * 1,
    "x.t().clone()": lambda t: _t(t, A46).t().clone(),
    "x.t().contiguous()": lambda t: _t(t, A46).t().contiguous(),
    "x.t().double()": lambda t: _t(t, A46).float().t().double(),
    "x.t().relu()": lambda t: _t(t, A46).t().relu(),
    "x.t().sigmoid()": lambda t: _t(t, A46).t().sigmoid(),
    "F.gelu(x.t())": lambda t: t.nn.functional.gelu(_t(t, A46).t()),
    # views
    "x.t()": lambda t: _t(t, A46).t(),
    "x[:, ::2]": lambda t: _t(t, A46)[:, ::2],
    "x[1:, 2:5]": lambda t: _t(t, A46)[1:, 2:5],
    "x.t()[::2]": lambda t: _t(t, A46).t()[::2],
    "transpose(0, 2)": lambda t: _t(t, B234).transpose(0, 2),
    "expand": lambda t: _t(t, A46[:1]).expand(3, 6),
    "narrow": lambda t: _t(t, A46).t().narrow(0, 1, 3),
    "select": lambda t: _t(t, B234).permute(2, 0, 1).select(1, 0),
    "unsqueeze(x.t())": lambda t: _t(t, A46).t().unsqueeze(1),
    # fancy indexing (torch's index kernel lays these out)
    "x[idx]": lambda t: _t(t, A46)[t.tensor([0, 2])],
    "x[:, idx]": lambda t: _t(t, A46)[:, t.tensor([0, 2])],
    "x[:, [0, 2]]": lambda t: _t(t, A46)[:, [0, 2]],
    "x.t()[idx]": lambda t: _t(t, A46).t()[t.tensor([0, 2])],
    "x.t()[:, idx]": lambda t: _t(t, A46).t()[:, t.tensor([0, 2])],
    "x[:, idx, :]": lambda t: _t(t, B234)[:, t.tensor([0, 2]), :],
    "x[..., idx]": lambda t: _t(t, B234)[..., t.tensor([0, 1])],
    "permute(2, 0, 1)[:, idx]": lambda t: _t(t, B234).permute(2, 0, 1)[:, t.tensor([0, 1])],
    "x[idx, :, idx]": lambda t: _t(t, B234)[t.tensor([0, 1]), :, t.tensor([1, 2])],
    "x[:, idx, idx]": lambda t: _t(t, B234)[:, t.tensor([0, 1]), t.tensor([1, 2])],
    "x[:, idx2d]": lambda t: _t(t, A46)[:, t.tensor([[0, 1], [2, 3]])],
    "x[:, mask]": lambda t: _t(t, A46)[:, t.tensor([True, False, True, True, False, True])],
    "x[mask2d]": lambda t: _t(t, A46)[_t(t, A46) > 0],
    "perm[1:, idx, ::2]": lambda t: _t(t, B234).permute(2, 0, 1)[1:, t.tensor([0, 1]), ::2],
    "expand[:, idx]": lambda t: _t(t, A46[:1]).expand(3, 6)[:, t.tensor([0, 1])],
    # reductions, scans, softmax, matmul, cat and stack: row-major
    "perm.sum(1)": lambda t: _t(t, B234).permute(2, 0, 1).sum(1),
    "perm.sum(1, keepdim)": lambda t: _t(t, B234).permute(2, 0, 1).sum(1, keepdim=True),
    "perm.mean(0, keepdim)": lambda t: _t(t, B234).permute(2, 0, 1).mean(0, keepdim=True),
    "perm.amax(2, keepdim)": lambda t: _t(t, B234).permute(2, 0, 1).amax(2, keepdim=True),
    "perm.max(1).values": lambda t: _t(t, B234).permute(2, 0, 1).max(1)[0],
    "perm.argmax(1)": lambda t: _t(t, B234).permute(2, 0, 1).argmax(1),
    "perm.prod(1)": lambda t: _t(t, B234).permute(2, 0, 1).prod(1),
    "perm.norm(dim=1)": lambda t: _t(t, B234).permute(2, 0, 1).norm(dim=1),
    "perm.std(1)": lambda t: _t(t, B234).permute(2, 0, 1).std(1),
    "perm.softmax(1)": lambda t: _t(t, B234).permute(2, 0, 1).softmax(1),
    "perm.log_softmax(-1)": lambda t: _t(t, B234).permute(2, 0, 1).log_softmax(-1),
    "perm.cumsum(1)": lambda t: _t(t, B234).permute(2, 0, 1).cumsum(1),
    "perm.logsumexp(1)": lambda t: _t(t, B234).permute(2, 0, 1).logsumexp(1),
    "x.t() @ x": lambda t: _t(t, A46).t() @ _t(t, A46),
    "bmm transposed": lambda t: _t(t, B234).transpose(1, 2) @ _t(t, B234),
    "mv": lambda t: t.mv(_t(t, A46).t(), _t(t, A46[:, 0].copy())),
    "cat(x.t(), x.t())": lambda t: t.cat([_t(t, A46).t(), _t(t, A46).t()], 0),
    "cat(.., dim=1)": lambda t: t.cat([_t(t, A46).t(), _t(t, A46).t()], 1),
    "stack(x.t(), x.t())": lambda t: t.stack([_t(t, A46).t(), _t(t, A46).t()], 0),
    "stack(.., dim=2)": lambda t: t.stack([_t(t, A46).t(), _t(t, A46).t()], 2),
    "repeat(x.t())": lambda t: _t(t, A46).t().repeat(2, 1),
    "reshape(x.t())": lambda t: _t(t, A46).t().reshape(3, 2, 4),
    # factories: row-major, except *_like and a copy of an array, which keep its layout
    "zeros": lambda t: t.zeros(3, 4),
    "arange": lambda t: t.arange(12.0),
    "tensor(list)": lambda t: t.tensor(A46.T.tolist()),
    "tensor(a.T)": lambda t: t.tensor(A46.T),
    "tensor(a[:, ::2])": lambda t: t.tensor(A46[:, ::2]),
    "from_numpy(a.T)": lambda t: t.from_numpy(A46.T),
    "zeros_like(x.t())": lambda t: t.zeros_like(_t(t, A46).t()),
    "ones_like(x.t())": lambda t: t.ones_like(_t(t, A46).t()),
    "full_like(x.t())": lambda t: t.full_like(_t(t, A46).t(), 2.0),
    "empty_like(x.t()).fill_": lambda t: t.empty_like(_t(t, A46).t()).fill_(1.5),
    # nn: convolution and pooling outputs are row-major (the 60-minute blitz's x.view(-1, n))
    "conv2d": lambda t: t.nn.functional.conv2d(_t(t, C4), _t(t, W4)),
    "conv2d + bias": lambda t: t.nn.functional.conv2d(_t(t, C4), _t(t, W4), _t(t, np.ones(4))),
    "conv2d padded": lambda t: t.nn.functional.conv2d(_t(t, C4), _t(t, W4), None, 1, 1),
    "conv1d": lambda t: t.nn.functional.conv1d(_t(t, B234), _t(t, np.ones((5, 3, 2)))),
    "max_pool2d": lambda t: t.nn.functional.max_pool2d(_t(t, C4), 2),
    "avg_pool2d": lambda t: t.nn.functional.avg_pool2d(_t(t, C4), 2),
    "pool(relu(conv))": lambda t: t.nn.functional.max_pool2d(
        t.nn.functional.relu(t.nn.functional.conv2d(_t(t, C4), _t(t, W4))), 2),
    "linear": lambda t: t.nn.functional.linear(_t(t, A46), _t(t, np.ones((3, 6)))),
    "layer_norm(x.t())": lambda t: t.nn.functional.layer_norm(_t(t, A46).t(), (4,)),
    "batch_norm(x.t())": lambda t: t.nn.functional.batch_norm(_t(t, A46).t(), None, None,
                                                              training=True),
    "batch_norm 4-D": lambda t: t.nn.functional.batch_norm(_t(t, C4), None, None, training=True),
}


def test_view_as_is_a_view():
    for lib in (torch, jitgrad):
        x = lib.tensor(A46)
        assert x.view_as(lib.zeros(24)).shape == (24,)
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            x.t().view_as(lib.zeros(24))


def _view_shapes(shape: tuple) -> list:
    out = [(-1,)]
    if len(shape) >= 2:
        out += [(shape[0], -1), (-1, shape[-1]), (*shape[::-1],)]
    if len(shape) >= 3:
        out += [(*shape[:-2], -1), (-1, *shape[2:]), (shape[0], -1, shape[-1])]
    return out


def _key(a) -> tuple:
    """The strides that decide a view (those of dims longer than 1), in elements."""
    s = a.stride() if isinstance(a, torch.Tensor) else tuple(b // a._value.itemsize
                                                             for b in a._value.strides)
    return tuple((n, st) for n, st in zip(a.shape, s) if n > 1)


@pytest.mark.parametrize("name", LAYOUTS)
def test_view_raises_exactly_where_torch_does(name):
    want, got = LAYOUTS[name](torch), LAYOUTS[name](jitgrad)
    np.testing.assert_allclose(got.detach().numpy().astype(np.float64),
                               want.detach().numpy().astype(np.float64), rtol=1e-6, atol=1e-9)
    assert _key(got) == _key(want)
    assert got.is_contiguous() == want.is_contiguous()
    for shape in _view_shapes(tuple(want.shape)):
        try:
            w = want.view(*shape)
        except RuntimeError:
            with pytest.raises(RuntimeError, match="view size is not compatible"):
                got.view(*shape)
        else:
            g = got.view(*shape)
            np.testing.assert_allclose(g.detach().numpy().astype(np.float64),
                                       w.detach().numpy().astype(np.float64), rtol=1e-6, atol=1e-9)


def test_the_blitz_network_views_its_pooled_features():
    # The 60-minute blitz: conv, relu, max-pool, then x.view(-1, 16 * 5 * 5).
    F = jitgrad.nn.functional
    x = jitgrad.randn(2, 3, 32, 32)
    c1, c2 = jitgrad.nn.Conv2d(3, 6, 5), jitgrad.nn.Conv2d(6, 16, 5)
    x = F.max_pool2d(F.relu(c1(x)), 2)
    x = F.max_pool2d(F.relu(c2(x)), 2)
    assert x.view(-1, 16 * 5 * 5).shape == (2, 400)


def test_contiguous_copies_only_when_needed_and_stays_in_the_graph():
    for lib in (torch, jitgrad):
        x = lib.tensor(A46, requires_grad=True)
        assert x.contiguous() is x
        y = x.t().contiguous()
        assert y.grad_fn.name() == "CloneBackward0"
        (y.view(-1) * lib.arange(24.0)).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.arange(24.0).reshape(6, 4).T)


@pytest.mark.parametrize("sizes", [(1,), (1, 1), (2, 1), (3,), (2, 2)])
def test_repeat_always_copies_into_a_writable_result(sizes):
    """``repeat`` by ones, or along a new leading dim, was a view: writing to it changed ``x``
    or was refused as read-only. Compared with torch, eagerly and through the gradient."""
    got = {}
    for lib in (torch, jitgrad):
        x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = x.repeat(*sizes)
        (y * lib.arange(float(y.numel())).reshape(y.shape)).sum().backward()
        with lib.no_grad():
            y.view(-1)[0] = 9.0
        b = lib.ones(1, 3).expand(4, 3).repeat(*sizes[-1:] * 2)
        b[0, 0] = 7.0
        got[lib] = (x.detach().numpy().copy(), y.detach().numpy().copy(), x.grad.numpy().copy(),
                    b.numpy().copy())
    for a, b in zip(got[torch], got[jitgrad]):
        np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("args", [(0, 0, 1), (1, 1, 2), (-1, 0, 2), (2, 2, 1), (0, -1, 0)])
def test_diagonal_is_a_view_that_writes_through(args):
    """``cov.diagonal().add_(eps)`` must change ``cov``, as torch's diagonal is a view; the
    result is strided (not contiguous) as torch's, and its gradient is the gather's."""
    got = {}
    for lib in (torch, jitgrad):
        x = lib.tensor(np.arange(24.0).reshape(2, 3, 4))
        d = x.diagonal(*args)
        contiguous = d.is_contiguous()
        d.mul_(-1.0)
        lib.diagonal(x, *args).add_(100.0)
        a = lib.ones(2, 3, 4, requires_grad=True)
        g = (a * 2).diagonal(*args)
        (g * lib.arange(float(g.numel())).reshape(g.shape)).sum().backward()
        got[lib] = (x.numpy().copy(), contiguous, a.grad.numpy().copy())
    np.testing.assert_array_equal(got[jitgrad][0], got[torch][0])
    assert got[jitgrad][1] == got[torch][1]
    np.testing.assert_array_equal(got[jitgrad][2], got[torch][2])


@pytest.mark.parametrize("amounts", [(0, 0), (-1, 0), (0, -1, 0, 0), (1, -1), (0, 0, 0, 0)])
def test_pad_without_growth_is_a_copy(amounts):
    """``F.pad`` by zeros (or cropping only) returned the input or a view of it: a write to
    the result changed the input. torch's pad always makes a new tensor."""
    got = {}
    for lib in (torch, jitgrad):
        x = lib.arange(6.0).reshape(2, 3)
        y = lib.nn.functional.pad(x, amounts)
        y[0, 0] = 42.0
        got[lib] = (x.numpy().copy(), y.numpy().copy())
    for a, b in zip(got[torch], got[jitgrad]):
        np.testing.assert_array_equal(b, a)


_STRIDED = ["x", "x.transpose(0, 2)", "x[:, 1:]", "x[1]", "x[:, None]", "x[None]", "x[..., None]",
            "x[:, :, None, None]", "x[0, :1].expand(5, 4)", "x.permute(2, 0, 1)",
            "x.diagonal(0, 1, 2)", "x.view(6, 4)[2:]", "x[..., ::2]", "x.sum()",
            "lib.ones(2, 1, 3)", "lib.empty(0, 3)", "x[:, 1:2]", "x.t().contiguous()"]


@pytest.mark.parametrize("expr", _STRIDED)
def test_stride_and_storage_offset_as_torch(expr):
    got = {}
    for lib in (torch, jitgrad):
        x = lib.arange(24.0).reshape(2, 3, 4) if "t()" not in expr else lib.ones(3, 5)
        y = eval(expr, {"x": x, "lib": lib})  # noqa: S307  (the expressions above)
        got[lib] = (tuple(y.stride()), y.storage_offset(), y.stride(-1) if y.dim() else None,
                    y.nbytes, y.itemsize)
    assert got[jitgrad] == got[torch]


def test_narrow_copy_is_a_new_tensor_with_narrows_checks():
    got = {}
    for lib in (torch, jitgrad):
        x = lib.arange(12.0, requires_grad=True)
        y = lib.narrow_copy(x.detach().reshape(3, 4), 1, 1, 2)
        y[0, 0] = 9.0
        (x.reshape(3, 4).narrow_copy(-1, 0, 3) * 2.0).sum().backward()
        with pytest.raises(RuntimeError):
            x.narrow_copy(0, 11, 2)
        got[lib] = (x.detach().numpy().copy(), y.numpy().copy(), x.grad.numpy().copy())
    for a, b in zip(got[torch], got[jitgrad]):
        np.testing.assert_array_equal(b, a)


def test_a_leaf_grad_is_laid_out_like_the_leaf():
    for make in (lambda lib: lib.tensor(A46, requires_grad=True),
                 lambda lib: lib.tensor(A46.T, requires_grad=True)):
        keys = []
        for lib in (torch, jitgrad):
            x = make(lib)
            (x.t() * lib.tensor(np.ones((x.shape[1], x.shape[0])))).sum().backward()
            keys.append(_key(x.grad))
        assert keys[0] == keys[1]


# Empty tensors where jitgrad raised and torch does not (op_db's samples past the first few):
# each program returns a value and the gradient of its sum with respect to x.
def _empty_grad(lib, fn, shape):
    x = lib.ones(*shape, dtype=lib.float64, requires_grad=True)
    out = fn(lib, x)
    out.sum().backward()
    return out.detach(), x.grad


EMPTY = {
    "nonzero": (lambda lib, x: lib.nonzero(x.detach()).to(lib.float64) + x.sum(), (0, 3)),
    "nonzero_0d": (lambda lib, x: lib.nonzero(x.sum() * 0).to(lib.float64) + x.sum(), (2,)),
    "cat_legacy_empty": (lambda lib, x: lib.cat([x, lib.zeros(0, dtype=lib.float64)], 1), (2, 3)),
    "prod_empty": (lambda lib, x: x.prod(1), (2, 0)),
    "cumprod_empty": (lambda lib, x: x.cumprod(0), (0, 3)),
    "matmul_empty_k": (lambda lib, x: x @ lib.ones(0, 4, dtype=lib.float64), (2, 3, 0)),
    "gather_empty_index": (lambda lib, x: lib.gather(x, 0, lib.zeros(2, 0, dtype=lib.int64)),
                           (5,)),
    "group_norm_empty_batch": (lambda lib, x: lib.nn.functional.group_norm(x, 1), (0, 2, 3)),
    "avg_pool1d_empty_batch": (lambda lib, x: lib.nn.functional.avg_pool1d(x, 2), (0, 3, 6)),
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_empty_tensors_as_torch(name):
    fn, shape = EMPTY[name]
    got = _empty_grad(jitgrad, fn, shape)
    want = _empty_grad(torch, fn, shape)
    for g, w in zip(got, want):
        assert tuple(g.shape) == tuple(w.shape), name
        np.testing.assert_allclose(g.numpy(), w.numpy())
