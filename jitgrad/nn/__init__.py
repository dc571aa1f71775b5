"""Neural-network building blocks with torch's names.

>>> import jitgrad
>>> layer = jitgrad.nn.Linear(3, 2)
>>> sorted(k for k in layer.state_dict())
['bias', 'weight']
"""

from jitgrad.nn import functional, init, utils  # noqa: F401
from jitgrad.nn.layers import (  # noqa: F401
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, Flatten, GELU, HuberLoss, Identity, KLDivLoss,
    L1Loss, LazyLinear, Linear, LogSoftmax, ModuleDict, ModuleList, MSELoss, NLLLoss,
    ParameterDict, ParameterList, ReLU, Sequential, Sigmoid, SiLU, SmoothL1Loss, Softmax, Tanh,
)
from jitgrad.nn.module import Module  # noqa: F401
from jitgrad.nn.norm import BatchNorm1d, BatchNorm2d, Dropout, Embedding, LayerNorm  # noqa: F401
from jitgrad.nn.rnn import GRU, GRUCell, LSTM, LSTMCell, RNN, RNNCell  # noqa: F401
from jitgrad.nn.conv import AvgPool2d, Conv1d, Conv2d, MaxPool2d  # noqa: F401
from jitgrad.nn.parameter import Parameter  # noqa: F401
from jitgrad.nn.attention import MultiheadAttention  # noqa: F401
from jitgrad.nn.transformer import (  # noqa: F401
    Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
    TransformerEncoderLayer,
)
