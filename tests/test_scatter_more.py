"""index_add/copy/fill/put/reduce, scatter_reduce, the *_scatter ops, masked_*, nonzero_static and
the top-level convolution/normalization spellings, against real torch (values, gradients,
errors, in-place methods, 0-d and empty tensors). op_db's samples run in tests/test_opinfo.py."""

import numpy as np
import pytest

import jitgrad

torch = pytest.importorskip("torch")
# torch's notes on its side of a comparison (index_reduce is beta, padding='same' copies)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _pair(*arrays, grad=True):
    """The same float64 data as a jitgrad and a torch tensor (leaves requiring grad)."""
    out = []
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        out.append((jitgrad.tensor(a, requires_grad=grad), torch.tensor(a, requires_grad=grad)))
    return out


def _check(got, want, inputs=(), weight_seed=0):
    """Values, then the gradient of a weighted sum with respect to every (jitgrad, torch)
    leaf in ``inputs``."""
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    assert got.dtype.name == str(want.dtype).removeprefix("torch.")
    if not inputs:
        return
    w = np.random.default_rng(weight_seed).normal(size=tuple(want.shape))
    (got * jitgrad.tensor(w)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    for j, t in inputs:
        np.testing.assert_allclose(j.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)


def _ix(v):
    return jitgrad.tensor(np.asarray(v, dtype=np.int64)), torch.tensor(np.asarray(v, np.int64))


def _raises_like(fn_j, fn_t, exc=Exception, match=None):
    with pytest.raises(exc):
        fn_t()
    with pytest.raises(exc, match=match):
        fn_j()


# -- index_add / index_copy / index_fill ---------------------------------------------------------
def test_index_add_duplicates_alpha_negative_dim_and_grads():
    rng = np.random.default_rng(0)
    (xj, xt), (sj, st) = _pair(rng.normal(size=(3, 4)), rng.normal(size=(3, 5)))
    ij, it = _ix([3, 0, 3, 1, 3])
    _check(jitgrad.index_add(xj, -1, ij, sj, alpha=-2.5), torch.index_add(xt, -1, it, st,
                                                                          alpha=-2.5),
           [(xj, xt), (sj, st)])


def test_index_add_zero_d_int_and_inplace():
    got = jitgrad.index_add(jitgrad.tensor(3), 0, jitgrad.tensor(0), jitgrad.tensor(5), alpha=2)
    want = torch.index_add(torch.tensor(3), 0, torch.tensor(0), torch.tensor(5), alpha=2)
    _check(got, want)
    xj, xt = jitgrad.zeros(4), torch.zeros(4)
    ij, it = _ix([1, 1, 2])
    assert xj.index_add_(0, ij, jitgrad.ones(3)) is xj
    xt.index_add_(0, it, torch.ones(3))
    np.testing.assert_array_equal(xj.numpy(), xt.numpy())


@pytest.mark.parametrize("case", [
    lambda m, x, i: m.index_add(x, 0, i, m.ones(2, dtype=m.float64)),        # dtype
    lambda m, x, i: m.index_add(x, 0, i[:1], m.ones(2)),                     # count
    lambda m, x, i: m.index_add(x, 0, i.reshape(1, 2), m.ones(2)),           # 2-D index
    lambda m, x, i: m.index_add(x, 0, i.float(), m.ones(2)),                 # float index
    lambda m, x, i: m.index_add(x, 0, i + 7, m.ones(2)),                     # out of range
    lambda m, x, i: m.index_copy(x, 0, i - 3, m.ones(2)),                    # negative
    lambda m, x, i: m.index_add(x.reshape(2, 2), 0, i, m.ones(2, 3)),        # source shape
])
def test_index_ops_errors(case):
    _raises_like(lambda: case(jitgrad, jitgrad.zeros(4), jitgrad.tensor([0, 1])),
                 lambda: case(torch, torch.zeros(4), torch.tensor([0, 1])))


def test_index_copy_duplicates_take_the_last_and_grads():
    rng = np.random.default_rng(1)
    (xj, xt), (sj, st) = _pair(rng.normal(size=(5, 2)), rng.normal(size=(4, 2)))
    ij, it = _ix([1, 3, 1, 1])
    _check(xj.index_copy(0, ij, sj), xt.index_copy(0, it, st), [(xj, xt), (sj, st)])


def test_index_fill_tensor_value_grad_counts_each_slice_once():
    rng = np.random.default_rng(2)
    (xj, xt), (vj, vt) = _pair(rng.normal(size=(2, 3, 4)), 1.5)
    ij, it = _ix([2, 0, 2])
    _check(jitgrad.index_fill(xj, 1, ij, vj), torch.index_fill(xt, 1, it, vt),
           [(xj, xt), (vj, vt)])
    # negative indices count from the end (torch's backward refuses them, so values only)
    ij, it = _ix([-1, 0, -1])
    _check(jitgrad.index_fill(xj, -2, ij, vj), torch.index_fill(xt, -2, it, vt))


def test_index_fill_int_cast_zero_d_and_errors():
    _check(jitgrad.tensor([1, 2, 3]).index_fill(0, jitgrad.tensor([1]), 2.7),
           torch.tensor([1, 2, 3]).index_fill(0, torch.tensor([1]), 2.7))
    _check(jitgrad.tensor(4.0).index_fill(0, jitgrad.tensor([0]), -1.0),
           torch.tensor(4.0).index_fill(0, torch.tensor([0]), -1.0))
    x = jitgrad.zeros(3)
    with pytest.raises(RuntimeError, match="0-dimensional value tensor"):
        x.index_fill(0, jitgrad.tensor([0]), jitgrad.ones(1))
    with pytest.raises(IndexError, match="out of bounds"):
        x.index_fill(0, jitgrad.tensor([3]), 1.0)
    y = jitgrad.zeros(3)
    y.index_fill_(0, jitgrad.tensor([2]), 5.0)
    assert y.tolist() == [0.0, 0.0, 5.0]


# -- index_put -----------------------------------------------------------------------------------
@pytest.mark.parametrize("accumulate", [False, True])
def test_index_put_broadcast_negative_duplicates_grads(accumulate):
    rng = np.random.default_rng(3)
    (xj, xt), (vj, vt) = _pair(rng.normal(size=(4, 3)), rng.normal(size=(3,)))
    rows, cols = _ix([-1, 0, 2]), _ix([1, 1, 1])
    if accumulate:  # duplicates only where they are defined
        rows, cols = _ix([-1, 0, -1]), _ix([1, 1, 1])
    got = jitgrad.index_put(xj, (rows[0], cols[0]), vj, accumulate)
    want = torch.index_put(xt, (rows[1], cols[1]), vt, accumulate)
    _check(got, want, [(xj, xt), (vj, vt)])


def test_index_put_bool_mask_and_inplace():
    xj, xt = jitgrad.arange(6.0).reshape(2, 3), torch.arange(6.0).reshape(2, 3)
    mj, mt = jitgrad.tensor([True, False, True]), torch.tensor([True, False, True])
    _check(xj.index_put((jitgrad.tensor([0, 1]), mj), jitgrad.tensor(9.0), accumulate=True),
           xt.index_put((torch.tensor([0, 1]), mt), torch.tensor(9.0), accumulate=True))
    xj.index_put_((jitgrad.tensor([1]),), jitgrad.tensor([-1.0, -2.0, -3.0]))
    xt.index_put_((torch.tensor([1]),), torch.tensor([-1.0, -2.0, -3.0]))
    np.testing.assert_array_equal(xj.numpy(), xt.numpy())


@pytest.mark.parametrize("case", [
    lambda m, x: m.index_put(x, (m.tensor([0, 1]),), m.ones(3)),             # shape
    lambda m, x: m.index_put(x, (m.tensor([0, 1]),), m.ones(2, dtype=m.float64)),
    lambda m, x: m.index_put(x, (m.tensor([0, 5]),), m.ones(2)),             # range
    lambda m, x: m.index_put(x, (m.tensor([0.0]),), m.ones(1)),              # float index
    lambda m, x: m.index_put(x, (None,), m.ones(1)),
])
def test_index_put_errors(case):
    _raises_like(lambda: case(jitgrad, jitgrad.zeros(3)), lambda: case(torch, torch.zeros(3)))


# -- scatter_reduce / index_reduce ---------------------------------------------------------------
REDUCES = ["sum", "prod", "mean", "amax", "amin"]


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", REDUCES)
def test_scatter_reduce_ties_and_grads(reduce, include_self):
    # small integers in float64: ties between sources and with self, zeros for prod
    rng = np.random.default_rng(4)
    (xj, xt), (sj, st) = _pair(rng.integers(-2, 3, size=(3, 4)), rng.integers(-2, 3, (3, 5)))
    ij, it = _ix(rng.integers(0, 4, size=(3, 5)))
    _check(xj.scatter_reduce(-1, ij, sj, reduce, include_self=include_self),
           xt.scatter_reduce(-1, it, st, reduce, include_self=include_self),
           [(xj, xt), (sj, st)])


@pytest.mark.parametrize("reduce", ["amax", "mean", "prod"])
def test_scatter_reduce_index_smaller_than_input(reduce):
    # (torch's backward refuses a src larger than the index: op_db's samples cover the forward)
    rng = np.random.default_rng(5)
    (xj, xt), (sj, st) = _pair(rng.normal(size=(4, 3)), rng.normal(size=(2, 2)))
    ij, it = _ix(rng.integers(0, 4, size=(2, 2)))
    _check(jitgrad.scatter_reduce(xj, 0, ij, sj, reduce, include_self=False),
           torch.scatter_reduce(xt, 0, it, st, reduce, include_self=False),
           [(xj, xt), (sj, st)])


@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_integer_mean_floors_and_nan_inf_propagate(include_self):
    args = (0, torch.tensor([0, 0, 1]))
    xt, st = torch.tensor([-1, 5]), torch.tensor([-4, 2, 3])
    _check(jitgrad.tensor([-1, 5]).scatter_reduce(0, jitgrad.tensor([0, 0, 1]),
                                                  jitgrad.tensor([-4, 2, 3]), "mean",
                                                  include_self=include_self),
           xt.scatter_reduce(*args, st, "mean", include_self=include_self))
    for reduce in ("amax", "amin", "max"):
        s = [np.nan, 2.0, np.inf]
        got = jitgrad.tensor([1.0, 5.0]).scatter_reduce(0, jitgrad.tensor([0, 0, 1]),
                                                        jitgrad.tensor(s), reduce)
        want = torch.tensor([1.0, 5.0]).scatter_reduce(*args, torch.tensor(s), reduce)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_scatter_reduce_errors_zero_d_and_inplace():
    x = jitgrad.zeros(3)
    with pytest.raises(RuntimeError, match="reduce argument"):
        x.scatter_reduce(0, jitgrad.tensor([0]), jitgrad.ones(1), "median")
    with pytest.raises(RuntimeError, match="dtype"):
        x.scatter_reduce(0, jitgrad.tensor([0]), jitgrad.ones(1, dtype=jitgrad.float64), "sum")
    with pytest.raises(RuntimeError, match="out of bounds"):
        x.scatter_reduce(0, jitgrad.tensor([3]), jitgrad.ones(1), "amax")
    _check(jitgrad.tensor(3.0).scatter_reduce(0, jitgrad.tensor(0), jitgrad.tensor(5.0), "prod"),
           torch.tensor(3.0).scatter_reduce(0, torch.tensor(0), torch.tensor(5.0), "prod"))
    x.scatter_reduce_(0, jitgrad.tensor([2, 2]), jitgrad.tensor([4.0, -1.0]), "amin")
    assert x.tolist() == [0.0, 0.0, -1.0]
    empty = jitgrad.ones(2).scatter_reduce(0, jitgrad.zeros(0, dtype=jitgrad.int64),
                                           jitgrad.ones(0), "amax")
    assert empty.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
def test_index_reduce_grads(reduce, include_self):
    rng = np.random.default_rng(6)
    (xj, xt), (sj, st) = _pair(rng.integers(-2, 3, size=(4, 2, 3)), rng.integers(-2, 3, (4, 5, 3)))
    ij, it = _ix([0, 1, 0, 0, 1])
    _check(xj.index_reduce(1, ij, sj, reduce, include_self=include_self),
           xt.index_reduce(1, it, st, reduce, include_self=include_self),
           [(xj, xt), (sj, st)])


def test_index_reduce_errors_and_inplace():
    x = jitgrad.ones(3)
    with pytest.raises(RuntimeError, match="reduce argument"):
        x.index_reduce(0, jitgrad.tensor([0]), jitgrad.ones(1), "sum")
    with pytest.raises(RuntimeError, match="Number of indices"):
        x.index_reduce(0, jitgrad.tensor([0]), jitgrad.ones(2), "prod")
    x.index_reduce_(0, jitgrad.tensor([1, 1]), jitgrad.tensor([2.0, 3.0]), "prod")
    assert x.tolist() == [1.0, 6.0, 1.0]


def test_scatter_reduce_amax_traced_gradient():
    """Compiled form (reference interpreter): torch's shared gradient of tied maxima."""
    idx = np.array([0, 0, 0, 1])

    def loss(x, s):
        return (jitgrad.scatter_reduce(x, 0, jitgrad.tensor(idx), s, "amax") *
                jitgrad.tensor([1.0, 10.0, 100.0])).sum()
    gx, gs = jitgrad.grad(loss, argnums=(0, 1), target="reference")(
        jitgrad.tensor([2.0, 0.0, 7.0]), jitgrad.tensor([2.0, 1.0, 2.0, 5.0]))
    (xt, st), = [(torch.tensor([2.0, 0.0, 7.0], requires_grad=True),
                  torch.tensor([2.0, 1.0, 2.0, 5.0], requires_grad=True))]
    (torch.scatter_reduce(xt, 0, torch.tensor(idx), st, "amax") *
     torch.tensor([1.0, 10.0, 100.0])).sum().backward()
    np.testing.assert_allclose(gx.numpy(), xt.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(gs.numpy(), st.grad.numpy(), rtol=1e-6)


# -- diagonal / select / slice scatter -----------------------------------------------------------
@pytest.mark.parametrize("offset,d1,d2", [(0, 0, 1), (1, -1, 0), (-2, 2, 0)])
def test_diagonal_scatter(offset, d1, d2):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 4, 5))
    n = torch.diagonal(torch.tensor(x), offset, d1, d2).shape
    (xj, xt), (sj, st) = _pair(x, rng.normal(size=tuple(n)))
    _check(xj.diagonal_scatter(sj, offset, d1, d2), torch.diagonal_scatter(xt, st, offset, d1, d2),
           [(xj, xt), (sj, st)])


