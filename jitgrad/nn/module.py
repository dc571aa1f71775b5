"""``Module``: parameters, sub-modules and buffers registered by attribute assignment."""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

import numpy as np

from jitgrad.errors import ShapeError
from jitgrad.nn.parameter import Parameter, UninitializedParameter, _Placeholder
from jitgrad.tensor import Tensor


class _Version:
    """Bumped whenever any Module gains, loses or swaps a parameter, buffer, sub-module or any
    other attribute, or changes mode, so compiled functions know when the tensors and Python
    values they reach through Modules may have changed."""

    value = 0


def module_version() -> int:
    return _Version.value


class _Registry(OrderedDict):
    """A Module's parameters, sub-modules or buffers: any change bumps the version, also when
    code edits ``_parameters`` directly (as torch code does)."""

    def __setitem__(self, key, value) -> None:
        _Version.value += 1
        super().__setitem__(key, value)

    def __delitem__(self, key) -> None:
        _Version.value += 1
        super().__delitem__(key)

    def pop(self, *args):
        _Version.value += 1
        return super().pop(*args)

    def popitem(self, last: bool = True):
        _Version.value += 1
        return super().popitem(last)

    def clear(self) -> None:
        _Version.value += 1
        super().clear()

    def setdefault(self, key, default=None):
        _Version.value += 1
        return super().setdefault(key, default)

    def move_to_end(self, key, last: bool = True) -> None:
        _Version.value += 1
        super().move_to_end(key, last)


