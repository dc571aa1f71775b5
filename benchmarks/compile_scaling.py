"""Compile cost against trace length and guard count: a fresh process per size (an empty disk
cache) traces, differentiates and compiles one program, and reports the first call's time. The
growth should be linear: the slope (seconds per op or per guard, a least-squares fit) and the
time per unit at the smallest and largest size are printed.

Run: python benchmarks/compile_scaling.py            (about 20 minutes on 2 cores)
     python benchmarks/compile_scaling.py --quick    (smaller sizes)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

PROGRAM = textwrap.dedent("""
    import sys, time
    import numpy as np
    import jitgrad as jg
    kind, n = sys.argv[1], int(sys.argv[2])
    jg.config.defer_guarded = False  # the first call compiles, guards or not

    def ops(x):  # a chain of mixed elementwise ops and reductions
        y = x
        for i in range(n):
            k = i % 5
            if k == 0:
                y = y.sin()
            elif k == 1:
                y = y * 1.0001
            elif k == 2:
                y = y + 0.5
            elif k == 3:
                y = y.tanh()
            else:
                y = y - y.mean() * 0.01
        return y.sum()

    def guards(x):  # a data-dependent branch per step: one guard each
        y = x
        for i in range(n):
            if y.sum() > -1e9:
                y = y * 1.0001
        return y.sum()

    x = jg.tensor(np.linspace(0.1, 1.0, 64))
    f = jg.grad(ops if kind == "ops" else guards)
    t0 = time.perf_counter()
    f(x)
    print(time.perf_counter() - t0)
""")


def first_call(kind: str, n: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, JITGRAD_CACHE_DIR=d, JITGRAD_AOT="0")
        out = subprocess.run([sys.executable, "-c", PROGRAM, kind, str(n)], env=env,
                             capture_output=True, text=True, check=True).stdout
    return float(out)


def main() -> None:
    quick = "--quick" in sys.argv
    sizes = {"ops": [100, 300, 1000] if quick else [100, 300, 1000, 3000, 10000],
             "guards": [10, 30, 100] if quick else [10, 30, 100, 300, 1000, 2000]}
    for kind, ns in sizes.items():
        print(f"{kind}: first call (trace + differentiate + compile), fresh process")
        ts = []
        for n in ns:
            t = first_call(kind, n)
            ts.append(t)
            print(f"  {n:6d} {kind:6s} {t:8.2f} s   {1e3 * t / n:7.2f} ms per {kind[:-1]}",
                  flush=True)
        slope, icpt = np.polyfit(ns, ts, 1)
        print(f"  linear fit: {1e3 * slope:.2f} ms per {kind[:-1]} + {icpt:.2f} s; the largest "
              f"size costs {ts[-1] / ns[-1] / (slope or 1):.2f}x the slope per {kind[:-1]}")


if __name__ == "__main__":
    main()
