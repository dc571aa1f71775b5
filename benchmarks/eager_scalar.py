"""The seeds' scalar program ``z = x*y + y**2``, forward and backward per call, eager jitgrad
against eager PyTorch in the same process. Run: python benchmarks/eager_scalar.py"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _timing import fmt, median_time  # noqa: E402

import jitgrad  # noqa: E402


def scalar_step(M):
    def step():
        x = M.tensor(2.0, requires_grad=True)
        y = M.tensor(3.0, requires_grad=True)
        z = x * y + y ** 2
        z.backward()
        return x.grad, y.grad
    return step


def main() -> None:
    rows = [("jitgrad eager", median_time(scalar_step(jitgrad)))]
    try:
        import torch
        torch.set_num_threads(1)
        rows.append(("torch eager", median_time(scalar_step(torch))))
    except ImportError:
        pass
    base = rows[0][1]
    print("scalar x*y + y**2, forward+backward per call (median)")
    for name, t in rows:
        print(f"  {name:16s} {fmt(t)}   jitgrad speed-up vs this: {t / base:5.2f}x")


if __name__ == "__main__":
    main()
