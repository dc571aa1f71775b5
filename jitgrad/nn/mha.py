"""``multi_head_attention_forward``: torch's functional multi-head attention, the computation
behind ``nn.MultiheadAttention`` (which calls it), written with jitgrad's ops so it
differentiates and traces.

>>> import jitgrad
>>> import jitgrad.nn.functional as F
>>> x = jitgrad.ones(3, 1, 4)  # (L, N, E)
>>> out, w = F.multi_head_attention_forward(
...     x, x, x, 4, 2, jitgrad.ones(12, 4), None, None, None, False, 0.0,
...     jitgrad.ones(4, 4), None, training=False)
>>> tuple(out.shape), tuple(w.shape)
((3, 1, 4), (1, 3, 3))
"""

from __future__ import annotations

import math

from jitgrad import factories, ops
from jitgrad.errors import ShapeError
from jitgrad.nn import functional as F
from jitgrad.nn.attention import _additive, scaled_dot_product_attention
from jitgrad.nn.norm import dropout as _dropout
from jitgrad.tensor import Tensor


def _shape_check(query, key, value, key_padding_mask, attn_mask, num_heads: int) -> bool:
    """Whether the call is batched, with torch's ``_mha_shape_check`` errors."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"multi_head_attention_forward(): argument '{name}' must be a "
                            f"Tensor, not {type(t).__name__}")
    if query.ndim not in (2, 3):
        raise ShapeError(f"query should be unbatched 2D or batched 3D tensor but received "
                         f"{query.ndim}-D query tensor")
    batched = query.ndim == 3
    kind, want = ("batched (3-D)", 3) if batched else ("unbatched (2-D)", 2)
    if key.ndim != want or value.ndim != want:
        raise ShapeError(f"For {kind} `query`, expected `key` and `value` to be {want}-D but "
                         f"found {key.ndim}-D and {value.ndim}-D tensors respectively")
    if key_padding_mask is not None and key_padding_mask.ndim != want - 1:
        raise ShapeError(f"For {kind} `query`, expected `key_padding_mask` to be `None` or "
                         f"{want - 1}-D but found {key_padding_mask.ndim}-D tensor instead")
    if attn_mask is not None:
        if attn_mask.ndim not in (2, 3):
            raise ShapeError(f"For {kind} `query`, expected `attn_mask` to be `None`, 2-D or "
                             f"3-D but found {attn_mask.ndim}-D tensor instead")
        if not batched and attn_mask.ndim == 3:
            expected = (num_heads, query.shape[0], key.shape[0])
            if tuple(attn_mask.shape) != expected:
                raise ShapeError(f"Expected `attn_mask` shape to be {expected} but got "
                                 f"{tuple(attn_mask.shape)}")
    return batched


def _in_projection(query, key, value, e: int, in_proj_weight, in_proj_bias,
                   use_separate_proj_weight: bool, q_proj_weight, k_proj_weight, v_proj_weight):
    b = in_proj_bias
    bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
    if use_separate_proj_weight:
        for name, w in (("q_proj_weight", q_proj_weight), ("k_proj_weight", k_proj_weight),
                        ("v_proj_weight", v_proj_weight)):
            if w is None:
                raise ValueError(f"use_separate_proj_weight is True but {name} is None")
        wq, wk, wv = q_proj_weight, k_proj_weight, v_proj_weight
    else:
        if in_proj_weight is None:
            raise ValueError("use_separate_proj_weight is False but in_proj_weight is None")
        if tuple(in_proj_weight.shape) != (3 * e, e):
            raise ShapeError(f"in_proj_weight should have shape {(3 * e, e)}, got "
                             f"{tuple(in_proj_weight.shape)}")
        w = in_proj_weight
        wq, wk, wv = w[:e], w[e:2 * e], w[2 * e:]
    return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)


def _pad_keys(t):
    """One more key position (a 0 column) on a mask or bias."""
    return None if t is None else ops.cat([t, factories.zeros(*t.shape[:-1], 1, dtype=t.dtype)],
                                          -1)


def _heads(t, n: int, h: int, hd: int, static, name: str):
    """(S, N, E) -> (N, heads, S, head_dim), or ``static`` ((N * heads, S, head_dim)) instead."""
    if static is None:
        return t.reshape(t.shape[0], n, h, hd).permute(1, 2, 0, 3)
    if static.ndim != 3 or static.shape[0] != n * h or static.shape[2] != hd:
        raise ShapeError(f"expecting static_{name} of shape (bsz * num_heads, S, head_dim) = "
                         f"({n * h}, S, {hd}), but got {tuple(static.shape)}")
    return static.reshape(n, h, static.shape[1], hd)


def multi_head_attention_forward(
        query, key, value, embed_dim_to_check: int, num_heads: int, in_proj_weight,
        in_proj_bias, bias_k, bias_v, add_zero_attn: bool, dropout_p: float, out_proj_weight,
        out_proj_bias, training: bool = True, key_padding_mask=None, need_weights: bool = True,
        attn_mask=None, use_separate_proj_weight: bool = False, q_proj_weight=None,
        k_proj_weight=None, v_proj_weight=None, static_k=None, static_v=None,
        average_attn_weights: bool = True, is_causal: bool = False):
    """Multi-head attention with explicit parameters, as torch's: ``query`` (L, N, E), ``key``
    and ``value`` (S, N, E) (or unbatched (L, E), (S, E)); the in-projection ``in_proj_weight``
    (3E, E) or, with ``use_separate_proj_weight``, ``q/k/v_proj_weight``; ``bias_k``/``bias_v``
    append one key and value position; ``add_zero_attn`` one of zeros; ``static_k``/
    ``static_v`` ((N * heads, S, E / heads)) replace the projected keys and values.
    ``attn_mask`` (L, S) or (N * heads, L, S) and ``key_padding_mask`` (N, S) mark with True
    the positions left out, or are added (float). Returns ``(output, weights)``: weights
    (N, L, S) averaged over heads, per head without ``average_attn_weights``, None without
    ``need_weights``; ``dropout_p`` applies while ``training``.

    >>> import jitgrad
    >>> import jitgrad.nn.functional as F
    >>> x = jitgrad.ones(2, 3)  # unbatched (L, E)
    >>> out, w = F.multi_head_attention_forward(
    ...     x, x, x, 3, 1, jitgrad.ones(9, 3), jitgrad.zeros(9), None, None, False, 0.0,
    ...     jitgrad.ones(3, 3), jitgrad.zeros(3), training=False)
    >>> out
    tensor([[9., 9., 9.],
            [9., 9., 9.]])
    >>> w
    tensor([[0.5000, 0.5000],
            [0.5000, 0.5000]])
    """
    batched = _shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    length, n, e = query.shape
    source = key.shape[0]
    if e != embed_dim_to_check:
        raise ShapeError(f"was expecting embedding dimension of {embed_dim_to_check}, but got "
                         f"{e}")
    if num_heads <= 0 or e % num_heads:
        raise ValueError(f"embed_dim {e} not divisible by num_heads {num_heads}")
    h, hd = num_heads, e // num_heads
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise ShapeError(f"key's sequence and batch dims {tuple(key.shape[:2])} do not match "
                             f"value's {tuple(value.shape[:2])}")
    elif tuple(key.shape) != tuple(value.shape):
        raise ShapeError(f"key shape {list(key.shape)} does not match value shape "
                         f"{list(value.shape)}")
    dtype = query.dtype
    kpm = _additive(key_padding_mask, dtype, "key_padding_mask")
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the "
                           "Transformer module method `generate_square_subsequent_mask` to "
                           "create this mask.")
    if is_causal and kpm is None and not need_weights:
        mask = None  # the hint alone says it: scaled_dot_product_attention's causal path
    else:
        mask = _additive(attn_mask, dtype, "attn_mask")
        is_causal = False
    if mask is not None:  # as (1 or N * heads, L, S)
        if mask.ndim == 2:
            if tuple(mask.shape) != (length, source):
                raise ShapeError(f"The shape of the 2D attn_mask is {list(mask.shape)}, but "
                                 f"should be {(length, source)}.")
            mask = mask.unsqueeze(0)
        elif tuple(mask.shape) != (n * h, length, source):
            raise ShapeError(f"The shape of the 3D attn_mask is {list(mask.shape)}, but should "
                             f"be {(n * h, length, source)}.")
    q, k, v = _in_projection(query, key, value, e, in_proj_weight, in_proj_bias,
                             use_separate_proj_weight, q_proj_weight, k_proj_weight,
                             v_proj_weight)
    if bias_k is not None or bias_v is not None:
        if bias_k is None or bias_v is None:
            raise ValueError("bias_k and bias_v must be given together")
        if static_k is not None or static_v is not None:
            raise ValueError("bias cannot be added to static key or value")
        k = ops.cat([k, bias_k.reshape(1, 1, e).expand(1, n, e)])
        v = ops.cat([v, bias_v.reshape(1, 1, e).expand(1, n, e)])
        mask, kpm = _pad_keys(mask), _pad_keys(kpm)
    q = q.reshape(length, n, h, hd).permute(1, 2, 0, 3)
    k = _heads(k, n, h, hd, static_k, "k")
    v = _heads(v, n, h, hd, static_v, "v")
    if add_zero_attn:
        zeros = factories.zeros(n, h, 1, hd, dtype=k.dtype)
        k, v = ops.cat([k, zeros], 2), ops.cat([v, zeros], 2)
        mask, kpm = _pad_keys(mask), _pad_keys(kpm)
    source = k.shape[2]
    bias = None if mask is None else mask.reshape(-1 if mask.shape[0] == 1 else n,
                                                  1 if mask.shape[0] == 1 else h,
                                                  length, source)
    if kpm is not None:
        if tuple(kpm.shape) != (n, source):
            raise ShapeError(f"key_padding_mask should have shape {(n, source)} (batch, source "
                             f"length), got {list(kpm.shape)}")
        kpm = kpm.reshape(n, 1, 1, source)
        bias = kpm if bias is None else bias + kpm
    p = dropout_p if training else 0.0
    if need_weights:
        # torch's explicit path: a row with every key masked gives NaN, as its softmax does
        scores = (q * math.sqrt(1.0 / hd)) @ k.transpose(-2, -1)
        if bias is not None:
            scores = scores + bias
        weights = ops.softmax(scores, -1)
        if p > 0:
            weights = _dropout(weights, p, True)
        out = weights @ v
    else:
        out = scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p,
                                           is_causal=is_causal)
        weights = None
    out = F.linear(out.permute(2, 0, 1, 3).reshape(length, n, e), out_proj_weight,
                   out_proj_bias)
    if weights is not None and average_attn_weights:
        weights = weights.mean(1)
    if not batched:
        out = out.squeeze(1)
        weights = None if weights is None else weights.squeeze(0)
    return out, weights
