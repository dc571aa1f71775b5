"""Run under mpirun by tests/test_distributed.py (or alone, as one rank).

  worker.py train OUT.npz   a few data-parallel steps, compiled and eager; rank 0 writes the params
  worker.py raise           rank 1 raises while rank 0 waits in all_reduce (the job must abort)
"""

import sys

import numpy as np

import jitgrad
import jitgrad.distributed as dist
import jitgrad.nn.functional as F
from jitgrad import nn

GLOBAL_BATCH, STEPS = 24, 5


def data(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((GLOBAL_BATCH * STEPS, 8)).astype(dtype)
    t = rng.integers(0, 3, GLOBAL_BATCH * STEPS)
    return x, t


def model(dtype, seed):
    jitgrad.manual_seed(seed)
    m = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))
    return m.double() if dtype == np.float64 else m


def loss_fn(m, x, t):
    return F.cross_entropy(m(x), t)


def shard(step: int):
    """This rank's rows of global batch ``step``: the same rows as a one-rank run, split evenly."""
    world, me = dist.world_size(), dist.rank()
    rows = np.arange(step * GLOBAL_BATCH, (step + 1) * GLOBAL_BATCH)
    return rows[me::world]


def run_compiled(dtype, make_opt):
    m = model(dtype, seed=dist.rank())  # ranks start different; the broadcast makes them equal
    dist.broadcast_parameters(m)
    opt = make_opt(m.parameters())
    x, t = data(dtype)
    vg = jitgrad.value_and_grad(loss_fn)
    for s in range(STEPS):
        rows = shard(s)
        _, grads = vg(m, jitgrad.from_numpy(x[rows]), jitgrad.from_numpy(t[rows]))
        opt.step(dist.all_reduce(grads))
    return m


def run_eager(dtype):
    m = model(dtype, seed=dist.rank())
    dist.broadcast_parameters(m)
    opt = jitgrad.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    x, t = data(dtype)
    for s in range(STEPS):
        rows = shard(s)
        opt.zero_grad()
        loss_fn(m, jitgrad.from_numpy(x[rows]), jitgrad.from_numpy(t[rows])).backward()
        dist.all_reduce_grads(m)
        opt.step()
    return m


def main() -> None:
    dist.init()
    if sys.argv[1] == "raise":
        if dist.rank() == 1:
            raise ValueError("rank 1 failed on purpose")
        dist.all_reduce([np.ones(3)])  # never completes: rank 1 is gone
        return
    runs = {
        "compiled_f64_sgd": run_compiled(np.float64, lambda p: jitgrad.optim.SGD(p, lr=0.1,
                                                                                 momentum=0.9)),
        "compiled_f32_adam": run_compiled(np.float32, lambda p: jitgrad.optim.Adam(p, lr=1e-2)),
        "eager_f64_sgd": run_eager(np.float64),
    }
    out = {}
    for name, m in runs.items():
        for pname, p in m.named_parameters():
            v = p.detach().numpy()
            # Every rank must hold the same parameters: compare with rank 0's copy.
            spread = dist.all_reduce([v], op="max")[0].numpy() - dist.all_reduce([v], op="min")[0].numpy()
            out[f"{name}/{pname}"] = v
            out[f"{name}/{pname}/spread"] = spread
    if dist.rank() == 0:
        np.savez(sys.argv[2], world=dist.world_size(), **out)


if __name__ == "__main__":
    main()
