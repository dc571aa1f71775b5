"""jitgrad/ops/shape_more.py against PyTorch: what op_db's samples (tests/test_opinfo.py) leave
out: keyword forms, in-place methods, errors, 0-d and empty tensors, gradients at the edges."""

import numpy as np
import pytest

import jitgrad

torch = pytest.importorskip("torch")


def _pair(shape, seed=0, dtype=np.float64, requires_grad=True):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return (jitgrad.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def _close(got, want, **kw):
    np.testing.assert_allclose(np.asarray(got.detach().numpy() if hasattr(got, "detach") else got),
                               want.detach().numpy(), rtol=1e-6, atol=1e-9, **kw)


def _grads(fn_j, fn_t, *shapes):
    """Values and gradients of ``fn(*inputs)`` (weighted by a fixed cotangent) in both."""
    js, ts = zip(*(_pair(s, seed=i) for i, s in enumerate(shapes)))
    out_j, out_t = fn_j(*js), fn_t(*ts)
    _close(out_j, out_t)
    w = np.random.default_rng(9).standard_normal(tuple(out_t.shape))
    (out_j * jitgrad.tensor(w)).sum().backward()
    (out_t * torch.tensor(w)).sum().backward()
    for j, t in zip(js, ts):
        if t.grad is None:  # torch records no gradient (an unused input, or p=0's count)
            assert j.grad is None or not j.grad.numpy().any()
        else:
            _close(j.grad, t.grad)


# -- the add* family -----------------------------------------------------------------------------
@pytest.mark.parametrize("name,shapes", [
    ("addmm", [(2, 4), (2, 3), (3, 4)]), ("addmm", [(4,), (2, 3), (3, 4)]),
    ("addmv", [(2,), (2, 3), (3,)]), ("addr", [(1, 3), (2,), (3,)]),
    ("addbmm", [(2, 4), (5, 2, 3), (5, 3, 4)]), ("baddbmm", [(1, 2, 4), (5, 2, 3), (5, 3, 4)]),
])
def test_add_family_keywords_and_gradients(name, shapes):
    _grads(lambda *a: getattr(jitgrad, name)(*a, beta=0.5, alpha=-2.0),
           lambda *a: getattr(torch, name)(*a, beta=0.5, alpha=-2.0), *shapes)


def test_addmm_beta_zero_ignores_nan_input_and_inplace_method():
    bias = jitgrad.full((2, 2), float("nan"))
    a = jitgrad.ones(2, 3)
    out = jitgrad.addmm(bias, a, a.T, beta=0)
    want = torch.addmm(torch.full((2, 2), float("nan")), torch.ones(2, 3), torch.ones(3, 2), beta=0)
    _close(out, want)
    x, xt = _pair((2, 2), requires_grad=False)
    m, mt = _pair((2, 2), seed=1, requires_grad=False)
    assert x.addmm_(m, m, alpha=3) is x
    xt.addmm_(mt, mt, alpha=3)
    _close(x, xt)
    v, vt = _pair((2,), requires_grad=False)
    jitgrad.addmv_(v, m, v)
    torch.addmv_(vt, mt, vt)
    _close(v, vt)


def test_addmm_out_and_errors():
    out = jitgrad.empty(2, 2)
    assert jitgrad.addmm(jitgrad.ones(2, 2), jitgrad.ones(2, 3), jitgrad.ones(3, 2), out=out) is out
    _close(out, torch.full((2, 2), 4.0))
    with pytest.raises(RuntimeError, match="same dtype"):
        jitgrad.addmm(jitgrad.ones(2, 2, dtype=jitgrad.float64), jitgrad.ones(2, 2),
                      jitgrad.ones(2, 2))
    with pytest.raises(RuntimeError, match=r"cannot be multiplied \(2x3 and 2x2\)"):
        jitgrad.addmm(jitgrad.ones(2, 2), jitgrad.ones(2, 3), jitgrad.ones(2, 2))
    with pytest.raises(RuntimeError, match=r"input of shape \[3, 2\] cannot be broadcast"):
        jitgrad.addmm(jitgrad.ones(3, 2), jitgrad.ones(2, 2), jitgrad.ones(2, 2))
    with pytest.raises(RuntimeError, match="mat1 to be 2-D"):
        jitgrad.addmm(jitgrad.ones(2, 2), jitgrad.ones(1, 2, 2), jitgrad.ones(2, 2))
    with pytest.raises(RuntimeError, match="alpha must not be a floating point"):
        ints = jitgrad.ones(2, 2, dtype=jitgrad.int64)
        jitgrad.addmm(ints, ints, ints, alpha=0.5)
    with pytest.raises(RuntimeError, match="same number of batches, got 3 and 2"):
        jitgrad.baddbmm(jitgrad.ones(2, 2), jitgrad.ones(3, 2, 2), jitgrad.ones(2, 2, 2))


# -- products ------------------------------------------------------------------------------------
def test_outer_ger_inner_vdot_kron_against_torch():
    _grads(lambda a, b: a.outer(b), lambda a, b: a.outer(b), (3,), (4,))
    _grads(lambda a, b: a.ger(b), lambda a, b: a.ger(b), (3,), (2,))
    _grads(jitgrad.inner, torch.inner, (2, 3, 4), (5, 4))
    _grads(jitgrad.inner, torch.inner, (), (2, 3))
    _grads(jitgrad.vdot, torch.vdot, (4,), (4,))
    _grads(jitgrad.kron, torch.kron, (2, 3), (3, 1, 2))
    _grads(jitgrad.kron, torch.kron, (), ())
    ints = jitgrad.kron(jitgrad.tensor([1, 2]), jitgrad.tensor([[1.5]]))
    assert ints.dtype is jitgrad.float32  # dtypes promote, as torch's
    with pytest.raises(RuntimeError, match="self to be 1-D"):
        jitgrad.outer(jitgrad.ones(2, 2), jitgrad.ones(2))
    with pytest.raises(RuntimeError, match=r"last dimension must match .* \[2, 3\] and \[4, 2\]"):
        jitgrad.inner(jitgrad.ones(2, 3), jitgrad.ones(4, 2))
    with pytest.raises(RuntimeError, match="same dtype"):
        jitgrad.vdot(jitgrad.ones(2), jitgrad.ones(2, dtype=jitgrad.float64))


@pytest.mark.parametrize("dims,sb", [(0, (2, 2)), (1, (4, 2)), (2, (3, 4, 2)),
                                     (([1, 0], [0, 1]), (3, 2, 5)), (([2], [0]), (4, 5)),
                                     ([[0], [2]], (3, 5, 2))])
def test_tensordot_dims_forms(dims, sb):
    _grads(lambda a, b: jitgrad.tensordot(a, b, dims=dims),
           lambda a, b: torch.tensordot(a, b, dims=dims), (2, 3, 4), sb)


def test_tensordot_size_one_broadcast_tensor_dims_and_errors():
    _grads(lambda a, b: jitgrad.tensordot(a, b, ([1], [0])),
           lambda a, b: torch.tensordot(a, b, ([1], [0])), (2, 1), (3, 2))
    a = jitgrad.ones(2, 3)
    assert jitgrad.tensordot(a, a, dims=jitgrad.tensor([[0], [0]])).shape == (3, 3)
    assert jitgrad.tensordot(a, jitgrad.ones(0, 3), dims=([1], [1])).shape == (2, 0)
    with pytest.raises(RuntimeError, match="dims >= 0"):
        jitgrad.tensordot(a, a, -1)
    with pytest.raises(RuntimeError, match="size 3 in dim 1 and second has size 2 in dim 0"):
        jitgrad.tensordot(a, a, 1)
    with pytest.raises(RuntimeError, match="same length"):
        jitgrad.tensordot(a, a, ([0], [0, 1]))


def test_block_diag_cartesian_prod_combinations():
    a, at = _pair((2, 3))
    b, bt = _pair((3,), seed=1)
    c, ct = _pair((), seed=2)
    out = jitgrad.block_diag(a, b, c)
    want = torch.block_diag(at, bt, ct)
    _close(out, want)
    out.sum().backward()
    want.sum().backward()
    _close(a.grad, at.grad)
    _close(c.grad, ct.grad)
    assert tuple(jitgrad.block_diag().shape) == tuple(torch.block_diag().shape)
    assert jitgrad.block_diag(jitgrad.tensor([1]), jitgrad.ones(1, dtype=jitgrad.float64)).dtype \
        is jitgrad.float64
    x = jitgrad.tensor([1, 2, 3])
    np.testing.assert_array_equal(jitgrad.cartesian_prod(x, x, x).numpy(),
                                  torch.cartesian_prod(*[torch.tensor([1, 2, 3])] * 3).numpy())
    assert jitgrad.cartesian_prod(x) is x
    for r in (0, 1, 2, 3, 4):
        for rep in (False, True):
            got = jitgrad.combinations(x, r, with_replacement=rep)
            want = torch.combinations(torch.tensor([1, 2, 3]), r, with_replacement=rep)
            assert tuple(got.shape) == tuple(want.shape)
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    with pytest.raises(RuntimeError, match="2 or fewer dimensions; input 0 has 3"):
        jitgrad.block_diag(jitgrad.ones(1, 1, 1))
    with pytest.raises(RuntimeError, match="1-D"):
        jitgrad.cartesian_prod(jitgrad.ones(2, 2))
    with pytest.raises(ValueError, match="non-negative"):
        jitgrad.combinations(x, -1)


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0, 2.0, 3.0, float("inf")])
def test_cdist_zero_distances_and_batches(p):
    # x1 against itself: the zero distances on the diagonal must give torch's finite gradient
    x, xt = _pair((3, 4, 2))
    out = jitgrad.cdist(x, x, p=p)
    want = torch.cdist(xt, xt, p=p)
    _close(out, want)
    out.sum().backward()
    want.sum().backward()
    _close(x.grad, xt.grad)
    _grads(lambda a, b: jitgrad.cdist(a, b, p), lambda a, b: torch.cdist(a, b, p),
           (5, 1, 3, 2), (4, 2, 2))


