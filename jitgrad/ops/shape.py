"""Movement and indexing primitives: reshape, permute, expand, cat, and NumPy-style indexing.

>>> import jitgrad
>>> x = jitgrad.arange(6.0).reshape(2, 3)
>>> x.T.shape
jitgrad.Size([3, 2])
>>> x[:, 1]
tensor([1., 4.])
"""

from __future__ import annotations

import math

import numpy as np

from jitgrad import dtypes
from jitgrad.errors import ShapeError
from jitgrad.ops import _layout, _rules
from jitgrad.ops.elementwise import clone
from jitgrad.ir.printer import format_index as _format_index
from jitgrad.ops.registry import Aval, bind, promote, register, scalar

_NO = {}

# -- movement ----------------------------------------------------------------------------------
reshape_p = register("reshape", lambda x, shape: np.reshape(x, shape),
                     lambda x, shape: Aval(shape, x.dtype),
                     lambda g, out, x, shape: (reshape(g, x.shape),), saves="none",
                     kind="movement", view=True, backward_name="ViewBackward0")
permute_p = register("permute", lambda x, perm: np.transpose(x, perm),
                     lambda x, perm: Aval(tuple(x.shape[p] for p in perm), x.dtype),
                     lambda g, out, x, perm: (permute(g, tuple(np.argsort(perm).tolist())),),
                     saves="none", kind="movement", view=True)
expand_p = register("expand", lambda x, shape: np.broadcast_to(x, shape),
                    lambda x, shape: Aval(shape, x.dtype),
                    lambda g, out, x, shape: (sum_to(g, x.shape),), saves="none",
                    kind="movement", view=True)


def _cat_abstract(*xs: Aval, axis: int) -> Aval:
    base = xs[0].shape
    total = 0
    for i, x in enumerate(xs):
        if len(x.shape) != len(base) or any(a != b for d, (a, b) in enumerate(zip(x.shape, base))
                                            if d != axis):
            raise ShapeError(f"cat: tensor {i} has shape {tuple(x.shape)}, which does not match "
                             f"tensor 0's shape {tuple(base)} outside dimension {axis}")
        total += x.shape[axis]
    return Aval(base[:axis] + (total,) + base[axis + 1:], xs[0].dtype)


def _cat_vjp(g, out, *xs, axis):
    res, start = [], 0
    for x in xs:
        n = x.shape[axis]
        res.append(narrow(g, axis, start, n))
        start += n
    return tuple(res)


cat_p = register("cat", lambda *xs, axis: np.concatenate(xs, axis=axis), _cat_abstract, _cat_vjp,
                 saves="none", kind="movement", layout=_layout.cat)


# -- indexing ----------------------------------------------------------------------------------
def np_index(spec: tuple, arrays: tuple) -> tuple:
    out = []
    for item in spec:
        k = item[0]
        if k == "i":
            out.append(item[1])
        elif k == "s":
            out.append(slice(item[1], item[2], item[3]))
        elif k == "n":
            out.append(None)
        elif k == "e":
            out.append(Ellipsis)
        else:
            out.append(arrays[item[1]])
    return tuple(out)


def _dummy(aval: Aval) -> np.ndarray:
    return np.lib.stride_tricks.as_strided(np.zeros((), aval.dtype.np), aval.shape,
                                           (0,) * len(aval.shape))


def _index_abstract(x: Aval, *idx: Aval, index) -> Aval:
    arrays = []
    for a in idx:
        if a.dtype is dtypes.bool_:
            raise ShapeError("boolean-mask indexing gives a shape that depends on the data, which "
                             "a compiled function cannot know in advance; use jitgrad.where(mask, "
                             "x, 0) instead")
        arrays.append(np.zeros(a.shape, np.int64))
    try:
        res = _dummy(x)[np_index(index, tuple(arrays))]
    except IndexError as e:
        raise IndexError(f"index {_format_index(index)} is invalid for a tensor of shape "
                         f"{tuple(x.shape)}: {e}") from None
    return Aval(res.shape, x.dtype)