class Module:
    """Base class of layers and models, as torch.nn.Module.

    >>> import jitgrad
    >>> class Net(jitgrad.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = jitgrad.nn.Linear(3, 1)
    ...     def forward(self, x):
    ...         return self.fc(x)
    >>> [n for n, _ in Net().named_parameters()]
    ['fc.weight', 'fc.bias']
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", _Registry())
        object.__setattr__(self, "_modules", _Registry())
        object.__setattr__(self, "_buffers", _Registry())
        object.__setattr__(self, "training", True)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- registration ------------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign attributes before Module.__init__() is called")
        if name in self._buffers and (value is None or (isinstance(value, Tensor) and
                                                        not isinstance(value, Parameter))):
            self._buffers[name] = value  # as torch: a tensor assigned to a buffer stays one
            return
        # A Parameter (Module) replacing one keeps its place in the listing, as torch's does
        keep = self._parameters if isinstance(value, Parameter) else \
            self._modules if isinstance(value, Module) else None
        for d in (self._parameters, self._modules, self._buffers):
            if name in d and d is not keep:
                del d[name]
        if keep is not None:
            keep[name] = value
        else:
            _Version.value += 1  # a tensor or a Python value a trace may have read
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str):
        d = self.__dict__
        for key in ("_parameters", "_modules", "_buffers"):
            if key in d and name in d[key]:
                return d[key][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for d in (self._parameters, self._modules, self._buffers):
            if name in d:
                del d[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is None:
            self._parameters[name] = None
        else:
            setattr(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        if name in self.__dict__:
            object.__delattr__(self, name)
        self._buffers[name] = tensor
        # A buffer that is not persistent stays out of state_dict (a cache such as a mask)
        gone = self.__dict__.setdefault("_non_persistent", set())
        (gone.discard if persistent else gone.add)(name)

    def add_module(self, name: str, module: "Module") -> None:
        self._modules[name] = module

    # -- traversal ---------------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        # Depth first, in registration order, as torch: parameters() and state_dict() list a
        # nested model's tensors in torch's order (code zips them with torch's lists). A module
        # reached twice is listed once, unless ``remove_duplicate`` is False.
        seen = set() if memo is None else {id(m) for m in memo}
        stack = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if remove_duplicate:
                if id(m) in seen:
                    continue
                seen.add(id(m))
            yield name, m
            kids = [(f"{name}.{n}" if name else n, c) for n, c in m._modules.items()
                    if c is not None]
            stack.extend(reversed(kids))

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator["Module"]:
        for m in self._modules.values():
            if m is not None:
                yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from ((n, m) for n, m in self._modules.items() if m is not None)

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):
        yield from self._named("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True):
        yield from self._named("_buffers", prefix, recurse, remove_duplicate)

    def _named(self, where: str, prefix: str, recurse: bool, remove_duplicate: bool):
        """The tensors of each module's ``where`` (its parameters or buffers), under their
        dotted names; one shared by two modules (tied weights) once, unless
        ``remove_duplicate`` is False (as torch's ``state_dict`` lists it under both)."""
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mname, m in mods:
            for n, t in getattr(m, where).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield (f"{mname}.{n}" if mname else n), t

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    # -- modes and gradients -----------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        _Version.value += 1
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = p.grad.detach()
                p.grad._value[...] = 0

    def apply(self, fn) -> "Module":
        for m in list(self.children()):
            m.apply(fn)
        fn(self)
        return self

    def double(self) -> "Module":
        return self._cast("float64")

    def float(self) -> "Module":
        return self._cast("float32")

    def to(self, *args, dtype=None, device=None, non_blocking: bool = False) -> "Module":
        """``to(dtype)``, ``to("cpu")``, ``to(device, dtype)``, ``to(tensor)``: casts the
        floating-point parameters in place; a device other than the CPU is an error.

        ``to("meta")`` is accepted and keeps the parameters' values: torch moves a model to
        the meta device to make a stateless template for ``func.functional_call``, which only
        needs the module's structure, and jitgrad has no storage-less tensors."""
        from jitgrad import devices

        def is_meta(d) -> bool:
            return isinstance(d, (str, devices.device)) and devices.is_device(d) \
                and devices.device(d).type == "meta"
        args = tuple(a for a in args if not is_meta(a))
        device = None if is_meta(device) else device
        dtype, _ = devices.to_args(args, dtype, device)
        return self if dtype is None else self._cast(dtype)

    def cpu(self) -> "Module":
        return self

    def cuda(self, device=None) -> "Module":
        """An error that names the device, as ``Tensor.cuda``: eager parameters live in host
        memory."""
        from jitgrad import devices
        devices.check_cuda(device)
        return self

    def _cast(self, dtype) -> "Module":
        from jitgrad import dtypes
        dt = dtypes.as_dtype(dtype)
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None and p.dtype.is_floating_point:
                    p._value = p._value.astype(dt.np)
                    if p.grad is not None:
                        p.grad = p.grad.to(dt)
            for k, b in m._buffers.items():  # floating buffers too (running statistics), as torch
                if b is not None and b.dtype.is_floating_point:
                    m._buffers[k] = b.to(dt)
        return self

    # -- state -------------------------------------------------------------------------------
    def state_dict(self, *args, destination=None, prefix: str = "",
                   keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        # As torch: module by module, each one's parameters then its persistent buffers, and a
        # tensor shared by two modules (tied weights) under both names.
        if args:  # torch's older positional form, which it still takes with a warning
            import warnings
            warnings.warn("Positional args are being deprecated, use kwargs instead.",
                          FutureWarning, stacklevel=2)
            if len(args) > 3:
                raise TypeError(f"state_dict() takes at most 3 positional arguments "
                                f"(destination, prefix, keep_vars), got {len(args)}")
            destination, prefix, keep_vars = (*args, *(destination, prefix, keep_vars)[
                len(args):])
        out = OrderedDict() if destination is None else destination
        for k, t in self._state_entries(prefix):
            out[k] = t if keep_vars else t.detach()
        return out

    def _state_entries(self, prefix: str = "") -> list:
        """``(name, tensor)`` of every entry ``state_dict`` has, in its order."""
        out = []
        for mname, m in self.named_modules(remove_duplicate=False):
            gone = m.__dict__.get("_non_persistent", ())
            for where in ("_parameters", "_buffers"):
                for n, t in getattr(m, where).items():
                    if t is not None and not (where == "_buffers" and n in gone):
                        # (``prefix`` as torch's: put before each name as it is, "model.")
                        out.append((f"{prefix}{mname}.{n}" if mname else prefix + n, t))
        return out

    def load_state_dict(self, state: dict, strict: bool = True):
        # A copy, as torch takes one: the modules' hooks below may add entries, and the
        # caller's dict must come back as it went in.
        state = dict(state)
        for prefix, m in self.named_modules():
            # A module's own look at the checkpoint first (torch's load hooks): a lazy one
            # checks the shapes it will take, BatchNorm fills what an older file lacks.
            prepare = getattr(m, "_prepare_state", None)
            if prepare is not None:
                prepare(f"{prefix}." if prefix else "", state)
        own = dict(self._state_entries())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"Error(s) in loading state_dict for {type(self).__name__}: missing "
                           f"keys {missing}, unexpected keys {unexpected}")
        for k, v in state.items():
            if k not in own:
                continue
            if isinstance(v, _Placeholder) and isinstance(own[k], _Placeholder):
                continue  # a lazy module's state before its first call: nothing to copy, as torch
            arr = v._value if isinstance(v, Tensor) else np.asarray(v)
            if isinstance(own[k], UninitializedParameter):  # a lazy module's: takes the shape
                own[k].materialize(arr.shape)
            if tuple(arr.shape) != tuple(own[k].shape):
                raise ShapeError(f"size mismatch for {k}: copying a param with shape "
                                 f"{tuple(arr.shape)} from checkpoint, the shape in current model "
                                 f"is {tuple(own[k].shape)}")
            own[k]._value[...] = arr
            own[k]._vc[0] += 1
        return _Keys(missing, unexpected)

    # -- printing ----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        for n, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"({n}): {sub}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class _Keys:
    def __init__(self, missing: list, unexpected: list) -> None:
        self.missing_keys, self.unexpected_keys = missing, unexpected

    def __repr__(self) -> str:
        return "<All keys matched successfully>" if not (self.missing_keys or self.unexpected_keys) \
            else f"_IncompatibleKeys(missing_keys={self.missing_keys}, " \
                 f"unexpected_keys={self.unexpected_keys})"


from jitgrad.trace import pytree as _pytree  # noqa: E402

_pytree.register_module(Module, module_version)
