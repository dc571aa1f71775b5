"""``torch.backends.mps``: Apple's Metal backend, which scripts probe when they pick a device.
jitgrad has none.

>>> import jitgrad as torch
>>> "mps" if torch.backends.mps.is_available() else "cpu"
'cpu'
"""


def is_available() -> bool:
    """Whether eager tensors can use Metal: never."""
    return False


def is_built() -> bool:
    """Whether jitgrad was built with Metal: no."""
    return False