def test_select_and_slice_scatter_grads():
    rng = np.random.default_rng(8)
    (xj, xt), (sj, st), (uj, ut) = _pair(rng.normal(size=(5, 3)), rng.normal(size=(5,)),
                                         rng.normal(size=(2, 3)))
    _check(jitgrad.select_scatter(xj, sj, -1, -2), torch.select_scatter(xt, st, -1, -2),
           [(xj, xt), (sj, st)])
    xj.grad = xt.grad = None
    _check(xj.slice_scatter(uj, 0, -4, None, 2), xt.slice_scatter(ut, 0, -4, None, 2),
           [(xj, xt), (uj, ut)])


@pytest.mark.parametrize("case", [
    lambda m, x: m.diagonal_scatter(x, m.ones(2)),
    lambda m, x: m.select_scatter(x, m.ones(2), 0, 0),
    lambda m, x: m.select_scatter(x, m.ones(3), 0, 5),
    lambda m, x: m.slice_scatter(x, m.ones(2, 3), 0, 0),
])
def test_scatter_shape_errors(case):
    _raises_like(lambda: case(jitgrad, jitgrad.zeros(3, 3)), lambda: case(torch, torch.zeros(3, 3)))


# -- masked_fill / masked_select / masked_scatter ------------------------------------------------
def test_masked_fill_function_broadcasts_casts_and_checks():
    _check(jitgrad.masked_fill(jitgrad.tensor([1, 2]), jitgrad.tensor([True, False]), 2.7),
           torch.masked_fill(torch.tensor([1, 2]), torch.tensor([True, False]), 2.7))
    (xj, xt), (vj, vt) = _pair(4.0, -1.5)
    _check(jitgrad.masked_fill(xj, jitgrad.tensor([True, False, True]), vj),
           torch.masked_fill(xt, torch.tensor([True, False, True]), vt), [(xj, xt), (vj, vt)])
    _raises_like(lambda: jitgrad.masked_fill(jitgrad.ones(2), jitgrad.tensor([1, 0]), 1.0),
                 lambda: torch.masked_fill(torch.ones(2), torch.tensor([1, 0]), 1.0),
                 RuntimeError, "boolean masks")
    _raises_like(lambda: jitgrad.masked_fill(jitgrad.ones(2), jitgrad.ones(2) > 0, jitgrad.ones(1)),
                 lambda: torch.masked_fill(torch.ones(2), torch.ones(2) > 0, torch.ones(1)),
                 RuntimeError, "0-dimensional")


