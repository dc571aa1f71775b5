"""jitgrad's exception types. Each is also the builtin a PyTorch or JAX user would catch."""


class ShapeError(ValueError, RuntimeError):
    """Shapes that do not fit an operation (broadcasting, matmul, reshape). Both a ValueError and,
    as torch raises for the same mistakes, a RuntimeError."""


class TraceError(RuntimeError):
    """Something a compiled function cannot do with a traced value."""


class ReverseOfLoopReverse(TraceError):
    """Reverse mode through the reverse of a batched reverse loop whose rows are not
    independent loops (``grad`` of ``hessian``, whose ``jacfwd`` batches the tangents only;
    ``grad`` of ``vmap(grad)`` with a trip count per example), which has no rule yet (the reverse
    of a reverse loop has, at any order, and of a batched one whose examples stop together:
    ``loops/second_reverse.py``): the compiled function then traces its
    function transforms with their loops unrolled (one trace per trip count). Never reaches
    users."""


class GuardFailure(Exception):
    """Raised by compiled code when a value differs from the one its trace was built on; the
    runtime catches it and takes (or traces) the matching branch. Never reaches users."""

    def __init__(self, index: int, observed) -> None:
        super().__init__(index, observed)
        self.index = index
        self.observed = observed
