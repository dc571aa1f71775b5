"""Memory and time of the reverse sweep of a long lifted loop, with and without a tape budget.

The loop carries 256 float64 (2 KiB an iteration) and its VJP reads every iteration's values,
so its tape grows by 2 KiB an iteration: 200 MB at 10^5 iterations, 2 GB at 10^6. With
``config.loop_tape_budget`` set, the tape keeps every s-th iteration within the budget and the
reverse sweep recomputes the rest (loops/primitives.py). Each row is a fresh process: the gradient is
compiled, called once, and then a steady-state call is measured (its peak resident memory above
what the process held before it, from the kernel's own accounting, and its time).

Run: python benchmarks/loop_tape_memory.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

ROW = textwrap.dedent("""
    import sys, time
    import numpy as np
    import jitgrad as jg

    def status(key):  # bytes, from the kernel's own accounting of this process
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    budget = None if sys.argv[2] == "none" else int(sys.argv[2])
    jg.config.compile_after = 0
    jg.config.loop_tape_budget = budget

    def f(w, y, n):
        c = jg.zeros((), dtype=jg.float64)
        while c < n:
            y = jg.tanh(w * y) + 0.5 * y
            c = c + 1
        return (y * y).sum()

    g = jg.grad(f, argnums=(0, 1))
    rng = np.random.default_rng(0)
    w, y = jg.tensor(rng.uniform(0.5, 1.0, 256)), jg.tensor(rng.uniform(-1, 1, 256))
    g(w, y, jg.tensor(5.0))                      # traces (5 iterations) and compiles
    n = jg.tensor(float(sys.argv[1]))
    g(w, y, n)                                   # the same kernel: any trip count
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")                            # reset the peak-RSS mark
    base = status("VmRSS")
    t0 = time.perf_counter()
    out = g(w, y, n)
    seconds = time.perf_counter() - t0
    peak = status("VmHWM") - base
    print(seconds, peak, float(out[0].sum()), g.cache_info().traces)
""")

TORCH = textwrap.dedent("""
    import sys, time
    import numpy as np
    import torch

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    rng = np.random.default_rng(0)
    w0, y0 = torch.tensor(rng.uniform(0.5, 1.0, 256)), torch.tensor(rng.uniform(-1, 1, 256))
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = status("VmRSS")
    t0 = time.perf_counter()
    w = w0.clone().requires_grad_()
    y = y0
    for _ in range(int(float(sys.argv[1]))):
        y = torch.tanh(w * y) + 0.5 * y
    (y * y).sum().backward()
    print(time.perf_counter() - t0, status("VmHWM") - base, float(w.grad.sum()))
""")


def main() -> None:
    env = dict(os.environ, JITGRAD_AOT="0", JITGRAD_BACKGROUND_COMPILE="0")
    print("gradient through a lifted loop carrying 256 float64 (2 KiB an iteration), "
          "one steady-state call in a fresh process")
    print(f"  {'iterations':>10s}  {'tape budget':>12s}  {'time':>8s}  {'peak memory':>12s}")
    for n in ("1e5", "1e6"):
        sums = {}
        for budget in ("none", str(64 << 20), str(8 << 20)):
            out = subprocess.run([sys.executable, "-c", ROW, n, budget], env=env,
                                 capture_output=True, text=True, check=True).stdout.split()
            seconds, peak, total, traces = float(out[0]), int(out[1]), out[2], out[3]
            sums[budget] = total
            label = "none" if budget == "none" else f"{int(budget) >> 20} MiB"
            print(f"  {n:>10s}  {label:>12s}  {seconds * 1e3:6.0f} ms  {peak / 2**20:8.0f} MiB"
                  f"   (traces: {traces})")
        assert len(set(sums.values())) == 1, f"the budgets changed the gradient: {sums}"
        if n == "1e5":
            try:
                out = subprocess.run([sys.executable, "-c", TORCH, n], capture_output=True,
                                     text=True, check=True).stdout.split()
                print(f"  {n:>10s}  {'torch eager':>12s}  {float(out[0]) * 1e3:6.0f} ms  "
                      f"{int(out[1]) / 2**20:8.0f} MiB")
            except (subprocess.CalledProcessError, FileNotFoundError):
                pass  # torch is not installed


if __name__ == "__main__":
    main()
