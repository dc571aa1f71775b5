"""nn.functional.grid_sample, affine_grid, multi_head_attention_forward (and MultiheadAttention's
add_bias_kv / add_zero_attn), linalg.ldl_factor(_ex) / ldl_solve: values and gradients against
torch (skipped without it), compiled on the reference target, errors."""

import itertools

import numpy as np
import pytest

import jitgrad as jg
import jitgrad.nn.functional as F


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _rand(shape, seed=0, lo=None, hi=None):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape) if lo is None else rng.uniform(lo, hi, shape)


def _close(got, want, tol=1e-10):
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=tol, atol=tol)


def _both(torch, *arrays):
    return ([jg.tensor(a, requires_grad=True) for a in arrays],
            [torch.tensor(a, requires_grad=True) for a in arrays])


# -- grid_sample / affine_grid -------------------------------------------------------------------
GRID_CASES = [(mode, pad, ac, d) for mode, pad, ac in itertools.product(
    ("bilinear", "nearest", "bicubic"), ("zeros", "border", "reflection"), (False, True))
    for d in ((2, 3) if mode != "bicubic" else (2,))]


@pytest.mark.parametrize("mode,pad,ac,d", GRID_CASES)
def test_grid_sample_matches_torch(torch, mode, pad, ac, d):
    x = _rand((2, 2) + (3, 4, 5)[-d:])
    g = _rand((2,) + (3, 2, 4)[-d:] + (d,), 1, -1.6, 1.6)  # points outside too
    mine, theirs = _both(torch, x, g)
    kw = {"mode": mode, "padding_mode": pad, "align_corners": ac}
    out, tout = F.grid_sample(*mine, **kw), torch.nn.functional.grid_sample(*theirs, **kw)
    _close(out, tout)
    cot = _rand(tuple(tout.shape), 2)
    (out * jg.tensor(cot)).sum().backward()
    (tout * torch.tensor(cot)).sum().backward()
    _close(mine[0].grad, theirs[0].grad)
    if mode == "nearest":  # no gradient reaches the grid: torch's is zeros, jitgrad's None
        assert mine[1].grad is None and not theirs[1].grad.numpy().any()
    else:
        _close(mine[1].grad, theirs[1].grad, 1e-9)