def test_cdist_and_dist_errors_and_dist_forms():
    with pytest.raises(RuntimeError, match="same number of columns, got 3 and 2"):
        jitgrad.cdist(jitgrad.ones(2, 3), jitgrad.ones(4, 2))
    with pytest.raises(ValueError, match="non-negative"):
        jitgrad.cdist(jitgrad.ones(2, 3), jitgrad.ones(4, 3), p=-1)
    with pytest.raises(RuntimeError, match="floating-point"):
        jitgrad.cdist(jitgrad.ones(2, 3, dtype=jitgrad.int64), jitgrad.ones(2, 3))
    with pytest.raises(ValueError, match="compute_mode"):
        jitgrad.cdist(jitgrad.ones(2, 3), jitgrad.ones(4, 3), compute_mode="fast")
    _close(jitgrad.dist(jitgrad.ones(2, 3), jitgrad.zeros(3), 0),
           torch.dist(torch.ones(2, 3), torch.zeros(3), 0))
    for p in (1, 2, 0.5, float("inf"), float("-inf"), -1):
        _grads(lambda a, b, p=p: a.dist(b, p), lambda a, b, p=p: a.dist(b, p), (2, 3), (3,))
    with pytest.raises(RuntimeError, match="floating point"):
        jitgrad.dist(jitgrad.ones(2, dtype=jitgrad.int64), jitgrad.ones(2, dtype=jitgrad.int64))


