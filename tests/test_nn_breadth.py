"""nn.functional.bilinear, max_unpool1d/2d/3d and embedding_bag, and their Modules
(jitgrad/nn/bilinear.py, unpool.py, embedding_bag.py): values and gradients against torch
(skipped without it), reprs, compiled, errors."""

import numpy as np
import pytest

import jitgrad as jg
import jitgrad.nn.functional as F


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _close(got, want, tol=1e-10):
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=tol, atol=tol)


def _backward(torch, got, want, seed):
    """Backward through jitgrad's result and torch's with the same random cotangent."""
    cot = _rand(tuple(want.shape), seed)
    (got * jg.tensor(cot)).sum().backward()
    (want * torch.tensor(cot)).sum().backward()


def _both(torch, *arrays):
    """Each array as a jitgrad and a torch leaf that requires grad."""
    return ([jg.tensor(a, requires_grad=True) for a in arrays],
            [torch.tensor(a, requires_grad=True) for a in arrays])


# -- bilinear ------------------------------------------------------------------------------------
@pytest.mark.parametrize("lead", [(), (5,), (2, 3)])
def test_bilinear_matches_torch(torch, lead):
    arrays = [_rand(lead + (3,)), _rand(lead + (4,), 1), _rand((2, 3, 4), 2), _rand((2,), 3)]
    mine, theirs = _both(torch, *arrays)
    out, tout = F.bilinear(*mine), torch.nn.functional.bilinear(*theirs)
    _close(out, tout)
    _backward(torch, out, tout, 4)
    for m, t in zip(mine, theirs):
        _close(m.grad, t.grad)
    _close(F.bilinear(*mine[:3]), torch.nn.functional.bilinear(*theirs[:3]))


def test_bilinear_module_and_errors():
    jg.manual_seed(0)
    layer = jg.nn.Bilinear(3, 4, 2)
    assert repr(layer) == "Bilinear(in1_features=3, in2_features=4, out_features=2, bias=True)"
    assert tuple(layer.weight.shape) == (2, 3, 4) and float(layer.weight.abs().max()) <= 3 ** -.5
    assert layer(jg.ones(5, 3), jg.ones(5, 4)).shape == (5, 2)
    assert jg.nn.Bilinear(3, 4, 2, bias=False).bias is None
    with pytest.raises(RuntimeError, match="batch dimensions do not match at dim 0: got 5 and 6"):
        layer(jg.ones(5, 3), jg.ones(6, 4))
    with pytest.raises(RuntimeError, match="input2 size does not match weight size: got 3"):
        layer(jg.ones(5, 3), jg.ones(5, 3))


# -- max_unpool ----------------------------------------------------------------------------------
@pytest.mark.parametrize("d,shape,kw", [
    (1, (2, 3, 8), {"kernel_size": 2}),
    (2, (2, 2, 5, 6), {"kernel_size": 3, "stride": 2, "padding": 1}),
    (2, (3, 4, 4), {"kernel_size": 2}),  # unbatched
    (3, (1, 2, 4, 4, 6), {"kernel_size": (2, 2, 3)}),
])
def test_max_unpool_inverts_max_pool_as_torch(torch, d, shape, kw):
    x = _rand(shape)
    pool = getattr(torch.nn.functional, f"max_pool{d}d")
    tout, tidx = pool(torch.tensor(x), return_indices=True, **kw)
    mine, theirs = _both(torch, tout.detach().numpy())
    idx = jg.tensor(tidx.numpy())
    size = shape[-d:]
    got = getattr(F, f"max_unpool{d}d")(mine[0], idx, output_size=size, **kw)
    want = getattr(torch.nn.functional, f"max_unpool{d}d")(theirs[0], tidx, output_size=size,
                                                           **kw)
    _close(got, want, 0)
    _backward(torch, got, want, 1)
    _close(mine[0].grad, theirs[0].grad, 0)
    module = getattr(jg.nn, f"MaxUnpool{d}d")(**kw)
    assert repr(module) == repr(getattr(torch.nn, f"MaxUnpool{d}d")(**kw))
    _close(module(mine[0], idx, size), want, 0)


