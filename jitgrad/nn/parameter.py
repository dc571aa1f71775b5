"""``Parameter``: a leaf tensor that a ``Module`` registers as learnable."""

from __future__ import annotations

from jitgrad.tensor import Tensor, _init


class Parameter(Tensor):
    """A tensor that is a module's parameter (``requires_grad=True`` by default).

    >>> import jitgrad
    >>> p = jitgrad.nn.Parameter(jitgrad.zeros(2))
    >>> p.requires_grad
    True
    """

    __slots__ = ()

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        from jitgrad.factories import tensor
        if data is None:
            data = tensor([])
        if not isinstance(data, Tensor):
            data = tensor(data)
        _init(self, data.detach()._value)
        if requires_grad:
            self.requires_grad = True

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
