"""``embedding_bag`` and ``EmbeddingBag``: sums, means or maxima of bags of embedding rows
without the (bags, length, dim) intermediate, as torch's.

A composite: each index's row is gathered, its bag number found from ``offsets`` by
``searchsorted`` (so offsets are data, not constants of a trace), and the rows reduced into
their bags with ``index_add`` or ``scatter_reduce``. Padding entries, and entries past the last
offset with ``include_last_offset``, go to one extra bag that is dropped; an empty bag is 0.

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> weight = jitgrad.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
>>> F.embedding_bag(jitgrad.tensor([0, 1, 2]), weight, jitgrad.tensor([0, 2]), mode="sum")
tensor([[1., 1.],
        [2., 2.]])
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes, factories, ops
from jitgrad.autograd import grad_mode
from jitgrad.nn import init
from jitgrad.nn.module import Module
from jitgrad.nn.parameter import Parameter
from jitgrad.ops.stats import searchsorted
from jitgrad.tensor import Tensor

_MODES = ("sum", "mean", "max")


def _int_tensor(x, name: str):
    if not isinstance(x, Tensor):
        raise TypeError(f"embedding_bag(): argument '{name}' must be a Tensor, not "
                        f"{type(x).__name__}")
    if x.dtype not in (dtypes.int32, dtypes.int64):
        raise RuntimeError(f"embedding_bag: expected {name} to be an int32 or int64 tensor, "
                           f"got {x.dtype.name}")
    return x.to(dtypes.int64)


def _check_values(idx, offsets, n: int, num: int) -> None:
    """torch's checks of the indices and offsets, on their values where they are known."""
    iv = idx._value
    if iv is not None and iv.size and (iv.min() < 0 or iv.max() >= num):
        k = int(np.flatnonzero((iv < 0) | (iv >= num))[0])
        raise RuntimeError(f"embedding_bag: Index {k} of input takes value {int(iv[k])} which "
                           f"is not in the valid range [0, {num})")
    ov = None if offsets is None else offsets._value
    if ov is None or not ov.size:
        return
    if ov[0] != 0:
        raise RuntimeError(f"embedding_bag: offsets[0] has to be 0, i.e., the first sequence "
                           f"in the mini-batch has to start from position 0. However, got "
                           f"{int(ov[0])}")
    if ov[-1] > n:
        raise RuntimeError(f"embedding_bag: offsets[-1] can not be greater than input's length "
                           f"{n} but got offsets[-1] of {int(ov[-1])}")
    if np.any(np.diff(ov) < 0):
        raise RuntimeError("embedding_bag: offsets must be non-decreasing, got "
                           f"{ov.tolist()}")


def _renorm_(weight, idx, max_norm: float, norm_type: float) -> None:
    """torch's ``max_norm``: the rows ``idx`` reaches whose norm passes ``max_norm`` are scaled
    down to it, in place (under no_grad, as torch's ``embedding_renorm_``)."""
    from jitgrad.ops.sorting import unique
    rows = unique(idx.detach())
    with grad_mode.no_grad():
        sel = weight[rows]
        norms = sel.norm(p=norm_type, dim=1, keepdim=True)
        scale = ops.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight[rows] = sel * scale


