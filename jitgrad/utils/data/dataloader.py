"""Batch loading, as ``torch.utils.data.dataloader``: ``DataLoader`` (batches, shuffling
with a seeded ``Generator``, samplers and batch samplers, ``drop_last``, iterable datasets)
and ``default_collate`` (tensors, numbers, NumPy arrays, tuples and dicts).

Loading runs in the calling process: ``num_workers`` is accepted and does not start workers.

>>> import jitgrad
>>> from jitgrad.utils.data.dataloader import DataLoader
>>> from jitgrad.utils.data.dataset import TensorDataset
>>> [len(x) for x, in DataLoader(TensorDataset(jitgrad.zeros(5)), batch_size=2)]
[2, 2, 1]
"""

from __future__ import annotations

import numbers

import numpy as np

from jitgrad.tensor import Tensor
from jitgrad.utils.data.dataset import IterableDataset, TensorDataset
from jitgrad.utils.data.sampler import BatchSampler, RandomSampler, SequentialSampler


def default_collate(batch):
    """Samples to a batch: tensors (and NumPy arrays, numbers) stacked along a new first dim,
    tuples and lists transposed and collated element-wise, dicts collated per key, strings kept
    as lists.

    >>> default_collate([(1, 0.5), (2, 1.5)])
    [tensor([1, 2]), tensor([0.5000, 1.5000], dtype=jitgrad.float64)]
    """
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
        from jitgrad.dtypes import float64
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


def get_worker_info():
    """The loading worker this code runs in, as ``torch.utils.data.get_worker_info``: None,
    since loading runs in the calling process (an ``IterableDataset`` then yields all of its
    samples).

    >>> get_worker_info() is None
    True
    """
    return None


class DataLoader:
    """Batches of ``dataset``, in order or shuffled (``generator`` seeds the order).

    As torch, ``sampler`` defaults to a ``SequentialSampler`` (a ``RandomSampler`` with
    ``shuffle=True``) and ``batch_sampler`` to a ``BatchSampler`` over it.

    >>> import jitgrad
    >>> from jitgrad.utils.data.dataset import TensorDataset
    >>> ds = TensorDataset(jitgrad.arange(6.0))
    >>> len(DataLoader(ds, batch_size=4)), len(DataLoader(ds, batch_size=4, drop_last=True))
    (2, 1)
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler=None, batch_sampler=None, num_workers: int = 0, collate_fn=None,
                 pin_memory: bool = False, drop_last: bool = False, timeout: float = 0,
                 worker_init_fn=None, generator=None, prefetch_factor=None,
                 persistent_workers: bool = False) -> None:
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size <= 0):
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative")
        iterable = isinstance(dataset, IterableDataset)
        if iterable and (shuffle or sampler is not None or batch_sampler is not None):
            what = "shuffle" if shuffle else "sampler" if sampler is not None \
                else "batch_sampler"
            raise ValueError(f"DataLoader with IterableDataset: expected unspecified {what} "
                             f"option, but got {what}={shuffle if shuffle else 'a sampler'}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None and (batch_size != 1 or shuffle or sampler is not None
                                          or drop_last):
            raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                             "shuffle, sampler, and drop_last")
        if batch_sampler is not None:
            batch_size = None
        if sampler is None and not iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle \
                else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = bool(shuffle)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.generator = generator
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers

    def _stream_batches(self):
        """Batches of an IterableDataset: its samples in the order they come."""
        if self.batch_size is None:
            for s in self.dataset:
                yield s if self.collate_fn is None else self.collate_fn(s)
            return
        chunk: list = []
        for s in self.dataset:
            chunk.append(s)
            if len(chunk) == self.batch_size:
                yield (self.collate_fn or default_collate)(chunk)
                chunk = []
        if chunk and not self.drop_last:
            yield (self.collate_fn or default_collate)(chunk)

    def __iter__(self):
        ds = self.dataset
        if isinstance(ds, IterableDataset):
            yield from self._stream_batches()
            return
        if self.batch_sampler is None:
            for i in self.sampler:
                yield ds[i] if self.collate_fn is None else self.collate_fn(ds[i])
            return
        for chunk in self.batch_sampler:
            chunk = list(chunk)
            if self.collate_fn is None and type(ds) is TensorDataset:
                # One gather per tensor, not a stack of rows: the same batch, much sooner.
                from jitgrad import tensor as make_tensor
                sel = make_tensor(chunk)
                yield [t[sel] for t in ds.tensors]
                continue
            samples = [ds[i] for i in chunk]
            yield (self.collate_fn or default_collate)(samples)

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)  # a TypeError when the stream has no length, as in torch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)
