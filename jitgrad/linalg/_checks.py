"""Argument checks shared by ``jitgrad.linalg``: the errors name the function, the argument and
its shape or dtype, in torch's words."""

from __future__ import annotations

from jitgrad.tensor import Tensor


def tensor_arg(x, op: str, name: str = "A") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"linalg.{op}(): argument '{name}' must be a Tensor, not "
                        f"{type(x).__name__}")
    return x


def matrix(x, op: str, name: str = "A", square: bool = False) -> Tensor:
    """``x`` as a floating (batch of) matrix: at least 2-D, square if asked."""
    x = tensor_arg(x, op, name)
    if x.ndim < 2:
        raise RuntimeError(f"linalg.{op}: The input tensor {name} must have at least 2 "
                           f"dimensions, got shape {tuple(x.shape)}.")
    floating(x, op)
    if square and x.shape[-1] != x.shape[-2]:
        raise RuntimeError(f"linalg.{op}: {name} must be batches of square matrices, but they "
                           f"are {x.shape[-2]} by {x.shape[-1]} matrices")
    return x


def floating(x: Tensor, op: str) -> None:
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"linalg.{op}: Expected a floating point tensor as input. Got "
                           f"{x.dtype.name}")


def same_dtype(a: Tensor, b: Tensor, op: str) -> None:
    if a.dtype is not b.dtype:
        raise RuntimeError(f"linalg.{op}: Expected A and B to have the same dtype, but found "
                           f"A of type {a.dtype.name} and B of type {b.dtype.name} instead")