def _getitem_impl(x, *idx, index):
    return x[np_index(index, idx)]


def _getitem_vjp(g, out, x, *idx, index):
    z = bind(scatter_add_p, (g, *idx), {"shape": tuple(x.shape), "index": index})
    return (z,) + (None,) * len(idx)


def _has_array(index) -> bool:
    return any(item[0] == "t" for item in index)


def _scatter_add_impl(g, *idx, shape, index):
    z = np.zeros(shape, dtype=g.dtype)
    ix = np_index(index, idx)
    if _has_array(index):
        np.add.at(z, ix, g)  # repeated indices must add up
    else:
        z[ix] += g
    return z


def _index_update_impl(x, v, *idx, index):
    out = x.copy()
    out[np_index(index, idx)] = v
    return out


def _index_update_vjp(g, out, x, v, *idx, index):
    gx = bind(index_update_p, (g, scalar(0, g.dtype), *idx), {"index": index})
    gv = bind(getitem_p, (g, *idx), {"index": index})
    return (gx, gv) + (None,) * len(idx)


def _getitem_name(index) -> str:
    """torch's name for the backward of ``x[index]``: of the last operation the index applies
    (an int selects, a slice slices, None unsqueezes), or IndexBackward0 with index tensors."""
    if any(item[0] == "t" for item in index):
        return "IndexBackward0"
    for item in reversed(index):
        if item[0] == "i":
            return "SelectBackward0"
        if item[0] == "s" and not (item[1] in (None, 0) and item[2] is None and item[3] in (None, 1)):
            return "SliceBackward0"
        if item[0] == "n":
            return "UnsqueezeBackward0"
    return "AliasBackward0"


getitem_p = register("getitem", _getitem_impl, _index_abstract, _getitem_vjp, saves="none",
                     kind="index", view=True, nondiff_inputs=tuple(range(1, 64)),
                     backward_name=lambda index: _getitem_name(index),
                     layout=lambda out, xs, params: _layout.index(out, xs, params, np_index))
scatter_add_p = register("scatter_add", _scatter_add_impl,
                         lambda g, *idx, shape, index: Aval(shape, g.dtype),
                         lambda gg, out, g, *idx, shape, index: (
                             bind(getitem_p, (gg, *idx), {"index": index}),) + (None,) * len(idx),
                         saves="none", kind="index", nondiff_inputs=tuple(range(1, 64)),
                         layout=_layout.contiguous)
index_update_p = register("index_update", _index_update_impl, lambda x, v, *idx, index: x,
                          _index_update_vjp, saves="none", kind="index",
                          nondiff_inputs=tuple(range(2, 64)), backward_name="CopySlices",
                          layout=_layout.like_first)


