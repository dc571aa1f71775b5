"""Channel-wise and alpha dropout, as torch's: ``dropout1d``/``dropout2d``/``dropout3d``,
``alpha_dropout``, ``feature_alpha_dropout`` and their Modules. One rule serves them all (ATen's
``_dropout_impl``): a Bernoulli(1 - p) mask, per element or per (sample, channel), drawn with
jitgrad's generator (so ``manual_seed`` reproduces it, and a compiled function draws afresh at
every call, as ``dropout``), then ``input * mask / (1 - p)``, or for alpha dropout the affine
map that keeps a SELU network's zero mean and unit variance.

>>> import jitgrad
>>> drop = jitgrad.nn.Dropout2d(p=0.5)
>>> out = drop(jitgrad.ones(2, 3, 4, 4))
>>> bool(((out == 0) | (out == 2)).all()), bool((out == out[:, :, :1, :1]).all())
(True, True)
>>> drop.eval()(jitgrad.ones(2, 3, 4, 4)).sum().item()
96.0
"""

from __future__ import annotations

import warnings

from jitgrad.nn.norm import DropoutNd, _dropout_impl, check_p

def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False):  # noqa: A002
    """Zero whole channels of ``input`` (N, C, L) or unbatched (C, L) with probability ``p``,
    scaling the rest by ``1 / (1 - p)``."""
    check_p(p)
    if input.ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. "
            "Note that dropout1d exists to provide channel-wise dropout on inputs with 1 "
            "spatial dimension, a channel dimension, and an optional batch dimension "
            "(i.e. 2D or 3D inputs).")
    return _dropout_impl(input, p, training, inplace, True, False, unbatched=input.ndim == 2)


def _rank_warning(name: str, nd: int, spatial: int) -> None:
    """torch's warning for an input rank that channel-wise dropout will refuse one day."""
    warnings.warn(
        f"{name}: Received a {nd}-D input to {name}, which is deprecated "
        "and will result in an error in a future release. To retain the behavior "
        f"and silence this warning, please use dropout instead. Note that {name} "
        f"exists to provide channel-wise dropout on inputs with {spatial} spatial dimensions, "
        "a channel dimension, and an optional batch dimension (i.e. "
        f"{spatial + 1}D or {spatial + 2}D inputs).", stacklevel=3)


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False):  # noqa: A002
    """Zero whole channels of ``input`` (N, C, H, W) with probability ``p``. As torch, a 3-D
    input is read as (N, C, L) (with a warning), and other ranks warn."""
    check_p(p)
    nd = input.ndim
    if nd not in (3, 4):
        _rank_warning("dropout2d", nd, 2)
    if nd == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
            "1D dropout behavior is desired - input is interpreted as shape (N, C, L), where C "
            "is the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2)
    return _dropout_impl(input, p, training, inplace, True, False)


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False):  # noqa: A002
    """Zero whole channels of ``input`` (N, C, D, H, W) or unbatched (C, D, H, W) with
    probability ``p``; other ranks warn, as torch's."""
    check_p(p)
    nd = input.ndim
    if nd not in (4, 5):
        _rank_warning("dropout3d", nd, 3)
    return _dropout_impl(input, p, training, inplace, True, False, unbatched=nd != 5)


def alpha_dropout(input, p: float = 0.5, training: bool = False,  # noqa: A002
                  inplace: bool = False):
    """Alpha dropout (Self-Normalizing Neural Networks): dropped elements go to SELU's negative
    saturation, then an affine map keeps the mean and variance. Off unless ``training``."""
    check_p(p)
    return _dropout_impl(input, p, training, inplace, False, True)


def feature_alpha_dropout(input, p: float = 0.5, training: bool = False,  # noqa: A002
                          inplace: bool = False):
    """``alpha_dropout`` of whole channels (dim 1 of a batched input)."""
    check_p(p)
    return _dropout_impl(input, p, training, inplace, True, True)


class Dropout1d(DropoutNd):
    """``torch.nn.Dropout1d``: whole channels of (N, C, L) or (C, L) zeroed while training.

    >>> import jitgrad
    >>> jitgrad.nn.Dropout1d(0.2)
    Dropout1d(p=0.2, inplace=False)
    """

    def forward(self, input):  # noqa: A002
        return dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(DropoutNd):
    def forward(self, input):  # noqa: A002
        return dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(DropoutNd):
    def forward(self, input):  # noqa: A002
        return dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(DropoutNd):
    def forward(self, input):  # noqa: A002
        return alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(DropoutNd):
    def forward(self, input):  # noqa: A002
        return feature_alpha_dropout(input, self.p, self.training)
