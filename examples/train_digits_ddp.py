"""The digits MLP trained data-parallel over MPI: each rank computes compiled gradients on its
shard of every global batch, ``jitgrad.distributed.all_reduce`` averages them, and every rank takes
the same optimizer step.

Run: pip install -e ".[examples,dist]"
     mpirun -n 2 python examples/train_digits_ddp.py            # two processes on this machine
     mpirun -n 2 python examples/train_digits_ddp.py --bench    # steps/s and all-reduce share
     python examples/train_digits_ddp.py                        # one process, same result

As root, Open MPI refuses to start unless told it may: add --allow-run-as-root to mpirun (or
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1).
"""

from __future__ import annotations

import os

# Under mpirun the ranks share the cores: one BLAS thread each unless the user says otherwise
# (must be set before NumPy loads its BLAS).
if int(os.environ.get("OMPI_COMM_WORLD_SIZE", os.environ.get("PMI_SIZE", "1"))) > 1:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jitgrad  # noqa: E402
import jitgrad.distributed as dist  # noqa: E402
from train_digits import load, loss_fn, make_model  # noqa: E402


def train(epochs: int = 30, batch: int = 64, lr: float = 1e-2, seed: int = 0, log=print):
    """Train on this rank's shards; ``batch`` is the global batch (split evenly over the ranks).
    Returns (model, test accuracy, final mean training loss)."""
    world, me = dist.world_size(), dist.rank()
    if batch % world:
        raise ValueError(f"the global batch {batch} does not split evenly over {world} ranks")
    local = batch // world
    xtr, ytr, xte, yte = load(seed)
    jitgrad.manual_seed(seed + me)  # different initial weights per rank on purpose:
    model = make_model()
    dist.broadcast_parameters(model, root=0)  # ... rank 0's win, so all ranks start equal
    opt = jitgrad.optim.Adam(model.parameters(), lr=lr)
    step = jitgrad.value_and_grad(loss_fn)
    predict = jitgrad.jit(lambda m, x: m(x).argmax(1))
    sampler = dist.DistributedSampler(len(xtr), seed=seed, drop_last=True)
    loss = float("nan")
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        idx = sampler.indices()
        losses = []
        for i in range(0, len(idx) - local + 1, local):
            b = idx[i:i + local]
            value, grads = step(model, jitgrad.from_numpy(xtr[b]), jitgrad.from_numpy(ytr[b]))
            opt.step(dist.all_reduce(grads))
            losses.append(value.item())
        loss = float(dist.all_reduce([np.array([np.mean(losses)])])[0].item())
        if epoch % 10 == 9 or epoch == epochs - 1:
            acc = float((predict(model, jitgrad.from_numpy(xte)).numpy() == yte).mean())
            log(f"epoch {epoch + 1}: loss {loss:.4f}, test accuracy {acc:.3f}")
    acc = float((predict(model, jitgrad.from_numpy(xte)).numpy() == yte).mean())
    return model, acc, loss


# The compiled kernels' times: each trace compiles at once here, not after the interpreter has run
# it for as long as a compile takes (the default, jitgrad.config.compile_after).
@jitgrad.config.patch(compile_after=0)
def bench(batch: int = 1024, steps: int = 200, seed: int = 0) -> dict:
    """Steps per second at a fixed global ``batch``, and the share of time spent in all-reduce."""
    world = dist.world_size()
    local = batch // world
    xtr, ytr, _, _ = load(seed)
    rng = np.random.default_rng(seed + dist.rank())
    xs = [jitgrad.from_numpy(xtr[rng.integers(0, len(xtr), local)]) for _ in range(4)]
    ts = [jitgrad.from_numpy(ytr[rng.integers(0, len(ytr), local)]) for _ in range(4)]
    model = make_model()
    dist.broadcast_parameters(model)
    opt = jitgrad.optim.Adam(model.parameters(), lr=1e-3)
    step = jitgrad.value_and_grad(loss_fn)
    reduce_s = 0.0
    for k in range(steps + 20):
        if k == 20:  # after warm-up (compiles, first collective set-up)
            dist.barrier()
            t0, reduce_s = time.perf_counter(), 0.0
        _, grads = step(model, xs[k % 4], ts[k % 4])
        r0 = time.perf_counter()
        grads = dist.all_reduce(grads)
        reduce_s += time.perf_counter() - r0
        opt.step(grads)
    dist.barrier()
    total = time.perf_counter() - t0
    share = dist.all_reduce([np.array([reduce_s / total])])[0].item()
    return {"ranks": world, "batch": batch, "steps_per_s": steps / total, "allreduce_share": share}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=64, help="global batch (split over the ranks)")
    p.add_argument("--bench", action="store_true", help="time steps at --batch (default 1024)")
    args = p.parse_args()
    try:
        dist.init()
    except ImportError as e:  # no MPI here: one line, not a traceback
        sys.exit(f"train_digits_ddp.py: {e}")
    log = print if dist.rank() == 0 else (lambda *a: None)
    if args.bench:
        r = bench(args.batch if args.batch != 64 else 1024)
        log(f"{r['ranks']} rank(s), global batch {r['batch']}: {r['steps_per_s']:.1f} steps/s, "
            f"{100 * r['allreduce_share']:.1f}% of the time in all-reduce")
        return
    log(f"training on {dist.world_size()} rank(s), global batch {args.batch}")
    _, acc, _ = train(args.epochs, args.batch, log=log)
    log(f"test accuracy: {acc:.3f}")


if __name__ == "__main__":
    main()
