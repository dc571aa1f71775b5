"""Tensor factories: ``tensor``, ``zeros``, ``ones``, ``arange``, ``randn`` and friends.

Inside a compiled function, a factory's result is a constant of the trace, except that a NumPy
array the function reaches through a global, a closure or an object stays a live input (its
current values are read at every call, as eager reads them). Random factories there draw from
the generator's counter-based stream (``ops/random.py``): fresh numbers at every call,
reproducible after ``manual_seed``.

>>> import jitgrad
>>> jitgrad.zeros(2, 3).shape
jitgrad.Size([2, 3])
>>> jitgrad.tensor([1, 2]).dtype
jitgrad.int64
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes
from jitgrad.devices import check_host
from jitgrad.errors import TraceError
from jitgrad.ops import _layout
from jitgrad.ops import memory_format as _formats
from jitgrad.ops.registry import live_array, trace_state
from jitgrad.tensor import Tensor, _to_array


def from_array(arr: np.ndarray, requires_grad: bool = False) -> Tensor:
    """Wrap a NumPy array (already of a supported dtype) as a tensor, or a trace constant."""
    builder = trace_state.builder
    if builder is not None:
        return builder.const(arr)
    t = Tensor._wrap(arr)
    if requires_grad:
        t.requires_grad = True
    return t


def tensor(data, dtype=None, requires_grad: bool = False, device=None) -> Tensor:
    """A new tensor holding a copy of ``data`` (float data becomes float32, as in torch).

    >>> import jitgrad
    >>> jitgrad.tensor(2.0, requires_grad=True)
    tensor(2., requires_grad=True)
    """
    if type(data) is float and dtype is None and device is None:
        # A Python float: what _to_array makes of it, without the general conversion's checks
        return from_array(np.array(data, dtype=dtypes.default_float.np), requires_grad)
    check_host(device)
    live = live_array(data)
    if live is not None:
        # A copy of a live array: a tracer of its own over the input (so in-place ops on it
        # rebind only it), converted as eager converts.
        dt = dtypes.from_numpy_dtype(data.dtype) if dtype is None else dtypes.as_dtype(dtype)
        out = live if live.dtype is dt else live.to(dt)
        return trace_state.builder.tracer(out._ir, out._value) if out is live else out
    arr = _to_array(data, None if dtype is None else dtypes.as_dtype(dtype))
    return from_array(arr, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    if isinstance(data, Tensor) and (dtype is None or data.dtype is dtypes.as_dtype(dtype)):
        return data
    return tensor(data, dtype=dtype, device=device)


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``arr`` (as torch.from_numpy)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"from_numpy(): expected np.ndarray, got {type(arr).__name__}")
    if arr.dtype not in dtypes._BY_NP:
        raise TypeError(f"from_numpy(): unsupported dtype {arr.dtype}; jitgrad supports "
                        f"{dtypes._SUPPORTED}")
    live = live_array(arr)
    return live if live is not None else from_array(arr)


def _shape(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"sizes must be non-negative integers, got {size!r}")
    return tuple(int(s) for s in size)


def _size_arg(shape: tuple, size) -> tuple:
    """The sizes given positionally (``zeros(2, 3)``, ``zeros((2, 3))``) or as ``size=``."""
    if size is None:
        return shape
    if shape:
        raise TypeError("give the sizes either positionally or as size=, not both")
    return (tuple(size),) if isinstance(size, (tuple, list)) else (size,)


def _filled(size, value, dtype, requires_grad, device) -> Tensor:
    check_host(device)
    dt = dtypes.as_dtype(dtype) if dtype is not None else None
    if dt is None:
        dt = dtypes.scalar_dtype(value) if not isinstance(value, float) else dtypes.default_float
    return from_array(np.full(_shape(size), value, dtype=dt.np), requires_grad)


def zeros(*shape, size=None, dtype=None, requires_grad: bool = False,
          device=None) -> Tensor:
    return _filled(_size_arg(shape, size), 0.0, dtype or dtypes.default_float, requires_grad, device)


def ones(*shape, size=None, dtype=None, requires_grad: bool = False,
         device=None) -> Tensor:
    return _filled(_size_arg(shape, size), 1.0, dtype or dtypes.default_float, requires_grad, device)


def empty(*shape, size=None, dtype=None, requires_grad: bool = False,
          device=None) -> Tensor:
    return zeros(*_size_arg(shape, size), dtype=dtype, requires_grad=requires_grad, device=device)


def full(size, fill_value, dtype=None, requires_grad: bool = False, device=None) -> Tensor:
    return _filled(tuple(size) if isinstance(size, (tuple, list)) else (size,), fill_value, dtype,
                   requires_grad, device)


def _like(x: Tensor, dtype):
    return tuple(x.shape), (dtypes.as_dtype(dtype) if dtype is not None else x.dtype)


def _laid_out_like(t: Tensor, x: Tensor, memory_format=None) -> Tensor:
    """``t`` (a new eager tensor) with ``x``'s layout, as torch's ``*_like`` make theirs
    (``preserve_format``, the default): ``zeros_like(x.t())`` is transposed too, so it cannot
    be viewed flat either; another ``memory_format`` lays it out as that format says."""
    fmt = _formats.check(memory_format, "like")
    if t._ir is not None:
        return t
    if fmt is not None and fmt is not _formats.preserve_format:
        t._value = _formats.laid_out(t._value, fmt)
        return t
    v = x._value
    if v is not None and not v.flags.c_contiguous:
        t._value = _layout.like_first(t._value, [v], {})
    return t


def zeros_like(x: Tensor, dtype=None, requires_grad: bool = False, device=None, *,
               memory_format=None) -> Tensor:
    shape, dt = _like(x, dtype)
    return _laid_out_like(_filled(shape, 0, dt, requires_grad, device), x, memory_format)


def ones_like(x: Tensor, dtype=None, requires_grad: bool = False, device=None, *,
              memory_format=None) -> Tensor:
    shape, dt = _like(x, dtype)
    return _laid_out_like(_filled(shape, 1, dt, requires_grad, device), x, memory_format)


def full_like(x: Tensor, fill_value, dtype=None, requires_grad: bool = False,
              device=None, *, memory_format=None) -> Tensor:
    shape, dt = _like(x, dtype)
    return _laid_out_like(_filled(shape, fill_value, dt, requires_grad, device), x,
                          memory_format)


def empty_like(x: Tensor, dtype=None, requires_grad: bool = False, device=None, *,
               memory_format=None) -> Tensor:
    return zeros_like(x, dtype, requires_grad, device, memory_format=memory_format)


def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False,
           device=None) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive); integers give int64, floats float32.

    >>> import jitgrad
    >>> jitgrad.arange(3)
    tensor([0, 1, 2])
    """
    check_host(device)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange(): step must be nonzero")
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dt = dtypes.int64 if is_int else dtypes.default_float
    else:
        dt = dtypes.as_dtype(dtype)
    return from_array(np.arange(start, end, step).astype(dt.np), requires_grad)


