"""``grid_sample`` and ``affine_grid``: spatial transformers, as torch's.

``grid_sample`` is a composite: the sampling coordinates are computed from ``grid`` with
jitgrad's elementwise ops (unnormalize, clip or reflect, ``floor``), the input elements each
output point reads are gathered with one ``gather`` over the flattened spatial dims, and the
interpolation weights multiply them. So the result differentiates with respect to both
``input`` (a scatter-add, the gather's VJP) and ``grid`` (through the weights), and traces and
compiles like any other jitgrad code. The index arithmetic (``floor``, ``round``) carries no
gradient, as in torch's kernels.

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> x = jitgrad.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
>>> grid = jitgrad.tensor([[[[0.0, 0.0]]]])  # the centre of the image
>>> F.grid_sample(x, grid, align_corners=False)
tensor([[[[2.5000]]]])
"""

from __future__ import annotations

import itertools
import math
import warnings

from jitgrad import dtypes, factories, ops
from jitgrad.ops.indexing import meshgrid
from jitgrad.ops.pointwise_more import fmod
from jitgrad.nn.resample import cubic_weights
from jitgrad.ops.rounding import round as round_
from jitgrad.tensor import Tensor

_MODES = ("bilinear", "nearest", "bicubic")
_PADDINGS = ("zeros", "border", "reflection")
_ALIGN_WARNING = ("Default grid_sample and affine_grid behavior has changed to "
                  "align_corners=False since 1.3.0. Please specify align_corners=True if the old "
                  "behavior is desired. See the documentation of grid_sample for details.")


def _unnormalize(coord, size: int, align_corners: bool):
    """[-1, 1] to pixel coordinates: the corner pixels' centres (``align_corners``) or their
    outer edges."""
    if align_corners:
        return (coord + 1) * ((size - 1) / 2)
    return (coord + 1) * (size / 2) - 0.5


def _clip(coord, size: int):
    """``coord`` clipped to [0, size - 1]. torch's kernels count the borders as outside for
    the gradient (0 there), so the clipped branch is taken at the borders themselves."""
    hi = float(size - 1)
    inside = (coord > 0) & (coord < hi)
    return ops.where(inside, coord, ops.clamp(coord.detach(), 0.0, hi))


def _reflect(coord, twice_low: int, twice_high: int):
    """``coord`` reflected at ``twice_low / 2`` and ``twice_high / 2`` until it lies between
    them (torch's ``reflect_coordinates``)."""
    if twice_low == twice_high:
        return coord.detach() * 0.0
    lo = twice_low / 2
    span = (twice_high - twice_low) / 2
    v = ops.abs(coord - lo)
    extra = fmod(v, span)
    flips = ops.floor(v.detach() / span)
    even = fmod(flips, 2.0) == 0
    return ops.where(even, extra + lo, (span - extra) + lo)


def _pad_coords(coord, size: int, padding_mode: str, align_corners: bool):
    """Pixel coordinates after the padding rule: unchanged (zeros: outside points read 0),
    clipped to the border, or reflected at the border and then clipped."""
    if padding_mode == "border":
        return _clip(coord, size)
    if padding_mode == "reflection":
        if align_corners:
            coord = _reflect(coord, 0, 2 * (size - 1))
        else:
            coord = _reflect(coord, -1, 2 * size - 1)
        return _clip(coord, size)
    return coord


def _check(input, grid, mode: str, padding_mode: str):  # noqa: A002
    for name, t in (("input", input), ("grid", grid)):
        if not isinstance(t, Tensor):
            raise TypeError(f"grid_sample(): argument '{name}' must be a Tensor, not "
                            f"{type(t).__name__}")
    if mode not in _MODES:
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', "
                         f"'nearest' or 'bicubic', but got: '{mode}'")
    if padding_mode not in _PADDINGS:
        raise ValueError(f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', "
                         f"'border', or 'reflection', but got: '{padding_mode}'")
    shapes = f"input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}"
    if input.ndim not in (4, 5) or grid.ndim != input.ndim:
        raise RuntimeError(f"grid_sampler(): expected 4D or 5D input and grid with same number "
                           f"of dimensions, but got {shapes}")
    if not input.dtype.is_floating_point or input.dtype != grid.dtype:
        raise RuntimeError(f"grid_sampler(): expected input and grid to be floating point "
                           f"tensors of the same dtype, but input has {input.dtype.name} and "
                           f"grid has {grid.dtype.name}")
    if input.shape[0] != grid.shape[0]:
        raise RuntimeError(f"grid_sampler(): expected grid and input to have same batch size, "
                           f"but got {shapes}")
    d = input.ndim - 2
    if grid.shape[-1] != d:
        raise RuntimeError(f"grid_sampler(): expected grid to have size {d} in last dimension, "
                           f"but got grid with sizes {list(grid.shape)}")
    for i in range(2, input.ndim):
        if input.shape[i] == 0:
            raise RuntimeError(f"grid_sampler(): expected input to have non-empty spatial "
                               f"dimensions, but input has sizes {list(input.shape)} with "
                               f"dimension {i} being empty")
    if mode == "bicubic" and d != 2:
        raise RuntimeError("grid_sampler(): bicubic interpolation only supports 4D input")


