"""Train the small GPT of the "let's build GPT from scratch" lecture (examples/gpt_model.py: the
same model code runs with PyTorch) on the characters of some of Shakespeare's sonnets and
speeches (examples/data/shakespeare.txt, about 24 KB), with compiled gradients, then print text
sampled from it.

Each step is ``jitgrad.value_and_grad`` of the loss with respect to the model, then AdamW. The
first step traces the model and compiles the step with Numba (minutes for the default model the
first time; a later run loads the kernel from jitgrad's disk cache in seconds);
``--compile-after auto`` leaves the choice to jitgrad (the interpreter first, until a compile is
expected to pay), ``--compile-after inf`` never compiles. Dropout's random numbers are drawn
inside the compiled step; where they cannot be, the script says so and trains without dropout.

Run: python examples/train_gpt.py
     python examples/train_gpt.py --steps 200 --n-layer 1 --n-embd 32 --block 16   (quicker)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import jitgrad

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gpt_model import build, loss_fn  # noqa: E402  (the model, written once for torch and jitgrad)

DATA = os.path.join(HERE, "data", "shakespeare.txt")


def load(path: str = DATA):
    """The text's characters as int64 ids: (train ids, validation ids, vocabulary)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = np.array([stoi[c] for c in text], dtype=np.int64)
    n = int(0.9 * len(data))
    return data[:n], data[n:], chars


def get_batch(data: np.ndarray, batch: int, block: int, rng):
    """``batch`` random windows of ``block`` characters, and the same shifted by one."""
    ix = rng.integers(0, len(data) - block, batch)
    x = np.stack([data[i:i + block] for i in ix])
    y = np.stack([data[i + 1:i + block + 1] for i in ix])
    return jitgrad.from_numpy(x), jitgrad.from_numpy(y)


class _Bar:
    """A stand-in for tqdm where it is not installed: a line every tenth of the way."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.desc, self.n, self.t0, self.post = total, desc, 0, time.perf_counter(), ""

    def update(self, k: int = 1) -> None:
        self.n += k
        if self.n == self.total or self.n % max(1, self.total // 10) == 0:
            print(f"{self.desc}: {self.n}/{self.total} steps, {time.perf_counter() - self.t0:.1f} s"
                  f"{', ' + self.post if self.post else ''}", flush=True)

    def set_postfix_str(self, s: str) -> None:
        self.post = s

    def close(self) -> None:
        pass


def progress_bar(total: int, desc: str = "training", enabled: bool = True):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return _Bar(total, desc)
    return tqdm(total=total, desc=desc, unit="step")


def estimate_loss(model, data: np.ndarray, batch: int, block: int, iters: int = 10,
                  seed: int = 1) -> float:
    """The mean loss over ``iters`` random batches, eagerly, in eval mode (no dropout)."""
    rng = np.random.default_rng(seed)
    model.eval()
    with jitgrad.no_grad():
        losses = [loss_fn(model, *get_batch(data, batch, block, rng)).item() for _ in range(iters)]
    model.train()
    return float(np.mean(losses))


def sample(model, chars: list, n: int = 300, seed: int = 0) -> str:
    """``n`` characters sampled from the model (multinomial), starting from a newline."""
    jitgrad.manual_seed(seed)
    model.eval()
    with jitgrad.no_grad():
        start = jitgrad.full((1, 1), chars.index("\n") if "\n" in chars else 0, dtype=jitgrad.int64)
        ids = model.generate(start, max_new_tokens=n)[0].tolist()
    model.train()
    return "".join(chars[i] for i in ids)


def train(steps: int = 2000, n_layer: int = 2, n_embd: int = 64, n_head: int = 4, block: int = 32,
          batch: int = 16, dropout: float = 0.1, lr: float = 1e-3, seed: int = 0,
          compile_after: float | None = None, progress: bool = True, log=print):
    """Train; returns (model, training losses, validation loss, vocabulary, dropout used).
    ``compile_after``: jitgrad's ``config.compile_after`` for the step (None: as configured)."""
    train_data, val_data, chars = load()
    rng = np.random.default_rng(seed)
    with jitgrad.config.patch(**({} if compile_after is None else {"compile_after": compile_after})):
        for p in dict.fromkeys((dropout, 0.0)):
            jitgrad.manual_seed(seed)
            model = build(jitgrad, len(chars), n_layer=n_layer, n_embd=n_embd, n_head=n_head,
                          block=block, dropout=p)
            opt = jitgrad.optim.AdamW(model.parameters(), lr=lr)
            step = jitgrad.value_and_grad(loss_fn)
            try:
                loss, grads = step(model, *get_batch(train_data, batch, block, rng))
            except Exception as e:  # noqa: BLE001  (reported; training goes on without dropout)
                if p == 0.0:
                    raise
                log(f"dropout {p} does not compile here ({type(e).__name__}: "
                    f"{str(e).splitlines()[0]}); training without dropout")
                continue
            break
        log(f"{sum(q.numel() for q in model.parameters())} parameters, {len(chars)} characters, "
            f"dropout {p}")
        opt.step(grads)
        losses = [loss.item()]
        bar = progress_bar(steps, enabled=progress)
        if bar is not None:
            bar.update(1)
        for i in range(1, steps):
            loss, grads = step(model, *get_batch(train_data, batch, block, rng))
            opt.step(grads)
            losses.append(loss.item())
            if bar is not None:
                bar.update(1)
                if i % 50 == 0 or i == steps - 1:
                    bar.set_postfix_str(f"loss {np.mean(losses[-50:]):.3f}")
        if bar is not None:
            bar.close()
    info = step.cache_info()
    log(f"steps: {info.interpreted} on the interpreter, {steps - info.interpreted} compiled "
        f"({info.compiles} compile(s))")
    return model, losses, estimate_loss(model, val_data, batch, block), chars, p


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Train a small character-level GPT with jitgrad.")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--block", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--sample", type=int, default=400, help="characters to generate at the end")
    ap.add_argument("--compile-after", default="0",
                    help="seconds on the interpreter before the step compiles (jitgrad's "
                    "config.compile_after): 0 (the default) compiles at the first step, 'auto' "
                    "is jitgrad's default choice, 'inf' never compiles")
    a = ap.parse_args(argv)
    after = None if a.compile_after == "auto" else float(a.compile_after)
    if after == 0:
        print("the first step traces and compiles the training step: minutes the first time, "
              "seconds once the kernel is in jitgrad's disk cache", flush=True)
    t0 = time.perf_counter()
    model, losses, val, chars, _ = train(a.steps, a.n_layer, a.n_embd, a.n_head, a.block, a.batch,
                                         a.dropout, compile_after=after)
    print(f"trained {a.steps} steps in {time.perf_counter() - t0:.1f} s: training loss "
          f"{np.mean(losses[:10]):.3f} -> {np.mean(losses[-50:]):.3f}, validation loss {val:.3f}")
    print("--- a sample ---")
    print(sample(model, chars, a.sample))


if __name__ == "__main__":
    main()