# -- stacks --------------------------------------------------------------------------------------
def test_atleast_forms():
    s = jitgrad.tensor(1.0)
    v = jitgrad.ones(2)
    m = jitgrad.ones(2, 3)
    for name in ("atleast_1d", "atleast_2d", "atleast_3d"):
        fj, ft = getattr(jitgrad, name), getattr(torch, name)
        for t in (s, v, m):
            assert tuple(fj(t).shape) == tuple(ft(torch.tensor(t.numpy())).shape)
        got = fj(s, v)
        assert isinstance(got, tuple) and len(got) == 2
        assert [tuple(g.shape) for g in fj([s, v, m])] == [
            tuple(g.shape) for g in ft([torch.tensor(1.0), torch.ones(2), torch.ones(2, 3)])]
        assert fj([s])[0].ndim >= 1 and isinstance(fj([s]), tuple)
        assert fj() == ()
    assert jitgrad.atleast_1d(v) is v


@pytest.mark.parametrize("name", ["hstack", "vstack", "row_stack", "dstack", "column_stack"])
def test_stacks_mixed_ranks_and_gradients(name):
    shapes = {"hstack": [(2, 1), (2, 3)], "vstack": [(3,), (2, 3)], "row_stack": [(), (1,)],
              "dstack": [(2,), (1, 2, 2)], "column_stack": [(2,), (2, 3), ()][:2]}[name]
    _grads(lambda *a: getattr(jitgrad, name)(list(a)), lambda *a: getattr(torch, name)(list(a)),
           *shapes)
    with pytest.raises(ValueError, match="non-empty"):
        getattr(jitgrad, name)([])
    with pytest.raises(TypeError, match="tuple or list"):
        getattr(jitgrad, name)(jitgrad.ones(2))