def test_masked_select_broadcast_grad():
    rng = np.random.default_rng(9)
    (xj, xt), = _pair(rng.normal(size=(3, 1)))
    m = rng.normal(size=(2, 1, 4)) > 0
    _check(jitgrad.masked_select(xj, jitgrad.tensor(m)), torch.masked_select(xt, torch.tensor(m)),
           [(xj, xt)])
    with pytest.raises(RuntimeError, match="BoolTensor"):
        xj.masked_select(jitgrad.tensor([1]))


def test_masked_scatter_grads_of_both_inputs_and_broadcast():
    rng = np.random.default_rng(10)
    (xj, xt), (sj, st) = _pair(rng.normal(size=(3,)), rng.normal(size=(2, 5)))
    m = np.array([[True, False, True], [True, True, False]])
    _check(jitgrad.masked_scatter(xj, jitgrad.tensor(m), sj),
           torch.masked_scatter(xt, torch.tensor(m), st), [(xj, xt), (sj, st)])
    yj, yt = jitgrad.zeros(2, 2), torch.zeros(2, 2)
    yj.masked_scatter_(jitgrad.tensor([True, False]), jitgrad.arange(4.0))
    yt.masked_scatter_(torch.tensor([True, False]), torch.arange(4.0))
    np.testing.assert_array_equal(yj.numpy(), yt.numpy())


