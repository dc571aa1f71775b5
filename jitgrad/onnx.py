"""``jitgrad.onnx``: the import that PyTorch tutorials make at the top of a file. Exporting
to ONNX is not supported: jitgrad compiles its own IR with Numba and has no ONNX emitter, so
``export`` raises ``NotImplementedError`` naming what was asked. ``jitgrad.jit(f).lower(...)``
shows the graph jitgrad would compile instead.

>>> import jitgrad as torch
>>> import jitgrad.onnx
>>> torch.onnx.is_in_onnx_export()
False
"""

from __future__ import annotations


class OnnxExporterError(RuntimeError):
    """Raised by a failed ONNX export (named as in torch, for ``except`` clauses)."""


def is_in_onnx_export() -> bool:
    """Whether an ONNX export is running: never, since there is no exporter."""
    return False


def export(model, args=(), f=None, *, kwargs=None, **options):
    """As ``torch.onnx.export``, but unsupported: raises ``NotImplementedError`` that names the
    model and the file, since jitgrad has no ONNX emitter.

    >>> import jitgrad
    >>> jitgrad.onnx.export(jitgrad.nn.Linear(2, 1), (jitgrad.zeros(1, 2),), "m.onnx")
    Traceback (most recent call last):
    ...
    NotImplementedError: jitgrad.onnx.export: exporting Linear to ONNX ('m.onnx') is not supported...
    """
    # A Module by its class, a plain function by its name.
    what = type(model).__name__ if hasattr(model, "parameters") \
        else getattr(model, "__name__", type(model).__name__)
    target = f" ({str(f)!r})" if f is not None else ""
    raise NotImplementedError(
        f"jitgrad.onnx.export: exporting {what} to ONNX{target} is not supported; jitgrad has "
        "no ONNX emitter (it compiles its own IR with Numba). Save the weights with "
        "jitgrad.save(model.state_dict(), path), or inspect the compiled graph with "
        "jitgrad.jit(fn).lower(*args).as_text('optimized')")


def dynamo_export(model, *args, **kwargs):
    """As ``torch.onnx.dynamo_export``: unsupported, as ``export``."""
    return export(model, args)