def linspace(start, end, steps: int, dtype=None, requires_grad: bool = False,
             device=None) -> Tensor:
    check_host(device)
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
    start, end = space_bound(start, "start", "linspace"), space_bound(end, "end", "linspace")
    return from_array(np.linspace(start, end, int(steps)).astype(dt.np), requires_grad)


def space_bound(v, name: str, op: str):
    """A bound of ``linspace``/``logspace`` given as a 0-d tensor (torch's tensor overload)
    as its number."""
    if isinstance(v, Tensor):
        if v.ndim:
            raise RuntimeError(f"{op} only supports 0-dimensional start and end tensors, but "
                               f"got {name} with {v.ndim} dimension(s)")
        return v.item()
    return v


def eye(n: int, m: int | None = None, dtype=None, requires_grad: bool = False,
        device=None) -> Tensor:
    check_host(device)
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
    return from_array(np.eye(n, m, dtype=dt.np), requires_grad)


# -- randomness --------------------------------------------------------------------------------
class Generator:
    """A source of random numbers, as ``torch.Generator``: pass it as ``generator=`` to draw
    from it instead of the global one (which ``manual_seed`` seeds).

    >>> import jitgrad
    >>> g = jitgrad.Generator().manual_seed(0)
    >>> a = jitgrad.randn(3, generator=g)
    >>> bool((a == jitgrad.randn(3, generator=jitgrad.Generator().manual_seed(0))).all())
    True
    """

    def __init__(self, device=None) -> None:
        check_host(device)
        self._seed = int(np.random.SeedSequence().entropy % (2**63))
        self.gen = np.random.default_rng(self._seed)
        self.counter = _CounterState(self)

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed)
        self.gen = np.random.default_rng(self._seed)
        self.counter.stream = random_calls[0]
        return self

    def seed(self) -> int:
        """Reseed from fresh entropy; returns the new seed."""
        return self.manual_seed(int(np.random.SeedSequence().entropy % (2**63)))._seed

    def initial_seed(self) -> int:
        return self._seed


