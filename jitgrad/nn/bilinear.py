"""``bilinear`` and ``Bilinear``: ``y_o = x1^T W_o x2 + b_o``, a composite of two products
(so it differentiates and compiles as ``matmul`` does).

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> F.bilinear(jitgrad.ones(1, 2), jitgrad.ones(1, 3), jitgrad.ones(4, 2, 3)).shape
jitgrad.Size([1, 4])
"""

from __future__ import annotations

import math

from jitgrad import factories, ops
from jitgrad.nn import init
from jitgrad.nn.module import Module
from jitgrad.nn.parameter import Parameter
from jitgrad.tensor import Tensor


def bilinear(input1, input2, weight, bias=None):
    """``out[..., o] = sum_ij input1[..., i] weight[o, i, j] input2[..., j] + bias[o]``, for
    inputs of the same leading shape.

    >>> import jitgrad
    >>> import jitgrad.nn.functional as F
    >>> w = jitgrad.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    >>> F.bilinear(jitgrad.tensor([[1.0, 3.0]]), jitgrad.tensor([[4.0, 5.0]]), w)
    tensor([[34.]])
    """
    for name, t in (("input1", input1), ("input2", input2), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"bilinear(): argument '{name}' must be a Tensor, not "
                            f"{type(t).__name__}")
    if input1.ndim != input2.ndim:
        raise RuntimeError(f"bilinear(): input dimensions do not match: got {input1.ndim} and "
                           f"{input2.ndim}")
    for i in range(input1.ndim - 1):
        if input1.shape[i] != input2.shape[i]:
            raise RuntimeError(f"bilinear(): input batch dimensions do not match at dim {i}: "
                               f"got {input1.shape[i]} and {input2.shape[i]}")
    if weight.ndim != 3:
        raise RuntimeError(f"bilinear(): weight must be 3-D (out, in1, in2), got shape "
                           f"{tuple(weight.shape)}")
    out_f, in1, in2 = weight.shape
    if input1.shape[-1] != in1:
        raise RuntimeError(f"bilinear(): input1 size does not match weight size: got "
                           f"{input1.shape[-1]} but expected {in1}")
    if input2.shape[-1] != in2:
        raise RuntimeError(f"bilinear(): input2 size does not match weight size: got "
                           f"{input2.shape[-1]} but expected {in2}")
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != out_f):
        raise RuntimeError(f"bilinear(): bias size does not match weight size: got "
                           f"{tuple(bias.shape)} but expected ({out_f},)")
    lead = tuple(input1.shape[:-1])
    x1 = input1.reshape(-1, in1)
    x2 = input2.reshape(-1, in2)
    # (B, in1) @ (in1, out * in2) -> (B, out, in2), then a product with x2 along in2
    t = ops.matmul(x1, weight.permute(1, 0, 2).reshape(in1, out_f * in2))
    out = ops.matmul(t.reshape(-1, out_f, in2), x2.unsqueeze(-1)).squeeze(-1)
    if bias is not None:
        out = out + bias
    return out.reshape(*lead, out_f)


class Bilinear(Module):
    """``bilinear`` with a weight (out_features, in1_features, in2_features) and bias drawn
    from U(-1/sqrt(in1_features), 1/sqrt(in1_features)), as torch's.

    >>> import jitgrad
    >>> layer = jitgrad.nn.Bilinear(2, 3, 4)
    >>> layer
    Bilinear(in1_features=2, in2_features=3, out_features=4, bias=True)
    >>> layer(jitgrad.ones(5, 2), jitgrad.ones(5, 3)).shape
    jitgrad.Size([5, 4])
    """

    def __init__(self, in1_features: int, in2_features: int, out_features: int,
                 bias: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        self.weight = Parameter(factories.empty(out_features, in1_features, in2_features,
                                                dtype=dtype))
        if bias:
            self.bias = Parameter(factories.empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.weight.shape[1]) if self.weight.shape[1] else 0.0
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