def _sample(input, taps, weights):  # noqa: A002
    """``sum_k weights[k] * input[n, c, taps[k]]``: ``taps`` (N, K, P) int64 flat spatial
    indices, ``weights`` (N, K, P) (0 for the taps outside the input), result (N, C, P)."""
    n, c = input.shape[:2]
    k, p = taps.shape[1:]
    flat = input.reshape(n, c, -1)
    idx = taps.reshape(n, 1, k * p).expand(n, c, k * p)
    vals = flat.gather(2, idx).reshape(n, c, k, p)
    return (vals * weights.unsqueeze(1)).sum(2)


def _flat_index(coords, valid, sizes):
    """The flat (row-major) index of integer ``coords`` (x first, as the grid's last dim);
    0 where not ``valid`` (those taps are weighted 0)."""
    flat, stride = None, 1
    for coord, size in zip(coords, sizes):
        term = coord * stride
        flat = term if flat is None else flat + term
        stride *= size
    return ops.where(valid, flat, 0)


def _in_bounds(coords, sizes):
    ok = None
    for coord, size in zip(coords, sizes):
        inside = (coord >= 0) & (coord < size)
        ok = inside if ok is None else ok & inside
    return ok


def _linear(input, coords, sizes):  # noqa: A002
    """Bilinear (trilinear in 5-D) taps: the 2**d corners around each point, x fastest, each
    weighted by the product of its distances to the opposite corner."""
    low = [ops.floor(c) for c in coords]
    taps, weights = [], []
    for corner in itertools.product((0, 1), repeat=len(coords)):
        bits = corner[::-1]  # x varies fastest: torch's nw, ne, sw, se (tnw, ..., bse) order
        idx = [(lo + b).to(dtypes.int64) for lo, b in zip(low, bits)]
        w = None
        for c, lo, b in zip(coords, low, bits):
            f = c - lo if b else (lo + 1) - c
            w = f if w is None else w * f
        valid = _in_bounds(idx, sizes)
        taps.append(_flat_index(idx, valid, sizes))
        weights.append(ops.where(valid, w, 0.0))
    return _sample(input, ops.stack(taps, 1), ops.stack(weights, 1))


def _nearest(input, coords, sizes):  # noqa: A002
    # round half to even, as torch's nearbyint
    idx = [round_(c.detach()).to(dtypes.int64) for c in coords]
    valid = _in_bounds(idx, sizes)
    w = valid.to(input.dtype)
    return _sample(input, _flat_index(idx, valid, sizes).unsqueeze(1), w.unsqueeze(1))


def _bicubic(input, coords, sizes, padding_mode: str, align_corners: bool):  # noqa: A002
    """4x4 taps around each point: the padding rule applies to each tap's coordinates; the
    rows are interpolated along x first, then the four results along y, as torch's."""
    (x, y), (w, h) = coords, sizes
    x0, y0 = ops.floor(x), ops.floor(y)
    cx, cy = cubic_weights(x - x0), cubic_weights(y - y0)
    taps, weights = [], []
    for j in range(4):
        ty = _pad_coords((y0 + (j - 1)).detach(), h, padding_mode, align_corners)
        for i in range(4):
            tx = _pad_coords((x0 + (i - 1)).detach(), w, padding_mode, align_corners)
            idx = [tx.to(dtypes.int64), ty.to(dtypes.int64)]
            valid = _in_bounds(idx, sizes)
            taps.append(_flat_index(idx, valid, sizes))
            weights.append(valid)
    n, c = input.shape[:2]
    p = x.shape[1]
    flat = input.reshape(n, c, -1)
    k = 16 * p
    idx = ops.stack(taps, 1).reshape(n, 1, k).expand(n, c, k)
    vals = flat.gather(2, idx).reshape(n, c, 4, 4, p)
    vals = ops.where(ops.stack(weights, 1).reshape(n, 1, 4, 4, p), vals, 0.0)
    rows = (vals * ops.stack(cx, 1).reshape(n, 1, 1, 4, p)).sum(3)
    return (rows * ops.stack(cy, 1).reshape(n, 1, 4, p)).sum(2)


