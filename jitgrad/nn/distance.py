"""Norms and distances as torch's ``normalize``, ``cosine_similarity``, ``pairwise_distance``,
``pdist`` and ``one_hot``, with ``CosineSimilarity``/``PairwiseDistance``.

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> F.normalize(jitgrad.tensor([[3.0, 4.0]])).tolist()
[[0.6000000238418579, 0.800000011920929]]
"""

from __future__ import annotations


import numpy as np

from jitgrad import factories, ops
from jitgrad.errors import ShapeError
from jitgrad.nn.module import Module


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None):  # noqa: A002
    """``input / max(||input||_p, eps)`` along ``dim``."""
    if out is not None:
        raise NotImplementedError("normalize: out= is not supported")
    return input / ops.clamp(ops.norm(input, p, dim, True), min=eps)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """The cosine of the angle between ``x1`` and ``x2`` along ``dim`` (broadcast), each
    norm clamped below at ``eps``.

    >>> import jitgrad
    >>> a, b = jitgrad.tensor([[1.0, 0.0]]), jitgrad.tensor([[1.0, 1.0]])
    >>> round(jitgrad.nn.functional.cosine_similarity(a, b).item(), 4)
    0.7071
    """
    shape = np.broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    if not -len(shape) <= dim < max(len(shape), 1):
        raise IndexError(f"cosine_similarity: dim {dim} is out of range for inputs of shapes "
                         f"{list(x1.shape)} and {list(x2.shape)}")
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    n1 = ops.clamp(ops.norm(x1, 2, dim, True), min=eps)
    n2 = ops.clamp(ops.norm(x2, 2, dim, True), min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
    """``||x1 - x2 + eps||_p`` over the last dim (broadcast).

    >>> import jitgrad
    >>> d = jitgrad.nn.functional.pairwise_distance(jitgrad.tensor([[3.0, 0.0]]),
    ...                                             jitgrad.tensor([[0.0, 4.0]]), eps=0.0)
    >>> d.tolist()
    [5.0]
    """
    nd = max(x1.ndim, x2.ndim)
    if nd == 0:
        return ops.norm((x1 - x2 + eps).reshape(1), p, 0, keepdim).reshape(())
    return ops.norm(x1 - x2 + eps, p, nd - 1, keepdim)


def pdist(input, p: float = 2.0):  # noqa: A002
    """The ``p``-distances between the rows of (N, M), the upper triangle row by row:
    N (N - 1) / 2 values.

    >>> import jitgrad
    >>> jitgrad.nn.functional.pdist(jitgrad.tensor([[0.0], [1.0], [3.0]])).tolist()
    [1.0, 3.0, 2.0]
    """
    if input.ndim != 2:
        raise ShapeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    i, j = np.triu_indices(input.shape[0], 1)
    diff = input[factories.tensor(i.astype(np.int64))] - input[factories.tensor(j.astype(np.int64))]
    return ops.norm(diff, p, 1)


def one_hot(tensor, num_classes: int = -1):
    """(*) integer class indices to (*, num_classes) int64 one-hot rows; ``num_classes=-1``
    reads the count from the largest index.

    >>> import jitgrad
    >>> jitgrad.nn.functional.one_hot(jitgrad.tensor([0, 2])).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    if tensor.dtype.is_floating_point or tensor.dtype.name == "bool":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    if num_classes < -1:
        raise RuntimeError("num_classes should be positive")
    if tensor.numel() == 0:
        if num_classes == -1:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        n = num_classes
    else:
        if int(tensor.min().item()) < 0:
            raise RuntimeError("Class values must be non-negative.")
        top = int(tensor.max().item())
        n = top + 1 if num_classes == -1 else num_classes
        if top >= n:
            raise RuntimeError("Class values must be smaller than num_classes.")
    return (tensor.unsqueeze(-1) == ops.arange(n)).long()


class CosineSimilarity(Module):
    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
