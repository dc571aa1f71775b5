"""The CUDA backend on a real GPU against PyTorch CUDA and JAX (each when installed), in one
process, medians: the elementwise gradient of N float32 (with the share of the measured
device-to-device copy bandwidth it reaches, counting bytes read and written), the 784-256-10 tanh
MLP at batch 4096, and per-call overhead on a scalar function.

Run: pip install -e ".[cuda,bench]" && python benchmarks/gpu.py [--n 100000000]
(`NUMBA_ENABLE_CUDASIM=1 python benchmarks/gpu.py --n 1000 --batch 8` only checks that it runs.)
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from _timing import fmt, median_time  # noqa: E402

import jitgrad as jg  # noqa: E402
import jitgrad.nn.functional as F  # noqa: E402
from jitgrad import nn  # noqa: E402


def sync() -> None:
    from numba import cuda
    cuda.synchronize()


def timed(fn) -> float:
    def run():
        fn()
        sync()
    return median_time(run, repeats=5, min_time=0.5)


def copy_bandwidth(n: int) -> float:
    """Bytes per second of a device-to-device copy (read + write) of n float32."""
    from numba import cuda
    a = cuda.device_array(n, np.float32)
    b = cuda.device_array(n, np.float32)
    t = timed(lambda: b.copy_to_device(a))
    return 2 * 4 * n / t


def elementwise(n: int) -> None:
    print(f"elementwise gradient of sum(sin(x)*exp(-x*x) + tanh(x)*x), {n:.0e} float32")
    f = jg.grad(lambda x: (jg.sin(x) * jg.exp(-x * x) + jg.tanh(x) * x).sum(), target="cuda")
    from numba import cuda
    x = cuda.to_device(np.random.default_rng(0).standard_normal(n).astype(np.float32))
    t = timed(lambda: f(x))
    bw = copy_bandwidth(n)
    moved = 2 * 4 * n  # x read once, the gradient written once
    print(f"  jitgrad cuda           {fmt(t)}   {moved / t / 1e9:.0f} GB/s = "
          f"{100 * moved / t / bw:.0f}% of the copy bandwidth ({bw / 1e9:.0f} GB/s)")
    try:
        import torch
        xt = torch.as_tensor(np.asarray(x), device="cuda").requires_grad_()

        def step():
            xt.grad = None
            (torch.sin(xt) * torch.exp(-xt * xt) + torch.tanh(xt) * xt).sum().backward()
        tt = median_time(lambda: (step(), torch.cuda.synchronize()), repeats=5, min_time=0.5)
        print(f"  torch cuda eager       {fmt(tt)}   (jitgrad {tt / t:.2f}x)")
    except Exception as e:  # absent, or no CUDA build
        print(f"  torch: skipped ({type(e).__name__})")
    try:
        import jax
        import jax.numpy as jnp
        jf = jax.jit(jax.grad(lambda x: (jnp.sin(x) * jnp.exp(-x * x) + jnp.tanh(x) * x).sum()))
        xj = jax.device_put(np.asarray(x))
        tj = median_time(lambda: jf(xj).block_until_ready(), repeats=5, min_time=0.5)
        print(f"  jax jit                {fmt(tj)}   (jitgrad {tj / t:.2f}x)")
    except Exception as e:
        print(f"  jax: skipped ({type(e).__name__})")


def mlp(batch: int) -> None:
    print(f"784-256-10 tanh MLP, cross-entropy, batch {batch} float32")
    jg.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.Tanh(), nn.Linear(256, 10))
    f = jg.value_and_grad(lambda m, x, t: F.cross_entropy(m(x), t), target="cuda")
    rng = np.random.default_rng(0)
    x = jg.from_numpy(rng.standard_normal((batch, 784)).astype(np.float32))
    t = jg.from_numpy(rng.integers(0, 10, batch))
    print(f"  jitgrad cuda           {fmt(timed(lambda: f(model, x, t)))}  (parameters and "
          "batch copied in per call)")


def overhead() -> None:
    print("per-call overhead: scalar x*y + y**2, forward+backward")
    f = jg.value_and_grad(lambda x, y: x * y + y ** 2, argnums=(0, 1), target="cuda")
    x, y = jg.tensor(2.0), jg.tensor(3.0)
    print(f"  jitgrad cuda           {fmt(timed(lambda: f(x, y)))}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=100_000_000)
    p.add_argument("--batch", type=int, default=4096)
    a = p.parse_args()
    elementwise(a.n)
    mlp(a.batch)
    overhead()


if __name__ == "__main__":
    main()
