"""``torch.nn.modules``: the layers under the submodule names torch files them in, so a program
that spells a class by its full path (``torch.nn.modules.rnn.LSTM``, as lists of safe globals
for ``torch.load`` do) finds jitgrad's. The classes are jitgrad.nn's own; each submodule here
only names them.

>>> import jitgrad
>>> from jitgrad.nn.modules.rnn import LSTM
>>> LSTM is jitgrad.nn.LSTM, jitgrad.nn.modules.container.ModuleList is jitgrad.nn.ModuleList
(True, True)
"""

from __future__ import annotations

import sys
import types

from jitgrad.nn import (  # the modules that define the classes (jitgrad.nn's own imports)
    activations as _activations, attention as _attention, bilinear as _bilinear, conv as _conv,
    conv_transpose as _conv_transpose, ctc as _ctc, distance as _distance,
    dropout_more as _dropout_more, embedding_bag as _embedding_bag,
    fractional_pool as _fractional_pool, groupnorm as _groupnorm, layers as _layers,
    lazy as _lazy, losses as _losses, module as _module, more_modules as _more_modules,
    norm as _norm, pad as _pad, pooling as _pooling, resample as _resample, rnn as _rnn,
    transformer as _transformer, unpool as _unpool,
)
from jitgrad.nn.attention import NonDynamicallyQuantizableLinear

# torch's file for each class jitgrad.nn has (torch.nn.modules.<file>.<Class>)
_LAYOUT = {
    "module": "Module",
    "activation": "Threshold ReLU RReLU Hardtanh ReLU6 Sigmoid Hardsigmoid Tanh SiLU Mish "
                  "Hardswish ELU CELU SELU GLU GELU Hardshrink LeakyReLU LogSigmoid Softplus "
                  "Softshrink MultiheadAttention PReLU Softsign Tanhshrink Softmin Softmax "
                  "Softmax2d LogSoftmax",
    "batchnorm": "BatchNorm1d BatchNorm2d BatchNorm3d LazyBatchNorm1d LazyBatchNorm2d "
                 "LazyBatchNorm3d",
    "channelshuffle": "ChannelShuffle",
    "container": "Sequential ModuleList ModuleDict ParameterList ParameterDict",
    "conv": "Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d ConvTranspose3d LazyConv1d "
            "LazyConv2d LazyConv3d LazyConvTranspose1d LazyConvTranspose2d LazyConvTranspose3d",
    "distance": "PairwiseDistance CosineSimilarity",
    "dropout": "Dropout Dropout1d Dropout2d Dropout3d AlphaDropout FeatureAlphaDropout",
    "flatten": "Flatten Unflatten",
    "fold": "Fold Unfold",
    "instancenorm": "InstanceNorm1d InstanceNorm2d InstanceNorm3d LazyInstanceNorm1d "
                    "LazyInstanceNorm2d LazyInstanceNorm3d",
    "lazy": "",  # (its LazyModuleMixin, which torch.nn does not export, is in _EXTRA)
    "linear": "Identity Linear Bilinear LazyLinear",
    "loss": "CTCLoss L1Loss NLLLoss PoissonNLLLoss GaussianNLLLoss KLDivLoss MSELoss BCELoss "
            "BCEWithLogitsLoss HingeEmbeddingLoss MultiLabelMarginLoss SmoothL1Loss HuberLoss "
            "SoftMarginLoss CrossEntropyLoss MultiLabelSoftMarginLoss CosineEmbeddingLoss "
            "MarginRankingLoss MultiMarginLoss TripletMarginLoss TripletMarginWithDistanceLoss",
    "normalization": "LocalResponseNorm LayerNorm GroupNorm RMSNorm",
    "padding": "CircularPad1d CircularPad2d CircularPad3d ConstantPad1d ConstantPad2d "
               "ConstantPad3d ReflectionPad1d ReflectionPad2d ReflectionPad3d ReplicationPad1d "
               "ReplicationPad2d ReplicationPad3d ZeroPad1d ZeroPad2d ZeroPad3d",
    "pixelshuffle": "PixelShuffle PixelUnshuffle",
    "pooling": "MaxPool1d MaxPool2d MaxPool3d MaxUnpool1d MaxUnpool2d MaxUnpool3d AvgPool1d "
               "AvgPool2d AvgPool3d LPPool1d LPPool2d AdaptiveMaxPool1d AdaptiveMaxPool2d "
               "AdaptiveMaxPool3d AdaptiveAvgPool1d AdaptiveAvgPool2d AdaptiveAvgPool3d "
               "FractionalMaxPool2d FractionalMaxPool3d",
    "rnn": "RNN LSTM GRU RNNCell LSTMCell GRUCell",
    "sparse": "Embedding EmbeddingBag",
    "transformer": "Transformer TransformerEncoder TransformerDecoder TransformerEncoderLayer "
                   "TransformerDecoderLayer",
    "upsampling": "Upsample UpsamplingNearest2d UpsamplingBilinear2d",
}
# Where each class is read from: the module defining it, as jitgrad.nn's __init__ imports it.
_HOMES = (_activations, _attention, _bilinear, _conv, _conv_transpose, _ctc, _distance,
          _dropout_more, _embedding_bag, _fractional_pool, _groupnorm, _layers, _lazy, _losses,
          _module, _more_modules, _norm, _pad, _pooling, _resample, _rnn, _transformer, _unpool)
_EXTRA = {"linear": {"NonDynamicallyQuantizableLinear": NonDynamicallyQuantizableLinear},
          "lazy": {"LazyModuleMixin": _lazy.LazyModuleMixin}}


def _class(name: str) -> type:
    """jitgrad.nn's class ``name``, read from the module that defines it."""
    for home in _HOMES:
        cls = getattr(home, name, None)
        if cls is not None and cls.__module__ == home.__name__:
            return cls
    raise AttributeError(f"no module of jitgrad.nn defines {name}")


def _submodule(name: str, classes: str) -> types.ModuleType:
    mod = types.ModuleType(f"{__name__}.{name}", f"torch.nn.modules.{name}'s classes")
    for cls in classes.split():
        setattr(mod, cls, _class(cls))
    for cls, obj in _EXTRA.get(name, {}).items():
        setattr(mod, cls, obj)
    sys.modules[mod.__name__] = mod  # so ``import jitgrad.nn.modules.rnn`` finds it
    return mod


for _name, _classes in _LAYOUT.items():
    _mod = globals()[_name] = _submodule(_name, _classes)
    for _cls in _classes.split():
        globals()[_cls] = getattr(_mod, _cls)
del _name, _classes, _cls, _mod