def test_hstack_0d_and_concat_skips_legacy_empty():
    got = jitgrad.hstack([jitgrad.tensor(1.0), jitgrad.tensor(2)])
    _close(got, torch.hstack([torch.tensor(1.0), torch.tensor(2)]))
    m = jitgrad.ones(2, 2)
    got = jitgrad.concat([jitgrad.zeros(0, dtype=jitgrad.float64), m], dim=1)
    want = torch.concat([torch.zeros(0, dtype=torch.float64), torch.ones(2, 2)], dim=1)
    assert got.dtype is jitgrad.float64 and tuple(got.shape) == tuple(want.shape)


# -- splits --------------------------------------------------------------------------------------
@pytest.mark.parametrize("ios", [3, 1, 9, [2, 5], [-2, 5], [5, 2], [-20, 50], []])
def test_tensor_split_against_torch(ios):
    x, xt = _pair((7, 2))
    for dim in (0, -2):
        got = jitgrad.tensor_split(x, ios, dim)
        want = torch.tensor_split(xt, ios, dim)
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w)
    got = x.tensor_split(jitgrad.tensor(ios) if isinstance(ios, int) else ios, dim=1)
    assert [tuple(g.shape) for g in got] == [tuple(w.shape) for w in xt.tensor_split(
        torch.tensor(ios) if isinstance(ios, int) else ios, dim=1)]


def test_hsplit_vsplit_dsplit_split_with_sizes():
    x, xt = _pair((4, 6, 2))
    for name, arg in (("hsplit", 3), ("hsplit", [1, 4]), ("vsplit", 2), ("vsplit", [3]),
                      ("dsplit", 2), ("dsplit", [1])):
        for g, w in zip(getattr(x, name)(arg), getattr(xt, name)(arg)):
            _close(g, w)
    for g, w in zip(jitgrad.hsplit(jitgrad.arange(6.0), 3), torch.hsplit(torch.arange(6.0), 3)):
        _close(g, w)
    parts = x.split_with_sizes([1, 0, 5], dim=1)
    for g, w in zip(parts, xt.split_with_sizes([1, 0, 5], dim=1)):
        _close(g, w)
    (parts[0].sum() + 2 * parts[2].sum()).backward()
    (lambda p: (p[0].sum() + 2 * p[2].sum()).backward())(xt.split_with_sizes([1, 0, 5], dim=1))
    _close(x.grad, xt.grad)
    with pytest.raises(RuntimeError, match="size of the dimension 6 is not divisible by the "
                                           "split_size 4"):
        jitgrad.hsplit(jitgrad.ones(2, 6), 4)
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        jitgrad.vsplit(jitgrad.ones(4), 2)
    with pytest.raises(RuntimeError, match="at least 3 dimensions"):
        jitgrad.dsplit(jitgrad.ones(4, 2), 2)
    with pytest.raises(RuntimeError, match="sum exactly to 6"):
        jitgrad.split_with_sizes(jitgrad.ones(6), [2, 2])
    with pytest.raises(RuntimeError, match="non-negative"):
        jitgrad.split_with_sizes(jitgrad.ones(6), [-1, 7])
    with pytest.raises(RuntimeError, match="larger than 0"):
        jitgrad.tensor_split(jitgrad.ones(6), 0)
    with pytest.raises(RuntimeError, match="0 dims"):
        jitgrad.tensor_split(jitgrad.tensor(1.0), 2)
    with pytest.raises(RuntimeError, match="dtype of long"):
        jitgrad.tensor_split(jitgrad.ones(6), jitgrad.tensor([1.0]))


