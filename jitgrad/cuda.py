"""``jitgrad.cuda``: what PyTorch code asks of ``torch.cuda`` before it picks a device.

Eager tensors live in host memory, so ``is_available()`` is False and ``device_count()`` 0
whatever the machine has; GPUs run compiled functions (``grad(f, target="cuda")``).

>>> import jitgrad as torch
>>> torch.device("cuda" if torch.cuda.is_available() else "cpu")
device(type='cpu')
"""


def is_available() -> bool:
    """Whether eager tensors can be placed on a GPU: never (see the module docstring)."""
    return False


def device_count() -> int:
    """GPUs that eager tensors can use: none."""
    return 0
