"""jitgrad's exception types. Each is also the builtin a PyTorch or JAX user would catch."""


class ShapeError(ValueError, RuntimeError):
    """Shapes that do not fit an operation (broadcasting, matmul, reshape). Both a ValueError and,
    as torch raises for the same mistakes, a RuntimeError."""


class TraceError(RuntimeError):
    """Something a compiled function cannot do with a traced value."""


class ReverseOfLoopReverse(TraceError):
    """Reverse mode through the reverse of a reverse loop that a transform changed into one
    that is not the reverse of a loop (forward mode through ``jacrev``'s rows: ``grad`` of the
    ``hessian`` of a function with more than one output), which has no rule yet (the reverse of
    a reverse loop has, at any order, batched or not, its examples stopping together or not:
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