# -- rearrangements ------------------------------------------------------------------------------
def test_swap_unflatten_ravel_adjoint_keywords():
    x, xt = _pair((2, 3, 4))
    _close(jitgrad.swapaxes(x, axis0=0, axis1=2), torch.swapaxes(xt, axis0=0, axis1=2))
    _close(jitgrad.swapdims(x, dim0=-1, dim1=1), torch.swapdims(xt, dim0=-1, dim1=1))
    _close(x.swapaxes(0, 1), xt.swapaxes(0, 1))
    _close(x.swapdims(0, 1), xt.swapdims(0, 1))
    _close(x.unflatten(-1, (2, -1)), xt.unflatten(-1, (2, -1)))
    _close(jitgrad.unflatten(x, dim=1, sizes=(3, 1)), torch.unflatten(xt, dim=1, sizes=(3, 1)))
    _close(x.ravel(), xt.ravel())
    _close(jitgrad.ravel(jitgrad.tensor(2.0)), torch.ravel(torch.tensor(2.0)))
    _close(x.adjoint(), xt.adjoint())
    _close(jitgrad.adjoint(x), torch.adjoint(xt))
    with pytest.raises(RuntimeError, match="matrices"):
        jitgrad.adjoint(jitgrad.ones(3))
    with pytest.raises(RuntimeError, match="non-empty"):
        x.unflatten(0, ())
    with pytest.raises(RuntimeError, match=r"\[4, 2\] don't multiply up to the size of dim 1 "):
        x.unflatten(1, (4, 2))


@pytest.mark.parametrize("k", [-3, -1, 0, 1, 2, 5])
def test_rot90(k):
    for dims in ((0, 1), (1, 0), (-1, 0), [2, 1]):
        _grads(lambda a: jitgrad.rot90(a, k, dims), lambda a: torch.rot90(a, k, dims), (2, 3, 4))
    x = jitgrad.ones(2, 2)
    with pytest.raises(RuntimeError, match="dims == 2"):
        jitgrad.rot90(x, k, [0])
    with pytest.raises(RuntimeError, match="different"):
        jitgrad.rot90(x, k, [0, -2])
    with pytest.raises(RuntimeError, match="total dims >= 2"):
        jitgrad.rot90(jitgrad.ones(3), k)


def test_diagflat_diff_trace():
    for off in (-2, 0, 1):
        _grads(lambda a, off=off: a.diagflat(off), lambda a, off=off: a.diagflat(off), (2, 2))
    _close(jitgrad.diagflat(jitgrad.tensor(3.0)), torch.diagflat(torch.tensor(3.0)))
    for n in (0, 1, 2, 5):
        _grads(lambda a, p, q, n=n: jitgrad.diff(a, n, 0, prepend=p, append=q),
               lambda a, p, q, n=n: torch.diff(a, n, 0, prepend=p, append=q), (3, 2), (1, 2),
               (2, 2))
    _grads(lambda a: a.diff(dim=1), lambda a: a.diff(dim=1), (3, 4))
    b = [True, False, False, True]
    np.testing.assert_array_equal(jitgrad.diff(jitgrad.tensor(b)).numpy(),
                                  torch.diff(torch.tensor(b)).numpy())
    with pytest.raises(RuntimeError, match="at least one-dimensional"):
        jitgrad.diff(jitgrad.tensor(1.0))
    with pytest.raises(RuntimeError, match="non-negative"):
        jitgrad.diff(jitgrad.ones(3), n=-1)
    with pytest.raises(RuntimeError, match="prepend to have as many dims"):
        jitgrad.diff(jitgrad.ones(3), prepend=jitgrad.tensor(0.0))
    _grads(lambda a: a.trace(), lambda a: a.trace(), (3, 4))
    assert jitgrad.ones(2, 2, dtype=jitgrad.int32).trace().dtype is jitgrad.int64
    with pytest.raises(RuntimeError, match="expected a matrix"):
        jitgrad.ones(3).trace()
    assert jitgrad.trace(jitgrad.eye(3)).item() == 3.0  # the subpackage, called, is torch.trace
    assert jitgrad.trace.tracer.__name__ == "jitgrad.trace.tracer"