def grid_sample(input, grid, mode: str = "bilinear", padding_mode: str = "zeros",  # noqa: A002
                align_corners: bool | None = None):
    """Samples ``input`` (N, C, H, W) at the points of ``grid`` (N, H_out, W_out, 2), or
    (N, C, D, H, W) at (N, D_out, H_out, W_out, 3): ``grid[..., 0]`` is x (along W),
    ``grid[..., 1]`` y, ``grid[..., 2]`` z, each in [-1, 1] across the input (the corner
    pixels' centres with ``align_corners=True``, their outer edges without). ``mode`` is
    ``"bilinear"`` (trilinear in 5-D), ``"nearest"`` or ``"bicubic"`` (4-D only);
    ``padding_mode`` says what points outside read: ``"zeros"``, the ``"border"`` value, or
    the value mirrored at the border (``"reflection"``). Differentiable in ``input`` and in
    ``grid`` (``"nearest"``'s grid gradient is 0, as torch's).

    >>> import jitgrad
    >>> import jitgrad.nn.functional as F
    >>> x = jitgrad.arange(4.0).reshape(1, 1, 2, 2)
    >>> grid = jitgrad.tensor([[[[-1.0, -1.0], [1.0, 1.0], [2.0, 0.0]]]])
    >>> F.grid_sample(x, grid, align_corners=True)
    tensor([[[[0., 3., 1.]]]])
    >>> F.grid_sample(x, grid, padding_mode="border", align_corners=True)
    tensor([[[[0., 3., 2.]]]])
    """
    _check(input, grid, mode, padding_mode)
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, UserWarning, stacklevel=2)
        align_corners = False
    n, c = input.shape[:2]
    sizes = tuple(input.shape[2:][::-1])  # x (W) first, as the grid's last dim
    out_spatial = tuple(grid.shape[1:-1])
    g = grid.reshape(n, -1, len(sizes))
    raw = [_unnormalize(g[..., i], s, align_corners) for i, s in enumerate(sizes)]
    if mode == "bicubic":
        out = _bicubic(input, raw, sizes, padding_mode, bool(align_corners))
    else:
        coords = [_pad_coords(r, s, padding_mode, bool(align_corners))
                  for r, s in zip(raw, sizes)]
        out = (_linear if mode == "bilinear" else _nearest)(input, coords, sizes)
    return out.reshape(n, c, *out_spatial)


def _base_coords(steps: int, align_corners: bool, dtype):
    """torch's ``linspace_from_neg_one``: the pixel centres' normalized coordinates."""
    if steps <= 1:
        return factories.zeros(max(steps, 1), dtype=dtype)
    r = factories.linspace(-1.0, 1.0, steps, dtype=dtype)
    return r if align_corners else r * ((steps - 1) / steps)


def affine_grid(theta, size, align_corners: bool | None = None):
    """The sampling grid of a batch of affine maps ``theta``, (N, 2, 3) for a 4-D ``size``
    (N, C, H, W) or (N, 3, 4) for a 5-D one: point ``(x, y[, z])`` of the output's normalized
    coordinates maps to ``theta @ (x, y[, z], 1)``. Feed it to ``grid_sample``.

    >>> import jitgrad
    >>> import jitgrad.nn.functional as F
    >>> identity = jitgrad.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    >>> F.affine_grid(identity, (1, 1, 1, 2), align_corners=True)
    tensor([[[[-1.,  0.],
              [ 1.,  0.]]]])
    """
    if not isinstance(theta, Tensor):
        raise TypeError(f"affine_grid(): argument 'theta' must be a Tensor, not "
                        f"{type(theta).__name__}")
    if not theta.dtype.is_floating_point:
        raise ValueError(f"Expected theta to have floating point type, but got "
                         f"{theta.dtype.name}")
    if align_corners is None:
        warnings.warn(_ALIGN_WARNING, UserWarning, stacklevel=2)
        align_corners = False
    size = tuple(int(s) for s in size)
    if len(size) not in (4, 5):
        raise NotImplementedError(f"affine_grid only supports 4D and 5D sizes, for 2D and 3D "
                                  f"affine transforms, respectively. Got size {list(size)}.")
    d = len(size) - 2
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (d, d + 1):
        raise ValueError(f"Expected a batch of {d}D affine matrices of shape Nx{d}x{d + 1} for "
                         f"size {list(size)}. Got {list(theta.shape)}.")
    if theta.shape[0] != size[0]:
        raise ValueError(f"affine_grid: theta's batch size {theta.shape[0]} differs from "
                         f"size[0] = {size[0]}")
    if min(size) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {list(size)}")
    if align_corners and any(s == 1 for s in size[2:]):
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size "
                      "grids when align_corners=True. This is not an issue for standard "
                      "use-cases.", UserWarning, stacklevel=2)
    spatial = size[2:]  # (D,) H, W
    axes = [_base_coords(s, bool(align_corners), theta.dtype) for s in spatial[::-1]]
    # base[..., k]: the k-th coordinate (x, y, z) over the output's spatial grid, then 1
    mesh = list(meshgrid(*axes[::-1], indexing="ij"))  # each of shape spatial
    base = ops.stack(mesh[::-1] + [factories.ones(spatial, dtype=theta.dtype)], -1)
    grid = ops.matmul(base.reshape(1, math.prod(spatial), d + 1), theta.transpose(1, 2))
    return grid.reshape(size[0], *spatial, d)
