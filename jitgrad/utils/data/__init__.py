"""Datasets and batch loaders, as ``torch.utils.data``: ``Dataset``, ``TensorDataset``,
``Subset``, ``random_split``, the samplers and ``DataLoader`` (batches, shuffling with a
seeded ``Generator``, ``drop_last``, the default collate of tensors, numbers, NumPy arrays,
tuples and dicts). The submodules ``dataset``, ``sampler`` and ``dataloader`` hold them under
the import paths torch uses.

Loading runs in the calling process: ``num_workers`` is accepted and does not start workers.

>>> import jitgrad
>>> from jitgrad.utils.data import DataLoader, TensorDataset
>>> ds = TensorDataset(jitgrad.arange(10.0).reshape(5, 2), jitgrad.arange(5))
>>> [tuple(y.tolist()) for _, y in DataLoader(ds, batch_size=2)]
[(0, 1), (2, 3), (4,)]
"""

from jitgrad.utils.data.dataset import (  # noqa: F401
    ConcatDataset, Dataset, IterableDataset, Subset, TensorDataset, random_split,
)
from jitgrad.utils.data.sampler import (  # noqa: F401
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler,
)
from jitgrad.utils.data.dataloader import (  # noqa: F401
    DataLoader, default_collate, get_worker_info,
)
