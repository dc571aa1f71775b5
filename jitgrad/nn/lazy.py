"""torch's lazy modules: convolutions and normalizations whose input channels are read from
their first input (``LazyConv2d``, ``LazyBatchNorm2d``...), and ``LazyModuleMixin``, the
machinery they share. Until the first call their parameters (and running statistics) are
placeholders; the call gives the same objects their shapes, draws torch's default
initialisation, and the module becomes the plain class (``Conv2d``, ``BatchNorm2d``...), as
torch's ``cls_to_become``. A state dict loaded before the first call gives the placeholders
their shapes and values instead. ``LazyLinear`` lives here too, with the machinery it shares.

>>> import jitgrad
>>> conv = jitgrad.nn.LazyConv2d(4, 3)
>>> conv.has_uninitialized_params()
True
>>> conv(jitgrad.ones(1, 2, 5, 5)).shape
jitgrad.Size([1, 4, 3, 3])
>>> conv
Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1))
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes, factories
from jitgrad.errors import ShapeError, TraceError
from jitgrad.nn import init
from jitgrad.nn.conv import Conv1d, Conv2d
from jitgrad.nn.conv_transpose import ConvTranspose1d, ConvTranspose2d
from jitgrad.nn.layers import Linear
from jitgrad.nn.module import Module
from jitgrad.nn.groupnorm import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d
from jitgrad.nn.more_modules import Conv3d, ConvTranspose3d
from jitgrad.nn.norm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from jitgrad.nn.parameter import UninitializedBuffer, UninitializedParameter, _Placeholder
from jitgrad.ops.registry import trace_state
from jitgrad.tensor import Tensor


def _is_lazy(t) -> bool:
    return isinstance(t, _Placeholder)


class _QuietInit:
    """Keeps the global generator's state across a non-lazy ``__init__`` that draws weights a
    lazy module throws away (torch's lazy modules draw nothing before their first call, so a
    seeded program's later draws match torch's)."""

    def __enter__(self) -> None:
        self._gen = factories.default_generator.gen
        self._state = self._gen.bit_generator.state

    def __exit__(self, *exc) -> None:
        self._gen.bit_generator.state = self._state


class LazyModuleMixin:
    """What torch's lazy modules share (``torch.nn.modules.lazy.LazyModuleMixin``): placeholders
    until the first call, ``has_uninitialized_params``, ``initialize_parameters`` and the change
    to ``cls_to_become`` once the shapes are known. A subclass lists the shape of each entry
    in ``_shapes`` and its channel count in ``_infer``.

    >>> import jitgrad
    >>> bn = jitgrad.nn.LazyBatchNorm1d()
    >>> isinstance(bn, jitgrad.nn.modules.lazy.LazyModuleMixin), bn.has_uninitialized_params()
    (True, True)
    >>> bn(jitgrad.randn(4, 3)).shape, type(bn).__name__
    (jitgrad.Size([4, 3]), 'BatchNorm1d')
    """

    cls_to_become: type | None = None
    # The attributes ``_infer`` sets from the input (``in_channels``...): a first call that
    # fails puts them back with the placeholders, so the module is as it was before the call.
    _inferred: tuple[str, ...] = ()

    def has_uninitialized_params(self) -> bool:
        """Whether a parameter or buffer is still a placeholder."""
        return any(_is_lazy(t) for t in (*self._parameters.values(), *self._buffers.values()))

    def _lazy_entries(self) -> list:
        """(name, tensor) of the parameters and buffers the module takes shapes for."""
        return [(n, t) for n, t in (*self._parameters.items(), *self._buffers.items())
                if t is not None and n in self._shaped]

    def initialize_parameters(self, input, *args, **kwargs) -> None:  # noqa: A002
        """Read the channel count from ``input`` (or from entries a state dict has filled) and
        give every placeholder its shape; those filled afresh get torch's initialisation."""
        inferred = {n: getattr(self, n) for n in self._inferred}
        placeholders: list = []
        try:
            self._infer(input)
            entries = self._lazy_entries()
            fresh = [(n, t) for n, t in entries if _is_lazy(t)]
            if not fresh:
                return
            if trace_state.builder is not None:
                # Its initial weights would be random numbers frozen into the compiled code.
                raise TraceError(
                    f"{type(self).__name__} is called for the first time inside a compiled "
                    f"function, where it would draw its initial {', '.join(n for n, _ in fresh)}"
                    "; call the module once outside compiled code (on a sample input) so its "
                    "shapes are known, then compile")
            # Entries a state dict has already filled keep their values (a partial load).
            kept = [(t, t._value.copy()) for t in (*self._parameters.values(),
                                                   *self._buffers.values())
                    if t is not None and not _is_lazy(t)]
            shapes = self._shapes()
            placeholders = [(t, type(t), t._value) for _, t in fresh]
            for n, t in fresh:
                t.materialize(shapes[n])
            self.reset_parameters()
        except BaseException:
            # All or nothing: a first call that fails (a bad input, a first call inside a
            # compiled function, or its draws) leaves the placeholders, not uninitialised
            # memory that a later call would take for loaded values, and the attributes read
            # from the input as they were.
            for t, cls, value in placeholders:
                t._value, t.__class__ = value, cls
            for n, v in inferred.items():
                setattr(self, n, v)
            raise
        for t, value in kept:
            t._value[...] = value
            t._vc[0] += 1

    def forward(self, *args, **kwargs):
        self.initialize_parameters(*args, **kwargs)
        if self.has_uninitialized_params():
            raise RuntimeError(f"module {type(self).__name__} has not been fully initialized")
        if self.cls_to_become is not None:
            self.__class__ = self.cls_to_become
        return type(self).forward(self, *args, **kwargs)

    def _prepare_state(self, prefix: str, state: dict) -> None:
        """A state dict loaded before the first call gives the placeholders the shapes of its
        entries (torch's lazy load hook). The shapes are checked against the module's settings
        first: one that does not fit changes nothing. Parameters are left to
        ``load_state_dict``, which materializes them as it copies, so a load refused for a
        missing key leaves them placeholders; a buffer (which it does not materialize) gets
        its shape and the loaded value here at once, never uninitialised memory that a later
        first call would take for loaded values."""
        shapes, values = {}, {}
        for n, t in self._lazy_entries():
            v = state.get(prefix + n)
            if _is_lazy(t) and v is not None and not _is_lazy(v):
                shapes[n] = tuple(int(s) for s in v.shape)
                values[n] = v
        if shapes:
            self._check_loaded(prefix, shapes)
            for n, shape in shapes.items():
                if n in self._buffers:
                    t, v = self._buffers[n], values[n]
                    t.materialize(shape)
                    t._value[...] = v._value if isinstance(v, Tensor) else np.asarray(v)
                    t._vc[0] += 1
        super_prepare = getattr(super(), "_prepare_state", None)
        if super_prepare is not None:
            super_prepare(prefix, state)

    def _mismatch(self, prefix: str, name: str, shape: tuple, want: str) -> ShapeError:
        return ShapeError(f"size mismatch for {prefix}{name}: copying a param with shape {shape} "
                          f"from checkpoint into a {type(self).__name__} that wants {want}")