def parse_index(idx) -> tuple[tuple, list]:
    """A Python index as a hashable spec plus the index tensors it uses."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    spec, tensors = [], []
    for item in idx:
        if item is None:
            spec.append(("n",))
        elif item is Ellipsis:
            spec.append(("e",))
        elif isinstance(item, slice):
            spec.append(("s", _opt_int(item.start), _opt_int(item.stop), _opt_int(item.step)))
            if item.step is not None and int(item.step) <= 0:
                raise ValueError("step must be greater than zero")
        elif isinstance(item, (bool, np.bool_)):
            raise TypeError("indexing with a Python bool is not supported; use a bool tensor")
        elif isinstance(item, (int, np.integer)):
            spec.append(("i", int(item)))
        elif isinstance(item, Tensor):
            if item.dtype.is_floating_point:
                raise IndexError("tensors used as indices must be long, int or bool tensors")
            spec.append(("t", len(tensors)))
            tensors.append(item)
        elif isinstance(item, (list, np.ndarray, range)):
            arr = np.asarray(item) if not isinstance(item, range) else np.arange(
                item.start, item.stop, item.step, dtype=np.int64)
            if arr.dtype.kind not in "biu":
                raise IndexError(f"index arrays must be integers or bools, got {arr.dtype}")
            spec.append(("t", len(tensors)))
            tensors.append(_const(arr.astype(np.bool_ if arr.dtype.kind == "b" else np.int64)))
        else:
            raise IndexError(f"unsupported index of type {type(item).__name__}: use ints, slices, "
                             "None, Ellipsis, ranges, lists, or integer/bool tensors")
    return tuple(spec), tensors


def split_ints(spec: tuple, tensors: list, ndim: int) -> tuple | None:
    """``x[0, :, idx]``: NumPy counts an int as an index array too, so the int and ``idx``,
    not adjacent, would put the indexed dim first (shape (len(idx), n1)); torch selects with
    the ints first and then indexes the view ((n1, len(idx))). For an index with both ints and
    tensors, torch's two steps: a basic index (ints, slices, None, Ellipsis, full slices where
    the tensors go) and the index of its view by the tensors alone; None for any other index,
    where NumPy's rule is torch's."""
    if not tensors or not any(item[0] == "i" for item in spec):
        return None
    full = ("s", None, None, None)
    width = [t.ndim if t.dtype is dtypes.bool_ else 1 for t in tensors]  # x dims each covers
    used = sum(1 for item in spec if item[0] in "is") + sum(
        width[item[1]] for item in spec if item[0] == "t")
    basic, second, d = [], [], 0
    for item in spec:
        if item[0] == "t":
            second += [full] * (d - len(second)) + [item] + [None] * (width[item[1]] - 1)
            basic += [full] * width[item[1]]
            d += width[item[1]]
        elif item[0] == "e":
            basic.append(item)
            d += ndim - used
        else:
            basic.append(item)
            d += item[0] != "i"
    return tuple(basic), tuple(item for item in second if item is not None)


def _opt_int(v):
    return None if v is None else int(v)


def _const(arr: np.ndarray):
    from jitgrad.factories import from_array
    return from_array(arr)


def getitem(x, idx):
    spec, tensors = parse_index(idx)
    two = split_ints(spec, tensors, x.ndim)
    if two is not None:
        return bind(getitem_p, (getitem(x, np_index(two[0], ())), *tensors), {"index": two[1]})
    if x._value is not None and not tensors:
        try:
            x._value[np_index(spec, ())]
        except IndexError as e:
            raise IndexError(f"index {_format_index(spec)} is invalid for a tensor of shape "
                             f"{tuple(x.shape)}: {e}") from None
    return bind(getitem_p, (x, *tensors), {"index": spec})


def index_update(x, idx, v):
    """A copy of ``x`` with ``x[idx] = v`` (the functional form of ``__setitem__``)."""
    spec, tensors = parse_index(idx)
    two = split_ints(spec, tensors, x.ndim)
    if two is not None:  # torch's order (see split_ints): update the view, put it back
        basic = np_index(two[0], ())
        return index_update(x, basic, bind(index_update_p, (getitem(x, basic), _as(v, x.dtype),
                                                            *tensors), {"index": two[1]}))
    (x2, v) = (x, v) if isinstance(v, Tensor) and v.dtype is x.dtype else (x, _as(v, x.dtype))
    return bind(index_update_p, (x2, v, *tensors), {"index": spec})


def _as(v, dtype):
    if isinstance(v, Tensor):
        return v.to(dtype)
    return scalar(v, dtype) if np.ndim(v) == 0 else _const(np.asarray(v, dtype=dtype.np))


# -- the functional API ------------------------------------------------------------------------
def _sizes(args) -> tuple:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return tuple(int(a) for a in args)


def _dims(args, op: str) -> tuple:
    """Dimension indices (``permute``'s): ints, never bools."""
    for a in args:
        _rules._not_bool(a, op, "dims")
    return tuple(int(a) for a in args)


def _resolve_shape(shape: tuple, numel: int, op: str) -> tuple:
    if shape.count(-1) > 1:
        raise ShapeError(f"{op}: only one dimension can be inferred (got {list(shape)})")
    if -1 in shape:
        rest = int(math.prod([s for s in shape if s != -1]))
        if rest == 0 or numel % rest:
            raise ShapeError(f"{op}: shape {list(shape)} is invalid for input of size {numel}")
        shape = tuple(numel // rest if s == -1 else s for s in shape)
    if int(math.prod(shape)) != numel or any(s < 0 for s in shape):
        raise ShapeError(f"{op}: shape {list(shape)} is invalid for input of size {numel}")
    return shape


def reshape(x, *shape):
    shape = _resolve_shape(_sizes(shape), x.numel(), "reshape")
    return bind(reshape_p, (x,), {"shape": shape})


def view(x, *shape):
    """``reshape`` that refuses to copy, as torch: writes through a view reach the original,
    so a layout a view cannot describe is an error that points to ``reshape``."""
    if len(shape) == 1 and isinstance(shape[0], dtypes.DType):
        raise TypeError("view(dtype) is not supported; use .to(dtype)")
    out = reshape(x, *shape)
    v = x._value
    if v is not None and v.size and out._value is not None and \
            not np.shares_memory(out._value, v):
        raise RuntimeError(f"view size is not compatible with input tensor's size and stride (a "
                           f"tensor of shape {tuple(x.shape)} whose memory is not laid out as "
                           f"one block cannot be viewed as {tuple(out.shape)}); use "
                           ".reshape(...) instead")
    return out


def permute(x, *perm):
    if len(perm) == 1 and isinstance(perm[0], (tuple, list)):
        perm = tuple(perm[0])
    perm = tuple(p % max(x.ndim, 1) for p in _dims(perm, "permute"))
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"permute: {list(perm)} is not a permutation of the {x.ndim} dimensions "
                         f"of a tensor of shape {tuple(x.shape)}")
    return bind(permute_p, (x,), {"perm": perm})


def transpose(x, dim0: int, dim1: int):
    n = x.ndim
    if n == 0:
        return x
    d0, d1 = _rules.norm_axis(dim0, n, "transpose"), _rules.norm_axis(dim1, n, "transpose")
    perm = list(range(n))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return bind(permute_p, (x,), {"perm": tuple(perm)})


def movedim(x, source, destination):
    """Move dims ``source`` to positions ``destination`` (ints or sequences), as torch."""
    src = (source,) if not isinstance(source, (tuple, list)) else tuple(source)
    dst = (destination,) if not isinstance(destination, (tuple, list)) else tuple(destination)
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {list(src)} and destination {list(dst)} must have "
                         "the same number of dims")
    n = x.ndim
    src = tuple(_rules.norm_axis(d, n, "movedim") for d in src)
    dst = tuple(_rules.norm_axis(d, n, "movedim") for d in dst)
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError("movedim: repeated dim in source or destination")
    rest = iter(d for d in range(n) if d not in src)
    by_dst = dict(zip(dst, src))
    perm = tuple(by_dst[i] if i in by_dst else next(rest) for i in range(n))
    return bind(permute_p, (x,), {"perm": perm}) if n else x


