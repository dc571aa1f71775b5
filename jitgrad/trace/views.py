"""In-place writes through views, inside a trace.

Eagerly a view (``c[0]``, ``c.t()``, ``c.view(-1)``, ``c.diagonal()``) shares its base's
storage, so ``c[0].add_(1)`` changes ``c`` and a view taken earlier sees the change. A trace
holds values, not storage: an in-place op rebinds the written tracer to a new value and
nothing else. So each view tracer remembers where it came from (``mark``); a write through it
is written back into its base, up the chain of views (``write_back``: ``index_update``, or the
inverse reshape or permute); and a view read after its base was written since is made again
from the base (``current``), as torch.compile's functionalization regenerates views.

>>> import jitgrad
>>> def f(x):
...     c = x * 1
...     row = c[1]
...     c.diagonal().add_(10.0)
...     return row.sum() + c.sum()
>>> float(jitgrad.jit(f)(jitgrad.ones(3, 3))), float(f(jitgrad.ones(3, 3)))
(52.0, 52.0)
"""

from __future__ import annotations

import numpy as np


def is_view(prim, args: tuple) -> bool:
    """Whether ``prim`` applied to ``args`` makes a view, as torch: movement ops and basic
    indexing do; indexing with index tensors copies."""
    return prim.view and not (prim.name == "getitem" and len(args) > 1)


def mark(view, base, prim, params: dict, rest: tuple) -> None:
    """Record that tracer ``view`` is ``prim(base, *rest, **params)`` of ``base`` as it is now."""
    view._view_of = (base, prim, params, rest, base._ir)


def current(t):
    """Bring ``t`` up to date: a view whose base was written in place since it was made is
    made again from the base, rebinding the tracer itself (every holder of it reads the new
    value). Returns ``t``."""
    info = getattr(t, "_view_of", None)  # (a result's leaves need not be tensors)
    if info is None:
        return t
    base, prim, params, rest, seen = info
    base = current(base)
    if base._ir is not seen:
        new = t._builder.bind(prim, (base, *rest), params)
        t._ir, t._value, t._aval = new._ir, new._value, new._aval
        t._view_of = (base, prim, params, rest, base._ir)
    return t


def write_back(builder, view, name: str, index_update) -> None:
    """After ``view`` was rebound by an in-place op, write its new value into its base (and
    that base's base...); ``index_update`` is that primitive (this module imports no ops)."""
    info = view._view_of
    if info is None:
        return
    base, prim, params, rest, _ = info
    if prim.name == "expand":
        raise RuntimeError(f"{name}: unsupported operation: more than one element of the "
                           "written-to tensor refers to a single memory location (it is an "
                           "expanded view). Please clone() the tensor before the operation.")
    if prim.name == "reshape":
        new = builder.bind(prim, (view,), {"shape": tuple(base.shape)})
    elif prim.name == "permute":
        new = builder.bind(prim, (view,), {"perm": tuple(np.argsort(params["perm"]).tolist())})
    else:  # getitem: the written elements go back where they were read
        new = builder.bind(index_update, (base, view, *rest), {"index": params["index"]})
    builder.inplace(base, lambda b: new, name)
    view._view_of = (base, prim, params, rest, base._ir)