def test_grid_sample_float32_compiled_and_affine_grid(torch):
    theta = _rand((2, 2, 3), 3)
    grid = F.affine_grid(jg.tensor(theta), (2, 1, 3, 4), align_corners=False)
    _close(grid, torch.nn.functional.affine_grid(torch.tensor(theta), (2, 1, 3, 4),
                                                 align_corners=False))
    theta3 = _rand((1, 3, 4), 4).astype(np.float32)
    g3 = F.affine_grid(jg.tensor(theta3), (1, 2, 2, 3, 1), align_corners=True)
    assert g3.dtype == jg.float32
    _close(g3, torch.nn.functional.affine_grid(torch.tensor(theta3), (1, 2, 2, 3, 1),
                                               align_corners=True), 1e-6)
    x = _rand((1, 2, 4, 4), 5).astype(np.float32)

    def f(x, theta):
        g = F.affine_grid(theta, (1, 2, 3, 3), align_corners=False)
        return (F.grid_sample(x, g, padding_mode="reflection", align_corners=False) ** 2).sum()
    th = (np.eye(2, 3) * 1.3 + 0.1).astype(np.float32)[None]
    gx, gt = jg.grad(f, argnums=(0, 1), target="reference")(jg.tensor(x), jg.tensor(th))
    tx, tt = torch.tensor(x, requires_grad=True), torch.tensor(th, requires_grad=True)
    tg = torch.nn.functional.affine_grid(tt, (1, 2, 3, 3), align_corners=False)
    (torch.nn.functional.grid_sample(tx, tg, padding_mode="reflection", align_corners=False)
     ** 2).sum().backward()
    assert gx.dtype == jg.float32 and gt.dtype == jg.float32
    np.testing.assert_allclose(gx.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gt.numpy(), tt.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_grid_sample_errors():
    x, g = jg.zeros(1, 1, 3, 3), jg.zeros(1, 2, 2, 2)
    with pytest.raises(ValueError, match="expected mode to be 'bilinear', 'nearest' or"):
        F.grid_sample(x, g, mode="area", align_corners=False)
    with pytest.raises(ValueError, match="expected padding_mode to be 'zeros'"):
        F.grid_sample(x, g, padding_mode="wrap", align_corners=False)
    with pytest.raises(RuntimeError, match="same batch size"):
        F.grid_sample(x, jg.zeros(2, 2, 2, 2), align_corners=False)
    with pytest.raises(RuntimeError, match="size 2 in last dimension"):
        F.grid_sample(x, jg.zeros(1, 2, 2, 3), align_corners=False)
    with pytest.raises(RuntimeError, match="same dtype"):
        F.grid_sample(x, g.double(), align_corners=False)
    with pytest.raises(RuntimeError, match="bicubic interpolation only supports 4D"):
        F.grid_sample(jg.zeros(1, 1, 2, 2, 2), jg.zeros(1, 1, 1, 1, 3), mode="bicubic",
                      align_corners=False)
    with pytest.raises(ValueError, match=r"affine matrices of shape Nx2x3"):
        F.affine_grid(jg.zeros(1, 3, 3), (1, 1, 2, 2), align_corners=False)
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        F.grid_sample(x, g)


# -- multi_head_attention_forward ----------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Support for mismatched")
@pytest.mark.parametrize("batched,sep,mask,bkv,zero,kpm,nw", [
    (True, False, None, False, False, False, True),
    (True, False, "2d", True, False, False, True),
    (True, True, "3d", False, True, True, True),
    (False, False, "bool", True, True, True, False),
    (False, True, "3d", False, False, False, True),
    (True, False, "2d", True, True, True, False),
])
def test_multi_head_attention_forward_matches_torch(torch, batched, sep, mask, bkv, zero, kpm,
                                                    nw):
    e, h, length, src, n = 4, 2, 3, 5, 2
    rng = np.random.default_rng(0)
    sh = (lambda s: (s, n, e)) if batched else (lambda s: (s, e))
    shapes = [sh(length), sh(src), sh(src), (3 * e, e), (3 * e,), (e, e), (e,), (e,), (e,),
              (e, e), (e, e), (e, e)]
    mine, theirs = _both(torch, *[rng.standard_normal(s) for s in shapes])
    masks = {"2d": rng.standard_normal((length, src)),
             "3d": rng.standard_normal(((n if batched else 1) * h, length, src)),
             "bool": np.tril(np.ones((length, src), bool), 1) == 0}
    km = rng.random((n, src) if batched else (src,)) > 0.6
    km[..., 0] = False

    def call(mod, t, conv):
        return mod.multi_head_attention_forward(
            t[0], t[1], t[2], e, h, None if sep else t[3], t[4], t[7] if bkv else None,
            t[8] if bkv else None, zero, 0.0, t[5], t[6], training=False,
            key_padding_mask=conv(km) if kpm else None, need_weights=nw,
            attn_mask=None if mask is None else conv(masks[mask]),
            use_separate_proj_weight=sep, q_proj_weight=t[9] if sep else None,
            k_proj_weight=t[10] if sep else None, v_proj_weight=t[11] if sep else None)
    out, w = call(F, mine, jg.tensor)
    tout, tw = call(torch.nn.functional, theirs, torch.tensor)
    _close(out, tout)
    assert (w is None) == (tw is None)
    loss, tloss = (out ** 2).sum(), (tout ** 2).sum()
    if w is not None:
        _close(w, tw)
        loss, tloss = loss + (w ** 2).sum(), tloss + (tw ** 2).sum()
    loss.backward()
    tloss.backward()
    for a, b in zip(mine, theirs):
        if b.grad is None:
            assert a.grad is None or not a.grad.numpy().any()
        else:
            _close(a.grad, b.grad)


def test_multihead_attention_bias_kv_zero_attn_and_compiled(torch):
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(4, 2, add_bias_kv=True, add_zero_attn=True).double().eval()
    jm = jg.nn.MultiheadAttention(4, 2, add_bias_kv=True, add_zero_attn=True).double().eval()
    assert [k for k, _ in jm.named_parameters()] == [k for k, _ in tm.named_parameters()]
    assert tuple(jm.bias_k.shape) == (1, 1, 4)
    jm.load_state_dict({k: jg.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = _rand((3, 2, 4), 7)
    out, w = jm(*(jg.tensor(x),) * 3)
    tout, tw = tm(*(torch.tensor(x),) * 3)
    _close(out, tout)
    _close(w, tw)

    def f(q):
        return F.multi_head_attention_forward(q, q, q, 4, 2, jm.in_proj_weight,
                                              jm.in_proj_bias, jm.bias_k, jm.bias_v, True, 0.0,
                                              jm.out_proj.weight, jm.out_proj.bias,
                                              training=False)[0].sum()
    got = jg.grad(f, target="reference")(jg.tensor(x))
    q = torch.tensor(x, requires_grad=True)
    tm(q, q, q)[0].sum().backward()
    _close(got, q.grad)


def test_multi_head_attention_forward_errors():
    q = jg.zeros(3, 2, 4)
    args = (4, 2, jg.zeros(12, 4), None, None, None, False, 0.0, jg.zeros(4, 4), None)
    with pytest.raises(RuntimeError, match="expected `key` and `value` to be 3-D but found 2-D"):
        F.multi_head_attention_forward(q, jg.zeros(3, 4), q, *args)
    with pytest.raises(RuntimeError, match="was expecting embedding dimension of 6, but got 4"):
        F.multi_head_attention_forward(q, q, q, 6, *args[1:])
    with pytest.raises(ValueError, match="q_proj_weight is None"):
        F.multi_head_attention_forward(q, q, q, *args, use_separate_proj_weight=True)
    with pytest.raises(RuntimeError, match=r"2D attn_mask is \[2, 3\], but should be \(3, 3\)"):
        F.multi_head_attention_forward(q, q, q, *args, attn_mask=jg.zeros(2, 3))


# -- ldl_factor / ldl_solve ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ldl_matches_torch(torch, dtype):
    a = _rand((2, 5, 5), 8)
    a = (a + a.swapaxes(-1, -2)).astype(dtype)
    a[0, 0, 0], a[1, 1, 1] = 1e-3, 0.0  # 2x2 pivots
    b = _rand((5, 3), 9).astype(dtype)
    LD, piv, info = jg.linalg.ldl_factor_ex(jg.tensor(a))
    tLD, tpiv, tinfo = torch.linalg.ldl_factor_ex(torch.tensor(a))
    tol = 1e-5 if dtype == "float32" else 1e-12
    _close(LD, tLD, tol)
    np.testing.assert_array_equal(piv.numpy(), tpiv.numpy())
    assert piv.dtype == jg.int32 and info.dtype == jg.int32 and LD.dtype.name == dtype
    np.testing.assert_array_equal(info.numpy(), tinfo.numpy())
    x = jg.linalg.ldl_solve(LD, piv, jg.tensor(b))
    _close(x, torch.linalg.ldl_solve(tLD, tpiv, torch.tensor(b)), 10 * tol)
    np.testing.assert_allclose((jg.tensor(a) @ x).numpy(), np.broadcast_to(b, (2, 5, 3)),
                               atol=100 * tol)


def test_ldl_errors_no_gradient_and_compiled():
    with pytest.raises(jg.linalg.LinAlgError, match=r"D\[2,2\] is exactly zero"):
        jg.linalg.ldl_factor(jg.tensor([[1.0, 0.0], [0.0, 0.0]]))
    assert int(jg.linalg.ldl_factor_ex(jg.tensor([[1.0, 0.0], [0.0, 0.0]])).info) == 2
    with pytest.raises(RuntimeError, match="square matrices"):
        jg.linalg.ldl_factor(jg.zeros(2, 3))
    LD, piv = jg.linalg.ldl_factor(jg.eye(3))
    with pytest.raises(RuntimeError, match="Incompatible matrix sizes"):
        jg.linalg.ldl_solve(LD, piv, jg.ones(4, 1))
    with pytest.raises(RuntimeError, match="pivots with shape \\[2\\]"):
        jg.linalg.ldl_solve(LD, piv[:2], jg.ones(3, 1))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        jg.linalg.ldl_solve(LD, piv, jg.ones(3))
    a = jg.tensor([[2.0, 1.0], [1.0, 3.0]], requires_grad=True)
    with pytest.raises(RuntimeError, match="derivative for linalg.ldl_factor is not implemented"):
        jg.linalg.ldl_factor(a).LD.sum().backward()

    def solve(a, b):
        return jg.linalg.ldl_solve(*jg.linalg.ldl_factor(a), b)
    got = jg.jit(solve, target="reference")(a.detach(), jg.tensor([[3.0], [4.0]]))
    np.testing.assert_allclose(got.numpy(), [[1.0], [1.0]], rtol=1e-6)
