"""Model-building modules against PyTorch: LazyLinear, RNN/LSTM/GRU, scaled_dot_product_attention,
MultiheadAttention, the Transformer family, ModuleDict/ParameterList/ParameterDict, and reprs.
Each loads a real torch module's state dict (and the reverse), then compares outputs, returned
states and gradients of inputs and parameters."""

import warnings

import numpy as np
import pytest

import jitgrad as jg
import jitgrad.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _pair(a, requires_grad=True):
    a = np.asarray(a)
    if a.dtype == bool:
        return jg.tensor(a), torch.tensor(a)
    return (jg.tensor(a, dtype=jg.float64, requires_grad=requires_grad),
            torch.tensor(a, dtype=torch.float64, requires_grad=requires_grad))


def _np(t):
    return np.asarray(t.detach().numpy())


def _close(a, b, tol=1e-9):
    np.testing.assert_allclose(_np(a), _np(b), rtol=tol, atol=tol)


def _load_from_torch(jm, tm):
    jm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})


def _load_into_torch(tm, jm):
    tm.load_state_dict({k: torch.tensor(_np(v)) for k, v in jm.state_dict().items()})


def _same_names(jm, tm):
    # the same names and shapes (the order of nested modules is checked nowhere here)
    got = {n: tuple(p.shape) for n, p in jm.named_parameters()}
    assert got == {n: tuple(p.shape) for n, p in tm.named_parameters()}


def _backward_both(jout, tout, rng):
    w = rng.normal(size=tuple(tout.shape))
    (jout * jg.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()


def _check_param_grads(jm, tm, tol=1e-9):
    jp = dict(jm.named_parameters())
    for n, p in tm.named_parameters():
        _close(jp[n].grad, p.grad, tol)


# -- LazyLinear ---------------------------------------------------------------------------------

def test_lazy_linear_materialises_on_first_call(rng):
    m = jg.nn.LazyLinear(3)
    assert repr(m) == repr(torch.nn.LazyLinear(3))
    w0 = m.weight
    x = jg.tensor(rng.normal(size=(4, 5)), dtype=jg.float32, requires_grad=True)
    y = m(x)
    assert m.weight is w0 and tuple(m.weight.shape) == (3, 5) and tuple(m.bias.shape) == (3,)
    assert repr(m) == repr(torch.nn.Linear(5, 3)) and isinstance(m, jg.nn.Linear)
    bound = 1 / np.sqrt(5)  # torch's Kaiming-uniform(a=sqrt(5)) bound, and the bias's
    assert np.abs(_np(m.weight)).max() <= bound and np.abs(_np(m.bias)).max() <= bound
    np.testing.assert_allclose(_np(y), _np(x) @ _np(m.weight).T + _np(m.bias), rtol=1e-6)
    g = rng.normal(size=(4, 3)).astype(np.float32)
    (y * jg.tensor(g)).sum().backward()
    np.testing.assert_allclose(_np(m.weight.grad), g.T @ _np(x), rtol=1e-5)
    np.testing.assert_allclose(_np(x.grad), g @ _np(m.weight), rtol=1e-5)
    # an optimizer made after the first call sees (and steps) the materialised parameters
    before = _np(m.weight).copy()
    jg.optim.SGD(m.parameters(), lr=0.5).step()
    np.testing.assert_allclose(_np(m.weight), before - 0.5 * g.T @ _np(x), rtol=1e-5)


def test_lazy_linear_without_bias_and_bad_input():
    m = jg.nn.LazyLinear(2, bias=False)
    assert m.bias is None and m(jg.ones(3, 4)).shape == (3, 2)
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match="at least one dimension"):
        jg.nn.LazyLinear(2)(jg.tensor(1.0))


# -- RNN / LSTM / GRU ---------------------------------------------------------------------------

