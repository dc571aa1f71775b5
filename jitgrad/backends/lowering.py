"""Lowering rules per backend, keyed by the ``Primitive`` object (never its name), as JAX's
``register_lowering``: a code generator looks an equation's primitive up in its backend's table.

What a backend does with each primitive is one of:

- **elementwise**: the registry's scalar template (``Primitive.expr``), fused into loops;
- **reduction**: the registry's ``Reduction`` spec, fused into the loop over its input;
- **view**: ``reshape`` and ``expand``, read in place by the loops (``fusion.VIEWS``);
- **erased**: identities the simplifier removes before any backend sees them;
- **lowering**: a rule registered here, ``rule(codegen, eqn)``;
- **builtin**: handled by the code generator itself (say, guards batched into scalar kernels);
- **host**: an explicit fallback with its reason: that one equation runs its NumPy
  implementation on the host while the rest of the trace compiles.

``coverage(backend)`` says which, for every registered primitive; a test checks that none is
left without one.

>>> from jitgrad.backends import lowering
>>> from jitgrad.ops.linalg import matmul_p
>>> lowering.coverage("numba-cpu")[matmul_p]
'lowering'
"""

from __future__ import annotations

from jitgrad.backends.lowering_tables import CPU, CUDA, TABLES, Lowerings  # noqa: F401


def coverage(backend: str) -> dict:
    """Each registered primitive -> how ``backend`` runs it (see the module docstring), or
    ``"missing"``."""
    # The backends' modules register their rules when imported.
    from jitgrad.backends import (numba_calls, numba_cuda_calls, numba_cuda_loops,  # noqa: F401
                                  numba_loops, numba_random)
    from jitgrad.ops import PRIMITIVES
    from jitgrad.transforms.fusion import VIEWS
    from jitgrad.transforms.simplify import ERASED
    table = TABLES[backend]
    out = {}
    for p in PRIMITIVES.values():
        if p in table.rules:
            out[p] = "lowering"
        elif p in table.builtins:
            out[p] = "builtin"
        elif p in table.host:
            out[p] = "host: " + table.host[p]
        elif p.kind == "elementwise" and p.expr is not None:
            out[p] = "elementwise"
        elif p.reduction is not None:
            out[p] = "reduction"
        elif p in VIEWS:
            out[p] = "view"
        elif p in ERASED:
            out[p] = "erased"
        else:
            out[p] = "missing"
    return out
