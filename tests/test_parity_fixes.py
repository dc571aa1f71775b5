"""Silent differences from torch, each checked against real PyTorch:

* ``unique`` (no ``dim``) keeps every NaN as an entry of its own, NaNs last (bit for bit as
  torch up to 16 elements, where torch's CPU sort is stable); ``unique_consecutive`` too;
* max pooling (1/2/3-D, adaptive, fractional) picks a window's last NaN, and in a window of
  -inf only its first element inside the input, for the indices and the gradient;
* ``F.dropout(..., inplace=True)`` and ``nn.Dropout(inplace=True)`` scale the input in place
  and return it;
* ``LazyLinear`` is a ``LazyModuleMixin`` (one first call, one rollback), and a load refused for
  a missing key leaves a lazy module's placeholders, not uninitialised memory.
"""

import numpy as np
import pytest

import jitgrad as jg
import jitgrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

NAN = float("nan")


def _same_bits(t, j) -> None:
    """The same dtype, shape and bytes: NaNs' signs, -0.0 against 0.0 and indices all count."""
    a, b = t.detach().numpy(), j.detach().numpy()
    assert a.dtype == b.dtype and a.shape == b.shape, (a, b)
    assert a.tobytes() == b.tobytes(), (a, b)


def _same_results(t, j) -> None:
    t, j = (t, j) if isinstance(t, tuple) else ((t,), (j,))
    assert len(t) == len(j)
    for a, b in zip(t, j):
        _same_bits(a, b)


# -- unique --------------------------------------------------------------------------------------

def test_unique_keeps_every_nan_as_torch():
    # torch 2.14: values [1, 3, nan, nan, nan, nan], inverse [1, 2, 0, 3, 1, 4, 0, 5], counts
    # [2, 2, 1, 1, 1, 1] (a short input is insertion sorted: the NaNs in the input's order)
    a = np.array([3.0, NAN, 1.0, NAN, 3.0, NAN, 1.0, -NAN], dtype=np.float32)
    for x in (a, a.reshape(2, 4)):
        for srt in (True, False):  # (torch's CPU unique sorts either way)
            for flags in ((False, False), (True, False), (False, True), (True, True)):
                kw = dict(sorted=srt, return_inverse=flags[0], return_counts=flags[1])
                _same_results(torch.unique(torch.tensor(x), **kw), jg.unique(jg.tensor(x), **kw))
    v, inv, cnt = jg.unique(jg.tensor(a), return_inverse=True, return_counts=True)
    assert inv.tolist() == [1, 2, 0, 3, 1, 4, 0, 5] and cnt.tolist() == [2, 2, 1, 1, 1, 1]
    assert jg.tensor(a).unique().shape == (6,)


def _same_unique(t, j, x) -> None:
    """torch's and jitgrad's ``unique`` of ``x`` (values, inverse, counts) agree as sets of
    entries: the same values (NaN equal to NaN, 0.0 to -0.0) and counts, and each inverse names
    an entry holding the element. Past 16 elements torch's sort is not stable, so which NaN
    entry an element names, and which zero stands for both, follow no order jitgrad keeps."""
    (tv, ti, tc), (jv, ji, jc) = [[r.detach().numpy() for r in res] for res in (t, j)]
    assert tv.dtype == jv.dtype and ti.shape == ji.shape == x.shape
    np.testing.assert_array_equal(tv, jv)  # (NaN == NaN and 0.0 == -0.0 here)
    np.testing.assert_array_equal(tc, jc)
    np.testing.assert_array_equal(jv[ji], x)
    nan = np.isnan(jv)
    assert sorted(ji[np.isnan(x)].tolist()) == np.flatnonzero(nan).tolist()  # one NaN each


