"""The rest of ``nn.functional`` (padding, interpolation, pooling, normalization, transposed
convolution, activations, losses, distances) and their Modules, each against PyTorch: values
and input/weight gradients (float64 tight, float32 loose), argument names and defaults,
reprs and errors."""

import inspect
import math

import numpy as np
import pytest

import jitgrad as jg
import jitgrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOL = {"float64": 1e-10, "float32": 2e-4}


def _run(fn, arrays, grads, lib, dtype, args, kwargs):
    """``fn(*tensors, *args, **kwargs)`` in ``lib`` with the float arrays as tensors (those
    whose index is in ``grads`` requiring grad); the result and the inputs."""
    if lib is torch:
        ts = [torch.tensor(a, dtype=getattr(torch, dtype) if a.dtype.kind == "f" else None,
                           requires_grad=i in grads) if a is not None else None
              for i, a in enumerate(arrays)]
    else:
        ts = [jg.tensor(a, dtype=getattr(jg, dtype) if a.dtype.kind == "f" else None,
                        requires_grad=i in grads) if a is not None else None
              for i, a in enumerate(arrays)]
    return fn(*ts, *args, **kwargs), ts


def _np(t):
    return np.asarray(t.detach().numpy())


def check(name, arrays, *args, grads=(0,), dtypes=("float64", "float32"), jfn=None, tfn=None,
          tol64=None, **kwargs):
    """The jitgrad function ``name`` matches torch's: value(s) and the gradients of the
    inputs listed in ``grads`` for a random output cotangent."""
    jfn = jfn or getattr(F, name)
    tfn = tfn or getattr(TF, name)
    for dtype in dtypes:
        tol = tol64 if tol64 is not None and dtype == "float64" else TOL[dtype]
        tout, tin = _run(tfn, arrays, grads, torch, dtype, args, kwargs)
        jout, jin = _run(jfn, arrays, grads, jg, dtype, args, kwargs)
        touts = tout if isinstance(tout, tuple) else (tout,)
        jouts = jout if isinstance(jout, tuple) else (jout,)
        for a, b in zip(jouts, touts):
            assert tuple(a.shape) == tuple(b.shape), name
            assert a.dtype.name == str(b.dtype).replace("torch.", ""), name
            np.testing.assert_allclose(_np(a), _np(b), rtol=tol, atol=tol, err_msg=name)
        if not grads:
            continue
        cot = np.random.default_rng(7).normal(size=tuple(touts[0].shape))
        touts[0].backward(torch.tensor(cot, dtype=touts[0].dtype))
        jouts[0].backward(jg.tensor(cot, dtype=jouts[0].dtype))
        for i in grads:
            np.testing.assert_allclose(_np(jin[i].grad), _np(tin[i].grad), rtol=tol, atol=tol,
                                       err_msg=f"{name}: gradient of input {i}")


# --- activations -----------------------------------------------------------------------------

ACTS = [
    ("elu", ()), ("elu", (0.5,)), ("selu", ()), ("celu", ()), ("celu", (2.0,)),
    ("leaky_relu", ()), ("leaky_relu", (0.2,)), ("hardtanh", ()), ("hardtanh", (-0.5, 2.0)),
    ("relu6", ()), ("hardsigmoid", ()), ("hardswish", ()), ("mish", ()), ("softsign", ()),
    ("tanhshrink", ()), ("softshrink", ()), ("softshrink", (1.0,)), ("hardshrink", ()),
    ("hardshrink", (1.5,)), ("threshold", (0.3, -2.0)), ("glu", ()), ("glu", (0,)),
    ("logsigmoid", ()), ("softmin", (1,)), ("rrelu", ()), ("silu", ()), ("relu", ()),
    ("softplus", (2.0, 3.0)),
]


@pytest.mark.parametrize("name,args", ACTS, ids=[f"{n}{a}" for n, a in ACTS])
def test_activations(name, args, rng):
    x = rng.normal(size=(4, 6)) * 4
    # torch's float64 hardsigmoid backward multiplies by a single-precision 1/6
    check(name, [x], *args, tol64=1e-7 if name == "hardsigmoid" else None)


@pytest.mark.parametrize("name,args", [("elu", (0.7,)), ("leaky_relu", (0.2,)),
                                       ("hardtanh", ()), ("threshold", (0.1, 5.0)),
                                       ("relu", ()), ("selu", ()), ("silu", ())])