# Calls of compiled functions so far (``api.Compiled.__call__`` counts them): a call's draws come
# from the stream of its number, so a trace, its kernel and the checks around them all read the
# same state within one call, and every call reads a new one.
random_calls = [0]


class _CounterState(Tensor):
    """What a compiled function's random draws read: ``[seed, stream]``, an int64[2] live input.
    The stream is the number of compiled calls since the generator was seeded, so every call
    draws fresh numbers, and ``manual_seed`` replays them whether or not the function had been
    traced or compiled in between."""

    always_live = True  # read afresh at every call wherever it is found (trace/implicit.py)

    def __init__(self, gen: Generator) -> None:
        self._rg = False
        self.grad_fn = None
        self._vc = [0]
        self.gen = gen
        self.stream = random_calls[0]

    @property
    def _value(self) -> np.ndarray:
        return np.array([self.gen._seed, random_calls[0] - self.stream], dtype=np.int64)


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the generator behind ``randn``, ``rand``, ``randint``, ``randperm`` and ``nn.init``."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def generator(gen: Generator | None = None) -> np.random.Generator:
    """The NumPy generator to draw from: ``gen``'s, or the global one."""
    if trace_state.builder is not None:
        raise TraceError("this random function cannot run inside a compiled function yet (rand, "
                         "randn, randint, randperm, multinomial, rand_like, randn_like, bernoulli and "
                         "dropout can); "
                         "draw its numbers outside and pass them as arguments")
    if gen is not None and not isinstance(gen, Generator):
        raise TypeError(f"generator= takes a jitgrad.Generator, got {type(gen).__name__}")
    return (gen or default_generator).gen


def _floating(dt, name: str):
    if not dt.is_floating_point:
        raise TypeError(f"{name}(): expected a floating-point dtype, got {dt.name}")
    return dt


def bernoulli(input: Tensor, p=None, generator: Generator | None = None) -> Tensor:  # noqa: A002
    """1 with probability ``input`` (or ``p``), else 0, elementwise, in ``input``'s dtype (as
    ``torch.bernoulli``).

    >>> import jitgrad
    >>> jitgrad.bernoulli(jitgrad.tensor([0.0, 1.0])).tolist()
    [0.0, 1.0]
    """
    probs = input if p is None else full_like(input, float(p))
    dt = _floating(input.dtype, "bernoulli")
    traced = _traced_uniform(tuple(input.shape), dt, generator)
    if traced is not None:
        return (traced < probs).to(dt)
    pv = probs._concrete("bernoulli")
    if ((pv < 0) | (pv > 1)).any():
        raise RuntimeError("bernoulli: the probabilities must be in [0, 1]")
    return from_array((_gen(generator).random(pv.shape) < pv).astype(dt.np))


