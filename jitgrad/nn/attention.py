"""Attention, as torch's: ``scaled_dot_product_attention`` and ``MultiheadAttention`` (torch's
parameter names, masks and returned weights), written with jitgrad's own ops so they run eagerly,
differentiate, and trace like any other code.

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> q = k = v = jitgrad.ones(2, 3, 4)
>>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
jitgrad.Size([2, 3, 4])
"""

from __future__ import annotations

import math

import numpy as np

from jitgrad import factories, ops
from jitgrad.errors import ShapeError
from jitgrad.nn import init
from jitgrad.nn.layers import Linear
from jitgrad.nn.module import Module
from jitgrad.nn.norm import dropout as _dropout
from jitgrad.nn.parameter import Parameter
from jitgrad.tensor import Tensor


def _additive(mask, dtype, what: str, true_keeps: bool = False):
    """A mask as a float tensor added to the scores, a float mask as it is. In a bool mask True
    marks the positions left out (``MultiheadAttention``'s convention) or, with ``true_keeps``,
    those that take part (``scaled_dot_product_attention``'s); the others become -inf."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{what} must be a Tensor, got {type(mask).__name__}")
    if mask.dtype.name == "bool":
        inf, zero = factories.tensor(-math.inf, dtype=dtype), factories.tensor(0.0, dtype=dtype)
        return ops.where(mask, zero, inf) if true_keeps else ops.where(mask, inf, zero)
    if not mask.dtype.is_floating_point:
        raise TypeError(f"only bool and floating types of {what} are supported, got "
                        f"{mask.dtype}")
    return mask.to(dtype)


def _masked_softmax(scores):
    """Softmax over the last dim where a row left with no allowed position gives zeros (as
    torch's fused attention kernel does) instead of NaN, in value and in gradient."""
    top = scores.detach().amax(-1, keepdim=True)
    top = ops.where(ops.isinf(top), factories.tensor(0.0, dtype=scores.dtype), top)
    e = ops.exp(scores - top)
    total = e.sum(-1, keepdim=True)
    return e / ops.where(total == 0, factories.tensor(1.0, dtype=scores.dtype), total)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False):
    """``softmax(q k^T * scale + mask) v`` over the last two dims, as torch's
    ``F.scaled_dot_product_attention``: ``query`` (..., L, E), ``key`` (..., S, E), ``value``
    (..., S, Ev). A bool ``attn_mask`` marks with True the positions that take part; a float one
    is added to the scores. ``is_causal`` (without ``attn_mask``) keeps position j <= i only
    (the top-left triangle); ``scale`` defaults to 1 / sqrt(E); ``dropout_p`` drops attention weights.
    A query row left with no position gives zeros.

    >>> import jitgrad
    >>> import jitgrad.nn.functional as F
    >>> q = jitgrad.tensor([[[1.0, 0.0]]])
    >>> k = jitgrad.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    >>> v = jitgrad.tensor([[[1.0], [0.0]]])
    >>> mask = jitgrad.tensor([[True, False]])
    >>> F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    tensor([[[1.]]])
    """
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"scaled_dot_product_attention: {name} must be a Tensor, got "
                            f"{type(t).__name__}")
        if t.ndim < 2:
            raise ShapeError(f"scaled_dot_product_attention: {name} must have at least 2 "
                             f"dimensions (..., sequence, features), got shape {list(t.shape)}")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise ShapeError(f"scaled_dot_product_attention: query (..., L, E), key (..., S, E) and "
                         f"value (..., S, Ev) do not fit: shapes {list(query.shape)}, "
                         f"{list(key.shape)} and {list(value.shape)}")
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk or value.shape[-3] != hk:
            raise ShapeError(f"scaled_dot_product_attention: with enable_gqa the query's "
                             f"{hq} heads must be a multiple of the key's and value's, got "
                             f"{hk} and {value.shape[-3]}")
        key, value = _repeat_heads(key, hq // hk), _repeat_heads(value, hq // hk)
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: Explicit attn_mask should not be set "
                         "when is_causal=True")
    length, source = query.shape[-2], key.shape[-2]
    s = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = (query * s) @ key.transpose(-2, -1)
    bias = _additive(attn_mask, scores.dtype, "attn_mask", true_keeps=True)
    if is_causal:
        bias = factories.tensor(np.triu(np.full((length, source), -np.inf), 1),
                                dtype=scores.dtype)
    if bias is not None:
        scores = scores + bias
        weights = _masked_softmax(scores)
    else:
        weights = ops.softmax(scores, -1)
    if dropout_p > 0:
        weights = _dropout(weights, dropout_p, True)
    return weights @ value


