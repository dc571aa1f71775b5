"""Train an MLP on scikit-learn's bundled digits data (real data, no download) with compiled
gradients, then time an epoch eagerly and compiled.

Run: pip install -e ".[examples]" && python examples/train_digits.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import jitgrad
import jitgrad.nn.functional as F
from jitgrad import nn


def load(seed: int = 0):
    from sklearn.datasets import load_digits
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_test = len(x) // 5
    te, tr = perm[:n_test], perm[n_test:]
    return x[tr], y[tr], x[te], y[te]


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.Tanh(), nn.Linear(128, 10))


def loss_fn(model, x, t):
    return F.cross_entropy(model(x), t)


def batches(n: int, batch: int, rng: np.random.Generator):
    perm = rng.permutation(n)
    for i in range(0, n - batch + 1, batch):  # full batches only: one shape, one trace
        yield perm[i:i + batch]


def train(epochs: int = 30, batch: int = 64, lr: float = 1e-2, seed: int = 0, progress=True):
    """Train with ``jitgrad.value_and_grad``; returns (model, history, test accuracy)."""
    xtr, ytr, xte, yte = load(seed)
    jitgrad.manual_seed(seed)
    model = make_model()
    opt = jitgrad.optim.Adam(model.parameters(), lr=lr)
    step = jitgrad.value_and_grad(loss_fn)
    predict = jitgrad.jit(lambda m, x: m(x).argmax(1))
    rng = np.random.default_rng(seed)
    history = {"loss": [], "accuracy": []}
    epochs_iter = range(epochs)
    if progress:
        from tqdm import tqdm
        epochs_iter = tqdm(epochs_iter, desc="training", unit="epoch")
    for _ in epochs_iter:
        losses = []
        for idx in batches(len(xtr), batch, rng):
            loss, grads = step(model, jitgrad.from_numpy(xtr[idx]), jitgrad.from_numpy(ytr[idx]))
            opt.step(grads)
            losses.append(loss.item())
        acc = float((predict(model, jitgrad.from_numpy(xte)).numpy() == yte).mean())
        history["loss"].append(float(np.mean(losses)))
        history["accuracy"].append(acc)
        if progress:
            epochs_iter.set_postfix(loss=f"{history['loss'][-1]:.4f}", test_acc=f"{acc:.3f}")
    return model, history, history["accuracy"][-1]


# The compiled kernels' times: each trace compiles at once here, not after the interpreter has run
# it for as long as a compile takes (the default, jitgrad.config.compile_after).
@jitgrad.config.patch(compile_after=0)
def epoch_time(compiled: bool, batch: int = 64, seed: int = 0) -> float:
    """Seconds for one training epoch (after a warm-up epoch), eager or compiled."""
    xtr, ytr, _, _ = load(seed)
    jitgrad.manual_seed(seed)
    model = make_model()
    opt = jitgrad.optim.Adam(model.parameters(), lr=1e-2)
    step = jitgrad.value_and_grad(loss_fn)
    rng = np.random.default_rng(seed)

    def one_epoch():
        for idx in batches(len(xtr), batch, rng):
            x, t = jitgrad.from_numpy(xtr[idx]), jitgrad.from_numpy(ytr[idx])
            if compiled:
                _, grads = step(model, x, t)
                opt.step(grads)
            else:
                opt.zero_grad()
                loss_fn(model, x, t).backward()
                opt.step()

    one_epoch()
    t0 = time.perf_counter()
    one_epoch()
    return time.perf_counter() - t0


def plot(history: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(history["loss"])
    a.set_xlabel("epoch")
    a.set_ylabel("training loss")
    a.set_yscale("log")
    b.plot(history["accuracy"])
    b.set_xlabel("epoch")
    b.set_ylabel("test accuracy")
    fig.suptitle("jitgrad: MLP on scikit-learn digits")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--plot", default="train_digits.png", help="PNG of loss and accuracy")
    args = p.parse_args()
    _, history, acc = train(args.epochs)
    plot(history, args.plot)
    eager, compiled = epoch_time(False), epoch_time(True)
    print(f"test accuracy: {acc:.3f}")
    print(f"plot written to {args.plot}")
    print(f"time per epoch: eager {eager * 1e3:.1f} ms, compiled {compiled * 1e3:.1f} ms "
          f"({eager / compiled:.1f}x)")


if __name__ == "__main__":
    main()