@pytest.mark.parametrize("case", [
    lambda m: m.masked_scatter(m.ones(2), m.tensor([True, True]), m.ones(1)),
    lambda m: m.masked_scatter(m.ones(2), m.tensor([1, 0]), m.ones(2)),
    lambda m: m.masked_scatter(m.ones(2), m.tensor([True, True]), m.ones(2, dtype=m.float64)),
])
def test_masked_scatter_errors(case):
    _raises_like(lambda: case(jitgrad), lambda: case(torch), RuntimeError)


# -- nonzero_static ------------------------------------------------------------------------------
@pytest.mark.parametrize("data,size", [([[0, 1], [1, 1]], 4), ([[0, 1], [1, 1]], 2),
                                       ([0.0, 0.0], 3), (3.0, 2), (np.zeros((0, 3)), 2),
                                       ([[True, False]], 0)])
def test_nonzero_static(data, size):
    got = jitgrad.nonzero_static(jitgrad.tensor(np.asarray(data)), size=size, fill_value=-7)
    want = torch.nonzero_static(torch.tensor(np.asarray(data)), size=size, fill_value=-7)
    _check(got, want)


def test_nonzero_static_traced_and_errors():
    f = jitgrad.jit(lambda v: v.nonzero_static(size=3), target="reference")
    for v in ([[0.0, 2.0], [3.0, 0.0]], [[1.0, 2.0], [3.0, 4.0]]):
        np.testing.assert_array_equal(
            f(jitgrad.tensor(v)).numpy(), torch.tensor(v).nonzero_static(size=3).numpy())
    with pytest.raises(RuntimeError, match="non-negative"):
        jitgrad.nonzero_static(jitgrad.ones(2), size=-1)