def _traced_uniform(shape: tuple, dt, gen: Generator | None) -> Tensor | None:
    """Inside a trace: a draw from ``gen``'s counter stream (None outside one)."""
    builder = trace_state.builder
    if builder is None:
        return None
    if gen is not None and not isinstance(gen, Generator):
        raise TypeError(f"generator= takes a jitgrad.Generator, got {type(gen).__name__}")
    from jitgrad.ops.random import uniform
    builder.random_draws += 1
    salt = builder.random_draws
    # The draw's number goes into the state's stream word (above the call count's 32 bits) as
    # a constant input, not into the code: the repeated layers of a model then draw with the
    # same code (numba_pieces shares it), and no two draws of any two calls share a stream.
    state = (gen or default_generator).counter + builder.const(np.array([0, salt << 32], np.int64))
    return uniform(state, shape, dt, 0)


def _traced_normal(shape: tuple, dt, gen: Generator | None) -> Tensor | None:
    """Box-Muller over two draws: sqrt(-2 log(1 - u)) cos(2 pi v); 1 - u is in (0, 1]."""
    u = _traced_uniform(shape, dt, gen)
    if u is None:
        return None
    from jitgrad import ops
    v = _traced_uniform(shape, dt, gen)
    return ops.sqrt(ops.log(1.0 - u) * -2.0) * ops.cos(v * (2.0 * np.pi))


def randn(*shape, size=None, dtype=None, requires_grad: bool = False,
          device=None, generator: Generator | None = None) -> Tensor:
    """Standard normal samples (float32 unless ``dtype`` says otherwise)."""
    check_host(device)
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
    traced = _traced_normal(_shape(_size_arg(shape, size)), _floating(dt, "randn"), generator)
    if traced is not None:
        return traced
    arr = _gen(generator).standard_normal(_shape(_size_arg(shape, size))).astype(dt.np)
    return from_array(arr, requires_grad)


def rand(*shape, size=None, dtype=None, requires_grad: bool = False,
         device=None, generator: Generator | None = None) -> Tensor:
    check_host(device)
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.default_float
    traced = _traced_uniform(_shape(_size_arg(shape, size)), _floating(dt, "rand"), generator)
    if traced is not None:
        return traced
    arr = _gen(generator).random(_shape(_size_arg(shape, size))).astype(dt.np)
    return from_array(arr, requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None,
            generator: Generator | None = None) -> Tensor:
    """Integers uniform in ``[low, high)``; as torch, ``randint(high, size)`` is the two-argument
    form.

    >>> import jitgrad
    >>> jitgrad.randint(3, (4,)).shape
    jitgrad.Size([4])
    """
    check_host(device)
    if size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    size = () if size is None else size
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.int64
    if trace_state.builder is not None:
        if int(high) <= int(low):
            raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got "
                               f"from={low} >= to={high}")
        # floor(u * n) of a float64 draw: every integer of [low, high) for n below 2**53
        u = _traced_uniform(_shape(tuple(size)), dtypes.float64, generator)
        from jitgrad import ops
        return (ops.floor(u * float(int(high) - int(low))) + float(low)).to(dt)
    return from_array(_gen(generator).integers(low, high, size=tuple(size)).astype(dt.np))


def randperm(n: int, dtype=None, device=None, generator: Generator | None = None) -> Tensor:
    """A random permutation of ``0..n-1``; inside a compiled function, the order that sorts a
    fresh uniform draw (distinct with probability 1 - n^2 / 2^54).

    >>> import jitgrad
    >>> sorted(jitgrad.randperm(4).tolist())
    [0, 1, 2, 3]
    """
    check_host(device)
    dt = dtypes.as_dtype(dtype) if dtype is not None else dtypes.int64
    u = _traced_uniform((int(n),), dtypes.float64, generator)
    if u is not None:
        from jitgrad.ops.sorting import argsort
        return argsort(u).to(dt)
    return from_array(_gen(generator).permutation(int(n)).astype(dt.np))


_gen = generator  # under the name the factories' generator= argument shadows