RNN_CASES = [
    ("RNN", {}, (5, 2, 3), False),
    ("RNN", {"nonlinearity": "relu", "num_layers": 3}, (6, 2, 3), True),
    ("LSTM", {}, (5, 2, 3), False),
    ("LSTM", {"num_layers": 2, "bidirectional": True, "batch_first": True}, (2, 5, 3), True),
    ("LSTM", {"num_layers": 2, "bias": False}, (5, 3), True),  # unbatched
    ("LSTM", {"proj_size": 2, "bidirectional": True}, (4, 2, 3), True),
    ("GRU", {}, (5, 2, 3), False),
    ("GRU", {"num_layers": 2, "bidirectional": True}, (5, 3), True),
    ("GRU", {"batch_first": True, "bias": False}, (2, 4, 3), True),
]


def _rnn_states(name, kw, shape, rng):
    d = 2 if kw.get("bidirectional") else 1
    layers = kw.get("num_layers", 1) * d
    batched = len(shape) == 3
    n = shape[0] if kw.get("batch_first") else shape[1]
    out = kw.get("proj_size") or 4
    h = rng.normal(size=(layers, n, out) if batched else (layers, out))
    if name != "LSTM":
        return _pair(h)
    c = rng.normal(size=(layers, n, 4) if batched else (layers, 4))
    (jh, th), (jc, tc) = _pair(h), _pair(c)
    return (jh, jc), (th, tc)


@pytest.mark.parametrize("name,kw,shape,with_state", RNN_CASES)
def test_recurrent_modules_match_torch(name, kw, shape, with_state, rng):
    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(3, 4, **kw).double()
    jm = getattr(jg.nn, name)(3, 4, **kw).double()
    assert [n for n, _ in jm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    _same_names(jm, tm)
    assert repr(jm) == repr(tm)
    _load_from_torch(jm, tm)
    x, tx = _pair(rng.normal(size=shape))
    args, targs = [x], [tx]
    if with_state:
        s, ts = _rnn_states(name, kw, shape, rng)
        args.append(s)
        targs.append(ts)
    out, state = jm(*args)
    tout, tstate = tm(*targs)
    _close(out, tout)
    state = state if isinstance(state, tuple) else (state,)
    tstate = tstate if isinstance(tstate, tuple) else (tstate,)
    for a, b in zip(state, tstate):
        _close(a, b)
    w = rng.normal(size=tuple(tout.shape))
    (out * jg.tensor(w)).sum().add(sum(s.sum() for s in state)).backward()
    (tout * torch.tensor(w)).sum().add(sum(s.sum() for s in tstate)).backward()
    _close(x.grad, tx.grad)
    _check_param_grads(jm, tm)
    if with_state:
        for a, b in zip(args[1] if name == "LSTM" else (args[1],),
                        targs[1] if name == "LSTM" else (targs[1],)):
            _close(a.grad, b.grad)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_recurrent_state_dict_loads_into_torch(name, rng):
    jm = getattr(jg.nn, name)(3, 5, num_layers=2, bidirectional=True).double()
    tm = getattr(torch.nn, name)(3, 5, num_layers=2, bidirectional=True).double()
    _load_into_torch(tm, jm)
    x, tx = _pair(rng.normal(size=(4, 2, 3)), requires_grad=False)
    _close(jm(x)[0], tm(tx)[0])


def test_recurrent_init_and_dropout_between_layers(rng):
    jm = jg.nn.LSTM(3, 16, num_layers=2, dropout=1.0).double()
    k = 1 / np.sqrt(16)
    vals = np.concatenate([_np(p).ravel() for p in jm.parameters()])
    assert np.abs(vals).max() <= k and abs(vals.std() - k / np.sqrt(3)) < 0.1 * k
    tm = torch.nn.LSTM(3, 16, num_layers=2, dropout=1.0).double()
    _load_from_torch(jm, tm)
    x, tx = _pair(rng.normal(size=(4, 2, 3)), requires_grad=False)
    # dropout 1 between the layers zeroes the second layer's input, in training only
    _close(jm(x)[0], tm(tx)[0])
    out_train = _np(jm(x)[0])
    jm.eval()
    tm.eval()
    _close(jm(x)[0], tm(tx)[0])
    assert not np.allclose(_np(jm(x)[0]), out_train)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        jg.nn.GRU(2, 3, dropout=0.5)


def test_recurrent_errors():
    lstm = jg.nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        lstm(jg.zeros(5, 2, 3, 1))
    with pytest.raises(RuntimeError, match="input_size. Expected 3, got 5"):
        lstm(jg.zeros(5, 2, 5))
    with pytest.raises(RuntimeError, match=r"Expected hidden\[0\] size \(2, 2, 4\), got \[1, 2, 4\]"):
        lstm(jg.zeros(5, 2, 3), (jg.zeros(1, 2, 4), jg.zeros(2, 2, 4)))
    with pytest.raises(RuntimeError, match="hx and cx should also be 3-D"):
        lstm(jg.zeros(5, 2, 3), (jg.zeros(2, 4), jg.zeros(2, 4)))
    with pytest.raises(RuntimeError, match="For unbatched 2-D input, hx should also be 2-D"):
        jg.nn.GRU(3, 4)(jg.zeros(5, 3), jg.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="does not match weight dtype"):
        jg.nn.GRU(3, 4)(jg.zeros(5, 2, 3, dtype=jg.float64))
    with pytest.raises(RuntimeError, match="sequence length to be larger than 0"):
        jg.nn.RNN(3, 4)(jg.zeros(0, 2, 3))
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'"):
        jg.nn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="dropout should be a number in range"):
        jg.nn.LSTM(3, 4, dropout=1.5)