# -- top-level convolutions and normalizations --------------------------------------------------
@pytest.mark.parametrize("kw", [dict(), dict(stride=(2, 1, 2), padding=1, dilation=(1, 2, 1)),
                                dict(groups=2, padding="same"), dict(padding="valid")])
def test_conv3d(kw):
    rng = np.random.default_rng(11)
    (xj, xt), (wj, wt), (bj, bt) = _pair(rng.normal(size=(2, 4, 5, 6, 5)),
                                         rng.normal(size=(4, 4 // kw.get("groups", 1), 2, 3, 2)),
                                         rng.normal(size=(4,)))
    _check(jitgrad.conv3d(xj, wj, bj, **kw), torch.conv3d(xt, wt, bt, **kw),
           [(xj, xt), (wj, wt), (bj, bt)])


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1, output_padding=1),
                                dict(groups=2, dilation=(2, 1, 1), padding=(0, 1, 0))])
def test_conv_transpose3d(kw):
    rng = np.random.default_rng(12)
    (xj, xt), (wj, wt), (bj, bt) = _pair(rng.normal(size=(2, 4, 3, 4, 3)),
                                         rng.normal(size=(4, 3, 2, 3, 2)), rng.normal(size=(3 * (
                                             kw.get("groups", 1)),)))
    _check(jitgrad.conv_transpose3d(xj, wj, bj, **kw), torch.conv_transpose3d(xt, wt, bt, **kw),
           [(xj, xt), (wj, wt), (bj, bt)])


