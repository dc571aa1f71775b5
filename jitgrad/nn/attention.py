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
from jitgrad.nn import functional as F
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
    (N, S) mark with True (bool) the positions left out, or are added (float). Returns
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
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are "
                                      "not supported")
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
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
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

    def _projections(self, query, key, value):
        e = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            wq, wk, wv = w[:e], w[e:2 * e], w[2 * e:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

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
        if query.ndim not in (2, 3):
            raise ShapeError(f"MultiheadAttention: query should be unbatched 2D or batched 3D "
                             f"tensor but received {query.ndim}-D query tensor")
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the "
                               "Transformer module method `generate_square_subsequent_mask` to "
                               "create this mask.")
        batched = query.ndim == 3
        self._check(query, key, value, batched)
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        length, n, e = query.shape
        source = key.shape[0]
        h, hd = self.num_heads, self.head_dim
        bias = self._mask_bias(attn_mask, key_padding_mask, length, source, n, query.dtype)
        q, k, v = self._projections(query, key, value)
        # (L, N, E) -> (N, heads, L, head_dim)
        q = q.reshape(length, n, h, hd).permute(1, 2, 0, 3)
        k = k.reshape(source, n, h, hd).permute(1, 2, 0, 3)
        v = v.reshape(source, n, h, hd).permute(1, 2, 0, 3)
        p = self.dropout if self.training else 0.0
        if need_weights:
            # torch's explicit path: a row with every key masked gives NaN, as its softmax does
            scores = (q * (1.0 / math.sqrt(hd))) @ k.transpose(-2, -1)
            if bias is not None:
                scores = scores + bias
            weights = ops.softmax(scores, -1)
            if p > 0:
                weights = _dropout(weights, p, True)
            out = weights @ v
        else:
            out = scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)
            weights = None
        out = out.permute(2, 0, 1, 3).reshape(length, n, e)
        out = self.out_proj(out)
        if weights is not None and average_attn_weights:
            weights = weights.mean(1)
        if not batched:
            out = out.squeeze(1)
            weights = None if weights is None else weights.squeeze(0)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _mask_bias(self, attn_mask, key_padding_mask, length: int, source: int, n: int, dtype):
        """Both masks as one additive bias broadcastable to (N, heads, L, S), or None."""
        bias = None
        if attn_mask is not None:
            if attn_mask.ndim == 2:
                if tuple(attn_mask.shape) != (length, source):
                    raise ShapeError(f"The shape of the 2D attn_mask is {list(attn_mask.shape)}, "
                                     f"but should be {(length, source)}.")
                bias = _additive(attn_mask, dtype, "attn_mask")
            elif attn_mask.ndim == 3:
                want = (n * self.num_heads, length, source)
                if tuple(attn_mask.shape) != want:
                    raise ShapeError(f"The shape of the 3D attn_mask is {list(attn_mask.shape)}, "
                                     f"but should be {want}.")
                bias = _additive(attn_mask, dtype, "attn_mask").reshape(
                    n, self.num_heads, length, source)
            else:
                raise ShapeError(f"attn_mask's dimension {attn_mask.ndim} is not supported: "
                                 "expected 2-D (L, S) or 3-D (N * num_heads, L, S)")
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (n, source):
                raise ShapeError(f"key_padding_mask should have shape {(n, source)} (batch, "
                                 f"source length), got {list(key_padding_mask.shape)}")
            pad = _additive(key_padding_mask, dtype, "key_padding_mask").reshape(n, 1, 1, source)
            bias = pad if bias is None else bias + pad
        return bias