# -- scaled_dot_product_attention ---------------------------------------------------------------

@pytest.mark.parametrize("case", ["plain", "causal", "scale", "bool", "float", "row_masked",
                                  "gqa", "3d"])
def test_sdpa_matches_torch(case, rng):
    hq = 4 if case == "gqa" else 2
    q = rng.normal(size=(2, hq, 4, 5))
    k, v = rng.normal(size=(2, 2, 6, 5)), rng.normal(size=(2, 2, 6, 3))
    if case == "3d":
        q, k, v = q[:, 0], k[:, 0], v[:, 0]
    kw, mask = {}, None
    if case == "causal":
        kw["is_causal"] = True
    elif case == "scale":
        kw["scale"] = 0.3
    elif case == "gqa":
        kw["enable_gqa"] = True
    elif case == "bool":
        mask = rng.random((4, 6)) > 0.4
        mask[:, 0] = True
    elif case == "row_masked":  # a query row with no key left gives zeros, as torch's
        mask = rng.random((2, 1, 4, 6)) > 0.4
        mask[..., 0] = True
        mask[0, 0, 1] = False
    elif case == "float":
        mask = rng.normal(size=(4, 6))
    (jq, tq), (jk, tk), (jv, tv) = _pair(q), _pair(k), _pair(v)
    if mask is not None:
        jm, tmask = _pair(mask, requires_grad=False)
        out = F.scaled_dot_product_attention(jq, jk, jv, attn_mask=jm, **kw)
        tout = TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=tmask, **kw)
    else:
        out = F.scaled_dot_product_attention(jq, jk, jv, **kw)
        tout = TF.scaled_dot_product_attention(tq, tk, tv, **kw)
    _close(out, tout)
    _backward_both(out, tout, rng)
    for a, b in ((jq, tq), (jk, tk), (jv, tv)):
        assert np.isfinite(_np(a.grad)).all()
        _close(a.grad, b.grad)


def test_sdpa_dropout_and_errors(rng):
    q = jg.tensor(rng.normal(size=(2, 3, 4)))
    out = F.scaled_dot_product_attention(q, q, q, dropout_p=1.0)
    np.testing.assert_array_equal(_np(out), 0.0)
    torch_out = TF.scaled_dot_product_attention(*(torch.tensor(_np(q)),) * 3, dropout_p=1.0)
    np.testing.assert_array_equal(torch_out.numpy(), 0.0)
    with pytest.raises(ValueError, match="attn_mask should not be set when is_causal=True"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=jg.ones(3, 3).bool(), is_causal=True)
    with pytest.raises(RuntimeError, match="do not fit"):
        F.scaled_dot_product_attention(q, q[..., :3], q)
    with pytest.raises(TypeError, match="only bool and floating types of attn_mask"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=jg.ones(3, 3).long())


# -- MultiheadAttention -------------------------------------------------------------------------

def _kpm(rng, n=3, s=5):
    m = rng.random((n, s)) > 0.6
    m[:, 0] = False
    return m


MHA_CASES = [
    ({}, {}, "batched"),
    ({"batch_first": True}, {}, "batched"),
    ({}, {}, "unbatched"),
    ({}, {"need_weights": False}, "batched"),
    ({}, {"average_attn_weights": False}, "batched"),
    ({}, {"attn_mask": "bool2d"}, "batched"),
    ({}, {"attn_mask": "float3d"}, "batched"),
    ({}, {"attn_mask": "float2d", "key_padding_mask": "kpm"}, "batched"),
    ({"batch_first": True}, {"key_padding_mask": "kpm", "need_weights": False}, "batched"),
    ({"kdim": 3, "vdim": 6}, {}, "batched"),
    ({"bias": False}, {"attn_mask": "bool2d"}, "unbatched"),
]


@pytest.mark.filterwarnings("ignore:Support for mismatched")
@pytest.mark.parametrize("ctor,call,mode", MHA_CASES)
def test_multihead_attention_matches_torch(ctor, call, mode, rng):
    e, h, length, src, n = 8, 2, 4, 5, 3
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(e, h, **ctor).double().eval()
    jm = jg.nn.MultiheadAttention(e, h, **ctor).double().eval()
    assert [n_ for n_, _ in jm.named_parameters()] == [n_ for n_, _ in tm.named_parameters()]
    _same_names(jm, tm)
    assert repr(jm) == repr(tm)
    _load_from_torch(jm, tm)
    bf = ctor.get("batch_first", False)

    def shape(seq, dim):
        if mode == "unbatched":
            return (seq, dim)
        return (n, seq, dim) if bf else (seq, n, dim)
    (jq, tq) = _pair(rng.normal(size=shape(length, e)))
    (jk, tk) = _pair(rng.normal(size=shape(src, ctor.get("kdim", e))))
    (jv, tv) = _pair(rng.normal(size=shape(src, ctor.get("vdim", e))))
    masks = {"bool2d": rng.random((length, src)) > 0.7, "float2d": rng.normal(size=(length, src)),
             "float3d": rng.normal(size=(n * h, length, src)), "kpm": _kpm(rng, n, src)}
    jkw, tkw = {}, {}
    for key, val in call.items():
        if isinstance(val, str):
            jkw[key], tkw[key] = _pair(masks[val], requires_grad=False)
        else:
            jkw[key] = tkw[key] = val
    out, w = jm(jq, jk, jv, **jkw)
    tout, tw = tm(tq, tk, tv, **tkw)
    _close(out, tout)
    assert (w is None) == (tw is None)
    loss, tloss = (out * 1.5).sum(), (tout * 1.5).sum()
    if tw is not None:
        _close(w, tw)
        loss = loss + (w * w).sum()
        tloss = tloss + (tw * tw).sum()
    loss.backward()
    tloss.backward()
    for a, b in ((jq, tq), (jk, tk), (jv, tv)):
        _close(a.grad, b.grad)
    _check_param_grads(jm, tm)