def test_conv3d_unbatched_and_errors():
    rng = np.random.default_rng(13)
    (xj, xt), (wj, wt) = _pair(rng.normal(size=(2, 3, 3, 3)), rng.normal(size=(1, 2, 2, 2, 2)))
    _check(jitgrad.conv3d(xj, wj), torch.conv3d(xt, wt), [(xj, xt), (wj, wt)])
    _check(jitgrad.conv_transpose3d(xj, wj.transpose(0, 1)),
           torch.conv_transpose3d(xt, wt.transpose(0, 1)))
    with pytest.raises(Exception, match="channels"):
        jitgrad.conv3d(jitgrad.ones(1, 3, 3, 3, 3), jitgrad.ones(1, 2, 2, 2, 2))
    with pytest.raises(Exception, match="larger than"):
        jitgrad.conv3d(jitgrad.ones(1, 2, 1, 3, 3), jitgrad.ones(1, 2, 2, 2, 2))


def test_torch_level_spellings_forward_to_nn_functional():
    rng = np.random.default_rng(14)
    x2, w2 = rng.normal(size=(1, 2, 5, 6)), rng.normal(size=(3, 2, 2, 4))
    _check(jitgrad.conv2d(jitgrad.tensor(x2), jitgrad.tensor(w2), padding="same", dilation=(1, 2)),
           torch.conv2d(torch.tensor(x2), torch.tensor(w2), padding="same", dilation=(1, 2)))
    x1, w1 = rng.normal(size=(2, 6)), rng.normal(size=(3, 2, 2))
    _check(jitgrad.conv1d(jitgrad.tensor(x1), jitgrad.tensor(w1), padding="same"),
           torch.conv1d(torch.tensor(x1), torch.tensor(w1), padding="same"))
    _check(jitgrad.conv_transpose1d(jitgrad.tensor(x1), jitgrad.tensor(w1.transpose(1, 0, 2)),
                                    stride=2),
           torch.conv_transpose1d(torch.tensor(x1), torch.tensor(w1.transpose(1, 0, 2)), stride=2))
    _check(jitgrad.conv_transpose2d(jitgrad.tensor(x2), jitgrad.tensor(w2.transpose(1, 0, 2, 3))),
           torch.conv_transpose2d(torch.tensor(x2), torch.tensor(w2.transpose(1, 0, 2, 3))))
    x, w, b = rng.normal(size=(2, 4, 3)), rng.normal(size=(3,)), rng.normal(size=(3,))
    J, T = (jitgrad.tensor(a) for a in (x, w, b)), (torch.tensor(a) for a in (x, w, b))
    (xj, wj, bj), (xt, wt, bt) = J, T
    _check(jitgrad.layer_norm(xj, (3,), wj, bj, 1e-3), torch.layer_norm(xt, (3,), wt, bt, 1e-3))
    _check(jitgrad.rms_norm(xj, [3], wj), torch.rms_norm(xt, [3], wt))
    g = jitgrad.tensor(rng.normal(size=(4,)))
    _check(jitgrad.group_norm(xj, 2, g, g), torch.group_norm(xt, 2, torch.tensor(g.numpy()),
                                                             torch.tensor(g.numpy())))


@pytest.mark.parametrize("dtype", ["bool", "int32"])
@pytest.mark.parametrize("reduce", REDUCES)
def test_scatter_reduce_keeps_integer_and_bool_dtypes(dtype, reduce):
    x, s, i = [True, False, True], [False, True, True, False], [0, 0, 1, 2]

    def run(m):
        dt = getattr(m, dtype)
        return m.tensor(x).to(dt).scatter_reduce(0, m.tensor(i), m.tensor(s).to(dt), reduce,
                                                 include_self=False)
    if dtype == "bool" and reduce == "mean":
        _raises_like(lambda: run(jitgrad), lambda: run(torch), NotImplementedError)
    else:
        _check(run(jitgrad), run(torch))