# -- broadcasting and index factories ------------------------------------------------------------
def test_broadcast_shapes_and_tensors():
    args = ((2, 1), (3,), 1, [1, 1, 1])
    got = jitgrad.broadcast_shapes(*args)
    assert isinstance(got, jitgrad.Size) and got == torch.broadcast_shapes(*args)
    assert jitgrad.broadcast_shapes() == torch.broadcast_shapes()
    with pytest.raises(RuntimeError, match=r"\(2, 1\) and \(3, 2\)|cannot be broadcast"):
        jitgrad.broadcast_shapes((2, 1), (3, 2))
    with pytest.raises(ValueError, match="negative"):
        jitgrad.broadcast_shapes((-1,))
    _grads(lambda a, b: jitgrad.broadcast_tensors(a, b)[0] * jitgrad.broadcast_tensors(a, b)[1],
           lambda a, b: torch.broadcast_tensors(a, b)[0] * torch.broadcast_tensors(a, b)[1],
           (2, 1), (3,))
    assert jitgrad.broadcast_tensors() == ()


@pytest.mark.parametrize("row,col,offset", [(3, 4, 1), (4, 3, -2), (0, 3, 0), (3, 3, 10),
                                            (3, 3, -10)])
def test_tril_triu_indices(row, col, offset):
    for name in ("tril_indices", "triu_indices"):
        got = getattr(jitgrad, name)(row, col, offset)
        want = getattr(torch, name)(row, col, offset)
        assert got.dtype is jitgrad.int64 and tuple(got.shape) == tuple(want.shape)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert jitgrad.tril_indices(3, 3, dtype=jitgrad.int32).dtype is jitgrad.int32
    with pytest.raises(RuntimeError, match="row must be non-negative, got -1"):
        jitgrad.tril_indices(-1, 3)
    with pytest.raises(RuntimeError, match="integer dtype"):
        jitgrad.triu_indices(3, 3, dtype=jitgrad.float32)


def test_unravel_index_wraps_as_torch_and_traces():
    idx = [4, -1, 5, 6, -7, 0]
    for shape in ((2, 3), (6,), 6, (1, 2, 3)):
        got = jitgrad.unravel_index(jitgrad.tensor(idx), shape)
        want = torch.unravel_index(torch.tensor(idx), shape)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype is jitgrad.int64
            np.testing.assert_array_equal(g.numpy(), w.numpy())
    got = jitgrad.unravel_index(jitgrad.tensor(4, dtype=jitgrad.int32), (2, 3))
    assert [g.shape for g in got] == [(), ()] and [int(g) for g in got] == [1, 1]
    assert jitgrad.unravel_index(jitgrad.tensor([1]), ()) == ()
    compiled = jitgrad.jit(lambda i: jitgrad.unravel_index(i, (2, 3)), target="reference")
    got = compiled(jitgrad.tensor([5, -1]))
    np.testing.assert_array_equal(np.stack([g.numpy() for g in got]), [[1, 1], [2, 2]])
    with pytest.raises(TypeError, match="integer dtype"):
        jitgrad.unravel_index(jitgrad.tensor([1.0]), (2,))
    with pytest.raises(ValueError, match="negative"):
        jitgrad.unravel_index(jitgrad.tensor([1]), (2, -3))
    with pytest.raises(RuntimeError, match="zero-size"):
        jitgrad.unravel_index(jitgrad.tensor([0]), (2, 0))


