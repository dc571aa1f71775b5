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


class _Placeholder:
    """What the two placeholders share: ``materialize`` gives the same object its shape (values
    uninitialised: the module fills them) and makes it a ``_becomes``; ``detach`` is itself, as
    torch's state dicts keep a lazy module's placeholders (there is no storage to share)."""

    __slots__ = ()
    _becomes: type = Tensor

    def materialize(self, shape: tuple) -> None:
        import numpy as np
        self._value = np.empty(tuple(shape), dtype=self._value.dtype)
        self.__class__ = self._becomes

    def detach(self):
        return self


class UninitializedParameter(_Placeholder, Parameter):
    """The placeholder a lazy module holds until its shapes are known (its first call, or a
    state dict loaded into it); then it becomes a plain ``Parameter``, the same object, so an
    optimizer made before still holds it.

    >>> import jitgrad
    >>> jitgrad.nn.LazyLinear(3).weight
    <UninitializedParameter>
    """

    __slots__ = ()
    _becomes = Parameter

    def __repr__(self) -> str:
        return "<UninitializedParameter>"


class UninitializedBuffer(_Placeholder, Tensor):
    """The placeholder a lazy module holds for a buffer (``LazyBatchNorm2d``'s running
    statistics) until its shape is known; ``materialize`` then makes it a plain tensor, the same
    object.

    >>> import jitgrad
    >>> b = jitgrad.nn.UninitializedBuffer()
    >>> b
    <UninitializedBuffer>
    >>> b.materialize((2,)); type(b).__name__, tuple(b.shape)
    ('Tensor', (2,))
    """

    __slots__ = ()

    def __init__(self, requires_grad: bool = False, device=None, dtype=None,
                 persistent: bool = True) -> None:
        from jitgrad.devices import check_host
        from jitgrad.factories import empty
        check_host(device)
        _init(self, empty(0, dtype=dtype)._value)
        if requires_grad:
            self.requires_grad = True

    def to(self, *args, **kwargs) -> "UninitializedBuffer":
        """Still a placeholder, of the new dtype (``Module.to(float64)`` before the first call)."""
        out = Tensor.to(self, *args, **kwargs)
        if out is self:
            return self
        new = UninitializedBuffer.__new__(UninitializedBuffer)
        _init(new, out._value)
        return new

    def __repr__(self) -> str:
        return "<UninitializedBuffer>"
