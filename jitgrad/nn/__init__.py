"""Neural-network building blocks with torch's names.

>>> import jitgrad
>>> layer = jitgrad.nn.Linear(3, 2)
>>> sorted(k for k in layer.state_dict())
['bias', 'weight']
"""

from jitgrad.nn import functional, init, utils  # noqa: F401
from jitgrad.nn.layers import (  # noqa: F401
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, Flatten, GELU, HuberLoss, Identity, KLDivLoss,
    L1Loss, Linear, LogSoftmax, ModuleDict, ModuleList, MSELoss, NLLLoss,
    ParameterDict, ParameterList, ReLU, Sequential, Sigmoid, SiLU, SmoothL1Loss, Softmax, Tanh,
)
from jitgrad.nn.module import Module  # noqa: F401
from jitgrad.nn.norm import BatchNorm1d, BatchNorm2d, BatchNorm3d, Dropout, Embedding, LayerNorm  # noqa: F401
from jitgrad.nn.rnn import GRU, GRUCell, LSTM, LSTMCell, RNN, RNNCell  # noqa: F401
from jitgrad.nn.conv import AvgPool2d, Conv1d, Conv2d, MaxPool2d  # noqa: F401
from jitgrad.nn.parameter import Parameter, UninitializedBuffer, UninitializedParameter  # noqa: F401
from jitgrad.nn.attention import MultiheadAttention  # noqa: F401
from jitgrad.nn.transformer import (  # noqa: F401
    Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer,
)
from jitgrad.nn.activations import (  # noqa: F401
    CELU, ELU, GLU, Hardshrink, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSigmoid, Mish,
    PReLU, ReLU6, RReLU, SELU, Softmax2d, Softmin, Softplus, Softshrink, Softsign, Tanhshrink,
    Threshold,
)
from jitgrad.nn.pad import (  # noqa: F401
    CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d,
    ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d, ReplicationPad2d,
    ReplicationPad3d, ZeroPad1d, ZeroPad2d, ZeroPad3d,
)
from jitgrad.nn.resample import (  # noqa: F401
    ChannelShuffle, Fold, PixelShuffle, PixelUnshuffle, Unfold, Upsample, UpsamplingBilinear2d,
    UpsamplingNearest2d,
)
from jitgrad.nn.pooling import (  # noqa: F401
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d,
    AdaptiveMaxPool2d, AdaptiveMaxPool3d, AvgPool1d, AvgPool3d, LPPool1d, LPPool2d, MaxPool1d,
    MaxPool3d,
)
from jitgrad.nn.groupnorm import (  # noqa: F401
    GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LocalResponseNorm, RMSNorm,
)
from jitgrad.nn.conv_transpose import ConvTranspose1d, ConvTranspose2d  # noqa: F401
from jitgrad.nn.distance import CosineSimilarity, PairwiseDistance  # noqa: F401
from jitgrad.nn.losses import (  # noqa: F401
    CosineEmbeddingLoss, GaussianNLLLoss, HingeEmbeddingLoss, MarginRankingLoss,
    MultiLabelMarginLoss, MultiLabelSoftMarginLoss, MultiMarginLoss, PoissonNLLLoss,
    SoftMarginLoss, TripletMarginLoss, TripletMarginWithDistanceLoss,
)
from jitgrad.nn.ctc import CTCLoss  # noqa: F401
from jitgrad.nn.bilinear import Bilinear  # noqa: F401
from jitgrad.nn.embedding_bag import EmbeddingBag  # noqa: F401
from jitgrad.nn.unpool import MaxUnpool1d, MaxUnpool2d, MaxUnpool3d  # noqa: F401
from jitgrad.nn.dropout_more import (  # noqa: F401
    AlphaDropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout,
)
from jitgrad.nn.more_modules import Conv3d, ConvTranspose3d, Unflatten  # noqa: F401
from jitgrad.nn.fractional_pool import FractionalMaxPool2d, FractionalMaxPool3d  # noqa: F401
from jitgrad.nn.lazy import (  # noqa: F401
    LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, LazyConv1d, LazyConv2d, LazyConv3d,
    LazyConvTranspose1d, LazyConvTranspose2d, LazyConvTranspose3d, LazyInstanceNorm1d,
    LazyInstanceNorm2d, LazyInstanceNorm3d, LazyLinear,
)
from jitgrad.nn import modules  # noqa: F401,E402  (torch.nn.modules.<file>.<Class> paths)
