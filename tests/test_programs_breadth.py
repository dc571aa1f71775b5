"""What twenty programs no one here wrote needed (per-sample gradients, ensembling, neural
tangent kernels, forward-mode AD, the NLP tutorials, makemore, the d2l builders' guide), each
mechanism checked against torch: an infinite random sampler, Jacobians of a parameter dict,
softmax's implicit dim, a Function with only a jvp, functorch's make_functional, lazy modules
loading a checkpoint, torch.nn.modules paths, and the clear errors for 0-d cat and .cuda()."""

import importlib
import itertools
import warnings

import numpy as np
import pytest

import jitgrad as jg

torch = pytest.importorskip("torch", reason="checked against PyTorch")


def _np(t):
    return t.detach().numpy()


def test_random_sampler_with_replacement_draws_lazily():
    """makemore's "infinite" loader: 1e10 samples with replacement are drawn as consumed."""
    from jitgrad.utils.data.dataloader import DataLoader
    ds = jg.utils.data.TensorDataset(jg.arange(10))
    sampler = jg.utils.data.RandomSampler(ds, replacement=True, num_samples=int(1e10))
    assert len(sampler) == len(torch.utils.data.RandomSampler(
        range(10), replacement=True, num_samples=int(1e10)))
    first = list(itertools.islice(iter(sampler), 100))
    assert len(first) == 100 and all(0 <= i < 10 for i in first) and len(set(first)) > 1
    (batch,) = next(iter(DataLoader(ds, sampler=sampler, batch_size=16)))
    assert tuple(batch.shape) == (16,)
    g = [jg.Generator().manual_seed(3) for _ in range(2)]
    runs = [list(itertools.islice(jg.utils.data.RandomSampler(
        ds, replacement=True, num_samples=70, generator=gi), 70)) for gi in g]
    assert runs[0] == runs[1]


def _tiny_net(m):
    m.manual_seed(0)
    return m.nn.Sequential(m.nn.Linear(3, 4), m.nn.Tanh(), m.nn.Linear(4, 2))


def test_jacrev_of_a_parameter_dict_under_vmap_equals_torch():
    """The neural-tangent-kernel tutorial: vmap(jacrev(f), (None, 0))(params, xs), where
    params is a dict, gives a dict of per-sample Jacobians."""
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    got = {}
    for m in (jg, torch):
        net = _tiny_net(m)
        if m is jg:
            net.load_state_dict({k: jg.tensor(v.detach().numpy())
                                 for k, v in _tiny_net(torch).state_dict().items()})
        params = {k: v.detach() for k, v in net.named_parameters()}

        def f(p, xi, net=net, m=m):
            return m.func.functional_call(net, p, (xi.unsqueeze(0),)).squeeze(0)
        got[m] = m.func.vmap(m.func.jacrev(f), (None, 0))(params, m.tensor(x))
    assert list(got[jg]) == list(got[torch])
    for k in got[torch]:
        assert tuple(got[jg][k].shape) == tuple(got[torch][k].shape), k
        np.testing.assert_allclose(_np(got[jg][k]), _np(got[torch][k]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(4,), (2, 3), (2, 3, 4), (2, 3, 2, 2)])
def test_softmax_without_dim_picks_torchs_dim_and_warns(shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    for name in ("softmax", "log_softmax", "softmin"):
        outs = []
        for m in (jg, torch):
            with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name}"):
                outs.append(_np(getattr(m.nn.functional, name)(m.tensor(x))))
        np.testing.assert_allclose(outs[0], outs[1], rtol=1e-6, atol=1e-7)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        np.testing.assert_allclose(_np(jg.nn.LogSoftmax()(jg.tensor(x))),
                                   _np(torch.nn.LogSoftmax()(torch.tensor(x))), rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="'dim' is required"):
        jg.softmax(jg.tensor(x))  # torch.softmax itself has no default either