def t(x):
    if x.ndim > 2:
        raise ShapeError(f"t() expects a tensor with <= 2 dimensions, but got {x.ndim}")
    return transpose(x, 0, 1) if x.ndim == 2 else x


def expand(x, *sizes):
    sizes = _sizes(sizes)
    if len(sizes) < x.ndim:
        raise ShapeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or "
                         f"equal to the number of dimensions in the tensor ({x.ndim})")
    lead = len(sizes) - x.ndim
    shape = tuple(x.shape[i - lead] if (s == -1 and i >= lead) else s
                  for i, s in enumerate(sizes))
    for i in range(x.ndim):
        if x.shape[i] != 1 and x.shape[i] != shape[i + lead]:
            raise ShapeError(f"expand: the expanded size of the tensor ({shape[i + lead]}) must "
                             f"match the existing size ({x.shape[i]}) at non-singleton dimension "
                             f"{i + lead}; target sizes {list(sizes)}, tensor sizes {list(x.shape)}")
    if shape == tuple(x.shape):
        return x
    return bind(expand_p, (x,), {"shape": shape})


def repeat(x, *sizes):
    """``x`` tiled ``sizes[i]`` times along dim ``i`` (torch's ``Tensor.repeat``; extra leading
    sizes add dims): a reshape, an expand and a reshape, so it differentiates as they do."""
    sizes = _sizes(sizes)
    if len(sizes) < x.ndim:
        raise ShapeError(f"repeat: the number of repeat dims ({len(sizes)}) can not be smaller "
                         f"than the number of dimensions of the tensor ({x.ndim})")
    if any(int(r) < 0 for r in sizes):
        raise ShapeError(f"repeat: repeats must be non-negative, got {list(sizes)}")
    shape = (1,) * (len(sizes) - x.ndim) + tuple(x.shape)
    spread = tuple(d for s in shape for d in (1, s))  # a new dim of 1 before each dim
    grown = tuple(d for r, s in zip(sizes, shape) for d in (int(r), s))
    out = expand(reshape(x, spread), *grown)
    out = reshape(out, tuple(int(r) * s for r, s in zip(sizes, shape)))
    v = out._value
    if out._ir is None and v is not None and (
            not v.flags.writeable or np.may_share_memory(v, x._value)):
        # torch's repeat always copies: a result that is still a view (repeats of 1, or tiles
        # of a broadcast dim) must neither write through to ``x`` nor refuse writes.
        out = clone(out)
    return out


