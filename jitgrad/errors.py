"""jitgrad's exception types. Each is also the builtin a PyTorch or JAX user would catch."""


class ShapeError(ValueError, RuntimeError):
    """Shapes that do not fit an operation (broadcasting, matmul, reshape). Both a ValueError and,
    as torch raises for the same mistakes, a RuntimeError."""


class TraceError(RuntimeError):
    """Something a compiled function cannot do with a traced value."""


class GuardFailure(Exception):
    """Raised by compiled code when a value differs from the one its trace was built on; the
    runtime catches it and takes (or traces) the matching branch. Never reaches users."""

    def __init__(self, index: int, observed) -> None:
        super().__init__(index, observed)
        self.index = index
        self.observed = observed