def multinomial(input: Tensor, num_samples: int, replacement: bool = False,
                generator: Generator | None = None) -> Tensor:
    """Indices drawn from the categories whose weights are the last dim of ``input`` (1-D or
    2-D), without replacement unless asked, as ``torch.multinomial``.

    >>> import jitgrad
    >>> jitgrad.multinomial(jitgrad.tensor([0.0, 1.0, 0.0]), 1).tolist()
    [1]
    """
    if trace_state.builder is not None:
        return _traced_multinomial(input, int(num_samples), replacement, generator)
    w = np.asarray(input._concrete("multinomial"), dtype=np.float64)
    if w.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {w.ndim}")
    rows = w.reshape(1, -1) if w.ndim == 1 else w
    n = int(num_samples)
    if n <= 0:
        raise RuntimeError("multinomial: cannot sample n_sample <= 0 samples")
    if not replacement and n > rows.shape[1]:
        raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples "
                           f"without replacement ({n} > {rows.shape[1]})")
    if not np.isfinite(rows).all() or (rows < 0).any():
        raise RuntimeError("multinomial: probability tensor contains either inf, nan or "
                           "element < 0")
    sums = rows.sum(axis=1)
    if (sums <= 0).any():
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of "
                           "probabilities <= 0)")
    g = _gen(generator)
    out = np.stack([g.choice(rows.shape[1], size=n, replace=True, p=r / s) if replacement
                    else _without_replacement(g, r, n) for r, s in zip(rows, sums)])
    return from_array((out[0] if w.ndim == 1 else out).astype(np.int64))


def _traced_multinomial(w: Tensor, n: int, replacement: bool, gen) -> Tensor:
    """Inside a trace: with replacement, each sample counts the categories whose cumulative
    probability a uniform draw passes (inverse transform); without, the ``n`` largest of
    ``log w + Gumbel noise`` (the Gumbel-top-k trick draws distinct categories with the
    probabilities of successive draws by weight), the zero-weight ones last in random order."""
    from jitgrad import ops
    from jitgrad.ops.sorting import topk
    if w.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got {w.ndim}")
    k = w.shape[-1]
    if n <= 0:
        raise RuntimeError("multinomial: cannot sample n_sample <= 0 samples")
    if not replacement and n > k:
        raise RuntimeError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples "
                           f"without replacement ({n} > {k})")
    p = w.to(dtypes.float64)
    # The checks eager makes, as guards: a later call with bad weights re-traces and raises
    if not bool((ops.isfinite(p) & (p >= 0)).all()):
        raise RuntimeError("multinomial: probability tensor contains either inf, nan or "
                           "element < 0")
    if not bool((p.sum(-1) > 0).all()):
        raise RuntimeError("multinomial: invalid multinomial distribution (sum of "
                           "probabilities <= 0)")
    if replacement:
        cdf = ops.cumsum(p / p.sum(-1, keepdim=True), -1)
        u = _traced_uniform((*w.shape[:-1], n), dtypes.float64, gen)
        idx = (cdf.unsqueeze(-2) <= u.unsqueeze(-1)).to(dtypes.int64).sum(-1)
        return ops.clamp(idx, None, k - 1)  # a draw past the last sum's rounding
    u = _traced_uniform(tuple(w.shape), dtypes.float64, gen)
    gumbel = -ops.log(-ops.log(u))
    pos = p > 0
    keys = ops.where(pos, ops.log(ops.where(pos, p, 1.0)) + gumbel, gumbel - 1e10)
    return topk(keys, n, -1).indices


def _without_replacement(g: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    """``n`` distinct categories by weight; past the positive ones, the zero-weight ones in
    random order (as torch does, rather than refusing)."""
    pos = np.flatnonzero(weights > 0)
    k = min(n, len(pos))
    first = g.choice(pos, size=k, replace=False, p=weights[pos] / weights[pos].sum())
    rest = g.permutation(np.flatnonzero(weights <= 0))[:n - k]
    return np.concatenate([first, rest])


def randn_like(x: Tensor, dtype=None, device=None, *, memory_format=None) -> Tensor:
    return _laid_out_like(randn(*x.shape, dtype=dtype or x.dtype, device=device), x,
                          memory_format)


def rand_like(x: Tensor, dtype=None, device=None, *, memory_format=None) -> Tensor:
    return _laid_out_like(rand(*x.shape, dtype=dtype or x.dtype, device=device), x,
                          memory_format)