def _exp_function(m):
    class Exp(m.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.result = m.exp(x)
            return ctx.result

        @staticmethod
        def jvp(ctx, g):
            out = g * ctx.result
            del ctx.result
            return out
    return Exp


def test_function_with_only_a_jvp_in_forward_mode_equals_torch():
    """forward_ad_usage: a Function with jvp and no backward gives its outputs' tangents; its
    tangent then flows through ordinary ops; gradcheck(check_forward_ad=True) checks it."""
    rng = np.random.default_rng(2)
    p, t = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    got = []
    for m in (jg, torch):
        fw = importlib.import_module(f"{m.__name__}.autograd.forward_ad")
        primal = m.tensor(p, requires_grad=True)
        with fw.dual_level():
            y = _exp_function(m).apply(fw.make_dual(primal, m.tensor(t))) * 3 + 1
            got.append(_np(fw.unpack_dual(y).tangent))
        assert m.autograd.gradcheck(_exp_function(m).apply, (primal,), check_forward_ad=True,
                                    check_backward_ad=False, check_undefined_grad=False,
                                    check_batched_grad=False)
    np.testing.assert_allclose(got[0], got[1], rtol=1e-12)

    class WrongJvp(jg.autograd.Function):
        forward = staticmethod(lambda ctx, x: x.exp())
        jvp = staticmethod(lambda ctx, g: 2 * g)
    with pytest.raises(RuntimeError, match="forward mode"):
        jg.autograd.gradcheck(WrongJvp.apply, (jg.tensor(p, requires_grad=True),),
                              check_forward_ad=True, check_backward_ad=False)


def test_make_functional_with_buffers_and_jvp_equal_torch():
    """functorch's API, as the forward-AD tutorial uses it: fmodel(params, buffers, x)."""
    net_t = torch.nn.Linear(5, 3)
    net_j = jg.nn.Linear(5, 3)
    net_j.load_state_dict({k: jg.tensor(v.detach().numpy()) for k, v in net_t.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    tangents = [np.full(tuple(p.shape), 0.5, np.float32) for p in net_t.parameters()]
    fmodel, params, buffers = jg.func.make_functional_with_buffers(net_j)
    assert buffers == () and len(params) == 2
    out, jvp_out = jg.func.jvp(lambda ps: fmodel(ps, buffers, jg.tensor(x)), (params,),
                               (tuple(jg.tensor(t) for t in tangents),))
    names = [n for n, _ in net_t.named_parameters()]
    want, want_jvp = torch.func.jvp(
        lambda ps: torch.func.functional_call(net_t, dict(zip(names, ps)), (torch.tensor(x),)),
        (tuple(net_t.parameters()),), (tuple(torch.tensor(t) for t in tangents),))
    np.testing.assert_allclose(_np(out), _np(want), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(jvp_out), _np(want_jvp), rtol=1e-5, atol=1e-6)
    fm, ps = jg.func.make_functional(net_j)
    np.testing.assert_allclose(_np(fm(ps, jg.tensor(x))), _np(want), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="expected 2 params"):
        fmodel(params[:1], buffers, jg.tensor(x))


def test_lazy_linear_loads_a_checkpoint_before_its_first_call():
    """d2l's read-write chapter: a lazy model's state dict loads into a fresh lazy model."""
    x = np.random.default_rng(4).standard_normal((2, 6)).astype(np.float32)
    results = []
    for m in (jg, torch):
        m.manual_seed(0)
        net = m.nn.Sequential(m.nn.LazyLinear(4), m.nn.ReLU(), m.nn.LazyLinear(2))
        if m is jg:
            assert repr(net[0].weight) == repr(torch.nn.LazyLinear(4).weight)
        results.append(net)
    # the same weights in both: torch's, saved from a called model
    results[1](torch.tensor(x))
    sd = results[1].state_dict()
    clone = results[0]
    params_before = list(clone.parameters())
    clone.load_state_dict({k: jg.tensor(v.numpy()) for k, v in sd.items()})
    assert [p is q for p, q in zip(params_before, clone.parameters())] == [True] * 4
    np.testing.assert_allclose(_np(clone(jg.tensor(x))), _np(results[1](torch.tensor(x))),
                               rtol=1e-5, atol=1e-6)
    assert repr(clone[0]) == "Linear(in_features=6, out_features=4, bias=True)"
    lazy = jg.nn.LazyLinear(3)
    with pytest.raises(RuntimeError, match="size mismatch"):
        lazy.load_state_dict({"weight": jg.ones(3, 2), "bias": jg.ones(4)})
    with pytest.raises(KeyError, match="missing"):
        lazy.load_state_dict({"weight": jg.ones(3, 2)})
    # a load that failed left the placeholders as they were: the first call draws the weights
    assert isinstance(lazy.weight, jg.nn.UninitializedParameter)
    assert tuple(lazy(jg.ones(1, 5)).shape) == (1, 3) and tuple(lazy.weight.shape) == (3, 5)


def test_torch_nn_modules_paths_name_jitgrads_classes():
    """word_language_model lists safe globals as torch.nn.modules.<file>.<Class>."""
    from jitgrad.nn.modules import _LAYOUT
    import jitgrad.nn.modules.rnn as rnn
    assert rnn.LSTM is jg.nn.LSTM
    assert jg.nn.modules.linear.NonDynamicallyQuantizableLinear is type(
        jg.nn.MultiheadAttention(4, 2).out_proj)
    for sub, names in _LAYOUT.items():
        theirs = importlib.import_module(f"torch.nn.modules.{sub}")
        for name in names.split():
            assert hasattr(theirs, name), f"torch.nn.modules.{sub} has no {name}"
            assert getattr(getattr(jg.nn.modules, sub), name) is getattr(jg.nn, name)


def test_clear_errors_for_0d_cat_and_cuda():
    with pytest.raises(RuntimeError, match=r"zero-dimensional tensor \(at position 1\)"):
        jg.cat([jg.ones(1), jg.tensor(2.0)])
    with pytest.raises(RuntimeError, match="zero-dimensional"):
        torch.cat([torch.ones(1), torch.tensor(2.0)])
    for m in (jg, torch):  # the position in the list as given, an empty 1-D tensor counted
        with pytest.raises(RuntimeError, match=r"\(at position 1\)"):
            m.cat([m.zeros(0), m.tensor(2.0)])
    np.testing.assert_array_equal(_np(jg.cat([jg.tensor(1.0).view(1), jg.ones(2)])), [1, 1, 1])
    for call in (lambda: jg.ones(2).cuda(1), lambda: jg.nn.Linear(2, 2).cuda()):
        with pytest.raises(ValueError, match="'cuda(:1)?' is not available"):
            call()
    assert jg.ones(2).cpu().shape == (2,) and isinstance(jg.nn.Linear(2, 2).cpu(), jg.nn.Linear)


def _tied(M):
    """word_language_model's --tied: the decoder's weight is the embedding's."""
    class Tied(M.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = M.nn.Embedding(5, 3)
            self.bn = M.nn.BatchNorm1d(3, momentum=None)
            self.dec = M.nn.Linear(3, 5)
            self.dec.weight = self.emb.weight
            self.register_buffer("mask", M.ones(2), persistent=False)
            self.register_buffer("keep", M.ones(2))
    return Tied()


def test_state_dicts_list_what_torch_lists_in_its_order():
    """Tied weights under both names (a torch checkpoint of a tied model loads strictly), a
    buffer that is not persistent left out, BatchNorm's num_batches_tracked (momentum=None
    averages every batch), a replaced parameter in its place."""
    mine, theirs = _tied(jg), _tied(torch)
    assert list(mine.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in mine.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert ([n for n, _ in mine.named_parameters(remove_duplicate=False)]
            == [n for n, _ in theirs.named_parameters(remove_duplicate=False)])
    assert [n for n, _ in mine.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    for args, kw in (((), {"prefix": "m."}), ((None, "m.", True), {})):  # (positional: warns)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            got, want = mine.state_dict(*args, **kw), theirs.state_dict(*args, **kw)
        assert list(got) == list(want)
        assert got["m.emb.weight"].requires_grad == want["m.emb.weight"].requires_grad
    x = np.arange(12.0).reshape(4, 3)
    for i in range(3):
        mine.bn(jg.tensor(x * (i + 1), dtype=jg.float32))
        theirs.bn(torch.tensor(x * (i + 1), dtype=torch.float32))
    np.testing.assert_allclose(_np(mine.bn.running_mean), theirs.bn.running_mean.numpy())
    np.testing.assert_allclose(_np(mine.bn.running_var), theirs.bn.running_var.numpy(), rtol=1e-6)
    assert int(mine.bn.num_batches_tracked) == int(theirs.bn.num_batches_tracked) == 3
    fresh = _tied(jg)
    state = {k: jg.tensor(v.numpy()) for k, v in theirs.state_dict().items()}
    assert not fresh.load_state_dict(state).missing_keys
    np.testing.assert_array_equal(_np(fresh.dec.weight), theirs.emb.weight.detach().numpy())
    assert fresh.dec.weight is fresh.emb.weight


def test_batchnorm3d_and_pooling_with_an_empty_stride_as_torch():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 3, 2, 3, 4))
    mine, theirs = jg.nn.BatchNorm3d(3).double(), torch.nn.BatchNorm3d(3).double()
    x, tx = jg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (mine(x) ** 2).sum().backward()
    (theirs(tx) ** 2).sum().backward()
    np.testing.assert_allclose(_np(x.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(_np(mine.running_var), theirs.running_var.numpy(), rtol=1e-12)
    b = rng.normal(size=(1, 1, 4, 4))
    for f in ("avg_pool2d", "max_pool2d"):  # stride=(): the kernel's, as torch's samples use
        got = getattr(jg.nn.functional, f)(jg.tensor(b), (2, 2), ())
        np.testing.assert_allclose(_np(got), getattr(torch.nn.functional, f)(
            torch.tensor(b), (2, 2), ()).numpy())


def test_a_batchnorm_checkpoint_without_its_batch_count_loads_as_torch_loads_it():
    """A state dict written before BatchNorm counted batches loads; the count stays."""
    old = {k: v for k, v in jg.nn.BatchNorm1d(3).state_dict().items()
           if k != "num_batches_tracked"}
    mine = jg.nn.BatchNorm1d(3)
    mine.num_batches_tracked.add_(5)
    given = dict(old)
    mine.load_state_dict(given)
    theirs = torch.nn.BatchNorm1d(3)
    theirs.num_batches_tracked.add_(5)
    theirs_given = {k: torch.tensor(_np(v)) for k, v in old.items()}
    theirs.load_state_dict(theirs_given)
    assert int(mine.num_batches_tracked) == int(theirs.num_batches_tracked) == 5
    # the caller's dict comes back as it went in (torch loads from a copy)
    assert sorted(given) == sorted(theirs_given) == sorted(old)
