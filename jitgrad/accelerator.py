"""``jitgrad.accelerator``: what PyTorch code asks of ``torch.accelerator`` before it picks a
device. Eager tensors live in host memory, so there is no current accelerator; GPUs run
compiled functions (``grad(f, target="cuda")``).

>>> import jitgrad as torch
>>> torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"
'cpu'
"""


def is_available() -> bool:
    """Whether eager tensors can use an accelerator: never."""
    return False


def current_accelerator(check_available: bool = False):
    """The accelerator eager tensors would use: None."""
    return None


def device_count() -> int:
    """Accelerators eager tensors can use: none."""
    return 0
