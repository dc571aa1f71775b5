"""The lazy convolutions and normalizations (``jitgrad/nn/lazy.py``) against PyTorch's: the shapes
they take at the first call, the class they become, outputs and gradients with the same weights,
reprs, state dicts before the first call, and errors for inputs of the wrong rank."""

import numpy as np
import pytest

import jitgrad as jg
from jitgrad.errors import TraceError

torch = pytest.importorskip("torch")

# (class, kwargs, input shape)
CONV = [
    ("LazyConv1d", dict(out_channels=4, kernel_size=3, padding=1), (2, 6, 8)),
    ("LazyConv1d", dict(out_channels=4, kernel_size=3, stride=2, groups=2, bias=False), (2, 6, 9)),
    ("LazyConv1d", dict(out_channels=4, kernel_size=3), (6, 8)),  # unbatched
    ("LazyConv2d", dict(out_channels=4, kernel_size=3), (2, 3, 5, 5)),
    ("LazyConv2d", dict(out_channels=4, kernel_size=(3, 2), stride=2, padding=1, dilation=2,
                        groups=2), (2, 6, 7, 7)),
    ("LazyConv2d", dict(out_channels=2, kernel_size=3, padding="same"), (3, 5, 5)),  # unbatched
    ("LazyConv3d", dict(out_channels=2, kernel_size=3, padding=1), (1, 3, 4, 4, 4)),
    ("LazyConv3d", dict(out_channels=4, kernel_size=2, groups=2, padding=1,
                        padding_mode="circular"), (2, 4, 3, 3, 3)),
    ("LazyConvTranspose1d", dict(out_channels=4, kernel_size=3, stride=2), (2, 6, 5)),
    ("LazyConvTranspose1d", dict(out_channels=4, kernel_size=3, groups=2, bias=False), (6, 5)),
    ("LazyConvTranspose2d", dict(out_channels=4, kernel_size=3, stride=2, output_padding=1,
                                 groups=2), (1, 6, 3, 3)),
    ("LazyConvTranspose2d", dict(out_channels=3, kernel_size=2, padding=1, dilation=2),
     (2, 2, 4, 4)),
    ("LazyConvTranspose3d", dict(out_channels=2, kernel_size=2, stride=2), (1, 3, 2, 2, 2)),
]
NORM = [
    ("LazyBatchNorm1d", {}, (4, 3)),
    ("LazyBatchNorm1d", {}, (4, 3, 5)),
    ("LazyBatchNorm1d", dict(affine=False, momentum=None), (4, 3, 5)),
    ("LazyBatchNorm1d", dict(track_running_stats=False), (4, 3)),
    ("LazyBatchNorm2d", {}, (2, 3, 4, 4)),
    ("LazyBatchNorm2d", dict(eps=1e-3, momentum=0.3), (2, 5, 3, 3)),
    ("LazyBatchNorm3d", {}, (2, 3, 2, 2, 2)),
    ("LazyInstanceNorm1d", {}, (2, 3, 5)),
    ("LazyInstanceNorm1d", dict(affine=False), (2, 3, 5)),
    ("LazyInstanceNorm2d", {}, (2, 3, 4, 4)),
    ("LazyInstanceNorm2d", dict(track_running_stats=False), (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", {}, (2, 3, 2, 2, 3)),
]
NEITHER = [  # neither affine nor running statistics: nothing is lazy
    ("LazyBatchNorm1d", (4, 3, 5)),
    ("LazyBatchNorm2d", (2, 3, 4, 4)),
    ("LazyInstanceNorm1d", (2, 3, 5)),
    ("LazyInstanceNorm2d", (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", (2, 3, 2, 2, 2)),
]
ALL = CONV + NORM
IDS = [f"{c}-{i}" for i, (c, _, _) in enumerate(ALL)]


def _pair(name, kwargs):
    return getattr(jg.nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)


def _data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _jg_state(tm):
    return {k: jg.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()}


def _close(a, b, what):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    np.testing.assert_allclose(np.asarray(a), b.detach().numpy(), rtol=1e-5, atol=1e-5,
                               err_msg=what)


def _run_both(jm, tm, x, seed=1):
    """One forward and backward through each with the same input and upstream gradient."""
    jx = jg.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    jy, ty = jm(jx), tm(tx)
    g = _data(tuple(ty.shape), seed)
    jy.backward(jg.tensor(g))
    ty.backward(torch.tensor(g))
    return jx, jy, tx, ty


def _compare(jm, tm, jx, jy, tx, ty):
    assert tuple(jy.shape) == tuple(ty.shape)
    _close(jy, ty, "output")
    _close(jx.grad, tx.grad, "input grad")
    for n, tp in tm.named_parameters():
        _close(getattr(jm, n).grad, tp.grad, f"{n} grad")
    for n, tb in tm.named_buffers():
        _close(getattr(jm, n), tb, f"buffer {n}")


# -- before the first call ----------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs,shape", ALL, ids=IDS)
def test_placeholders_and_reprs_before_the_first_call(name, kwargs, shape):
    jm, tm = _pair(name, kwargs)
    assert repr(jm) == repr(tm)
    assert jm.has_uninitialized_params() is tm.has_uninitialized_params() is True
    assert isinstance(jm, jg.nn.modules.lazy.LazyModuleMixin)
    assert [n for n, _ in jm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    assert [n for n, _ in jm.named_buffers()] == [n for n, _ in tm.named_buffers()]
    for (n, jp), (_, tp) in zip(jm.named_parameters(), tm.named_parameters()):
        assert isinstance(jp, jg.nn.UninitializedParameter) and repr(jp) == repr(tp), n
    for (n, jb), (_, tb) in zip(jm.named_buffers(), tm.named_buffers()):
        assert repr(jb) == repr(tb), n
    js, ts = jm.state_dict(), tm.state_dict()
    assert list(js) == list(ts)
    assert [repr(v) for v in js.values()] == [repr(v) for v in ts.values()]


# -- the first call ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs,shape", ALL, ids=IDS)
def test_first_call_materializes_and_becomes_the_plain_class(name, kwargs, shape):
    jm, tm = _pair(name, kwargs)
    held = list(jm.parameters())  # (an optimizer made before the call holds these)
    x = _data(shape)
    jy, ty = jm(jg.tensor(x)), tm(torch.tensor(x))
    assert tuple(jy.shape) == tuple(ty.shape)
    assert type(jm).__name__ == type(tm).__name__ == name[4:]
    assert type(jm) is getattr(jg.nn, name[4:])
    assert not hasattr(jm, "has_uninitialized_params")  # (torch's plain classes lack it too)
    for (n, jp), (_, tp) in zip(jm.named_parameters(), tm.named_parameters()):
        assert tuple(jp.shape) == tuple(tp.shape), n
        assert type(jp) is jg.nn.Parameter and jp.requires_grad, n
    for (n, jb), (_, tb) in zip(jm.named_buffers(), tm.named_buffers()):
        assert tuple(jb.shape) == tuple(tb.shape) and type(jb) is jg.Tensor, n
        assert jb.dtype.name == str(tb.dtype).replace("torch.", ""), n
    assert [p is q for p, q in zip(held, jm.parameters())] == [True] * len(held)
    assert repr(jm) == repr(tm)


@pytest.mark.parametrize("name,kwargs,shape", ALL, ids=IDS)
def test_outputs_and_gradients_match_torch_with_torchs_weights(name, kwargs, shape):
    jm, tm = _pair(name, kwargs)
    x = _data(shape)
    jm(jg.tensor(x))
    tm(torch.tensor(x))  # (both have taken their shapes; a norm's running statistics moved)
    jm.load_state_dict(_jg_state(tm))
    _compare(jm, tm, *_run_both(jm, tm, _data(shape, 2)))
    if "Norm" in name:  # and in eval mode, with the running statistics
        jm.eval()
        tm.eval()
        for p in (*jm.parameters(), *tm.parameters()):
            p.grad = None
        _compare(jm, tm, *_run_both(jm, tm, _data(shape, 3), seed=4))


@pytest.mark.parametrize("name,kwargs,shape", CONV, ids=IDS[:len(CONV)])
def test_torch_takes_jitgrads_initialisation(name, kwargs, shape):
    """The other way: jitgrad's drawn weights, loaded into torch's materialized module."""
    jm, tm = _pair(name, kwargs)
    x = _data(shape)
    jm(jg.tensor(x))
    tm(torch.tensor(x))
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in jm.state_dict().items()})
    _compare(jm, tm, *_run_both(jm, tm, x))
    # torch's bounds: Kaiming-uniform (a = sqrt(5)) gives |w| <= 1/sqrt(fan_in), as the bias
    fan_in = int(np.prod(jm.weight.shape[1:]))
    for p in jm.parameters():
        assert np.abs(p.detach().numpy()).max() <= 1 / np.sqrt(fan_in) + 1e-6


@pytest.mark.filterwarnings("ignore:input's size at dim=1")  # (torch's, for num_features 0)
@pytest.mark.parametrize("name,shape", NEITHER, ids=[n for n, _ in NEITHER])
def test_without_affine_or_running_stats_nothing_is_lazy(name, shape):
    kwargs = dict(affine=False, track_running_stats=False)
    jm, tm = _pair(name, kwargs)
    assert repr(jm) == repr(tm)
    assert jm.has_uninitialized_params() is tm.has_uninitialized_params() is False
    assert jm.state_dict() == {} and len(tm.state_dict()) == 0
    _compare(jm, tm, *_run_both(jm, tm, _data(shape)))
    assert type(jm).__name__ == type(tm).__name__ == name[4:]
    if "Instance" in name:  # torch leaves num_features at 0 here; so does jitgrad
        assert repr(jm) == repr(tm)
    else:  # (jitgrad's BatchNorm checks the channels, so it reads them from the input)
        assert jm.num_features == shape[1] and tm.num_features == 0


def test_unbatched_instance_norm_reads_the_channels_from_dim_0():
    # (torch's lazy instance norms read dim 1 even of an unbatched input and then fail; the
    # result here is that of the InstanceNorm1d torch would have made for 3 channels)
    jm = jg.nn.LazyInstanceNorm1d()
    tm = torch.nn.InstanceNorm1d(3, affine=True, track_running_stats=True)
    x = _data((3, 5))
    _compare(jm, tm, *_run_both(jm, tm, x))
    assert tuple(jm.weight.shape) == (3,) and type(jm) is jg.nn.InstanceNorm1d


# -- state dicts before the first call -----------------------------------------------------------

@pytest.mark.parametrize("name,kwargs,shape", ALL, ids=IDS)
def test_load_state_dict_before_the_first_call(name, kwargs, shape):
    jm, tm = _pair(name, kwargs)
    x = _data(shape)
    tm(torch.tensor(x))
    keys = jm.load_state_dict(_jg_state(tm))
    assert keys.missing_keys == [] and keys.unexpected_keys == []
    assert jm.has_uninitialized_params() is False
    for (n, jp), (_, tp) in zip(jm.named_parameters(), tm.named_parameters()):
        assert tuple(jp.shape) == tuple(tp.shape) and type(jp) is jg.nn.Parameter, n
    assert type(jm).__name__ == name  # still lazy until called, as torch's
    # the first call keeps the loaded values (no fresh draw) and gives the same results
    _compare(jm, tm, *_run_both(jm, tm, _data(shape, 5)))
    assert type(jm).__name__ == name[4:]
    channels = shape[0] if "Conv" in name and len(shape) == int(name[-2]) + 1 else shape[1]
    assert repr(jm).startswith(f"{name[4:]}({channels}, ")


@pytest.mark.parametrize("name,kwargs,shape", ALL, ids=IDS)
def test_lazy_state_dict_loads_into_a_lazy_module(name, kwargs, shape):
    src, dst = getattr(jg.nn, name)(**kwargs), getattr(jg.nn, name)(**kwargs)
    assert repr(dst.load_state_dict(src.state_dict())) == "<All keys matched successfully>"
    assert dst.has_uninitialized_params()  # nothing to copy: still placeholders, as torch
    tm = getattr(torch.nn, name)(**kwargs)
    tm.load_state_dict(getattr(torch.nn, name)(**kwargs).state_dict())
    assert tm.has_uninitialized_params()
    x = _data(shape)
    assert tuple(dst(jg.tensor(x)).shape) == tuple(tm(torch.tensor(x)).shape)


def test_a_checkpoint_of_the_wrong_shape_changes_nothing():
    m = jg.nn.LazyConv2d(4, 3)
    with pytest.raises(ValueError, match=r"weight.*\(5, 2, 3, 3\).*LazyConv2d"):
        m.load_state_dict({"weight": jg.ones(5, 2, 3, 3), "bias": jg.ones(5)})
    with pytest.raises(ValueError, match=r"bias.*\(5,\)"):
        m.load_state_dict({"weight": jg.ones(4, 2, 3, 3), "bias": jg.ones(5)})
    assert m.has_uninitialized_params() and isinstance(m.weight, jg.nn.UninitializedParameter)
    up = jg.nn.LazyConvTranspose2d(4, 3, groups=2)
    with pytest.raises(ValueError, match="LazyConvTranspose2d"):
        up.load_state_dict({"weight": jg.ones(6, 4, 3, 3), "bias": jg.ones(4)})
    bn = jg.nn.LazyBatchNorm2d()
    sd = _jg_state(torch.nn.BatchNorm2d(3))
    sd["running_var"] = jg.ones(4)
    with pytest.raises(ValueError, match="LazyBatchNorm2d"):
        bn.load_state_dict(sd)
    assert bn.has_uninitialized_params()
    assert repr(bn.running_mean) == "<UninitializedBuffer>"


def test_a_partial_load_keeps_what_was_loaded_and_draws_the_rest():
    m = jg.nn.LazyConv1d(2, 3)
    w = jg.full((2, 4, 3), 0.5)
    m.load_state_dict({"weight": w}, strict=False)
    assert isinstance(m.bias, jg.nn.UninitializedParameter)
    m(jg.ones(1, 4, 6))
    assert bool((m.weight == 0.5).all()) and m.in_channels == 4
    assert tuple(m.bias.shape) == (2,) and float(m.bias.abs().max()) <= 1 / np.sqrt(12)
    bn = jg.nn.LazyBatchNorm1d()
    bn.load_state_dict({"running_mean": jg.full((3,), 2.0)}, strict=False)
    bn.eval()
    bn(jg.ones(2, 3))
    assert bn.running_mean.tolist() == [2.0] * 3 and bn.running_var.tolist() == [1.0] * 3
    assert bn.weight.tolist() == [1.0] * 3 and bn.bias.tolist() == [0.0] * 3


# -- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,kwargs,shape", ALL, ids=IDS)
def test_wrong_rank_names_the_module_and_the_shape(name, kwargs, shape):
    jm, tm = _pair(name, kwargs)
    for bad in (_data((5,)), _data((1, 2, 1, 1, 1, 1))):
        with pytest.raises((RuntimeError, ValueError, IndexError)):
            tm(torch.tensor(bad))
        # torch's types: a RuntimeError from a convolution, a ValueError from a norm (whose
        # lazy form reads dim 1 of a 1-D input first, an IndexError there)
        with pytest.raises(ValueError if "Norm" in name else RuntimeError) as jerr:
            jm(jg.tensor(bad))
        msg = str(jerr.value)
        assert name in msg and str(list(bad.shape)) in msg, msg
        assert jm.has_uninitialized_params() and type(jm).__name__ == name  # nothing changed


def test_in_channels_must_be_divisible_by_groups():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        torch.nn.LazyConv2d(4, 3, groups=2)(torch.ones(1, 3, 5, 5))
    with pytest.raises(ValueError, match="in_channels must be divisible by groups.*1, 3, 5, 5"):
        jg.nn.LazyConv2d(4, 3, groups=2)(jg.ones(1, 3, 5, 5))


def test_padding_modes_other_than_zeros_are_refused_where_conv_lacks_them():
    with pytest.raises(ValueError, match="padding_mode"):
        jg.nn.LazyConv2d(4, 3, padding_mode="reflect")


# -- dtype, seeds, paths ------------------------------------------------------------------------

def test_dtype_and_to_before_the_first_call():
    m = jg.nn.LazyConv2d(4, 3, dtype=jg.float64)
    m(jg.ones(1, 2, 4, 4, dtype=jg.float64))
    assert m.weight.dtype == jg.float64 and m.bias.dtype == jg.float64
    bn = jg.nn.LazyBatchNorm1d().to(jg.float64)
    assert repr(bn.running_mean) == "<UninitializedBuffer>" and bn.has_uninitialized_params()
    bn(jg.ones(4, 3, dtype=jg.float64))
    assert bn.running_mean.dtype == jg.float64 and bn.weight.dtype == jg.float64
    assert bn.num_batches_tracked.dtype == jg.int64 and int(bn.num_batches_tracked) == 1


def test_making_a_lazy_module_draws_no_random_numbers():
    jg.manual_seed(0)
    a = jg.randn(4)
    jg.manual_seed(0)
    for name in ("LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
                 "LazyConvTranspose2d", "LazyConvTranspose3d"):
        getattr(jg.nn, name)(4, 3, groups=2)
    assert a.tolist() == jg.randn(4).tolist()


def test_torch_paths_and_uninitialized_buffer():
    from jitgrad.nn.modules import batchnorm, conv, instancenorm, lazy
    assert conv.LazyConvTranspose3d is jg.nn.LazyConvTranspose3d
    assert batchnorm.LazyBatchNorm2d is jg.nn.LazyBatchNorm2d
    assert instancenorm.LazyInstanceNorm3d is jg.nn.LazyInstanceNorm3d
    assert issubclass(jg.nn.LazyConv2d, lazy.LazyModuleMixin)
    assert jg.nn.parameter.UninitializedBuffer is jg.nn.UninitializedBuffer
    b = jg.nn.UninitializedBuffer()
    assert repr(b) == repr(torch.nn.UninitializedBuffer()) and not b.requires_grad
    b.materialize((2, 3))
    assert type(b) is jg.Tensor and tuple(b.shape) == (2, 3)


def test_a_lazy_model_trains_like_torchs():
    """A small CNN of lazy layers: materialized, given torch's weights, one SGD step each."""
    def net(nn):
        return nn.Sequential(nn.LazyConv2d(4, 3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU(),
                             nn.LazyConvTranspose2d(2, 2, stride=2), nn.LazyInstanceNorm2d(),
                             nn.Flatten(), nn.LazyLinear(3))
    jn, tn = net(jg.nn), net(torch.nn)
    x = _data((2, 3, 4, 4))
    jn(jg.tensor(x))
    tn(torch.tensor(x))
    jn.load_state_dict(_jg_state(tn))
    assert [type(m).__name__ for m in jn] == [type(m).__name__ for m in tn]
    jopt = jg.optim.SGD(jn.parameters(), lr=0.1)
    topt = torch.optim.SGD(tn.parameters(), lr=0.1)
    for _ in range(2):
        jl = (jn(jg.tensor(x)) ** 2).mean()
        tl = (tn(torch.tensor(x)) ** 2).mean()
        jopt.zero_grad()
        topt.zero_grad()
        jl.backward()
        tl.backward()
        jopt.step()
        topt.step()
        _close(jl, tl, "loss")
    for k, v in tn.state_dict().items():
        _close(jn.state_dict()[k], v, k)


def test_a_first_call_that_fails_leaves_the_placeholders():
    """A first call inside a compiled function cannot draw the initial weights: the error names
    the module and says to call it once outside; the module stays lazy (no uninitialised memory
    taken later for loaded values)."""
    m = jg.nn.LazyConv2d(4, 3)
    with pytest.raises(TraceError, match="LazyConv2d is called for the first time inside a "
                       "compiled function, where it would draw its initial weight, bias; call "
                       "the module once outside"):
        jg.jit(lambda x: m(x).sum())(jg.ones(1, 2, 5, 5))
    assert m.has_uninitialized_params() and type(m) is jg.nn.LazyConv2d
    jg.manual_seed(0)
    m(jg.ones(1, 2, 5, 5))
    fresh = jg.nn.LazyConv2d(4, 3)
    jg.manual_seed(0)
    fresh(jg.ones(1, 2, 5, 5))
    np.testing.assert_array_equal(m.weight.detach().numpy(), fresh.weight.detach().numpy())
    np.testing.assert_array_equal(m.bias.detach().numpy(), fresh.bias.detach().numpy())


def test_a_lazy_linear_whose_first_call_fails_stays_lazy():
    fc = jg.nn.LazyLinear(3)
    with pytest.raises(TraceError, match="LazyLinear is called for the first time inside"):
        jg.jit(lambda x: fc(x).sum())(jg.ones(2, 5))
    assert type(fc) is jg.nn.LazyLinear and fc.in_features == 0
    assert isinstance(fc.weight, jg.nn.UninitializedParameter)
    jg.manual_seed(1)
    fc(jg.ones(2, 5))
    fresh = jg.nn.LazyLinear(3)
    jg.manual_seed(1)
    fresh(jg.ones(2, 5))
    np.testing.assert_array_equal(fc.weight.detach().numpy(), fresh.weight.detach().numpy())
