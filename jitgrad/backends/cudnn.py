"""``torch.backends.cudnn``'s flags, which training scripts set at the top
(``torch.backends.cudnn.benchmark = True``). jitgrad does not use cuDNN, so the flags are
plain settings that nothing reads, and ``is_available()`` is False, as torch says on a machine
without CUDA.

>>> import jitgrad as torch
>>> torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
(False, False)
>>> torch.backends.cudnn.is_available(), torch.backends.cudnn.enabled
(False, True)
"""

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """Whether cuDNN can be used: never."""
    return False


def version() -> None:
    """cuDNN's version: None, as torch reports without it."""
    return None