@pytest.mark.parametrize("n", [17, 40, 100, 1000, 5000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unique_of_nans_and_zeros_past_torchs_insertion_sort(n, dtype):
    rng = np.random.default_rng(n)
    for trial in range(4):
        a = rng.integers(-3, 4, n).astype(dtype)
        a[rng.random(n) < (0.05, 0.3, 0.6, 0.95)[trial]] = NAN
        a[rng.random(n) < 0.1] = -NAN
        z = rng.random(n) < 0.2
        a[z] = np.where(rng.random(int(z.sum())) < 0.5, -0.0, 0.0)
        x = a.reshape(-1, 2) if n % 2 == 0 else a
        _same_unique(torch.unique(torch.tensor(x), return_inverse=True, return_counts=True),
                     jg.unique(jg.tensor(x), return_inverse=True, return_counts=True), x)


@pytest.mark.parametrize("a", [np.array(3.0), np.array([], dtype=np.float32),
                               np.array([NAN]), np.array([[NAN, 1.0], [NAN, NAN]]),
                               np.array([True, False, True]), np.array([3, 1, 3, 2] * 9),
                               np.array([0.0, -0.0, 0.0] * 5), np.array([-0.0, 0.0, -0.0] * 5),
                               np.array([0.0, -0.0, 0.0] * 7)])
def test_unique_edge_inputs_as_torch(a):
    t = torch.unique(torch.tensor(a), return_inverse=True, return_counts=True)
    j = jg.unique(jg.tensor(a), return_inverse=True, return_counts=True)
    if a.size > 16:  # (torch's sort is not stable there: which zero is the value can differ)
        _same_unique(t, j, a)
    else:
        _same_results(t, j)


def test_unique_consecutive_nans_and_zeros_as_torch():
    """Every NaN (or slice with a NaN) starts a run; 0.0 and -0.0 are one run, the first its
    value (torch compares with ``!=``, and ``equal`` for slices)."""
    rng = np.random.default_rng(3)
    for shape in [(7,), (20,), (5, 3), (2, 3, 4), (6, 1)]:
        a = rng.integers(-1, 2, shape).astype(np.float32)
        a[rng.random(shape) < 0.3] = NAN
        a[rng.random(shape) < 0.2] = -0.0
        for dim in [None, *range(-len(shape), len(shape))]:
            kw = dict(return_inverse=True, return_counts=True, dim=dim)
            _same_results(torch.unique_consecutive(torch.tensor(a), **kw),
                          jg.unique_consecutive(jg.tensor(a), **kw))
    a = np.array([1.0, NAN, NAN, 2.0, 2.0, NAN])
    _, inv, cnt = jg.unique_consecutive(jg.tensor(a), return_inverse=True, return_counts=True)
    assert inv.tolist() == [0, 1, 2, 3, 3, 4] and cnt.tolist() == [1, 1, 1, 2, 1]


# -- max pooling ---------------------------------------------------------------------------------

def _pool_data(shape, seed: int) -> np.ndarray:
    """Small integers (ties), many NaNs and some -inf (windows of -inf only, with padding)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-2, 3, shape).astype(np.float32)
    a[rng.random(shape) < 0.3] = NAN
    a[rng.random(shape) < 0.1] = -np.inf
    return a


def _pool_pair(tfn, jfn, a, indices: bool) -> None:
    """The same pooling in torch and jitgrad: values, indices, and the input's gradient for a
    weighted sum (each output's gradient goes to the element its index names)."""
    t = torch.tensor(a, requires_grad=True)
    j = jg.tensor(a, requires_grad=True)
    to, jo = tfn(t), jfn(j)
    if indices:
        (to, ti), (jo, ji) = to, jo
        _same_bits(ti, ji)
    np.testing.assert_array_equal(to.detach().numpy(), jo.detach().numpy())
    g = np.random.default_rng(1).standard_normal(tuple(to.shape)).astype(np.float32)
    (to * torch.tensor(g)).sum().backward()
    (jo * jg.tensor(g)).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), j.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_max_pool_takes_a_windows_last_nan_as_torch():
    # torch's kernels keep ``val > max || isnan(val)``: windows [1, nan, 3, nan] and
    # [2, nan, nan, 0] give the NaNs at 3 and 6, and the gradient goes there
    x = np.array([[[1.0, NAN, 3.0, NAN, 2.0, NAN, NAN, 0.0]]], dtype=np.float32)
    out, idx = F.max_pool1d(jg.tensor(x), 4, return_indices=True)
    assert idx.tolist() == [[[3, 6]]]
    assert TF.max_pool1d(torch.tensor(x), 4, return_indices=True)[1].tolist() == [[[3, 6]]]
    for indices in (True, False):
        _pool_pair(lambda t: TF.max_pool1d(t, 4, return_indices=indices),
                   lambda t: F.max_pool1d(t, 4, return_indices=indices), x, indices)
    x2 = np.array([[[[NAN, 1.0, NAN], [2.0, NAN, 5.0], [NAN, 0.0, 1.0]]]], dtype=np.float32)
    assert F.max_pool2d(jg.tensor(x2), 3, return_indices=True)[1].item() == 6


POOL_ARGS = [  # kernel_size, stride, padding, dilation, ceil_mode
    (2, None, 0, 1, False), (3, 1, 1, 1, False), (3, 2, 1, 2, True), (2, 1, 1, 1, True),
    (3, 2, 0, 1, True),
]


@pytest.mark.parametrize("args", POOL_ARGS, ids=str)
@pytest.mark.parametrize("indices", [True, False])
def test_max_pool_1d_2d_3d_nans_and_minus_inf_windows_as_torch(args, indices):
    k, s, p, d, ceil = args
    kw = dict(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil,
              return_indices=indices)
    for nd, shape in ((1, (2, 3, 11)), (2, (2, 3, 9, 8)), (2, (3, 7, 6)), (3, (1, 2, 6, 7, 5))):
        _pool_pair(lambda t: getattr(TF, f"max_pool{nd}d")(t, **kw),  # noqa: B023
                   lambda t: getattr(F, f"max_pool{nd}d")(t, **kw),  # noqa: B023
                   _pool_data(shape, nd + k), indices)


@pytest.mark.parametrize("nd,shape,out", [(1, (2, 3, 10), 4), (2, (2, 3, 7, 9), (3, 4)),
                                          (2, (3, 8, 8), 3), (3, (1, 2, 5, 6, 7), (2, 3, 3))])
def test_adaptive_max_pool_nans_as_torch(nd, shape, out):
    for indices in (True, False):
        _pool_pair(lambda t: getattr(TF, f"adaptive_max_pool{nd}d")(t, out, indices),  # noqa: B023
                   lambda t: getattr(F, f"adaptive_max_pool{nd}d")(t, out, indices),  # noqa: B023
                   _pool_data(shape, nd), indices)


def test_fractional_max_pool_nans_as_torch():
    rng = np.random.default_rng(5)
    for k in (1, 2, 3):
        u = rng.random((2, 3, 2)).astype(np.float32)
        _pool_pair(lambda t: TF.fractional_max_pool2d(t, k, output_size=(4, 3),  # noqa: B023
                                                      return_indices=True,
                                                      _random_samples=torch.tensor(u)),  # noqa: B023
                   lambda t: F.fractional_max_pool2d(t, k, output_size=(4, 3),  # noqa: B023
                                                     return_indices=True,
                                                     _random_samples=jg.tensor(u)),  # noqa: B023
                   _pool_data((2, 3, 9, 8), k), True)
    u3 = rng.random((1, 2, 3)).astype(np.float32)
    _pool_pair(lambda t: TF.fractional_max_pool3d(t, 2, output_size=(3, 4, 4), return_indices=True,
                                                  _random_samples=torch.tensor(u3)),
               lambda t: F.fractional_max_pool3d(t, 2, output_size=(3, 4, 4), return_indices=True,
                                                 _random_samples=jg.tensor(u3)),
               _pool_data((1, 2, 7, 8, 9), 3), True)


def test_max_pool_nan_pick_inside_a_compiled_function():
    a = _pool_data((2, 3, 8, 8), 11)
    f = jg.jit(lambda x: F.max_pool2d(x, 3, 2, 1, return_indices=True)[1])
    _same_bits(TF.max_pool2d(torch.tensor(a), 3, 2, 1, return_indices=True)[1], f(jg.tensor(a)))


# -- in-place dropout ----------------------------------------------------------------------------

def _inplace_dropout_facts(mod, fn, p: float) -> None:
    """What holds for torch's and jitgrad's in-place dropout whatever their random numbers:
    the input itself is returned, written once (its version moves by one), zero where dropped,
    scaled by 1 / (1 - p) where kept; the gradient is the same mask and scale."""
    x0 = mod.arange(1.0, 401.0).reshape(20, 20)
    leaf = x0.clone().requires_grad_(True)
    x = leaf.clone()
    v = x._version
    y = fn(x, p)
    assert y is x and x._version == v + 1
    kept = (y != 0).detach().numpy()
    assert 0 < kept.sum() < kept.size
    np.testing.assert_allclose(y.detach().numpy(),
                               np.where(kept, x0.numpy() / (1 - p), 0.0), rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), np.where(kept, 1 / (1 - p), 0.0), rtol=1e-6)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_inplace_dropout_scales_its_input_as_torch(p):
    for mod, nnf in ((torch, TF), (jg, F)):
        _inplace_dropout_facts(mod, lambda x, p: nnf.dropout(x, p, True, inplace=True), p)  # noqa: B023
        _inplace_dropout_facts(mod, lambda x, p: mod.nn.Dropout(p, inplace=True)(x), p)  # noqa: B023


def test_inplace_dropout_edge_cases_as_torch():
    for mod, nnf in ((torch, TF), (jg, F)):
        # p = 1: all zeros, in place
        x = mod.ones(5)
        v = x._version
        assert nnf.dropout(x, 1.0, True, True) is x and x.tolist() == [0.0] * 5
        assert x._version == v + 1
        # nothing to drop (eval, p = 0): the input itself, unchanged and unwritten
        for p, training in ((0.5, False), (0.0, True)):
            x = mod.ones(5)
            v = x._version
            assert nnf.dropout(x, p, training, True) is x and x.tolist() == [1.0] * 5
            assert x._version == v
        m = mod.nn.Dropout(0.5, inplace=True).eval()
        x = mod.ones(5)
        assert m(x) is x and x.tolist() == [1.0] * 5
        # under no_grad a leaf that requires grad may be written
        with mod.no_grad():
            leaf = mod.ones(50, requires_grad=True)
            assert nnf.dropout(leaf, 0.5, True, True) is leaf
            assert set(leaf.detach().numpy().tolist()) <= {0.0, 2.0}
    assert repr(jg.nn.Dropout(0.3, inplace=True)) == repr(torch.nn.Dropout(0.3, inplace=True))


def test_inplace_dropout_of_a_leaf_that_requires_grad_is_refused_as_torch():
    msg = "a leaf Variable that requires grad is being used in an in-place operation"
    for mod, nnf in ((torch, TF), (jg, F)):
        leaf = mod.ones(4, requires_grad=True)
        with pytest.raises(RuntimeError, match=msg):
            nnf.dropout(leaf, 0.5, True, inplace=True)
        with pytest.raises(RuntimeError, match=msg):
            mod.nn.Dropout(0.5, inplace=True)(leaf)
        assert leaf.tolist() == [1.0] * 4


def test_inplace_dropout_of_a_tensor_another_node_saved_is_refused_at_backward():
    """The version counter: a product that saved ``x`` cannot differentiate once dropout has
    written ``x`` in place (both raise when backward runs)."""
    for mod, nnf in ((torch, TF), (jg, F)):
        w = mod.ones(6, requires_grad=True)
        x = w * 2
        y = x * x  # saves x
        nnf.dropout(x, 0.5, True, inplace=True)
        with pytest.raises(RuntimeError):
            y.sum().backward()


# -- lazy modules --------------------------------------------------------------------------------

def test_lazy_linear_is_a_lazy_module_as_torchs():
    for mod in (torch, jg):
        fc = mod.nn.LazyLinear(3)
        assert isinstance(fc, mod.nn.modules.lazy.LazyModuleMixin)
        assert fc.has_uninitialized_params()
        fc(mod.ones(2, 5))
        assert type(fc) is mod.nn.Linear and type(fc.weight) is mod.nn.Parameter
        assert not hasattr(fc, "has_uninitialized_params")  # (a plain Linear now)
    # one first call, one rollback: the mixin's, not a copy
    assert jg.nn.LazyLinear.forward is jg.nn.modules.lazy.LazyModuleMixin.forward
    assert "initialize_parameters" not in vars(jg.nn.LazyLinear)


@pytest.mark.parametrize("name,args,x", [("LazyLinear", (3,), (2, 5)),
                                         ("LazyConv2d", (4, 3), (1, 2, 5, 5))])
def test_a_load_refused_for_a_missing_key_leaves_the_module_lazy(name, args, x):
    """After ``load_state_dict`` refuses a checkpoint that lacks the bias, the first call draws
    every weight: they equal a fresh module's under the same seed (no uninitialised memory kept
    as if it had been loaded). jitgrad only: torch copies the weight before it refuses, and its
    first call then fails (the weight is no longer a placeholder, the bias still is)."""
    weight = (3, 5) if name == "LazyLinear" else (4, 2, 3, 3)
    m = getattr(jg.nn, name)(*args)
    with pytest.raises(KeyError, match="missing"):
        m.load_state_dict({"weight": jg.ones(*weight)})
    assert m.has_uninitialized_params() and isinstance(m.weight, jg.nn.UninitializedParameter)
    jg.manual_seed(0)
    m(jg.ones(*x))
    fresh = getattr(jg.nn, name)(*args)
    jg.manual_seed(0)
    fresh(jg.ones(*x))
    for a, b in ((m.weight, fresh.weight), (m.bias, fresh.bias)):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_a_refused_load_gives_a_lazy_buffer_the_loaded_value_not_uninitialised_memory():
    bn = jg.nn.LazyBatchNorm1d()
    with pytest.raises(KeyError, match="missing"):
        bn.load_state_dict({"running_mean": jg.full((3,), 2.0)})
    bn(jg.ones(2, 3))
    # (a partial load keeps what was loaded, as a strict=False one does in test_lazy_modules)
    np.testing.assert_allclose(bn.running_mean.numpy(), [2.0 * 0.9 + 0.1] * 3, rtol=1e-6)
