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


def manual_seed(seed: int) -> None:
    """Seed the current GPU's generator, as ``torch.cuda.manual_seed``: with no GPU for eager
    tensors there is none to seed, so the call is accepted and does nothing, as torch does on a
    machine without CUDA. ``jitgrad.manual_seed`` seeds every draw jitgrad makes.

    >>> import jitgrad as torch
    >>> torch.cuda.manual_seed(0)
    """
    int(seed)  # as torch: a seed must be an integer-like value


def manual_seed_all(seed: int) -> None:
    """Seed every GPU's generator, as ``torch.cuda.manual_seed_all``: accepted and ignored
    (see ``manual_seed``).

    >>> import jitgrad as torch
    >>> torch.cuda.manual_seed_all(0)
    """
    int(seed)


def seed_all() -> None:
    """Seed every GPU's generator randomly: nothing to seed (see ``manual_seed``)."""


def empty_cache() -> None:
    """Release cached GPU memory, as ``torch.cuda.empty_cache``: there is none, so nothing."""


def is_initialized() -> bool:
    """Whether the CUDA state of eager tensors is initialized: never."""
    return False