def test_max_unpool_errors():
    x, idx = jg.ones(1, 1, 2, 2), jg.tensor([[[[0, 1], [2, 30]]]])
    with pytest.raises(RuntimeError, match="invalid max index: 30"):
        F.max_unpool2d(x, idx, 2)
    with pytest.raises(ValueError, match="invalid output_size"):
        F.max_unpool2d(x, jg.zeros(1, 1, 2, 2, dtype=jg.int64), 2, output_size=(9, 9))
    with pytest.raises(RuntimeError, match="should be type int64"):
        F.max_unpool2d(x, idx.float(), 2)
    with pytest.raises(RuntimeError, match="3d or 4d Tensor"):
        F.max_unpool2d(jg.ones(2, 2), jg.zeros(2, 2, dtype=jg.int64), 2)


# -- embedding_bag -------------------------------------------------------------------------------
BAGS = [
    ({"mode": "sum"}, [4, 9, 3, 0, 3, 7], [0, 3, 3]),
    ({"mode": "mean"}, [4, 9, 3, 0, 3, 7], [0, 2]),
    ({"mode": "max"}, [4, 9, 9, 0, 3, 7], [0, 2, 2]),
    ({"mode": "sum", "per_sample_weights": True}, [1, 2, 3, 1], [0, 1]),
    ({"mode": "mean", "padding_idx": 3}, [3, 3, 1, 3, 2], [0, 2]),
    ({"mode": "max", "padding_idx": -1}, [9, 9, 1, 3, 2], [0, 2]),
    # (CSR offsets: torch's float64 path lets the last bag run past offsets[-1], its float32
    # path does not; jitgrad ends it there, as the documentation says)
    ({"mode": "mean", "include_last_offset": True}, [1, 2, 0, 5], [0, 2, 2, 4]),
    ({"mode": "mean"}, [[1, 2, 3], [4, 4, 0]], None),
]


@pytest.mark.parametrize("kw,idx,offsets", BAGS)
def test_embedding_bag_matches_torch(torch, kw, idx, offsets):
    kw = dict(kw)
    arrays = [_rand((10, 3))]
    if kw.pop("per_sample_weights", False):
        arrays.append(_rand(len(idx), 1))
    mine, theirs = _both(torch, *arrays)
    extra = {} if len(arrays) == 1 else {"per_sample_weights": None}
    args = [jg.tensor(idx), mine[0], None if offsets is None else jg.tensor(offsets)]
    targs = [torch.tensor(idx), theirs[0], None if offsets is None else torch.tensor(offsets)]
    if extra:
        kw_m, kw_t = dict(kw, per_sample_weights=mine[1]), dict(kw, per_sample_weights=theirs[1])
    else:
        kw_m, kw_t = kw, kw
    out = F.embedding_bag(*args, **kw_m)
    tout = torch.nn.functional.embedding_bag(*targs, **kw_t)
    _close(out, tout)
    _backward(torch, out, tout, 2)
    for m, t in zip(mine, theirs):
        _close(m.grad, t.grad)


def test_embedding_bag_scale_grad_by_freq(torch):
    """Each row's gradient divided by its index's count in the batch, as torch's embedding
    does (torch 2.13's CPU embedding_bag divides by the count of another index: [1, 2, 2, 3]
    gives row 3 the factor 1/2)."""
    idx, w = [1, 2, 2, 3, 1, 1], _rand((5, 2))
    mine, theirs = _both(torch, w)
    out = F.embedding_bag(jg.tensor(idx), mine[0], jg.tensor([0, 3]), mode="sum",
                          scale_grad_by_freq=True)
    rows = torch.nn.functional.embedding(torch.tensor(idx), theirs[0], scale_grad_by_freq=True)
    tout = torch.stack([rows[:3].sum(0), rows[3:].sum(0)])
    _close(out, tout)
    _backward(torch, out, tout, 1)
    _close(mine[0].grad, theirs[0].grad)


