"""Train a small CNN on scikit-learn's bundled digits (8x8 images, no download) with compiled
gradients, beside the MLP of train_digits.py; then time an epoch eagerly and compiled, and
against PyTorch eager when it is installed.

Run: pip install -e ".[examples]" && python examples/train_digits_cnn.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import jitgrad
import jitgrad.nn.functional as F
from jitgrad import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_digits import batches, load  # noqa: E402  (the same data and batches as the MLP)


def make_model(M=nn) -> object:
    """conv 3x3 (8 channels) - ReLU - max-pool 2 - conv 3x3 (16) - ReLU - linear (10)."""
    return M.Sequential(M.Conv2d(1, 8, 3, padding=1), M.ReLU(), M.MaxPool2d(2),
                        M.Conv2d(8, 16, 3, padding=1), M.ReLU(), M.Flatten(),
                        M.Linear(16 * 4 * 4, 10))


def loss_fn(model, x, t):
    return F.cross_entropy(model(x), t)


def images(x: np.ndarray) -> jitgrad.Tensor:
    return jitgrad.from_numpy(np.ascontiguousarray(x.reshape(-1, 1, 8, 8)))


def train(epochs: int = 8, batch: int = 64, lr: float = 3e-3, seed: int = 0):
    """Train with ``jitgrad.value_and_grad``; returns (model, losses per epoch, test accuracy)."""
    xtr, ytr, xte, yte = load(seed)
    jitgrad.manual_seed(seed)
    model = make_model()
    opt = jitgrad.optim.Adam(model.parameters(), lr=lr)
    step = jitgrad.value_and_grad(loss_fn)
    predict = jitgrad.jit(lambda m, x: m(x).argmax(1))
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        epoch = []
        for idx in batches(len(xtr), batch, rng):
            loss, grads = step(model, images(xtr[idx]), jitgrad.from_numpy(ytr[idx]))
            opt.step(grads)
            epoch.append(loss.item())
        losses.append(float(np.mean(epoch)))
    acc = float((predict(model, images(xte)).numpy() == yte).mean())
    return model, losses, acc


# The compiled kernels' times: each trace compiles at once here, not after the interpreter has run
# it for as long as a compile takes (the default, jitgrad.config.compile_after).
@jitgrad.config.patch(compile_after=0)
def epoch_times(batch: int = 64, seed: int = 0) -> dict:
    """Seconds per training epoch (after a warm-up epoch): jitgrad compiled and eager, and
    PyTorch eager when installed."""
    xtr, ytr, _, _ = load(seed)
    out = {}
    try:
        import torch
    except ImportError:
        torch = None
    for who in ("jitgrad compiled", "jitgrad eager") + (("torch eager",) if torch else ()):
        M = torch if who.startswith("torch") else jitgrad
        M.manual_seed(seed)
        model = make_model(M.nn)
        opt = M.optim.Adam(model.parameters(), lr=3e-3)
        step = jitgrad.value_and_grad(loss_fn)
        rng = np.random.default_rng(seed)

        def one_epoch():
            for idx in batches(len(xtr), batch, rng):
                if who == "jitgrad compiled":
                    _, grads = step(model, images(xtr[idx]), jitgrad.from_numpy(ytr[idx]))
                    opt.step(grads)
                    continue
                x = M.from_numpy(np.ascontiguousarray(xtr[idx].reshape(-1, 1, 8, 8)))
                opt.zero_grad()
                M.nn.functional.cross_entropy(model(x), M.from_numpy(ytr[idx])).backward()
                opt.step()

        one_epoch()
        t0 = time.perf_counter()
        one_epoch()
        out[who] = time.perf_counter() - t0
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=8)
    args = p.parse_args()
    _, losses, acc = train(args.epochs)
    print(f"training loss per epoch: {' '.join(f'{v:.3f}' for v in losses)}")
    print(f"test accuracy: {acc:.3f}")
    times = epoch_times()
    base = times["jitgrad compiled"]
    print("time per epoch: " + ", ".join(f"{k} {v * 1e3:.1f} ms ({v / base:.1f}x)"
                                         for k, v in times.items()))


if __name__ == "__main__":
    main()
