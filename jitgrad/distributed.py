"""Data-parallel training over MPI (mpi4py): gradient all-reduce, parameter broadcast, and a
sampler that shards a data set across ranks.

Every rank runs the same script (``mpirun -n 4 python train.py``), computes gradients on its shard
of each global batch, and averages them with :func:`all_reduce` before the optimizer step, so all
ranks keep identical parameters. With ``mpirun`` absent the script runs as one rank.

>>> import jitgrad
>>> import jitgrad.distributed as dist
>>> dist.init()            # doctest: +SKIP
>>> grads = {"w": jitgrad.ones(3)}
>>> dist.all_reduce(grads)["w"]  # doctest: +SKIP
tensor([1., 1., 1.])

Install with ``pip install "jitgrad[dist]"`` (mpi4py; it needs an MPI library such as OpenMPI).
"""

from __future__ import annotations

import sys
import traceback
from typing import Iterator

import numpy as np

from jitgrad.tensor import Tensor
from jitgrad.trace.pytree import flatten, unflatten

_OPS = ("mean", "sum", "max", "min")
_state: dict = {"comm": None}


def _mpi():
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError, OSError) as e:  # no mpi4py, or no MPI library for it
        raise ImportError(f"jitgrad.distributed needs mpi4py and an MPI library ({e}): "
                          "pip install 'jitgrad[dist]' and an MPI, e.g. Debian's openmpi-bin "
                          "libopenmpi-dev") from None
    return MPI


def init(comm=None, abort_on_exception: bool = True):
    """Join the MPI job (``COMM_WORLD`` unless ``comm`` is given) and return the communicator.

    With ``abort_on_exception`` an uncaught exception on any rank prints its traceback and aborts
    the whole job with a non-zero exit, instead of leaving the other ranks waiting forever in a
    collective call.
    """
    MPI = _mpi()
    _state["comm"] = MPI.COMM_WORLD if comm is None else comm
    if abort_on_exception and sys.excepthook is not _abort_hook:
        _state["prev_hook"] = sys.excepthook
        sys.excepthook = _abort_hook
    return _state["comm"]


def _abort_hook(etype, value, tb) -> None:
    comm = _state["comm"]
    sys.stderr.write(f"jitgrad.distributed: rank {comm.Get_rank()} raised; aborting the job\n")
    traceback.print_exception(etype, value, tb)
    sys.stderr.flush()
    comm.Abort(1)


def is_initialized() -> bool:
    return _state["comm"] is not None


def _comm():
    if _state["comm"] is None:
        raise RuntimeError("jitgrad.distributed is not initialized: call jitgrad.distributed.init() "
                           "first")
    return _state["comm"]


def rank() -> int:
    """This process's rank, 0 .. world_size() - 1."""
    return _comm().Get_rank()


def world_size() -> int:
    """The number of processes in the job."""
    return _comm().Get_size()


def barrier() -> None:
    _comm().Barrier()


def _leaf_array(leaf, where: str) -> np.ndarray:
    arr = leaf._value if isinstance(leaf, Tensor) else np.asarray(leaf)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"all_reduce: {where} has dtype {arr.dtype}; only numeric arrays can be "
                        "reduced")
    return arr


def _groups(arrays: list[np.ndarray]) -> dict[np.dtype, list[int]]:
    """Leaf indices per dtype, in order: one contiguous buffer (one MPI call) per dtype."""
    groups: dict[np.dtype, list[int]] = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.dtype, []).append(i)
    return groups


def _pack(arrays: list[np.ndarray], idx: list[int], dtype) -> np.ndarray:
    buf = np.empty(sum(arrays[i].size for i in idx), dtype=dtype)
    o = 0
    for i in idx:
        n = arrays[i].size
        buf[o:o + n] = arrays[i].reshape(-1)
        o += n
    return buf


def _views(buf: np.ndarray, arrays: list[np.ndarray], idx: list[int]) -> Iterator[tuple]:
    """``_pack`` undone: (leaf index, its part of ``buf`` shaped like the leaf)."""
    o = 0
    for i in idx:
        n = arrays[i].size
        yield i, buf[o:o + n].reshape(arrays[i].shape)
        o += n