def test_multihead_attention_init_state_dict_and_errors(rng):
    m = jg.nn.MultiheadAttention(8, 2)
    bound = np.sqrt(6 / (8 + 24))  # Xavier-uniform of the (3E, E) in-projection
    w = _np(m.in_proj_weight)
    assert np.abs(w).max() <= bound and w.std() > bound / 3
    np.testing.assert_array_equal(_np(m.in_proj_bias), 0.0)
    np.testing.assert_array_equal(_np(m.out_proj.bias), 0.0)
    tm = torch.nn.MultiheadAttention(8, 2)
    _load_into_torch(tm, m)
    x = rng.normal(size=(4, 2, 8)).astype(np.float32)
    np.testing.assert_allclose(_np(m(*(jg.tensor(x),) * 3)[0]),
                               _np(tm(*(torch.tensor(x),) * 3)[0]), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        jg.nn.MultiheadAttention(6, 4)
    q = jg.zeros(4, 2, 8)
    with pytest.raises(RuntimeError, match=r"2D attn_mask is \[3, 4\], but should be \(4, 4\)"):
        m(q, q, q, attn_mask=jg.zeros(3, 4).bool())
    with pytest.raises(RuntimeError, match=r"3D attn_mask is \[5, 4, 4\], but should be \(4, 4, 4\)"):
        m(q, q, q, attn_mask=jg.zeros(5, 4, 4))
    with pytest.raises(RuntimeError, match="key_padding_mask should have shape"):
        m(q, q, q, key_padding_mask=jg.zeros(2, 5).bool())
    with pytest.raises(RuntimeError, match="expecting query embedding dimension of 8, but got 5"):
        m(jg.zeros(4, 2, 5), q, q)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        m(q, q, q, is_causal=True)


def test_multihead_attention_dropout_in_training_only(rng):
    m = jg.nn.MultiheadAttention(4, 2, dropout=1.0).double()
    jg.nn.init.uniform_(m.out_proj.bias, -1, 1)
    x = jg.tensor(rng.normal(size=(3, 2, 4)))
    out, w = m(x, x, x)  # every attention weight dropped: only the output bias is left
    np.testing.assert_array_equal(_np(w), 0.0)
    np.testing.assert_allclose(_np(out), np.broadcast_to(_np(m.out_proj.bias), (3, 2, 4)))
    m.eval()
    out, w = m(x, x, x)
    np.testing.assert_allclose(_np(w).sum(-1), 1.0)


# -- Transformer --------------------------------------------------------------------------------

LAYER_KW = [{}, {"norm_first": True}, {"activation": "gelu"}, {"batch_first": True},
            {"bias": False}]


@pytest.mark.filterwarnings("ignore:Support for mismatched")
@pytest.mark.parametrize("kw", LAYER_KW)
def test_transformer_layers_match_torch(kw, rng):
    e, h, ff = 8, 2, 16
    bf = kw.get("batch_first", False)
    shape = (lambda n, s: (n, s, e)) if bf else (lambda n, s: (s, n, e))
    mask = np.triu(np.full((5, 5), -np.inf), 1)
    kpm = _kpm(rng, 3, 5)
    torch.manual_seed(0)
    for kind in ("encoder", "decoder"):
        tm = getattr(torch.nn, f"Transformer{kind.title()}Layer")(e, h, ff, **kw).double().eval()
        jm = getattr(jg.nn, f"Transformer{kind.title()}Layer")(e, h, ff, **kw).double().eval()
        _same_names(jm, tm)
        _load_from_torch(jm, tm)
        (jx, tx) = _pair(rng.normal(size=shape(3, 5)))
        (jmask, tmask), (jkpm, tkpm) = _pair(mask, False), _pair(kpm)
        if kind == "encoder":
            out = jm(jx, src_mask=jmask, src_key_padding_mask=jkpm, is_causal=True)
            tout = tm(tx, src_mask=tmask, src_key_padding_mask=tkpm, is_causal=True)
            inputs = ((jx, tx),)
        else:
            (jt, tt) = _pair(rng.normal(size=shape(3, 4)))
            tgt_mask = np.triu(np.ones((4, 4), bool), 1)
            (jtm, ttm) = _pair(tgt_mask)
            out = jm(jt, jx, tgt_mask=jtm, memory_key_padding_mask=jkpm, tgt_is_causal=True)
            tout = tm(tt, tx, tgt_mask=ttm, memory_key_padding_mask=tkpm, tgt_is_causal=True)
            inputs = ((jx, tx), (jt, tt))
        _close(out, tout)
        _backward_both(out, tout, rng)
        for a, b in inputs:
            _close(a.grad, b.grad)
        _check_param_grads(jm, tm)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
@pytest.mark.parametrize("kw", [{}, {"batch_first": True, "norm_first": True,
                                     "activation": "gelu"}])
def test_transformer_matches_torch_both_ways(kw, rng):
    e, h, ff = 8, 2, 16
    tm = torch.nn.Transformer(e, h, 2, 1, ff, **kw).double().eval()
    jm = jg.nn.Transformer(e, h, 2, 1, ff, **kw).double().eval()
    _same_names(jm, tm)
    bound = np.sqrt(6 / (e + ff))  # weights with 2+ dims start Xavier-uniform
    assert np.abs(_np(jm.encoder.layers[0].linear1.weight)).max() <= bound
    _load_from_torch(jm, tm)
    bf = kw.get("batch_first", False)
    (js, ts) = _pair(rng.normal(size=(3, 6, e) if bf else (6, 3, e)))
    (jt, tt) = _pair(rng.normal(size=(3, 4, e) if bf else (4, 3, e)))
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(4).double()
    jmask = jg.nn.Transformer.generate_square_subsequent_mask(4, dtype=jg.float64)
    np.testing.assert_array_equal(_np(jmask), tmask.numpy())
    out, tout = jm(js, jt, tgt_mask=jmask), tm(ts, tt, tgt_mask=tmask)
    _close(out, tout)
    _backward_both(out, tout, rng)
    _close(js.grad, ts.grad)
    _close(jt.grad, tt.grad)
    _check_param_grads(jm, tm)
    # and the reverse: a jitgrad model's weights in a torch model
    jm2 = jg.nn.Transformer(e, h, 2, 1, ff, **kw).double().eval()
    _load_into_torch(tm, jm2)
    with jg.no_grad(), torch.no_grad():
        _close(jm2(js, jt, tgt_mask=jmask), tm(ts, tt, tgt_mask=tmask))


def test_transformer_encoder_stack_with_module_activation(rng):
    tl = torch.nn.TransformerEncoderLayer(8, 2, 16, activation=torch.nn.GELU())
    jl = jg.nn.TransformerEncoderLayer(8, 2, 16, activation=jg.nn.GELU())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = torch.nn.TransformerEncoder(tl, 3, norm=torch.nn.LayerNorm(8)).double().eval()
    jm = jg.nn.TransformerEncoder(jl, 3, norm=jg.nn.LayerNorm(8)).double().eval()
    assert len(jm.layers) == 3 and jm.layers[0].linear1.weight is not jm.layers[1].linear1.weight
    _same_names(jm, tm)
    _load_from_torch(jm, tm)
    (jx, tx) = _pair(rng.normal(size=(5, 2, 8)))
    out, tout = jm(jx), tm(tx)
    _close(out, tout)
    _backward_both(out, tout, rng)
    _close(jx.grad, tx.grad)
    _check_param_grads(jm, tm)


def test_transformer_dropout_and_errors(rng):
    x = jg.tensor(rng.normal(size=(5, 2, 8)))
    layer = jg.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5)
    a, b = _np(layer(x)), _np(layer(x))
    assert not np.allclose(a, b)  # training: fresh dropout masks
    layer.eval()
    np.testing.assert_array_equal(_np(layer(x)), _np(layer(x)))
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        jg.nn.TransformerEncoderLayer(8, 2, activation="tanh")
    model = jg.nn.Transformer(8, 2, 1, 1, 16)
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        model(jg.zeros(5, 2, 8), jg.zeros(4, 3, 8))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal"):
        model(jg.zeros(5, 2, 6), jg.zeros(4, 2, 6))
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        layer(x, is_causal=True)


# -- containers ---------------------------------------------------------------------------------

def test_module_dict_and_parameter_containers():
    md = jg.nn.ModuleDict({"b": jg.nn.Linear(2, 3), "a": jg.nn.Tanh()})
    tmd = torch.nn.ModuleDict({"b": torch.nn.Linear(2, 3), "a": torch.nn.Tanh()})
    assert list(md) == list(tmd) and len(md) == 2 and "a" in md
    assert list(md.state_dict()) == list(tmd.state_dict())
    md["c"] = jg.nn.Linear(3, 1)
    tmd["c"] = torch.nn.Linear(3, 1)
    assert repr(md) == repr(tmd)
    del md["a"]
    assert list(md.keys()) == ["b", "c"] and md.pop("c") is not None and len(md) == 1
    with pytest.raises(TypeError, match="must be a Module"):
        md["x"] = 3
    pl = jg.nn.ParameterList([jg.nn.Parameter(jg.ones(2)), jg.ones(2, 3, dtype=jg.float64)])
    tpl = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(2)),
                                  torch.ones(2, 3, dtype=torch.float64)])
    assert isinstance(pl[1], jg.nn.Parameter) and pl[1].requires_grad
    assert [n for n, _ in pl.named_parameters()] == [n for n, _ in tpl.named_parameters()]
    assert repr(pl) == repr(tpl).replace("torch.", "jitgrad.")
    pl.append(jg.zeros(1))
    assert len(pl) == 3 and tuple(pl[-1].shape) == (1,)
    pd = jg.nn.ParameterDict({"x": jg.nn.Parameter(jg.ones(2, 3)), "y": jg.ones(3)})
    tpd = torch.nn.ParameterDict({"x": torch.nn.Parameter(torch.ones(2, 3)), "y": torch.ones(3)})
    assert list(pd.state_dict()) == list(tpd.state_dict()) and pd["y"].requires_grad
    assert repr(pd) == repr(tpd).replace("torch.", "jitgrad.")
    with pytest.raises(TypeError, match="expected a Parameter or a Tensor"):
        pd["z"] = [1.0]