def tile(x, dims):
    """``torch.tile``: ``repeat`` with fewer ``dims`` than ``x`` has padded with leading ones."""
    dims = (int(dims),) if isinstance(dims, int) else tuple(int(d) for d in dims)
    return repeat(x, *((1,) * (x.ndim - len(dims)) + dims))


def broadcast_to(x, shape):
    return expand(x, *shape)


def squeeze(x, dim=None, *dims):
    """Drop dims of size 1: all of them, or those of ``dim`` (an int, a tuple, or several ints,
    ``x.squeeze(0, 2)``, as torch)."""
    if dims:
        dim = (dim,) + dims
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        axes = _rules.norm_axes(dim, x.ndim, "squeeze")
        shape = tuple(s for i, s in enumerate(x.shape) if not (i in axes and s == 1))
    return reshape(x, shape)


def unsqueeze(x, dim: int):
    dim = _rules.int_dim(dim, "unsqueeze")
    n = x.ndim + 1
    if not -n <= dim < n:
        raise IndexError(f"unsqueeze: dimension {dim} is out of range [{-n}, {n - 1}]")
    d = dim % n
    shape = tuple(x.shape)
    return reshape(x, shape[:d] + (1,) + shape[d:])


def flatten(x, start_dim: int = 0, end_dim: int = -1):
    if x.ndim == 0:
        return reshape(x, (1,))
    s = _rules.norm_axis(start_dim, x.ndim, "flatten")
    e = _rules.norm_axis(end_dim, x.ndim, "flatten")
    shape = tuple(x.shape)
    return reshape(x, shape[:s] + (int(math.prod(shape[s:e + 1])),) + shape[e + 1:])


def narrow(x, dim: int, start: int, length: int):
    """``length`` elements of ``dim`` from ``start`` (negative: from the end), as torch: a
    range past the end is an error, not a shorter result."""
    dim = _rules.norm_axis(dim, x.ndim, "narrow")
    size = x.shape[dim]
    start, length = int(start), int(length)
    if not -size <= start <= size:
        raise IndexError(f"narrow: start {start} is out of range for dimension {dim} of size "
                         f"{size}")
    start = start + size if start < 0 else start
    if length < 0 or start + length > size:
        raise RuntimeError(f"narrow: start ({start}) + length ({length}) exceeds dimension size "
                           f"({size})")
    idx = [slice(None)] * x.ndim
    idx[dim] = slice(start, start + length)
    return getitem(x, tuple(idx))