def test_inplace_activations_keep_gradients(name, args, rng):
    a = rng.normal(size=(3, 4))
    x, tx = jg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = x * 2, tx * 2
    out, tout = getattr(F, name)(y, *args, inplace=True), getattr(TF, name)(ty, *args,
                                                                             inplace=True)
    assert out is y
    np.testing.assert_allclose(_np(y), _np(ty), rtol=1e-6)
    (out * out).sum().backward()
    (tout * tout).sum().backward()
    np.testing.assert_allclose(_np(x.grad), _np(tx.grad), rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(F, name)(x, *args, inplace=True)


def test_prelu_and_rrelu_training(rng):
    x, w = rng.normal(size=(2, 3, 4)), rng.uniform(0.1, 0.5, size=(3,))
    check("prelu", [x, w], grads=(0, 1))
    check("prelu", [x, w[:1]], grads=(0, 1))
    with pytest.raises(RuntimeError, match="channel size"):
        F.prelu(jg.tensor(x), jg.ones(4))
    y = F.rrelu(jg.tensor(x), 0.1, 0.3, training=True)
    ratio = _np(y)[x < 0] / x[x < 0]
    assert ((ratio >= 0.1 - 1e-6) & (ratio <= 0.3 + 1e-6)).all() and ratio.std() > 0
    np.testing.assert_allclose(_np(y)[x >= 0], x[x >= 0], rtol=1e-6)


def test_activation_errors():
    with pytest.raises(RuntimeError, match="Halving dimension must be even"):
        F.glu(jg.ones(2, 3))
    with pytest.raises(ValueError, match="lambda must be greater or equal to 0"):
        F.softshrink(jg.ones(2), -1.0)
    with pytest.raises(ValueError, match="min_val"):
        F.hardtanh(jg.ones(2), 2.0, 1.0)


def test_activation_modules_match_torch(rng):
    a = (rng.normal(size=(2, 4, 3)) * 3).astype(np.float32)  # PReLU's weight is float32
    pairs = [("ELU", (0.3,)), ("SELU", ()), ("CELU", (1.5,)), ("LeakyReLU", (0.1,)),
             ("Hardtanh", (-2.0, 2.0)), ("ReLU6", ()), ("Hardsigmoid", ()), ("Hardswish", ()),
             ("Mish", ()), ("Softsign", ()), ("Tanhshrink", ()), ("Softshrink", (0.7,)),
             ("Hardshrink", ()), ("Threshold", (0.1, 20.0)), ("GLU", (1,)), ("LogSigmoid", ()),
             ("Softmin", (1,)), ("RReLU", ()), ("PReLU", (4,)), ("Softplus", (2.0,)),
             ("SiLU", ()), ("ReLU", (True,)), ("Softmax2d", ())]
    for name, args in pairs:
        jm, tm = getattr(jg.nn, name)(*args), getattr(torch.nn, name)(*args)
        assert repr(jm) == repr(tm)
        jm.eval()
        tm.eval()
        x, tx = jg.tensor(a), torch.tensor(a)
        np.testing.assert_allclose(_np(jm(x)), _np(tm(tx)), rtol=1e-6, atol=1e-6,
                                   err_msg=name)


# --- padding ---------------------------------------------------------------------------------

PADS = [((2, 3, 5), (1, 2), "constant"), ((2, 3, 5), (-1, 2, 3, -1), "constant"),
        ((2, 3, 4, 5), (1, 1, 2, 0, 1, 1, 0, 2), "constant"), ((3, 5), (2, 4), "reflect"),
        ((2, 3, 5), (4, 2), "reflect"), ((2, 3, 4, 5), (2, 1, 3, 1), "reflect"),
        ((2, 2, 3, 4, 5), (1, 2, 2, 1, 1, 1), "reflect"), ((2, 3, 5), (3, 6), "replicate"),
        ((3, 4, 5), (1, 2, 3, 0), "replicate"), ((2, 3, 5), (-1, 2), "replicate"),
        ((2, 3, 5), (5, 2), "circular"), ((2, 3, 4, 5), (2, 1, 3, 4), "circular"),
        ((2, 3, 5), (-1, 2), "circular"), ((2, 3, 5), (2, -1), "reflect"),
        ((1, 2, 3, 4, 5), (1, 1, 1, 1, 1, 1), "circular")]


@pytest.mark.parametrize("shape,pad,mode", PADS)
def test_pad(shape, pad, mode, rng):
    check("pad", [rng.normal(size=shape)], pad, mode)


def test_pad_value_and_modules(rng):
    check("pad", [rng.normal(size=(2, 3))], (1, 2), value=3.5)
    a = rng.normal(size=(2, 3, 4, 5))
    for name, args in [("ConstantPad1d", (2, 1.5)), ("ConstantPad2d", ((1, 2, 0, 1), 0.0)),
                       ("ZeroPad2d", (1,)), ("ZeroPad1d", ((2, 0),)),
                       ("ReflectionPad2d", ((1, 2, 2, 1),)), ("ReplicationPad1d", (3,)),
                       ("CircularPad2d", (1,)), ("ReplicationPad3d", (1,)),
                       ("ConstantPad3d", (1, -1.0))]:
        jm, tm = getattr(jg.nn, name)(*args), getattr(torch.nn, name)(*args)
        assert repr(jm) == repr(tm)
        x = a[0] if name.startswith(("ReplicationPad1d", "ReflectionPad1d")) else a
        np.testing.assert_allclose(_np(jm(jg.tensor(x))), _np(tm(torch.tensor(x))))


@pytest.mark.parametrize("shape,pad,mode,err", [
    ((2, 3), (1, 1, 1, 1, 1, 1), "constant", RuntimeError),
    ((2, 3, 4), (1, 1, 1), "constant", RuntimeError),
    ((2, 3, 4), (4, 0), "reflect", RuntimeError), ((2, 3, 4), (5, 0), "circular", RuntimeError),
    ((4,), (1, 1), "reflect", NotImplementedError),
    ((2, 3, 4, 5), (1, 1), "replicate", NotImplementedError),
])
def test_pad_errors(shape, pad, mode, err):
    x = np.zeros(shape)
    with pytest.raises(err):
        TF.pad(torch.tensor(x), pad, mode)
    with pytest.raises(err):
        F.pad(jg.tensor(x), pad, mode)
    with pytest.raises(NotImplementedError, match="padding mode"):
        F.pad(jg.tensor(x), (1, 1), "wrap")


# --- interpolation and reshuffles ------------------------------------------------------------

INTERP = [((2, 3, 5), {"size": 7}), ((2, 3, 5), {"scale_factor": 1.7}),
          ((2, 3, 7), {"scale_factor": 0.5}), ((2, 3, 5), {"size": 8, "mode": "linear"}),
          ((2, 3, 5), {"size": 3, "mode": "linear", "align_corners": True}),
          ((2, 3, 5), {"scale_factor": 2.3, "mode": "linear"}),
          ((2, 3, 5), {"scale_factor": 1.7, "mode": "linear", "recompute_scale_factor": True}),
          ((2, 2, 5, 4), {"size": (7, 3), "mode": "bilinear"}),
          ((2, 2, 5, 4), {"scale_factor": (1.5, 2.5), "mode": "bilinear",
                          "align_corners": True}),
          ((2, 2, 5, 4), {"size": (9, 6), "mode": "bicubic"}),
          ((2, 2, 5, 4), {"size": (3, 7), "mode": "bicubic", "align_corners": True}),
          ((1, 2, 3, 4, 5), {"size": (5, 3, 7), "mode": "trilinear"}),
          ((2, 2, 7, 5), {"size": (3, 4), "mode": "area"}),
          ((2, 2, 7, 5), {"scale_factor": 1.3, "mode": "nearest-exact"}),
          ((1, 2, 3, 4, 5), {"scale_factor": 2}), ((2, 2, 7, 5), {"size": (13, 3)})]


@pytest.mark.parametrize("shape,kw", INTERP, ids=[str(k) for _, k in INTERP])
def test_interpolate(shape, kw, rng):
    check("interpolate", [rng.normal(size=shape)], **kw)


@pytest.mark.parametrize("shape,kw,err", [
    ((1, 1, 5), {"scale_factor": 2, "mode": "bilinear"}, NotImplementedError),
    ((1, 1, 5), {"mode": "linear"}, ValueError), ((1, 1, 5), {"size": 3, "scale_factor": 2}, ValueError),
    ((1, 1, 5), {"scale_factor": 2, "align_corners": True}, ValueError),
    ((1, 1, 5), {"size": (3, 4)}, ValueError), ((5,), {"scale_factor": 2}, NotImplementedError),
])
def test_interpolate_errors(shape, kw, err):
    x = np.zeros(shape)
    with pytest.raises(err):
        TF.interpolate(torch.tensor(x), **kw)
    with pytest.raises(err):
        F.interpolate(jg.tensor(x), **kw)


def test_upsample_modules(rng):
    a = rng.normal(size=(1, 2, 3, 4))
    for name, kw in [("Upsample", {"scale_factor": 2}),
                     ("Upsample", {"size": (5, 6), "mode": "bilinear", "align_corners": True}),
                     ("Upsample", {"scale_factor": (2.0, 1.5), "mode": "bicubic"}),
                     ("UpsamplingNearest2d", {"scale_factor": 3}),
                     ("UpsamplingBilinear2d", {"size": (4, 7)})]:
        jm, tm = getattr(jg.nn, name)(**kw), getattr(torch.nn, name)(**kw)
        assert repr(jm) == repr(tm)
        np.testing.assert_allclose(_np(jm(jg.tensor(a))), _np(tm(torch.tensor(a))), atol=1e-12)


def test_shuffles_unfold_fold(rng):
    check("pixel_shuffle", [rng.normal(size=(2, 8, 3, 4))], 2)
    check("pixel_shuffle", [rng.normal(size=(3, 2, 9, 2, 3))], 3)
    check("pixel_unshuffle", [rng.normal(size=(2, 2, 6, 4))], 2)
    check("channel_shuffle", [rng.normal(size=(2, 6, 3))], 3, dtypes=("float64",))
    check("unfold", [rng.normal(size=(2, 3, 5, 6))], (2, 3), dilation=(1, 2), padding=1,
          stride=(2, 1))
    check("unfold", [rng.normal(size=(3, 4, 4))], 2)
    check("fold", [rng.normal(size=(2, 12, 12))], (4, 5), 2)
    check("fold", [rng.normal(size=(2, 3 * 4, 12))], (5, 6), (2, 2), dilation=(2, 1),
          padding=1, stride=2)
    with pytest.raises(RuntimeError, match="divisible"):
        F.pixel_shuffle(jg.ones(1, 5, 2, 2), 2)
    with pytest.raises(RuntimeError, match="sliding blocks"):
        F.fold(jg.ones(1, 4, 7), (3, 3), 2)
    for name, args in [("PixelShuffle", (2,)), ("PixelUnshuffle", (3,)), ("Unfold", (2,)),
                       ("Fold", ((4, 5), 2)), ("ChannelShuffle", (2,))]:
        assert repr(getattr(jg.nn, name)(*args)) == repr(getattr(torch.nn, name)(*args))


# --- pooling ---------------------------------------------------------------------------------

POOLS = [("max_pool1d", (2, 3, 9), (3,), {}),
         ("max_pool1d", (2, 3, 9), (3, 2, 1), {"ceil_mode": True, "return_indices": True}),
         ("max_pool1d", (3, 10), (3, 2, 1), {"dilation": 2, "return_indices": True}),
         ("max_pool3d", (1, 2, 5, 6, 7), ((2, 3, 2), (1, 2, 2), (1, 1, 0)),
          {"ceil_mode": True, "return_indices": True}),
         ("avg_pool1d", (2, 3, 9), (3,), {}),
         ("avg_pool1d", (2, 3, 9), (3, 2, 1), {"ceil_mode": True, "count_include_pad": False}),
         ("avg_pool1d", (3, 10), (4, 3, 2), {"ceil_mode": True}),
         ("avg_pool3d", (1, 2, 5, 6, 7), ((2, 3, 2), (1, 2, 2), (1, 1, 0)),
          {"ceil_mode": True, "count_include_pad": False}),
         ("avg_pool3d", (1, 2, 5, 6, 7), (3,), {"divisor_override": 5}),
         ("adaptive_avg_pool1d", (2, 3, 7), (3,), {}),
         ("adaptive_avg_pool2d", (2, 3, 7, 5), ((3, None),), {}),
         ("adaptive_avg_pool2d", (3, 7, 5), ((4, 8),), {}),
         ("adaptive_avg_pool3d", (1, 3, 7, 5, 4), (2,), {}),
         ("adaptive_max_pool1d", (2, 3, 7), (3,), {"return_indices": True}),
         ("adaptive_max_pool2d", (2, 3, 7, 5), ((3, 4),), {"return_indices": True}),
         ("adaptive_max_pool2d", (3, 7, 5), ((9, 2),), {}),
         ("adaptive_max_pool3d", (1, 2, 5, 6, 7), ((2, 3, 4),), {"return_indices": True}),
         ("lp_pool1d", (2, 3, 9), (2, 3), {}),
         ("lp_pool2d", (2, 3, 9, 8), (1.5, (2, 3), 2), {"ceil_mode": True})]


@pytest.mark.parametrize("name,shape,args,kw", POOLS, ids=[p[0] + str(i) for i, p in
                                                          enumerate(POOLS)])
def test_pooling(name, shape, args, kw, rng):
    x = rng.normal(size=shape)
    if name.startswith("lp_pool"):
        x = np.abs(x) + 0.1  # a fractional power of a negative sum is NaN in both
    check(name, [x], *args, **kw)


def test_pooling_modules_and_errors(rng):
    a = rng.normal(size=(2, 3, 8, 6))
    for name, args in [("MaxPool1d", (3,)), ("AvgPool1d", (3, 2, 1)),
                       ("AdaptiveAvgPool1d", (3,)), ("AdaptiveAvgPool2d", ((3, None),)),
                       ("AdaptiveMaxPool2d", (3,)), ("AdaptiveMaxPool1d", (2,)),
                       ("LPPool2d", (2, 3))]:
        jm, tm = getattr(jg.nn, name)(*args), getattr(torch.nn, name)(*args)
        assert repr(jm) == repr(tm)
        x = a[0] if name.endswith("1d") else a
        np.testing.assert_allclose(_np(jm(jg.tensor(x))), _np(tm(torch.tensor(x))), atol=1e-12)
    with pytest.raises(RuntimeError, match="at most half"):
        F.max_pool1d(jg.ones(1, 2, 8), 3, 1, 2)
    with pytest.raises(RuntimeError):
        F.avg_pool1d(jg.ones(1, 2, 2), 5)


# --- normalization ---------------------------------------------------------------------------

def test_group_instance_rms_lrn(rng):
    x = rng.normal(size=(3, 6, 4, 5))
    w, b = rng.normal(size=(6,)), rng.normal(size=(6,))
    check("group_norm", [x], 3)
    check("group_norm", [x[..., 0], w, b], grads=(0, 1, 2),
          jfn=lambda v, g, c: F.group_norm(v, 2, g, c),
          tfn=lambda v, g, c: TF.group_norm(v, 2, g, c))
    check("instance_norm", [x, None, None, w, b], grads=(0, 3, 4))
    check("instance_norm", [x[..., 0], None, None, None, None], eps=1e-3)
    check("local_response_norm", [x[..., 0]], 3)
    check("local_response_norm", [x], 4, 1e-2, 0.5, 2.0)
    check("rms_norm", [x, rng.normal(size=(4, 5))], grads=(0, 1),
          jfn=lambda v, g: F.rms_norm(v, (4, 5), g), tfn=lambda v, g: TF.rms_norm(v, (4, 5), g))
    check("rms_norm", [x], [5], eps=1e-3)
    with pytest.raises(RuntimeError, match="divisible by num_groups"):
        F.group_norm(jg.ones(2, 6, 3), 4)


def test_instance_norm_running_stats_and_modules(rng):
    a = rng.normal(size=(2, 3, 5))
    tm, tv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    jm, jv = jg.zeros(3, dtype=jg.float64), jg.ones(3, dtype=jg.float64)
    TF.instance_norm(torch.tensor(a), tm, tv, momentum=0.3)
    F.instance_norm(jg.tensor(a), jm, jv, momentum=0.3)
    np.testing.assert_allclose(_np(jm), _np(tm), atol=1e-12)
    np.testing.assert_allclose(_np(jv), _np(tv), atol=1e-12)
    for name, args, kw in [("GroupNorm", (2, 6), {}), ("GroupNorm", (3, 6), {"affine": False}),
                           ("InstanceNorm1d", (3,), {}),
                           ("InstanceNorm2d", (3,), {"affine": True,
                                                     "track_running_stats": True}),
                           ("LocalResponseNorm", (2,), {}), ("RMSNorm", (4,), {})]:
        assert repr(getattr(jg.nn, name)(*args, **kw)) == \
            repr(getattr(torch.nn, name)(*args, **kw))
    jn = jg.nn.InstanceNorm1d(3, affine=True, track_running_stats=True, dtype=jg.float64)
    tn = torch.nn.InstanceNorm1d(3, affine=True, track_running_stats=True,
                                 dtype=torch.float64)
    for _ in range(2):
        np.testing.assert_allclose(_np(jn(jg.tensor(a))), _np(tn(torch.tensor(a))), atol=1e-12)
    jn.eval()
    tn.eval()
    np.testing.assert_allclose(_np(jn(jg.tensor(a[0]))), _np(tn(torch.tensor(a[0]))),
                               atol=1e-12)


# --- transposed convolution ------------------------------------------------------------------

@pytest.mark.parametrize("xs,ws,kw", [
    ((2, 4, 5, 6), (4, 3, 3, 2), {"stride": (2, 3), "padding": (1, 0),
                                  "output_padding": (1, 2), "groups": 2, "dilation": (1, 2)}),
    ((4, 5, 6), (4, 3, 3, 3), {"padding": 2}),
    ((1, 2, 3, 3), (2, 1, 2, 2), {"stride": 3, "padding": 1, "dilation": 3,
                                  "output_padding": 2}),
])
def test_conv_transpose2d(xs, ws, kw, rng):
    b = rng.normal(size=(ws[1] * kw.get("groups", 1),))
    check("conv_transpose2d", [rng.normal(size=xs), rng.normal(size=ws), b], grads=(0, 1, 2),
          **kw)


def test_conv_transpose1d_and_modules(rng):
    check("conv_transpose1d", [rng.normal(size=(2, 4, 7)), rng.normal(size=(4, 3, 3)),
                               rng.normal(size=(3,))], 2, 1, 1, grads=(0, 1, 2))
    check("conv_transpose1d", [rng.normal(size=(4, 7)), rng.normal(size=(4, 1, 5)), None],
          3, 0, 2, 4, 1, grads=(0, 1))
    with pytest.raises(ValueError, match="output padding must be smaller"):
        F.conv_transpose2d(jg.ones(1, 2, 3, 3), jg.ones(2, 1, 2, 2), output_padding=1)
    for cls, args, kw in [("ConvTranspose1d", (2, 4, 3), {}),
                          ("ConvTranspose2d", (2, 4, 3), {"stride": 2, "padding": 1,
                                                          "output_padding": 1, "groups": 2,
                                                          "dilation": 2, "bias": False})]:
        jm, tm = getattr(jg.nn, cls)(*args, **kw), getattr(torch.nn, cls)(*args, **kw)
        assert repr(jm) == repr(tm)
        assert tuple(jm.weight.shape) == tuple(tm.weight.shape)
    tm = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double()
    jm = jg.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, dtype=jg.float64)
    jm.load_state_dict({k: jg.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    a = rng.normal(size=(1, 2, 4, 4))
    np.testing.assert_allclose(_np(jm(jg.tensor(a), output_size=(8, 8))),
                               _np(tm(torch.tensor(a), output_size=(8, 8))), atol=1e-12)


# --- distances -------------------------------------------------------------------------------

def test_distances(rng):
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    check("normalize", [a])
    check("normalize", [a], 1.0, 0)
    check("normalize", [a], 3.0, -1)
    check("cosine_similarity", [a, b], grads=(0, 1))
    check("cosine_similarity", [a, b[:1]], 0, grads=(0, 1))
    for p in (1.0, 2.0, 3.0, math.inf):
        check("pairwise_distance", [a, b], p, grads=(0, 1))
    check("pairwise_distance", [a[0], b[0]], keepdim=True, grads=(0, 1))
    check("pdist", [a])
    check("pdist", [a], 1.0)
    x = np.array([[0, 2], [3, 1]])
    np.testing.assert_array_equal(_np(F.one_hot(jg.tensor(x))),
                                  TF.one_hot(torch.tensor(x)).numpy())
    np.testing.assert_array_equal(_np(F.one_hot(jg.tensor(x), 6)),
                                  TF.one_hot(torch.tensor(x), 6).numpy())
    for bad, n in (([1, 5], 3), ([-1, 0], -1)):
        with pytest.raises(RuntimeError, match="Class values"):
            F.one_hot(jg.tensor(bad), n)
    assert repr(jg.nn.CosineSimilarity()) == repr(torch.nn.CosineSimilarity())
    np.testing.assert_allclose(_np(jg.nn.PairwiseDistance(p=1.0)(jg.tensor(a), jg.tensor(b))),
                               _np(torch.nn.PairwiseDistance(p=1.0)(torch.tensor(a),
                                                                    torch.tensor(b))))


# --- losses ----------------------------------------------------------------------------------

def test_new_losses(rng):
    x, y = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    sign = np.where(rng.normal(size=(4, 5)) > 0, 1.0, -1.0)
    counts = rng.poisson(2.0, size=(4, 5)).astype(float)
    for red in ("mean", "sum", "none"):
        check("poisson_nll_loss", [x, counts], reduction=red)
        check("poisson_nll_loss", [np.abs(x) + 0.1, counts], False, True, reduction=red)
        check("gaussian_nll_loss", [x, y, np.abs(y) + 0.1], grads=(0, 2), reduction=red)
        check("margin_ranking_loss", [x, y, sign], 0.3, grads=(0, 1), reduction=red)
        check("hinge_embedding_loss", [x, sign], 0.5, reduction=red)
        check("soft_margin_loss", [x, sign], reduction=red)
        check("multilabel_soft_margin_loss", [x, (sign > 0).astype(float),
                                              np.abs(y[0]) + 0.5], reduction=red)
        check("cosine_embedding_loss", [x, y, sign[:, 0]], 0.2, grads=(0, 1), reduction=red)
        check("triplet_margin_loss", [x, y, y[::-1].copy()], grads=(0, 1, 2), reduction=red)
    check("gaussian_nll_loss", [x, y, np.abs(y[:, 0]) + 0.1], True, grads=(0, 2))
    check("gaussian_nll_loss", [x, y, np.full((4, 1), 1e-8)], grads=(0, 2))
    check("gaussian_nll_loss", [x, y], 0.5)
    check("cosine_embedding_loss", [x[0], y[0], np.array(-1.0)], grads=(0, 1))
    check("triplet_margin_loss", [x, y, y[::-1].copy()], 0.5, 1.0, swap=True, grads=(0, 1, 2))
    with pytest.raises(ValueError, match="var is of incorrect size"):
        F.gaussian_nll_loss(jg.tensor(x), jg.tensor(y), jg.ones(3))
    with pytest.raises(ValueError, match="negative"):
        F.gaussian_nll_loss(jg.tensor(x), jg.tensor(y), -jg.ones(4, 5))


def test_class_margin_losses(rng):
    x = rng.normal(size=(4, 5))
    t = np.array([0, 3, 4, 1])
    w = np.abs(rng.normal(size=(5,))) + 0.5
    for kw in ({}, {"p": 2}, {"margin": 0.5, "weight": None}, {"reduction": "none"}):
        check("multi_margin_loss", [x, t], **kw)
    check("multi_margin_loss", [x, t], 1, 0.7)
    check("multi_margin_loss", [x[0], np.array(2)])
    jw, tw = jg.tensor(w), torch.tensor(w)
    np.testing.assert_allclose(_np(F.multi_margin_loss(jg.tensor(x), jg.tensor(t), weight=jw)),
                               _np(TF.multi_margin_loss(torch.tensor(x), torch.tensor(t),
                                                        weight=tw)))
    lt = np.array([[3, 0, -1, 1, 2], [1, 1, -1, -1, -1], [-1, 2, 0, 0, 0], [4, 3, 2, 1, 0]])
    for red in ("mean", "sum", "none"):
        check("multilabel_margin_loss", [x, lt], reduction=red)
    check("multilabel_margin_loss", [x[0], lt[0]])


def test_triplet_with_distance_and_loss_modules(rng):
    a, p, n = (rng.normal(size=(3, 4)) for _ in range(3))
    check("triplet_margin_with_distance_loss", [a, p, n], grads=(0, 1, 2), swap=True)
    check("triplet_margin_with_distance_loss", [a, p, n], grads=(0, 1, 2), margin=2.0,
          jfn=lambda *t, **k: F.triplet_margin_with_distance_loss(
              *t, distance_function=lambda u, v: 1 - F.cosine_similarity(u, v), **k),
          tfn=lambda *t, **k: TF.triplet_margin_with_distance_loss(
              *t, distance_function=lambda u, v: 1 - TF.cosine_similarity(u, v), **k))
    sign = np.where(a > 0, 1.0, -1.0)
    cases = [("PoissonNLLLoss", (), (a, np.abs(p))), ("SoftMarginLoss", (), (a, sign)),
             ("HingeEmbeddingLoss", (0.5,), (a, sign)),
             ("MarginRankingLoss", (0.1,), (a, p, sign)),
             ("CosineEmbeddingLoss", (), (a, p, sign[:, 0])),
             ("TripletMarginLoss", (), (a, p, n)), ("MultiLabelSoftMarginLoss", (), (a, sign > 0)),
             ("L1Loss", (), (a, p)), ("MSELoss", (None, None, "sum"), (a, p)),
             ("SmoothL1Loss", (False,), (a, p)), ("KLDivLoss", (None, False), (a, np.abs(p))),
             ("BCELoss", (jg.tensor(np.abs(n[0])),), (1 / (1 + np.exp(-a)), np.abs(p) / 4)),
             ("BCEWithLogitsLoss", (None, None, None, "sum", jg.tensor(np.abs(n[0]))),
              (a, np.abs(p) / 4))]
    for name, args, data in cases:
        targs = tuple(torch.tensor(v.numpy()) if isinstance(v, jg.Tensor) else v for v in args)
        jm, tm = getattr(jg.nn, name)(*args), getattr(torch.nn, name)(*targs)
        assert repr(jm) == repr(tm)
        out = jm(*(jg.tensor(d.astype(float)) for d in data))
        ref = tm(*(torch.tensor(d.astype(float)) for d in data))
        np.testing.assert_allclose(_np(out), _np(ref), rtol=1e-10, err_msg=name)
    gm = jg.nn.GaussianNLLLoss(full=True)
    assert repr(gm) == "GaussianNLLLoss()"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_existing_losses_torch_arguments(rng):
    x, y, w = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.uniform(0.5, 2, size=(3, 4))
    for name in ("mse_loss", "l1_loss"):
        check(name, [x, y, w], grads=(0, 2), dtypes=("float64",),
              jfn=lambda a, b, c, n=name: getattr(F, n)(a, b, weight=c),
              tfn=lambda a, b, c, n=name: getattr(TF, n)(a, b, weight=c))
        check(name, [x, y], False, dtypes=("float64",))  # size_average=False: a sum
        check(name, [x, y], None, False, dtypes=("float64",))  # reduce=False: none
    check("huber_loss", [x, y, w], grads=(0, 2), dtypes=("float64",),
          jfn=lambda a, b, c: F.huber_loss(a, b, "mean", 0.5, c),
          tfn=lambda a, b, c: TF.huber_loss(a, b, "mean", 0.5, c))
    check("smooth_l1_loss", [x, y], None, None, "sum", 0.5, dtypes=("float64",))
    p = 1 / (1 + np.exp(-x))
    check("binary_cross_entropy", [p, np.abs(y) / 3, w], grads=(0,), dtypes=("float64",))
    check("binary_cross_entropy", [p, np.abs(y) / 3, w], False, grads=(0,),
          dtypes=("float64",))
    check("binary_cross_entropy_with_logits", [x, np.abs(y) / 3, w[0]], grads=(0,),
          dtypes=("float64",),
          jfn=lambda a, b, c: F.binary_cross_entropy_with_logits(a, b, None, None, None,
                                                                 "sum", c),
          tfn=lambda a, b, c: TF.binary_cross_entropy_with_logits(a, b, None, None, None,
                                                                  "sum", c))
    check("kl_div", [x, np.abs(y)], None, False, dtypes=("float64",))


# --- signatures ------------------------------------------------------------------------------

NAMES = ("pad interpolate normalize adaptive_avg_pool2d group_norm "
         "instance_norm local_response_norm rms_norm fold "
         "unfold elu selu celu leaky_relu hardtanh relu6 hardsigmoid hardswish mish threshold "
         "glu softmin rrelu silu l1_loss mse_loss smooth_l1_loss huber_loss kl_div "
         "binary_cross_entropy binary_cross_entropy_with_logits poisson_nll_loss "
         "gaussian_nll_loss margin_ranking_loss hinge_embedding_loss soft_margin_loss "
         "multilabel_soft_margin_loss multilabel_margin_loss cosine_embedding_loss "
         "triplet_margin_loss triplet_margin_with_distance_loss multi_margin_loss lp_pool1d "
         "lp_pool2d").split()


@pytest.mark.parametrize("name", NAMES)
def test_signatures_match_torch(name):
    def params(fn):
        return [(p.name, p.default, p.kind) for p in inspect.signature(fn).parameters.values()]
    assert params(getattr(F, name)) == params(getattr(TF, name))


def test_new_names_exist():
    wanted = ("pad interpolate normalize cosine_similarity pairwise_distance one_hot "
              "adaptive_avg_pool1d adaptive_avg_pool2d adaptive_max_pool2d avg_pool1d "
              "max_pool1d group_norm instance_norm local_response_norm conv_transpose1d "
              "conv_transpose2d unfold fold pixel_shuffle pixel_unshuffle elu selu celu "
              "leaky_relu hardtanh relu6 hardsigmoid hardswish mish softsign tanhshrink "
              "softshrink hardshrink threshold glu logsigmoid softmin rrelu prelu silu").split()
    assert [n for n in wanted if not hasattr(F, n)] == []


# --- compiled --------------------------------------------------------------------------------

def test_compiled_gradient_matches_eager(rng):
    a = rng.normal(size=(2, 3, 4, 5))

    def loss(x):
        y = F.interpolate(F.pad(x, (1, 2, 2, 1), mode="reflect"), scale_factor=1.5,
                          mode="bilinear")
        y = F.group_norm(F.hardswish(y), 3)
        return F.adaptive_avg_pool2d(y, 2).pow(2).sum() + F.elu(F.max_pool1d(x.flatten(2), 3)).sum()

    f = jg.grad(loss, target="numba-cpu")
    g = f(jg.tensor(a))
    info = f.cache_info()
    assert info.compiles == 1 and info.fallbacks == ()
    tx = torch.tensor(a, requires_grad=True)
    ty = TF.interpolate(TF.pad(tx, (1, 2, 2, 1), mode="reflect"), scale_factor=1.5,
                        mode="bilinear")
    ty = TF.group_norm(TF.hardswish(ty), 3)
    (TF.adaptive_avg_pool2d(ty, 2).pow(2).sum()
     + TF.elu(TF.max_pool1d(tx.flatten(2), 3)).sum()).backward()
    np.testing.assert_allclose(_np(g), tx.grad.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("op,kw", [
    ("max_pool2d", dict(kernel_size=2, ceil_mode=True)),
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, divisor_override=3)),
])
def test_pool2d_options_route_to_the_general_pooling(op, kw):
    x = np.random.default_rng(5).normal(size=(2, 3, 7, 7))
    xj, xt = jg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    a, b = getattr(jg.nn.functional, op)(xj, **kw), getattr(torch.nn.functional, op)(xt, **kw)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)
    w = np.random.default_rng(6).normal(size=tuple(b.shape))
    (a * jg.tensor(w)).sum().backward()
    (b * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xj.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
