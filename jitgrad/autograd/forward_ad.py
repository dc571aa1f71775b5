"""Forward-mode AD on eager tensors, as ``torch.autograd.forward_ad``: inside
``dual_level()``, ``make_dual(primal, tangent)`` gives a tensor that ordinary ops accept, and
``unpack_dual(y)`` returns ``y``'s value and its tangent, the Jacobian-vector product
``J @ tangent`` over every dual tensor ``y`` depends on.

How: a dual tensor is a tensor that requires grad and records its tangent; ops record the
usual reverse-mode graph, and ``unpack_dual`` gets the JVP from two VJPs. For a cotangent
``u``, ``g(u) = J^T u`` is linear in ``u``, so the VJP of ``g`` at ``tangent`` is ``J @
tangent``. Every op's backward is written with jitgrad's own ops, so the first VJP is itself
differentiable. Two consequences: ops between ``make_dual`` and ``unpack_dual`` must record
a graph (not under ``no_grad``), and a custom ``autograd.Function`` needs a ``backward`` or
a ``jvp`` (one with only a ``jvp`` makes its outputs duals with the tangents ``jvp`` gives).

>>> import jitgrad
>>> import jitgrad.autograd.forward_ad as fwAD
>>> x, v = jitgrad.tensor([0.0, 1.0]), jitgrad.tensor([1.0, 2.0])
>>> with fwAD.dual_level():
...     y = fwAD.make_dual(x, v).sin() * 2
...     fwAD.unpack_dual(y).tangent       # 2 cos(x) v
tensor([2.0000, 2.1612])
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

from jitgrad.tensor import Tensor


class UnpackedDualTensor(NamedTuple):
    """What ``unpack_dual`` returns: the value and its tangent (None when it has none)."""

    primal: Tensor
    tangent: Tensor | None


class _Dual:
    """A dual tensor made in the current level: the tensor ops see, its tangent, and whether
    its primal was part of a reverse-mode graph of the caller's (kept for ``primal``)."""

    __slots__ = ("tensor", "tangent", "tracked")

    def __init__(self, tensor: Tensor, tangent: Tensor, tracked: bool) -> None:
        self.tensor, self.tangent, self.tracked = tensor, tangent, tracked


# The one level (torch does not nest them either): the duals made in it, or None outside.
_level: list[_Dual] | None = None


def enter_dual_level() -> int:
    """Start the forward-AD level that ``make_dual`` records into; returns its index, 0."""
    global _level
    if _level is not None:
        raise RuntimeError("Nested forward mode AD is not supported at the moment")
    _level = []
    return 0


def exit_dual_level(*, level: int | None = None) -> None:
    """End the level: the tensors made in it keep their values and lose their tangents."""
    global _level
    if _level is None:
        raise RuntimeError("Trying to exit a forward AD level that was not entered")
    _level = None


@contextlib.contextmanager
def dual_level():
    """The context in which dual tensors live, as ``torch.autograd.forward_ad.dual_level``.

    >>> import jitgrad
    >>> with dual_level():
    ...     d = make_dual(jitgrad.tensor(2.0), jitgrad.tensor(1.0))
    ...     unpack_dual(d ** 3).tangent
    tensor(12.)
    >>> unpack_dual(d).tangent is None
    True
    """
    index = enter_dual_level()
    try:
        yield index
    finally:
        exit_dual_level()


def make_dual(tensor: Tensor, tangent: Tensor, *, level: int | None = None) -> Tensor:
    """A tensor equal to ``tensor`` that carries ``tangent``, as
    ``torch.autograd.forward_ad.make_dual``. It shares ``tensor``'s data, and if ``tensor``
    is part of a reverse-mode graph, the dual stays connected to it.

    >>> import jitgrad
    >>> with dual_level():
    ...     t = jitgrad.ones(2)
    ...     unpack_dual(make_dual(jitgrad.zeros(2), t)).tangent is t
    True
    """
    if _level is None:
        raise RuntimeError("Trying to create a dual Tensor for forward AD but no level exists, "
                           "make sure to enter_dual_level() first.")
    for what, t in (("primal", tensor), ("tangent", tangent)):
        if not isinstance(t, Tensor):
            raise TypeError(f"make_dual: the {what} must be a Tensor, got {type(t).__name__}")
        if not t.dtype.is_floating_point:
            raise ValueError(f"Expected {what} to be floating point or complex, but got: "
                             f"{t.dtype}")
    if tuple(tangent.shape) != tuple(tensor.shape):
        raise RuntimeError(f"Trying to set a forward gradient that has a different size than "
                           f"that of the original Tensor, this is not supported. Tensor is of "
                           f"size {list(tensor.shape)} while the given forward gradient is of "
                           f"size {list(tangent.shape)}.")
    from jitgrad.autograd.grad_mode import enable_grad
    tracked = bool(tensor.requires_grad)
    with enable_grad():
        # A node of its own to differentiate with respect to: a view when the primal has a
        # graph (so reverse mode still reaches it), else a fresh leaf over the same data.
        dual = tensor.view(tuple(tensor.shape)) if tracked \
            else tensor.detach().requires_grad_(True)
    _level.append(_Dual(dual, tangent, tracked))
    return dual