def narrow_copy(x, dim: int, start: int, length: int):
    """``narrow`` into a new tensor (torch's ``narrow_copy``): writes to it leave ``x`` alone.

    >>> import jitgrad
    >>> x = jitgrad.arange(5.0)
    >>> y = x.narrow_copy(0, 1, 2)
    >>> y[0] = 9.0
    >>> y.tolist(), x.tolist()
    ([9.0, 2.0], [0.0, 1.0, 2.0, 3.0, 4.0])
    """
    return clone(narrow(x, dim, start, length))


def cat(tensors, dim: int = 0):
    """Concatenate along ``dim``.

    >>> import jitgrad
    >>> jitgrad.cat([jitgrad.ones(2), jitgrad.zeros(1)])
    tensor([1., 1., 0.])
    """
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat(): expected a non-empty list of Tensors")
    tensors = list(promote(*tensors))
    for i, t_ in enumerate(tensors):
        if t_.ndim == 0:
            raise ShapeError(f"zero-dimensional tensor (at position {i}) cannot be "
                             "concatenated (give it a dimension: t.view(1), or use stack)")
    # torch's legacy rule: a 1-D tensor of shape (0,) joins any concatenation (it is skipped),
    # whatever the others' rank; the result's dtype is still promoted over it
    kept = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)]
    if kept and len(kept) < len(tensors):
        tensors = kept
    axis = _rules.norm_axis(dim, tensors[0].ndim, "cat")
    _cat_abstract(*[Aval(tuple(t.shape), t.dtype) for t in tensors], axis=axis)
    return bind(cat_p, tuple(tensors), {"axis": axis})


concatenate = cat


def stack(tensors, dim: int = 0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack(): expected a non-empty list of Tensors")
    for i, t_ in enumerate(tensors[1:], 1):
        if tuple(t_.shape) != tuple(tensors[0].shape):
            raise ShapeError(f"stack expects each tensor to be equal size, but got "
                             f"{list(tensors[0].shape)} at entry 0 and {list(t_.shape)} at entry {i}")
    n = tensors[0].ndim + 1
    dim = _rules.int_dim(dim, "stack")
    if not -n <= dim < n:
        raise IndexError(f"stack: dimension {dim} is out of range [{-n}, {n - 1}] for tensors "
                         f"of {n - 1} dimension{'s' if n != 2 else ''}")
    d = dim % n
    return cat([unsqueeze(t_, d) for t_ in tensors], d)


def split(x, split_size, dim: int = 0):
    axis = _rules.norm_axis(dim, x.ndim, "split")
    n = x.shape[axis]
    sizes = [split_size] * (n // split_size) + ([n % split_size] if n % split_size else []) \
        if isinstance(split_size, int) else list(split_size)
    out, start = [], 0
    for s in sizes:
        out.append(narrow(x, axis, start, s))
        start += s
    return tuple(out)


def chunk(x, chunks: int, dim: int = 0):
    dim = _rules.norm_axis(dim, x.ndim, "chunk")
    n = x.shape[dim]
    return split(x, -(-n // chunks), dim)


def unbind(x, dim: int = 0):
    dim = _rules.norm_axis(dim, x.ndim, "unbind")
    return tuple(select(x, dim, i) for i in range(x.shape[dim]))


def select(x, dim: int, index: int):
    dim = _rules.norm_axis(dim, x.ndim, "select")
    idx = [slice(None)] * x.ndim
    idx[dim] = index
    return getitem(x, tuple(idx))


from jitgrad.ops.reduce import sum_to  # noqa: E402
from jitgrad.tensor import Tensor  # noqa: E402