# -- reprs and grad_fn names --------------------------------------------------------------------

def _cnn(nn):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 3, stride=2, padding=1, bias=False), nn.AvgPool2d(2),
        nn.Conv2d(16, 16, 3, padding="same", dilation=2, groups=4), nn.Flatten(),
        nn.Linear(16, 10), nn.GELU("tanh"), nn.Conv1d(2, 3, 3, stride=2, padding=1),
        nn.LogSoftmax(dim=1), nn.Softmax(dim=-1), nn.Flatten(0, 2))


def test_reprs_match_torch():
    assert repr(_cnn(jg.nn)) == repr(_cnn(torch.nn))


def test_transformer_repr_matches_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = repr(torch.nn.Transformer(8, 2, 1, 1, 16))
    assert repr(jg.nn.Transformer(8, 2, 1, 1, 16)) == t


def test_linear_grad_fn_names_match_torch():
    for shape, bias in (((4, 3), True), ((4, 3), False)):
        j = jg.nn.Linear(3, 2, bias=bias)(jg.ones(*shape))
        t = torch.nn.Linear(3, 2, bias=bias)(torch.ones(*shape))
        assert j.grad_fn.name() == t.grad_fn.name()


# -- compiled -----------------------------------------------------------------------------------

def test_compiled_grad_through_lstm_and_encoder_layer(rng):
    torch.manual_seed(0)
    tl, jl = torch.nn.LSTM(3, 4).double(), jg.nn.LSTM(3, 4).double()
    _load_from_torch(jl, tl)
    x = rng.normal(size=(5, 2, 3))

    def lstm_loss(m, x):
        out, (h, c) = m(x)
        return (out * out).sum() + h.sum() + c.sum()
    g = jg.grad(lstm_loss, target="reference")(jl, jg.tensor(x))
    lstm_loss(tl, torch.tensor(x)).backward()
    for n, p in tl.named_parameters():
        np.testing.assert_allclose(np.asarray(g[n]), p.grad.numpy(), rtol=1e-9, atol=1e-10)

    te = torch.nn.TransformerEncoderLayer(8, 2, 16).double().eval()
    je = jg.nn.TransformerEncoderLayer(8, 2, 16).double().eval()
    _load_from_torch(je, te)
    x = rng.normal(size=(5, 3, 8))
    mask = np.triu(np.full((5, 5), -np.inf), 1)

    def enc_loss(m, x, mask):
        return (m(x, src_mask=mask) ** 2).sum()
    g = jg.grad(enc_loss, target="reference")(je, jg.tensor(x), jg.tensor(mask))
    enc_loss(te, torch.tensor(x), torch.tensor(mask)).backward()
    for n, p in te.named_parameters():
        np.testing.assert_allclose(np.asarray(g[n]), p.grad.numpy(), rtol=1e-8, atol=1e-9)
