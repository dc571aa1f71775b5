"""``DeviceArray``: what ``target="cuda"`` functions return. The data stays on the GPU; it
exposes ``__cuda_array_interface__`` (so CuPy, Numba and PyTorch can use it without a copy), and
``np.asarray`` / ``.numpy()`` copy it to host memory. Passing it back into a compiled function
uses it in place.

>>> import numpy as np, jitgrad
>>> f = jitgrad.jit(lambda x: x * 2, target="cuda")   # doctest: +SKIP
>>> y = f(jitgrad.ones(3))                            # doctest: +SKIP
>>> np.asarray(y)                                     # doctest: +SKIP
array([2., 2., 2.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from jitgrad import dtypes
from jitgrad.trace import pytree


class DeviceArray:
    __slots__ = ("_flat", "shape", "dtype")

    def __init__(self, flat, shape: tuple) -> None:
        self._flat = flat          # a flat Numba device array
        self.shape = tuple(shape)
        self.dtype = np.dtype(flat.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def __cuda_array_interface__(self) -> dict:
        iface = dict(self._flat.__cuda_array_interface__)  # AttributeError in the simulator
        iface["shape"] = self.shape
        iface["strides"] = None
        return iface

    def copy(self) -> "DeviceArray":
        """A device-side copy."""
        from numba import cuda
        out = cuda.device_array_like(self._flat)
        out.copy_to_device(self._flat)
        return DeviceArray(out, self.shape)

    def numpy(self) -> np.ndarray:
        """A host copy."""
        return self._flat.copy_to_host().reshape(self.shape)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def cpu(self):
        """A host ``jitgrad.Tensor`` with the same values."""
        from jitgrad.tensor import Tensor
        return Tensor._wrap(self.numpy())

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a one-element array, this one has shape {self.shape}")
        return self.numpy().reshape(()).item()

    def __float__(self) -> float:
        return float(self.item())

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d device array")
        return self.shape[0]

    @property
    def jitgrad_dtype(self):
        return dtypes._BY_NP[self.dtype]

    def __repr__(self) -> str:
        return f"DeviceArray({np.array2string(self.numpy(), separator=', ')}, device='cuda')"


def is_device_array(obj) -> bool:
    """Whether ``obj`` lives on the GPU: jitgrad's, Numba's (real or simulated) device arrays,
    or anything with ``__cuda_array_interface__`` (CuPy, PyTorch CUDA tensors)."""
    t = type(obj)
    if t is DeviceArray or t.__name__ in ("DeviceNDArray", "FakeCUDAArray"):
        return True
    try:  # on the instance: a PyTorch CPU tensor's class has the property, which then raises
        return hasattr(obj, "__cuda_array_interface__")
    except Exception:
        return False


def to_device(x, dtype) -> object:
    """A flat device array holding ``x``: a host array (copied in) or a device array (used in
    place; it must be C-contiguous)."""
    from numba import cuda
    if isinstance(x, np.ndarray):
        if x.dtype != dtype:
            x = x.astype(dtype)
        return cuda.to_device(np.ascontiguousarray(x).reshape(-1))
    dev = device_view(x)
    if dev.size and not dev.is_c_contiguous():
        raise ValueError("a device array argument is not C-contiguous: pass a contiguous copy "
                         "(e.g. .copy() / .contiguous())")
    return dev.reshape(dev.size) if dev.ndim != 1 else dev


def device_view(x) -> object:
    """A Numba device array for anything on the device (jitgrad's DeviceArray, Numba's, or an
    object with ``__cuda_array_interface__``)."""
    import numba
    from numba import cuda
    sim = bool(numba.config.ENABLE_CUDASIM)
    if isinstance(x, DeviceArray):
        return x._flat
    if cuda.is_cuda_array(x) if not sim else hasattr(x, "copy_to_host"):
        return cuda.as_cuda_array(x) if not sim else x
    raise TypeError(f"expected an array, got {type(x).__name__}")


class DeviceLeaf:
    """A GPU array argument (for ``target="cuda"``). ``_value`` is a ``DeviceArray`` over the same
    memory: its shape and dtype key the cache; tracing reads a host copy (``host()``)."""

    __slots__ = ("_value", "where")

    def __init__(self, obj, where: str) -> None:
        self.where = where
        if type(obj) is DeviceArray:
            self._value = obj
            return
        dev = device_view(obj)
        if dev.dtype not in dtypes._BY_NP:
            raise TypeError(f"{where} is a device array of dtype {dev.dtype}, which jitgrad does "
                            f"not support (use one of {dtypes._SUPPORTED})")
        shape = tuple(dev.shape)
        self._value = DeviceArray(to_device(dev, dev.dtype), shape)

    @property
    def dtype(self):
        return dtypes._BY_NP[self._value.dtype]

    def host(self):
        from jitgrad.tensor import Tensor
        return Tensor._wrap(self._value.numpy())


# A GPU array is a tensor leaf of compiled functions' arguments (trace/ cannot import this layer).
pytree.register_leaf_type(is_device_array, DeviceLeaf)