# -- convolutions ---------------------------------------------------------------------------------

class _LazyConvMixin(LazyModuleMixin):
    _spatial = 2
    transposed = False
    _shaped = ("weight", "bias")
    _inferred = ("in_channels",)

    def _lazy_init(self, out_channels: int, groups: int, bias: bool, dtype) -> None:
        """Replace the weights the non-lazy ``__init__`` made (for groups channels) by
        placeholders, and set the channels as torch's lazy convolution has them."""
        self.weight = UninitializedParameter(factories.empty(0, dtype=dtype))
        if bias:
            self.bias = UninitializedParameter(factories.empty(0, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.in_channels, self.out_channels = 0, out_channels

    def reset_parameters(self) -> None:
        """torch's initialisation: Kaiming-uniform with a = sqrt(5), the bias within
        1/sqrt(fan_in) (fan_in read from the weight's dim 1, as torch's)."""
        if self.has_uninitialized_params() or not self.in_channels:
            return  # nothing to draw before the shapes are known
        init._default_(self.weight, self.bias)

    def _infer(self, input) -> None:  # noqa: A002
        batched = self._spatial + 2
        if input.ndim not in (batched - 1, batched):
            raise ShapeError(f"Expected {batched - 1}D (unbatched) or {batched}D (batched) input "
                             f"to {type(self).__name__}, but got input of size: "
                             f"{list(input.shape)}")
        w = self.weight
        if not _is_lazy(w):  # loaded from a state dict: its shape says
            self.in_channels = int(w.shape[0]) if self.transposed else \
                int(w.shape[1]) * self.groups
            return
        self.in_channels = int(input.shape[1 if input.ndim == batched else 0])
        if self.in_channels % self.groups:
            raise ValueError(f"in_channels must be divisible by groups: {type(self).__name__} "
                             f"got an input of size {list(input.shape)} ({self.in_channels} "
                             f"channels) with groups={self.groups}")

    def _shapes(self) -> dict:
        k, g = tuple(self.kernel_size), self.groups
        w = (self.in_channels, self.out_channels // g, *k) if self.transposed else \
            (self.out_channels, self.in_channels // g, *k)
        return {"weight": w, "bias": (self.out_channels,)}

    def _check_loaded(self, prefix: str, shapes: dict) -> None:
        k, g, out = tuple(self.kernel_size), self.groups, self.out_channels
        w = shapes.get("weight")
        if w is not None:
            fits = len(w) == 2 + len(k) and tuple(w[2:]) == k and (
                w[1] * g == out if self.transposed else w[0] == out)
            if not fits:
                want = (f"(in_channels, {out // g}, {', '.join(map(str, k))})" if
                        self.transposed else f"({out}, in_channels/{g}, "
                        f"{', '.join(map(str, k))})")
                raise self._mismatch(prefix, "weight", w, f"a weight of shape {want}")
        b = shapes.get("bias")
        if b is not None and b != (out,):
            raise self._mismatch(prefix, "bias", b, f"a bias of shape ({out},)")


def _zeros_only(name: str, padding_mode: str) -> None:
    if padding_mode != "zeros":
        raise ValueError(f"{name}: padding_mode={padding_mode!r} is not supported yet (jitgrad's "
                         f"{name[4:]} pads with zeros; LazyConv3d takes every mode)")


class LazyConv1d(_LazyConvMixin, Conv1d):
    """A ``Conv1d`` whose ``in_channels`` is read from its first input (dim 1 of (N, C, L), dim
    0 of an unbatched (C, L)), as ``torch.nn.LazyConv1d``.

    >>> import jitgrad
    >>> conv = jitgrad.nn.LazyConv1d(4, 3, padding=1)
    >>> conv
    LazyConv1d(0, 4, kernel_size=(3,), stride=(1,), padding=(1,))
    >>> conv(jitgrad.ones(2, 6, 8)).shape, conv.weight.shape
    (jitgrad.Size([2, 4, 8]), jitgrad.Size([4, 6, 3]))
    """

    cls_to_become = Conv1d
    _spatial = 1

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None,
                 dtype=None) -> None:
        from jitgrad.devices import check_host
        check_host(device)
        _zeros_only("LazyConv1d", padding_mode)
        one = lambda v: v[0] if isinstance(v, (tuple, list)) else v  # noqa: E731
        with _QuietInit():
            Conv1d.__init__(self, groups, groups, one(kernel_size), one(stride),
                            padding if isinstance(padding, (str, int)) else tuple(padding),
                            one(dilation), groups, False, dtype)
        self._lazy_init(out_channels, groups, bias, dtype)


class LazyConv2d(_LazyConvMixin, Conv2d):
    """A ``Conv2d`` whose ``in_channels`` is read from its first input (dim 1 of (N, C, H, W),
    dim 0 of an unbatched (C, H, W)), as ``torch.nn.LazyConv2d``.

    >>> import jitgrad
    >>> conv = jitgrad.nn.LazyConv2d(8, 3, stride=2, groups=2)
    >>> conv
    LazyConv2d(0, 8, kernel_size=(3, 3), stride=(2, 2), groups=2)
    >>> conv(jitgrad.ones(1, 4, 7, 7)).shape, conv.weight.shape
    (jitgrad.Size([1, 8, 3, 3]), jitgrad.Size([8, 2, 3, 3]))
    """

    cls_to_become = Conv2d
    _spatial = 2

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None,
                 dtype=None) -> None:
        from jitgrad.devices import check_host
        check_host(device)
        _zeros_only("LazyConv2d", padding_mode)
        with _QuietInit():
            Conv2d.__init__(self, groups, groups, kernel_size, stride, padding, dilation, groups,
                            False, dtype)
        self._lazy_init(out_channels, groups, bias, dtype)


class LazyConv3d(_LazyConvMixin, Conv3d):
    """A ``Conv3d`` whose ``in_channels`` is read from its first input (dim 1 of
    (N, C, D, H, W), dim 0 of an unbatched (C, D, H, W)), as ``torch.nn.LazyConv3d``.

    >>> import jitgrad
    >>> conv = jitgrad.nn.LazyConv3d(2, 3, padding=1, bias=False)
    >>> conv(jitgrad.ones(1, 3, 4, 4, 4)).shape, conv.weight.shape
    (jitgrad.Size([1, 2, 4, 4, 4]), jitgrad.Size([2, 3, 3, 3, 3]))
    >>> conv
    Conv3d(3, 2, kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=(1, 1, 1), bias=False)
    """

    cls_to_become = Conv3d
    _spatial = 3

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None,
                 dtype=None) -> None:
        with _QuietInit():
            Conv3d.__init__(self, groups, groups, kernel_size, stride, padding, dilation, groups,
                            False, padding_mode, device, dtype)
        self._lazy_init(out_channels, groups, bias, dtype)


class _LazyConvTransposeMixin(_LazyConvMixin):
    transposed = True

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        with _QuietInit():
            self.cls_to_become.__init__(self, groups, groups, kernel_size, stride, padding,
                                        output_padding, groups, False, dilation, padding_mode,
                                        device, dtype)
        self._lazy_init(out_channels, groups, bias, dtype)


class LazyConvTranspose1d(_LazyConvTransposeMixin, ConvTranspose1d):
    """A ``ConvTranspose1d`` whose ``in_channels`` is read from its first input, as
    ``torch.nn.LazyConvTranspose1d`` (its weight is (in_channels, out_channels / groups, k)).

    >>> import jitgrad
    >>> up = jitgrad.nn.LazyConvTranspose1d(2, 3, stride=2)
    >>> up(jitgrad.ones(1, 5, 4)).shape, up.weight.shape
    (jitgrad.Size([1, 2, 9]), jitgrad.Size([5, 2, 3]))
    """

    cls_to_become = ConvTranspose1d
    _spatial = 1


class LazyConvTranspose2d(_LazyConvTransposeMixin, ConvTranspose2d):
    """A ``ConvTranspose2d`` whose ``in_channels`` is read from its first input, as
    ``torch.nn.LazyConvTranspose2d``.

    >>> import jitgrad
    >>> up = jitgrad.nn.LazyConvTranspose2d(4, 3, stride=2, output_padding=1)
    >>> up
    LazyConvTranspose2d(0, 4, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1))
    >>> up(jitgrad.ones(1, 6, 3, 3)).shape
    jitgrad.Size([1, 4, 8, 8])
    """

    cls_to_become = ConvTranspose2d
    _spatial = 2


class LazyConvTranspose3d(_LazyConvTransposeMixin, ConvTranspose3d):
    """A ``ConvTranspose3d`` whose ``in_channels`` is read from its first input, as
    ``torch.nn.LazyConvTranspose3d``.

    >>> import jitgrad
    >>> up = jitgrad.nn.LazyConvTranspose3d(2, 2, stride=2)
    >>> up(jitgrad.ones(1, 3, 2, 2, 2)).shape, up.weight.shape
    (jitgrad.Size([1, 2, 4, 4, 4]), jitgrad.Size([3, 2, 2, 2, 2]))
    """

    cls_to_become = ConvTranspose3d
    _spatial = 3


# -- normalizations -------------------------------------------------------------------------------

class _LazyNormMixin(LazyModuleMixin):
    _shaped = ("weight", "bias", "running_mean", "running_var")
    _inferred = ("num_features",)
    _ranks: tuple = (2, 3)
    _unbatched: int | None = None  # the rank of an unbatched input (instance norms take one)

    def _lazy_init(self, affine: bool, track_running_stats: bool, bias: bool, dtype) -> None:
        """Placeholders where the non-lazy ``__init__`` (made with neither) has ``None``, as
        torch's ``_LazyNormBase``."""
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = UninitializedParameter(factories.empty(0, dtype=dtype))
            if bias:
                self.bias = UninitializedParameter(factories.empty(0, dtype=dtype))
        if track_running_stats:
            self.register_buffer("running_mean", UninitializedBuffer(dtype=dtype))
            self.register_buffer("running_var", UninitializedBuffer(dtype=dtype))
            # (instance norms too: torch's lazy ones have it, so their state dicts match)
            self.register_buffer("num_batches_tracked", factories.tensor(0, dtype=dtypes.int64))

    def reset_parameters(self) -> None:
        """torch's: running statistics 0 and 1 (the batch count 0), weight 1 and bias 0."""
        if self.has_uninitialized_params() or not self.num_features:
            return
        for name, fill in (("running_mean", 0.0), ("running_var", 1.0), ("num_batches_tracked", 0),
                           ("weight", 1.0), ("bias", 0.0)):
            t = self._parameters.get(name, self._buffers.get(name))
            if t is not None:
                t._value[...] = fill
                t._vc[0] += 1

    def _infer(self, input) -> None:  # noqa: A002
        if input.ndim not in self._ranks:
            ranks = " or ".join(f"{r}D" for r in self._ranks)
            raise ShapeError(f"expected {ranks} input (got {input.ndim}D input): "
                             f"{type(self).__name__} got an input of size {list(input.shape)}")
        done = [t for _, t in self._lazy_entries() if not _is_lazy(t)]
        if done:  # loaded from a state dict: its shapes say
            self.num_features = int(done[0].shape[0])
        elif self._lazy_entries() or self._needs_features:
            self.num_features = int(input.shape[0 if input.ndim == self._unbatched else 1])
        # (else, with neither affine nor running statistics, torch leaves num_features at 0)

    def _shapes(self) -> dict:
        return dict.fromkeys(self._shaped, (self.num_features,))

    def _check_loaded(self, prefix: str, shapes: dict) -> None:
        for n, s in shapes.items():
            if len(s) != 1:
                raise self._mismatch(prefix, n, s, "a 1-D tensor (num_features,)")
        sizes = set(shapes.values())
        if len(sizes) > 1:
            raise self._mismatch(prefix, next(iter(shapes)), next(iter(sizes)),
                                 f"one length for all of {', '.join(shapes)} (got "
                                 f"{sorted(s[0] for s in sizes)})")


class _LazyBatchNorm(_LazyNormMixin):
    # jitgrad's BatchNorm checks the input's channels against num_features, so it is read from
    # the input even with neither affine nor running statistics (torch leaves it 0 there)
    _needs_features = True

    def __init__(self, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *,
                 bias: bool = True) -> None:
        from jitgrad.devices import check_host
        check_host(device)
        self.cls_to_become.__init__(self, 0, eps, momentum, False, False, dtype)
        self._lazy_init(affine, track_running_stats, bias, dtype)


class LazyBatchNorm1d(_LazyBatchNorm, BatchNorm1d):
    """A ``BatchNorm1d`` whose ``num_features`` is read from dim 1 of its first input ((N, C)
    or (N, C, L)), as ``torch.nn.LazyBatchNorm1d``; its running statistics are
    ``UninitializedBuffer`` placeholders until then.

    >>> import jitgrad
    >>> bn = jitgrad.nn.LazyBatchNorm1d()
    >>> bn
    LazyBatchNorm1d(0, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    >>> bn(jitgrad.randn(4, 3, 5)).shape, bn.running_mean.shape
    (jitgrad.Size([4, 3, 5]), jitgrad.Size([3]))
    """

    cls_to_become = BatchNorm1d
    _ranks = (2, 3)


class LazyBatchNorm2d(_LazyBatchNorm, BatchNorm2d):
    """A ``BatchNorm2d`` whose ``num_features`` is read from dim 1 of its first (N, C, H, W)
    input, as ``torch.nn.LazyBatchNorm2d``.

    >>> import jitgrad
    >>> bn = jitgrad.nn.LazyBatchNorm2d(affine=False)
    >>> bn(jitgrad.randn(2, 3, 4, 4)).shape, sorted(bn.state_dict())
    (jitgrad.Size([2, 3, 4, 4]), ['num_batches_tracked', 'running_mean', 'running_var'])
    """

    cls_to_become = BatchNorm2d
    _ranks = (4,)


class LazyBatchNorm3d(_LazyBatchNorm, BatchNorm3d):
    """A ``BatchNorm3d`` whose ``num_features`` is read from dim 1 of its first
    (N, C, D, H, W) input, as ``torch.nn.LazyBatchNorm3d``.

    >>> import jitgrad
    >>> bn = jitgrad.nn.LazyBatchNorm3d()
    >>> bn(jitgrad.randn(2, 3, 2, 2, 2)).shape, type(bn).__name__, bn.num_features
    (jitgrad.Size([2, 3, 2, 2, 2]), 'BatchNorm3d', 3)
    """

    cls_to_become = BatchNorm3d
    _ranks = (5,)


class _LazyInstanceNorm(_LazyNormMixin):
    _needs_features = False

    def __init__(self, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *,
                 bias: bool = True) -> None:
        # (affine and track_running_stats default to True here, unlike InstanceNorm's: torch's
        # lazy instance norms share its lazy batch norms' defaults)
        self.cls_to_become.__init__(self, 0, eps, momentum, False, False, device, dtype,
                                    bias=False)
        self._lazy_init(affine, track_running_stats, bias, dtype)


class LazyInstanceNorm1d(_LazyInstanceNorm, InstanceNorm1d):
    """An ``InstanceNorm1d`` whose ``num_features`` is read from its first input's channels
    (dim 1 of (N, C, L), dim 0 of an unbatched (C, L)), as ``torch.nn.LazyInstanceNorm1d``
    (affine and with running statistics by default, as torch's).

    >>> import jitgrad
    >>> norm = jitgrad.nn.LazyInstanceNorm1d()
    >>> norm(jitgrad.randn(2, 3, 5)).shape, norm.weight.shape
    (jitgrad.Size([2, 3, 5]), jitgrad.Size([3]))
    """

    cls_to_become = InstanceNorm1d
    _ranks, _unbatched = (2, 3), 2


class LazyInstanceNorm2d(_LazyInstanceNorm, InstanceNorm2d):
    """An ``InstanceNorm2d`` whose ``num_features`` is read from its first input's channels,
    as ``torch.nn.LazyInstanceNorm2d``.

    >>> import jitgrad
    >>> norm = jitgrad.nn.LazyInstanceNorm2d(affine=False, track_running_stats=False)
    >>> norm.has_uninitialized_params(), norm(jitgrad.randn(2, 3, 4, 4)).shape
    (False, jitgrad.Size([2, 3, 4, 4]))
    """

    cls_to_become = InstanceNorm2d
    _ranks, _unbatched = (3, 4), 3


class LazyInstanceNorm3d(_LazyInstanceNorm, InstanceNorm3d):
    """An ``InstanceNorm3d`` whose ``num_features`` is read from its first input's channels,
    as ``torch.nn.LazyInstanceNorm3d``.

    >>> import jitgrad
    >>> norm = jitgrad.nn.LazyInstanceNorm3d()
    >>> norm(jitgrad.randn(2, 3, 2, 2, 2)).shape, norm.running_var.shape
    (jitgrad.Size([2, 3, 2, 2, 2]), jitgrad.Size([3]))
    """

    cls_to_become = InstanceNorm3d
    _ranks, _unbatched = (4, 5), 4


class LazyLinear(LazyModuleMixin, Linear):
    """A ``Linear`` whose ``in_features`` is read from its first input, as
    ``torch.nn.LazyLinear``. Until then its parameters are empty placeholders; the first call
    fills the same Parameter objects in place (an optimizer made afterwards sees them), draws
    torch's default initialisation, and the module becomes a plain ``Linear``. The first call,
    the rollback of one that fails and a state dict loaded before it are ``LazyModuleMixin``'s,
    as for the lazy convolutions.

    >>> import jitgrad
    >>> fc = jitgrad.nn.LazyLinear(2)
    >>> fc
    LazyLinear(in_features=0, out_features=2, bias=True)
    >>> fc(jitgrad.ones(5, 7)).shape
    jitgrad.Size([5, 2])
    >>> fc
    Linear(in_features=7, out_features=2, bias=True)
    """

    cls_to_become = Linear
    _shaped = ("weight", "bias")
    _inferred = ("in_features",)

    def __init__(self, out_features: int, bias: bool = True, dtype=None) -> None:
        Module.__init__(self)  # (not Linear's: it would draw weights that are thrown away)
        self.in_features, self.out_features = 0, out_features
        self.weight = UninitializedParameter(factories.empty(0, dtype=dtype))
        if bias:
            self.bias = UninitializedParameter(factories.empty(0, dtype=dtype))
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        # nothing to draw before the shapes are known (torch's condition)
        if self.in_features and not self.has_uninitialized_params():
            super().reset_parameters()

    def _infer(self, input) -> None:  # noqa: A002
        if input.ndim == 0:
            raise ShapeError("LazyLinear: the input must have at least one dimension (its last "
                             "one gives in_features), got a 0-d tensor")
        w = self.weight
        # a weight loaded from a state dict says; an attribute write, which compiled functions see
        self.in_features = int(input.shape[-1]) if isinstance(w, UninitializedParameter) \
            else int(w.shape[-1])

    def _shapes(self) -> dict:
        return {"weight": (self.out_features, self.in_features), "bias": (self.out_features,)}

    def _check_loaded(self, prefix: str, shapes: dict) -> None:
        # (torch would take any shape, and fail at the call)
        for name, fits in (("weight", lambda s: len(s) == 2 and s[0] == self.out_features),
                           ("bias", lambda s: s == (self.out_features,))):
            s = shapes.get(name)
            if s is not None and not fits(s):
                raise ShapeError(f"size mismatch for {prefix}{name}: copying a param with shape "
                                 f"{s} from checkpoint into a LazyLinear with "
                                 f"out_features={self.out_features}")
