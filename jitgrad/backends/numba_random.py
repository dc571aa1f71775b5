"""Lowerings of the counter-based random draws (``ops/random.py``): the CPU kernel calls a
compiled helper that computes the same bits as the NumPy definition; the CUDA backend draws on
the host (a draw is one small call per trace, and its consumers still fuse on the device)."""

from __future__ import annotations

from jitgrad.backends.lowering_tables import CPU, CUDA
from jitgrad.backends.numba_values import _numel, _shape
from jitgrad.ops.random import uniform_p


@CPU.register(uniform_p)
def call_uniform(cg, e) -> None:
    shape = tuple(e.out.aval.shape)
    state = cg.array(e.inputs[0])  # int64[2] (the primitive's shape rule)
    fn = "rand_u32" if e.out.aval.dtype.np.itemsize == 4 else "rand_u64"
    draw = f"{fn}({state}, {e.params['salt']}, {_numel(shape)})"
    cg.set_array(e, f"{draw}.reshape({_shape(shape)})" if shape else f"{draw}[0]")


CUDA.on_host(uniform_p, "random draws are made on the host (one call per trace)")
