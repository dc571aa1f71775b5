"""``torch.utils.checkpoint``: activation checkpointing trades memory for recomputation and
never changes values or gradients. jitgrad's eager engine keeps what backward needs, so
``checkpoint(fn, *args)`` runs ``fn`` directly: the same results and gradients, without the
memory saving. (Compiled functions checkpoint long loops on their own, past a memory budget.)

>>> import jitgrad
>>> from jitgrad.utils.checkpoint import checkpoint
>>> x = jitgrad.tensor([1.0, 2.0], requires_grad=True)
>>> checkpoint(lambda t: (t * t).sum(), x, use_reentrant=False).backward()
>>> x.grad
tensor([2., 4.])
"""

from __future__ import annotations


def checkpoint(function, *args, use_reentrant: bool | None = None, context_fn=None,
               determinism_check: str = "default", debug: bool = False,
               early_stop: bool = True, **kwargs):
    """``function(*args, **kwargs)``, as ``torch.utils.checkpoint.checkpoint`` computes it."""
    if not callable(function):
        raise TypeError(f"checkpoint: the function must be callable, got "
                        f"{type(function).__name__}")
    return function(*args, **kwargs)


def checkpoint_sequential(functions, segments: int, input, use_reentrant: bool | None = None,
                          **kwargs):
    """Run ``functions`` (a ``Sequential`` or a list of modules) one after the other on
    ``input``, as ``torch.utils.checkpoint.checkpoint_sequential`` computes it.

    >>> import jitgrad
    >>> net = jitgrad.nn.Sequential(jitgrad.nn.ReLU(), jitgrad.nn.Tanh())
    >>> checkpoint_sequential(net, 2, jitgrad.tensor([-1.0, 0.0]))
    tensor([0., 0.])
    """
    if not isinstance(segments, int) or segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be a positive int, got "
                         f"{segments!r}")
    fns = list(functions.children()) if hasattr(functions, "children") else list(functions)
    for f in fns:
        input = f(input)
    return input