# -- factories and fills -------------------------------------------------------------------------
def test_scalar_tensor_and_logspace():
    for s, kw in ((3, {}), (2.5, {"dtype": jitgrad.float64}), (True, {}),
                  (7, {"dtype": jitgrad.int64})):
        tkw = {"dtype": getattr(torch, kw["dtype"].name)} if kw else {}
        got, want = jitgrad.scalar_tensor(s, **kw), torch.scalar_tensor(s, **tkw)
        assert got.shape == () and got.dtype.name == str(want.dtype).removeprefix("torch.")
        assert got.item() == want.item()
    assert jitgrad.scalar_tensor(1.0, requires_grad=True).requires_grad
    for args, kw in (((0, 3, 4), {}), ((2, -1, 7), {"base": 2}), ((0, 2, 1), {}),
                     ((0, 2, 0), {}), ((2, 0, 5), {"dtype": jitgrad.int64}),
                     ((0, 3, 4), {"base": -2.0}), ((jitgrad.tensor(1.0), 2, 3), {})):
        targs = tuple(torch.tensor(a.item()) if isinstance(a, jitgrad.Tensor) else a
                      for a in args)
        tkw = {k: (getattr(torch, v.name) if k == "dtype" else v) for k, v in kw.items()}
        got, want = jitgrad.logspace(*args, **kw), torch.logspace(*targs, **tkw)
        assert got.dtype.name == str(want.dtype).removeprefix("torch.")
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    with pytest.raises(RuntimeError, match="non-negative"):
        jitgrad.logspace(0, 1, -1)
    with pytest.raises(RuntimeError, match="0-dimensional"):
        jitgrad.logspace(jitgrad.ones(1), 1, 3)


def test_fill_and_zero_functions_give_torchs_gradients():
    x, xt = _pair((2, 3))
    v, vt = _pair((), seed=1)
    out, want = jitgrad.fill(x * 2, v), torch.fill(xt * 2, vt)
    _close(out, want)
    (out * out).sum().backward()
    (want * want).sum().backward()
    _close(x.grad, xt.grad)  # zeros: fill's value does not depend on the input
    _close(v.grad, vt.grad)
    assert jitgrad.fill(jitgrad.ones(2, dtype=jitgrad.int64), 2.5).tolist() == [2, 2]
    with pytest.raises(RuntimeError, match="0-dimension value tensor"):
        jitgrad.fill(jitgrad.ones(2), jitgrad.ones(1))
    # in place: a zeroed or filled intermediate passes no gradient back
    for name, args in (("zero_", ()), ("fill_", (3.0,))):
        a, at = _pair((3,))
        y, yt = a * 2, at * 2
        assert getattr(jitgrad, name)(y, *args) is y
        getattr(torch, name)(yt, *args)
        _close(y, yt)
        (y * a).sum().backward()
        (yt * at).sum().backward()
        _close(a.grad, at.grad)