def unpack_dual(tensor: Tensor, *, level: int | None = None) -> UnpackedDualTensor:
    """``(primal, tangent)`` of ``tensor``, as ``torch.autograd.forward_ad.unpack_dual``: the
    tangent is the JVP over the dual tensors it was computed from, None for a tensor that
    depends on none of them (or outside ``dual_level``).

    >>> import jitgrad
    >>> with dual_level():
    ...     x = make_dual(jitgrad.tensor([1.0, 2.0]), jitgrad.tensor([1.0, 0.0]))
    ...     unpack_dual(x.exp().sum())
    UnpackedDualTensor(primal=tensor(10.1073), tangent=tensor(2.7183))
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"unpack_dual: argument 'dual' must be a Tensor, not "
                        f"{type(tensor).__name__}")
    duals = _level or []
    for d in duals:
        if d.tensor is tensor:
            return UnpackedDualTensor(tensor if d.tracked else tensor.detach(), d.tangent)
    if not duals or not tensor.requires_grad or not tensor.dtype.is_floating_point:
        return UnpackedDualTensor(tensor, None)
    # Keep the tangent differentiable when reverse mode may look at it (a primal or tangent
    # with a graph of the caller's); otherwise skip building that graph.
    tracked = any(d.tracked or d.tangent.requires_grad for d in duals)
    tangent = _jvp(tensor, duals, tracked)
    return UnpackedDualTensor(tensor if tracked else tensor.detach(), tangent)


def carries_tangent(args) -> bool:
    """Whether any tensor in ``args`` is, or was computed from, a dual tensor of this level."""
    return bool(_level) and any(isinstance(a, Tensor) and a.requires_grad
                                and unpack_dual(a).tangent is not None for a in args)


def tangent_or_zeros(t: Tensor) -> Tensor:
    """``t``'s tangent, zeros of its shape where it has none (what a Function's ``jvp`` gets)."""
    tangent = unpack_dual(t).tangent if _level else None
    if tangent is None:
        from jitgrad.ops import zeros_like
        return zeros_like(t.detach())
    return tangent


def _jvp(y: Tensor, duals: list, higher: bool) -> Tensor | None:
    """``sum_i J_i @ tangent_i`` over the duals ``y`` depends on, by the double-VJP trick."""
    from jitgrad.autograd.functional import grad
    from jitgrad.autograd.grad_mode import enable_grad
    from jitgrad.ops import ones_like
    try:
        with enable_grad():
            u = ones_like(y.detach()).requires_grad_(True)  # any value: g is linear in u
            gs = grad(y, [d.tensor for d in duals], u, retain_graph=True, create_graph=True,
                      allow_unused=True)
            pairs = [(g, d.tangent) for g, d in zip(gs, duals) if g is not None]
            if not pairs:
                return None  # y does not depend on any dual tensor
            (jvp,) = grad([g for g, _ in pairs], u, [t for _, t in pairs], retain_graph=True,
                          create_graph=higher, allow_unused=True)
    except NotImplementedError as e:
        raise NotImplementedError(f"unpack_dual: forward-mode tangents are computed through "
                                  f"each op's backward, and one between make_dual and "
                                  f"unpack_dual has none: {e}") from e
    if jvp is None:  # the gradient does not depend on u: a Jacobian that is identically 0
        from jitgrad.ops import zeros_like
        return zeros_like(y.detach())
    return jvp if higher else jvp.detach()
