"""Datasets and batch loaders, as ``torch.utils.data``: ``Dataset``, ``TensorDataset``,
``Subset``, ``random_split`` and ``DataLoader`` (batches, shuffling with a seeded ``Generator``,
``drop_last``, the default collate of tensors, numbers, NumPy arrays, tuples and dicts).

Loading runs in the calling process: ``num_workers`` is accepted and does not start workers.

>>> import jitgrad
>>> from jitgrad.utils.data import DataLoader, TensorDataset
>>> ds = TensorDataset(jitgrad.arange(10.0).reshape(5, 2), jitgrad.arange(5))
>>> [tuple(y.tolist()) for _, y in DataLoader(ds, batch_size=2)]
[(0, 1), (2, 3), (4,)]
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from jitgrad.tensor import Tensor


class Dataset:
    """A map-style dataset: ``len(ds)`` and ``ds[i]``."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are ``(t[i] for t in tensors)``; every tensor has the same first dimension.

    >>> import jitgrad
    >>> TensorDataset(jitgrad.zeros(3, 2), jitgrad.ones(3))[1]
    (tensor([0., 0.]), tensor(1.))
    """

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {i} is a {type(t).__name__}, not a "
                                "Tensor")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is 0-d; each sample is a row")
        n = tensors[0].shape[0]
        if any(t.shape[0] != n for t in tensors):
            raise ValueError("Size mismatch between tensors: TensorDataset needs the same first "
                             f"dimension, got {[t.shape[0] for t in tensors]}")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``."""

    def __init__(self, dataset, indices) -> None:
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __getitem__(self, index):
        if isinstance(index, list):
            return [self.dataset[self.indices[i]] for i in index]
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """The samples of several datasets, one after the other."""

    def __init__(self, datasets) -> None:
        self.datasets = list(datasets)
        self.cumulative_sizes = list(np.cumsum([len(d) for d in self.datasets]))

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1]) if self.cumulative_sizes else 0

    def __getitem__(self, index: int):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self)}")
        k = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        start = int(self.cumulative_sizes[k - 1]) if k else 0
        return self.datasets[k][index - start]


def random_split(dataset, lengths, generator=None) -> list:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths (or
    fractions summing to 1, the remainder spread from the first), as torch does.

    >>> import jitgrad
    >>> a, b = random_split(range(10), [0.7, 0.3], generator=jitgrad.Generator().manual_seed(0))
    >>> len(a), len(b), sorted(list(a) + list(b)) == list(range(10))
    (7, 3, True)
    """
    from jitgrad.factories import randperm
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1 and any(
            isinstance(x, float) for x in lengths):
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(f"random_split: the lengths sum to {sum(lengths)}, but the dataset has "
                         f"{n} samples")
    order = randperm(n, generator=generator).tolist()
    out, start = [], 0
    for k in lengths:
        out.append(Subset(dataset, order[start:start + k]))
        start += k
    return out


def default_collate(batch):
    """Samples to a batch: tensors (and NumPy arrays, numbers) stacked along a new first dim,
    tuples and lists transposed and collated element-wise, dicts collated per key, strings kept
    as lists."""
    from jitgrad import tensor as make_tensor
    from jitgrad.ops import stack
    first = batch[0]
    if isinstance(first, Tensor):
        return stack(list(batch), 0)
    if isinstance(first, np.ndarray):
        return stack([make_tensor(np.asarray(b)) for b in batch], 0)
    if isinstance(first, (bool, np.bool_)):
        return make_tensor([bool(b) for b in batch])
    if isinstance(first, numbers.Integral):
        return make_tensor([int(b) for b in batch])
    if isinstance(first, numbers.Real):
        from jitgrad import float64
        return make_tensor([float(b) for b in batch], dtype=float64)
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, dict):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):  # a namedtuple
        return type(first)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(first, (tuple, list)):
        if any(len(b) != len(first) for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(s)) for s in zip(*batch)]
    raise TypeError(f"default_collate: batch must contain tensors, NumPy arrays, numbers, dicts "
                    f"or lists; found {type(first).__name__}")


class DataLoader:
    """Batches of ``dataset``, in order or shuffled (``generator`` seeds the order).

    >>> import jitgrad
    >>> ds = TensorDataset(jitgrad.arange(6.0))
    >>> len(DataLoader(ds, batch_size=4)), len(DataLoader(ds, batch_size=4, drop_last=True))
    (2, 1)
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool = False,
                 sampler=None, batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn=None, generator=None, prefetch_factor=None,
                 persistent_workers: bool = False) -> None:
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                             "shuffle, sampler, and drop_last")
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative")
        self.dataset = dataset
        self.batch_size = None if batch_sampler is not None else batch_size
        self.shuffle = shuffle
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.generator = generator

    def _indices(self) -> list:
        if self.sampler is not None:
            return list(self.sampler)
        n = len(self.dataset)
        if self.shuffle:
            from jitgrad.factories import randperm
            return randperm(n, generator=self.generator).tolist()
        return list(range(n))

    def _batches(self):
        if self.batch_sampler is not None:
            yield from (list(b) for b in self.batch_sampler)
            return
        idx = self._indices()
        bs = self.batch_size
        for start in range(0, len(idx), bs):
            chunk = idx[start:start + bs]
            if len(chunk) < bs and self.drop_last:
                return
            yield chunk

    def __iter__(self):
        ds = self.dataset
        if self.batch_size is None and self.batch_sampler is None:
            for i in self._indices():
                yield ds[i] if self.collate_fn is None else self.collate_fn(ds[i])
            return
        for chunk in self._batches():
            if self.collate_fn is None and type(ds) is TensorDataset:
                # One gather per tensor, not a stack of rows: the same batch, much sooner.
                from jitgrad import tensor as make_tensor
                sel = make_tensor(chunk)
                yield [t[sel] for t in ds.tensors]
                continue
            samples = [ds[i] for i in chunk]
            yield (self.collate_fn or default_collate)(samples)

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
