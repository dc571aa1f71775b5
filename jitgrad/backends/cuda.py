"""``torch.backends.cuda``'s flags (``torch.backends.cuda.matmul.allow_tf32 = True``):
settings that nothing reads, since eager tensors live on the host and compiled GPU code
computes in the dtypes it is given. For jitgrad's GPU compiler see ``numba_cuda``.

>>> import jitgrad as torch
>>> torch.backends.cuda.matmul.allow_tf32, torch.backends.cuda.is_built()
(False, False)
"""


class _MatmulFlags:
    """The ``matmul`` settings torch exposes."""

    def __init__(self) -> None:
        self.allow_tf32 = False
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True


matmul = _MatmulFlags()


def is_built() -> bool:
    """Whether eager tensors were built with CUDA: no (compiled functions use numba-cuda)."""
    return False


def flash_sdp_enabled() -> bool:
    """Whether flash attention kernels are enabled: there are none."""
    return False