# -- flat gathers and scatters, methods ----------------------------------------------------------
def test_take_and_put_against_torch():
    index = [[0, -1], [5, 2]]
    _grads(lambda a: jitgrad.take(a, jitgrad.tensor(index)),
           lambda a: torch.take(a, torch.tensor(index)), (2, 3))
    _close(jitgrad.take(jitgrad.tensor(5.0), jitgrad.tensor(0)),
           torch.take(torch.tensor(5.0), torch.tensor(0)))
    for acc in (False, True):
        idx = [0, 4, -1, 0] if acc else [0, 4, -1]
        _grads(lambda a, s, acc=acc, idx=idx: a.put(jitgrad.tensor(idx), s, accumulate=acc),
               lambda a, s, acc=acc, idx=idx: a.put(torch.tensor(idx), s, accumulate=acc),
               (2, 3), (len(idx),))
    x, xt = _pair((2, 2), requires_grad=False)
    src = jitgrad.tensor([1.0, 2.0], dtype=jitgrad.float64)
    assert x.put_(jitgrad.tensor([3, 3]), src, accumulate=True) is x
    xt.put_(torch.tensor([3, 3]), torch.tensor([1.0, 2.0], dtype=torch.float64), accumulate=True)
    _close(x, xt)
    with pytest.raises(IndexError, match="index 6 on a tensor of 6 elements"):
        jitgrad.take(jitgrad.ones(2, 3), jitgrad.tensor([6]))
    with pytest.raises(RuntimeError, match="long tensor"):
        jitgrad.take(jitgrad.ones(2, 3), jitgrad.tensor([1], dtype=jitgrad.int32))
    with pytest.raises(RuntimeError, match="same number of elements, but got 1 and 2"):
        jitgrad.put(jitgrad.ones(3), jitgrad.tensor([0, 1]), jitgrad.ones(1))
    with pytest.raises(RuntimeError, match="same dtype"):
        jitgrad.put(jitgrad.ones(3), jitgrad.tensor([0]), jitgrad.ones(1, dtype=jitgrad.float64))
    with pytest.raises(IndexError, match="index -4 on a tensor of 3 elements"):
        jitgrad.ones(3).put(jitgrad.tensor([-4]), jitgrad.ones(1))


def test_unfold_method():
    for dim, size, step in ((1, 2, 1), (0, 3, 2), (-1, 4, 3), (2, 0, 1), (1, 3, 5)):
        _grads(lambda a, d=dim, s=size, t=step: a.unfold(d, s, t),
               lambda a, d=dim, s=size, t=step: a.unfold(d, s, t), (4, 3, 5))
    _close(jitgrad.tensor(3.0).unfold(0, 1, 1), torch.tensor(3.0).unfold(0, 1, 1))
    _close(jitgrad.ones(2, 3).unfold(dimension=1, size=2, step=2),
           torch.ones(2, 3, dtype=torch.float64).unfold(dimension=1, size=2, step=2))
    with pytest.raises(RuntimeError, match="maximum size for tensor at dimension 1 is 3 but "
                                           "size is 4"):
        jitgrad.ones(2, 3).unfold(1, 4, 1)
    with pytest.raises(RuntimeError, match="step is 0"):
        jitgrad.ones(2, 3).unfold(1, 2, 0)
    with pytest.raises(RuntimeError, match="size is -1"):
        jitgrad.ones(2, 3).unfold(1, -1, 1)


def test_sum_to_size_forms_and_errors():
    x, xt = _pair((2, 3, 4))
    for size in ((3, 1), ((1, 3, 4),), (2, 1, 1), ((4,),)):
        _close(x.sum_to_size(*size), xt.sum_to_size(*size))
    _grads(lambda a: a.sum_to_size(1, 3, 1), lambda a: a.sum_to_size(1, 3, 1), (2, 3, 4))
    with pytest.raises(RuntimeError, match=r"size \[4, 1\] is not expandable to size"):
        x.sum_to_size(4, 1)
    with pytest.raises(RuntimeError, match="not expandable"):
        x.sum_to_size(1, 2, 3, 4)


def test_compositions_compile_on_the_reference_target():
    """A few of them inside jitgrad.grad: the compositions trace like any op."""
    def loss(a, b):
        return (jitgrad.kron(a, b).sum() + jitgrad.cdist(a, b).sum()
                + a.unfold(1, 2, 1).pow(2).sum() + jitgrad.tensordot(a, b, ([1], [1])).sum())

    a, at = _pair((3, 2))
    b, bt = _pair((4, 2), seed=1)
    ga, gb = jitgrad.grad(loss, argnums=(0, 1), target="reference")(a.detach(), b.detach())
    lt = (torch.kron(at, bt).sum() + torch.cdist(at, bt).sum() + at.unfold(1, 2, 1).pow(2).sum()
          + torch.tensordot(at, bt, ([1], [1])).sum())
    lt.backward()
    _close(ga, at.grad)
    _close(gb, bt.grad)