def all_reduce(grads, op: str = "mean"):
    """Reduce a pytree of gradients over all ranks; returns the same structure, reduced.

    Leaves (Tensors or NumPy arrays) are packed into one contiguous buffer per dtype and reduced
    with one ``Allreduce`` each. ``op`` is ``"mean"`` (the data-parallel average), ``"sum"``,
    ``"max"`` or ``"min"``. ``None`` leaves (parameters without a gradient) stay ``None``.

    >>> import jitgrad.distributed as dist
    >>> dist.init()                                          # doctest: +SKIP
    >>> g = dist.all_reduce([jitgrad.full((2,), float(dist.rank()))])  # doctest: +SKIP
    """
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {_OPS}, got {op!r}")
    comm = _comm()
    MPI = _mpi()
    leaves, tree = flatten(grads, where="grads")
    arrays = [_leaf_array(x, f"gradient {i}") for i, x in enumerate(leaves)]
    out: list = [None] * len(arrays)
    size = comm.Get_size()
    mpi_op = {"mean": MPI.SUM, "sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]
    for dtype, idx in _groups(arrays).items():
        if op == "mean" and dtype.kind != "f":
            raise TypeError(f"all_reduce(op='mean') of {dtype} gradients; use op='sum'")
        buf = _pack(arrays, idx, dtype)
        comm.Allreduce(MPI.IN_PLACE, buf, op=mpi_op)
        if op == "mean" and size > 1:
            buf /= dtype.type(size)
        for i, v in _views(buf, arrays, idx):
            out[i] = v
    return unflatten(tree, [Tensor._wrap(a) for a in out])


def all_reduce_grads(module_or_params, op: str = "mean") -> None:
    """Average the eager ``.grad`` of a Module's (or an iterable's) parameters over all ranks, in
    place: call it between ``loss.backward()`` and ``optimizer.step()``."""
    params = _params(module_or_params)
    have = [p for p in params if p.grad is not None]
    reduced = all_reduce([p.grad for p in have], op=op)
    for p, g in zip(have, reduced):
        p.grad._value[...] = g._value


def _params(obj) -> list[Tensor]:
    from jitgrad.nn.module import Module
    if isinstance(obj, Module):
        return list(obj.parameters()) + [b for b in obj.buffers() if b is not None]
    if isinstance(obj, Tensor):
        return [obj]
    leaves, _ = flatten(obj, where="parameters")
    return leaves


def broadcast_parameters(module_or_pytree, root: int = 0) -> None:
    """Overwrite every rank's parameters (and a Module's buffers) with ``root``'s, in place; one
    ``Bcast`` per dtype. Call it once after building the model so all ranks start equal."""
    comm = _comm()
    if not 0 <= root < comm.Get_size():
        raise ValueError(f"broadcast_parameters: root {root} is not a rank of a job of "
                         f"{comm.Get_size()}")
    tensors = _params(module_or_pytree)
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"broadcast_parameters: leaf {i} is a {type(t).__name__}, not a Tensor "
                            "(it must be updated in place)")
    arrays = [t._value for t in tensors]
    for dtype, idx in _groups(arrays).items():
        buf = _pack(arrays, idx, dtype)
        comm.Bcast(buf, root=root)
        for i, v in _views(buf, arrays, idx):
            arrays[i][...] = v


class DistributedSampler:
    """Indices of this rank's shard of a data set of ``n`` items, reshuffled per epoch.

    All ranks draw the same permutation (from ``seed`` and the epoch set with ``set_epoch``) and
    rank ``r`` takes positions ``r, r + world, r + 2*world, ...``, so local batch ``i`` of every
    rank together make up global batch ``i`` of a one-process run with ``world`` times the batch.
    With ``drop_last=False`` the permutation is padded by wrapping around so every rank gets the
    same number of items; with ``drop_last=True`` the tail is dropped.

    >>> s = DistributedSampler(10, num_replicas=2, rank=1, seed=0)
    >>> s.set_epoch(3)
    >>> len(list(s)) == len(s) == 5
    True
    """

    def __init__(self, n: int, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        n = len(n) if hasattr(n, "__len__") else int(n)
        self.num_replicas = world_size() if num_replicas is None else int(num_replicas)
        self.rank = _comm().Get_rank() if rank is None else int(rank)
        if self.num_replicas < 1 or not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"DistributedSampler: rank {self.rank} is not in [0, "
                             f"{self.num_replicas})")
        if n < 1:
            raise ValueError(f"DistributedSampler: the data set is empty (n={n})")
        self.n, self.shuffle, self.seed, self.drop_last = n, shuffle, seed, drop_last
        self.epoch = 0
        if drop_last:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = -(-n // self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        if self.shuffle:
            perm = np.random.default_rng((self.seed, self.epoch)).permutation(self.n)
        else:
            perm = np.arange(self.n)
        if self.total_size > self.n:
            perm = np.resize(perm, self.total_size)  # wraps around: pads with the first items
        return perm[:self.total_size][self.rank::self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples
