"""``jitgrad.device``: where a tensor lives, spelled as PyTorch spells it.

Eager tensors live in host memory, so the one device they take is ``"cpu"``; code written for
PyTorch that picks a device (``torch.device("cuda" if torch.cuda.is_available() else "cpu")``)
runs unchanged. GPUs are for compiled functions: ``grad(f, target="cuda")``.

>>> import jitgrad as torch
>>> d = torch.device("cpu")
>>> d, str(d), d.type, torch.tensor([1.0], device=d).device == d
(device(type='cpu'), 'cpu', 'cpu', True)
"""

from __future__ import annotations

_TYPES = ("cpu", "cuda", "mps", "xla", "meta")


class device:  # noqa: N801  (PyTorch's name)
    """A device type and optional index: ``device("cpu")``, ``device("cuda:0")``,
    ``device("cuda", 1)``. Compares equal to an equal device and to its string form."""

    __slots__ = ("type", "index")

    def __init__(self, type: str | device, index: int | None = None) -> None:  # noqa: A002
        if isinstance(type, device):
            if index is not None:
                raise ValueError("device(): an index was given with a device object")
            self.type, self.index = type.type, type.index
            return
        if not isinstance(type, str):
            raise TypeError(f"device(): expected a string such as 'cpu', got {type!r}")
        kind, sep, idx = type.partition(":")
        if kind not in _TYPES:
            raise ValueError(f"device(): unknown device type {kind!r} in {type!r}; expected one "
                             f"of {', '.join(_TYPES)}")
        if sep:
            if index is not None:
                raise ValueError(f"device(): {type!r} has an index already; got index={index}")
            if not idx.isdigit():
                raise ValueError(f"device(): invalid index in {type!r}")
            index = int(idx)
        if index is not None and (not isinstance(index, int) or index < 0):
            raise ValueError(f"device(): the index must be a non-negative int, got {index!r}")
        self.type, self.index = kind, index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type={self.type!r})"
        return f"device(type={self.type!r}, index={self.index})"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (TypeError, ValueError):
                return False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = device("cpu")


def is_device(obj) -> bool:
    """Whether ``obj`` is a device or a string that names one ("cpu", "cuda:0"...)."""
    if isinstance(obj, device):
        return True
    return isinstance(obj, str) and obj.partition(":")[0] in _TYPES


def check_host(d) -> None:
    """Raise unless ``d`` (a device, its string, or None for the default) is the host: eager
    tensors live in host memory."""
    if d is None or d == "cpu" or device(d).type == "cpu":  # the common cases, cheaply first
        return
    raise ValueError(f"device {str(d)!r} is not available to eager tensors, which live in host "
                     "memory; compiled functions run on a GPU with target='cuda'")


def check_cuda(d) -> None:
    """``.cuda(d)`` of an eager tensor or Module: ``check_host``'s error, naming the device
    asked for (``cuda`` for None, ``cuda:N`` for an index)."""
    check_host("cuda" if d is None else f"cuda:{d}" if isinstance(d, int) else d)


def to_args(args: tuple, dtype=None, device=None) -> tuple:
    """``to(...)``'s positional arguments as ``(dtype, device)``: a tensor gives its dtype, a
    device (or a string naming one) the device, anything else is a dtype. A device other than
    the CPU is an error (``check_host``)."""
    from jitgrad.tensor import Tensor
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif is_device(a):
            device = a
        elif a is not None:
            dtype = a
    check_host(device)
    return dtype, device


def set_default_device(d) -> None:
    """As ``torch.set_default_device``: where factories put tensors. Only the host is one
    (``"cpu"`` or None); another device is an error that says where GPUs are used.

    >>> import jitgrad
    >>> jitgrad.set_default_device("cpu"); jitgrad.get_default_device()
    device(type='cpu')
    """
    check_host(d)


def get_default_device() -> device:
    """The device factories put tensors on: the host."""
    return CPU