def _repeat_heads(t, k: int):
    """(..., H, S, E) -> (..., H * k, S, E), each head repeated k times in a row."""
    shape = tuple(t.shape)
    t = t.unsqueeze(-3).expand(*shape[:-2], k, *shape[-2:])
    return t.reshape(*shape[:-3], shape[-3] * k, *shape[-2:])


class NonDynamicallyQuantizableLinear(Linear):
    """``MultiheadAttention``'s output projection: a ``Linear`` under the name torch prints."""


class MultiheadAttention(Module):
    """Multi-head attention, as ``torch.nn.MultiheadAttention``: inputs (L, N, E), or
    (N, L, E) with ``batch_first``, or unbatched (L, E). Parameters ``in_proj_weight``
    (3E, E) and ``in_proj_bias`` (or ``q/k/v_proj_weight`` when ``kdim``/``vdim`` differ from
    E) and ``out_proj``. ``attn_mask`` (L, S) or (N * heads, L, S) and ``key_padding_mask``
    (N, S) mark with True (bool) the positions left out, or are added (float);
    ``add_bias_kv`` learns one more key and value position, ``add_zero_attn`` appends one of
    zeros. The computation is ``F.multi_head_attention_forward``'s. Returns
    ``(output, weights)``: weights (N, L, S) averaged over heads, per head with
    ``average_attn_weights=False``, None with ``need_weights=False``.

    >>> import jitgrad
    >>> mha = jitgrad.nn.MultiheadAttention(8, 2, batch_first=True)
    >>> x = jitgrad.randn(3, 5, 8)
    >>> out, w = mha(x, x, x)
    >>> tuple(out.shape), tuple(w.shape)
    ((3, 5, 8), (3, 5, 5))
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, dtype=None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim must be divisible by num_heads, got embed_dim="
                             f"{embed_dim} and num_heads={num_heads}")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        empty = lambda *shape: Parameter(factories.empty(*shape, dtype=dtype))  # noqa: E731
        # registered in torch's order, so parameters() and state dicts line up with its
        if self._qkv_same_embed_dim:
            self.in_proj_weight = empty(3 * embed_dim, embed_dim)
            for n in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(n, None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = empty(embed_dim, embed_dim)
            self.k_proj_weight = empty(embed_dim, self.kdim)
            self.v_proj_weight = empty(embed_dim, self.vdim)
        if bias:
            self.in_proj_bias = empty(3 * embed_dim)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias,
                                                        dtype=dtype)
        if add_bias_kv:
            self.bias_k, self.bias_v = empty(1, 1, embed_dim), empty(1, 1, embed_dim)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def _check(self, query, key, value, batched: bool) -> None:
        want = 3 if batched else 2
        kind = "batched 3-D" if batched else "unbatched 2-D"
        for name, t, dim in (("query", query, self.embed_dim), ("key", key, self.kdim),
                             ("value", value, self.vdim)):
            if t.ndim != want:
                raise ShapeError(f"MultiheadAttention: for {kind} query, {name} should be "
                                 f"{want}-D, got shape {list(t.shape)}")
            if t.shape[-1] != dim:
                raise ShapeError(f"MultiheadAttention: was expecting {name} embedding dimension "
                                 f"of {dim}, but got {t.shape[-1]}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ShapeError(f"MultiheadAttention: key shape {list(key.shape)} does not match "
                             f"value shape {list(value.shape)}")

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        from jitgrad.nn.mha import multi_head_attention_forward  # (it imports this module)
        if query.ndim not in (2, 3):
            raise ShapeError(f"MultiheadAttention: query should be unbatched 2D or batched 3D "
                             f"tensor but received {query.ndim}-D query tensor")
        batched = query.ndim == 3
        self._check(query, key, value, batched)
        if batched and self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        out, weights = multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
            self.in_proj_bias, self.bias_k, self.bias_v, self.add_zero_attn, self.dropout,
            self.out_proj.weight, self.out_proj.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
            use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight, k_proj_weight=self.k_proj_weight,
            v_proj_weight=self.v_proj_weight, average_attn_weights=average_attn_weights,
            is_causal=is_causal)
        if batched and self.batch_first:
            out = out.transpose(0, 1)
        return out, weights