def test_embedding_bag_max_norm_renormalizes_as_torch(torch):
    w = _rand((6, 3)) * 3
    mine, theirs = jg.tensor(w), torch.tensor(w)
    out = F.embedding_bag(jg.tensor([0, 2, 5]), mine, jg.tensor([0, 1]), max_norm=1.5)
    tout = torch.nn.functional.embedding_bag(torch.tensor([0, 2, 5]), theirs,
                                             torch.tensor([0, 1]), max_norm=1.5)
    _close(out, tout, 1e-7)
    _close(mine, theirs, 1e-7)  # the rows it reached, scaled in place


def test_embedding_bag_module(torch):
    jg.manual_seed(0)
    bag = jg.nn.EmbeddingBag(10, 3, mode="max", padding_idx=1, max_norm=1.0)
    assert repr(bag) == repr(torch.nn.EmbeddingBag(10, 3, mode="max", padding_idx=1,
                                                   max_norm=1.0))
    assert repr(jg.nn.EmbeddingBag(10, 3)) == "EmbeddingBag(10, 3, mode='mean')"
    assert bag.weight[1].abs().sum().item() == 0
    pre = jg.nn.EmbeddingBag.from_pretrained(jg.ones(4, 2), mode="sum")
    assert not pre.weight.requires_grad
    assert pre(jg.tensor([[0, 1], [2, 3]])).tolist() == [[2.0, 2.0], [2.0, 2.0]]


def test_embedding_bag_compiled_reads_offsets_as_data():
    w = jg.tensor(_rand((5, 2)))

    def f(weight, idx, offsets):
        return F.embedding_bag(idx, weight, offsets, mode="mean")

    run = jg.jit(f, target="reference")
    idx = jg.tensor([0, 1, 2, 3, 4])
    for offsets in ([0, 2], [0, 4], [0, 0]):
        o = jg.tensor(offsets)
        _close(run(w, idx, o), f(w, idx, o), 0)
    g = jg.grad(lambda weight: f(weight, idx, jg.tensor([0, 3])).sum(), target="reference")(w)
    assert g.tolist() == [[1 / 3] * 2] * 3 + [[0.5] * 2] * 2


def test_embedding_bag_errors():
    w = jg.ones(3, 2)
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        F.embedding_bag(jg.tensor([1, 2]), w, jg.tensor([0]), per_sample_weights=jg.ones(2))
    with pytest.raises(ValueError, match="offsets has to be None"):
        F.embedding_bag(jg.tensor([[1, 2]]), w, jg.tensor([0]))
    with pytest.raises(ValueError, match="offsets has to be a 1D Tensor but got None"):
        F.embedding_bag(jg.tensor([1, 2]), w)
    with pytest.raises(RuntimeError, match=r"takes value 5 which is not in the valid range"):
        F.embedding_bag(jg.tensor([1, 5]), w, jg.tensor([0]))
    with pytest.raises(RuntimeError, match=r"offsets\[0\] has to be 0"):
        F.embedding_bag(jg.tensor([1, 2]), w, jg.tensor([1]))
    with pytest.raises(ValueError, match="mode has to be one of"):
        F.embedding_bag(jg.tensor([1, 2]), w, jg.tensor([0]), mode="min")
    with pytest.raises(ValueError, match="max mode does not support scaling"):
        F.embedding_bag(jg.tensor([1, 2]), w, jg.tensor([0]), mode="max",
                        scale_grad_by_freq=True)
    with pytest.raises(RuntimeError, match="int32 or int64"):
        F.embedding_bag(jg.tensor([1.0]), w, jg.tensor([0]))
