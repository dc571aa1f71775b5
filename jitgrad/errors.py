"""jitgrad's exception types. Each is also the builtin a PyTorch or JAX user would catch."""


class ShapeError(ValueError, RuntimeError):
    """Shapes that do not fit an operation (broadcasting, matmul, reshape). Both a ValueError and,
    as torch raises for the same mistakes, a RuntimeError."""


class TraceError(RuntimeError):
    """Something a compiled function cannot do with a traced value."""