def embedding_bag(input, weight, offsets=None, max_norm=None,  # noqa: A002
                  norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                  mode: str = "mean", sparse: bool = False, per_sample_weights=None,
                  include_last_offset: bool = False, padding_idx=None):
    """The sum, mean or max of each bag of rows of ``weight``: bags are the rows of a 2-D
    ``input``, or the runs of a 1-D ``input`` starting at ``offsets`` (with
    ``include_last_offset``, its last element ends the last bag). ``per_sample_weights``
    scales each row (``mode="sum"`` only); entries equal to ``padding_idx`` are left out.

    >>> import jitgrad
    >>> import jitgrad.nn.functional as F
    >>> weight = jitgrad.tensor([[1.0, 4.0], [3.0, 2.0]])
    >>> F.embedding_bag(jitgrad.tensor([[0, 1]]), weight, mode="max")
    tensor([[3., 4.]])
    """
    if mode not in _MODES:
        raise ValueError("mode has to be one of sum, mean or max")
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ValueError(f"embedding_bag: weight has to be a 2-D Tensor, got "
                         f"{tuple(weight.shape) if isinstance(weight, Tensor) else weight!r}")
    if sparse:
        raise NotImplementedError("embedding_bag(sparse=True): jitgrad has no sparse "
                                  "gradients; use sparse=False (the gradient is dense)")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. "
                                  f"per_sample_weights is only supported for mode='sum' (got "
                                  f"mode='{mode}')")
    if scale_grad_by_freq and mode == "max":
        raise ValueError("max mode does not support scaling the gradient by the frequency")
    idx = _int_tensor(input, "input")
    num, dim = weight.shape
    if idx.ndim == 2:
        _check_values(idx, None, 0, num)
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated "
                             "is a mini-batch of fixed length sequences. However, found "
                             f"offsets of type {type(offsets).__name__}")
        bags, length = idx.shape
        bag = ops.arange(bags * length, dtype=dtypes.int64) // max(length, 1)
        idx = idx.reshape(-1)
        if per_sample_weights is not None:
            per_sample_weights = per_sample_weights.reshape(-1)
        valid = None
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        offsets = _int_tensor(offsets, "offsets")
        if offsets.ndim != 1:
            raise ValueError(f"offsets has to be a 1D Tensor, got shape {tuple(offsets.shape)}")
        _check_values(idx, offsets, idx.shape[0], num)
        starts = offsets[:-1] if include_last_offset else offsets
        bags = starts.shape[0]
        pos = ops.arange(idx.shape[0], dtype=dtypes.int64)
        bag = searchsorted(starts, pos, right=True) - 1
        valid = pos < offsets[-1] if include_last_offset and offsets.shape[0] else None
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension "
                         f"{idx.ndim}")
    if per_sample_weights is not None and tuple(per_sample_weights.shape) != tuple(idx.shape):
        raise ValueError(f"embedding_bag: per_sample_weights of shape "
                         f"{tuple(per_sample_weights.shape)} must have the shape of input "
                         f"{tuple(input.shape)}")
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ValueError(f"padding_idx must be within the number of embeddings [-{num}, "
                             f"{num}), got {padding_idx}")
        padding_idx = padding_idx % num
        keep = idx != padding_idx
        valid = keep if valid is None else valid & keep
    if valid is not None:  # the entries left out go to bag number `bags`, dropped at the end
        bag = ops.where(valid, bag, bags)
    if max_norm is not None:
        _renorm_(weight, idx, float(max_norm), float(norm_type))

    rows = weight[idx]
    if scale_grad_by_freq:  # each row's gradient divided by its index's count in the batch
        ones = ops.ones_like(idx, dtype=rows.dtype)
        counts = factories.zeros(num, dtype=rows.dtype).index_add(0, idx, ones)
        s = (1.0 / counts[idx]).unsqueeze(1)
        rows = rows * s + (rows - rows * s).detach()
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.unsqueeze(1)
    if mode == "max":
        target = bag.unsqueeze(1).expand(idx.shape[0], dim)
        out = factories.zeros(bags + 1, dim, dtype=weight.dtype).scatter_reduce(
            0, target, rows, "amax", include_self=False)
        return out[:bags]
    out = factories.zeros(bags + 1, dim, dtype=weight.dtype).index_add(0, bag, rows)[:bags]
    if mode == "mean":
        ones = ops.ones_like(bag, dtype=weight.dtype)
        count = factories.zeros(bags + 1, dtype=weight.dtype).index_add(0, bag, ones)[:bags]
        out = out / ops.clamp(count, min=1.0).unsqueeze(1)
    return out


class EmbeddingBag(Module):
    """A table of ``num_embeddings`` rows of size ``embedding_dim`` (drawn from N(0, 1), the
    ``padding_idx`` row zero), reduced per bag by ``embedding_bag``.

    >>> import jitgrad
    >>> bag = jitgrad.nn.EmbeddingBag(10, 3, mode="sum")
    >>> bag
    EmbeddingBag(10, 3, mode='sum')
    >>> bag(jitgrad.tensor([1, 2, 4, 5]), jitgrad.tensor([0, 2])).shape
    jitgrad.Size([2, 3])
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm=None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                 sparse: bool = False, _weight=None, include_last_offset: bool = False,
                 padding_idx=None, device=None, dtype=None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.mode, self.sparse = scale_grad_by_freq, mode, sparse
        self.include_last_offset = include_last_offset
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise AssertionError("padding_idx must be within num_embeddings")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        if _weight is None:
            self.weight = Parameter(factories.empty(num_embeddings, embedding_dim, dtype=dtype))
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise AssertionError("Shape of weight does not match num_embeddings and "
                                     "embedding_dim")
            self.weight = Parameter(_weight)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with grad_mode.no_grad():
                self.weight[self.padding_idx] = 0.0

    def forward(self, input, offsets=None, per_sample_weights=None):  # noqa: A002
        return embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                             self.scale_grad_by_freq, self.mode, self.sparse,
                             per_sample_weights, self.include_last_offset, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, max_norm=None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        mode: str = "mean", sparse: bool = False,
                        include_last_offset: bool = False, padding_idx=None):
        """An ``EmbeddingBag`` whose table is ``embeddings`` (2-D), frozen unless told."""
        if embeddings.ndim != 2:
            raise AssertionError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        bag = cls(rows, cols, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                  embeddings, include_last_offset, padding_idx)
        bag.weight.requires_grad = not freeze
        return bag
