"""jitgrad.utils.data against torch.utils.data: the same batches, lengths, collation and
errors."""

import numpy as np
import pytest

import jitgrad as jg
from jitgrad.utils.data import (ConcatDataset, DataLoader, Dataset, Subset, TensorDataset,
                                default_collate, random_split)


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((10, 3)), rng.integers(0, 4, 10)


@pytest.mark.parametrize("bs,drop", [(1, False), (3, False), (3, True), (10, False), (16, True)])
def test_batches_in_order_equal_torch(bs, drop):
    torch = pytest.importorskip("torch")
    x, y = _data()
    ours = DataLoader(TensorDataset(jg.tensor(x), jg.tensor(y)), batch_size=bs, drop_last=drop)
    theirs = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(
        torch.tensor(x), torch.tensor(y)), batch_size=bs, drop_last=drop)
    assert len(ours) == len(theirs)
    got, want = list(ours), list(theirs)
    assert len(got) == len(want)
    for (a, b), (c, d) in zip(got, want):
        np.testing.assert_array_equal(a.numpy(), c.numpy())
        np.testing.assert_array_equal(b.numpy(), d.numpy())
        assert a.dtype is jg.float64 and b.dtype is jg.int64


class Pairs(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"x": np.full(2, float(i)), "n": i, "f": i * 0.5, "name": f"s{i}"}, (i, i > 2)


def test_default_collate_of_dicts_tuples_numbers_and_strings_as_torch():
    torch = pytest.importorskip("torch")
    (d, (n, b)) = next(iter(DataLoader(Pairs(), batch_size=3)))
    td, (tn, tb) = next(iter(torch.utils.data.DataLoader(_TorchPairs(), batch_size=3)))
    np.testing.assert_array_equal(d["x"].numpy(), td["x"].numpy())
    assert d["n"].tolist() == td["n"].tolist() and d["n"].dtype is jg.int64
    assert d["f"].tolist() == td["f"].tolist() and d["f"].dtype is jg.float64
    assert td["f"].dtype == torch.float64
    assert d["name"] == td["name"] == ["s0", "s1", "s2"]
    assert n.tolist() == tn.tolist() and b.tolist() == tb.tolist() and b.dtype is jg.bool


class _TorchPairs:
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return Pairs()[i]


def test_shuffle_is_a_permutation_and_a_seeded_generator_repeats_it():
    x, y = _data()
    ds = TensorDataset(jg.tensor(x), jg.tensor(y))

    def order(seed):
        g = jg.Generator().manual_seed(seed)
        return [v for _, yb in DataLoader(ds, batch_size=4, shuffle=True, generator=g)
                for v in yb.tolist()]
    a, b, c = order(1), order(1), order(2)
    assert sorted(a) == sorted(y.tolist()) and a == b and a != c


def test_batch_size_none_sampler_and_batch_sampler():
    ds = TensorDataset(jg.arange(6.0))
    assert [t.item() for (t,) in DataLoader(ds, batch_size=None)] == [0, 1, 2, 3, 4, 5]
    assert [b[0].tolist() for b in DataLoader(ds, batch_size=2, sampler=[5, 4, 3, 2])] == \
        [[5.0, 4.0], [3.0, 2.0]]
    bl = DataLoader(ds, batch_sampler=[[0, 2], [1]])
    assert len(bl) == 2 and [b[0].tolist() for b in bl] == [[0.0, 2.0], [1.0]]
    assert len(DataLoader(ds, batch_size=4, num_workers=2)) == 2  # workers: in-process


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(jg.zeros(3), jg.zeros(4))
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        DataLoader(TensorDataset(jg.zeros(3)), batch_size=0)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(TensorDataset(jg.zeros(3)), sampler=[0], shuffle=True)
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])
    with pytest.raises(ValueError, match="sum to 9"):
        random_split(range(10), [4, 5])


def test_random_split_subsets_and_concat():
    a, b = random_split(range(10), [7, 3], generator=jg.Generator().manual_seed(0))
    assert isinstance(a, Subset) and len(a) == 7 and len(b) == 3
    assert sorted(list(a) + list(b)) == list(range(10))
    p, q, r = random_split(range(10), [0.5, 0.3, 0.2])
    assert (len(p), len(q), len(r)) == (5, 3, 2)
    c = ConcatDataset([TensorDataset(jg.zeros(2)), TensorDataset(jg.ones(3))])
    assert len(c) == 5 and c[1][0].item() == 0 and c[2][0].item() == 1 and c[-1][0].item() == 1


def test_a_training_loop_over_a_loader_with_compiled_gradients():
    x, y = _data()
    model = jg.nn.Linear(3, 4).double()
    opt = jg.optim.SGD(model.parameters(), lr=0.1)
    loss = jg.grad(lambda m, xb, yb: jg.nn.functional.cross_entropy(m(xb), yb))
    first = None
    for _ in range(5):
        for xb, yb in DataLoader(TensorDataset(jg.tensor(x), jg.tensor(y)), batch_size=5):
            g = loss(model, xb, yb)
            for name, p in model.named_parameters():
                p.grad = g[name]
            opt.step()
        value = jg.nn.functional.cross_entropy(model(jg.tensor(x)), jg.tensor(y)).item()
        first = value if first is None else first
    assert value < first
