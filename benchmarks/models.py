"""Models: the small GPT of the "let's build GPT from scratch" lecture (examples/gpt_model.py,
one model definition for torch and jitgrad), its training step (loss, gradients, AdamW) with
PyTorch eager, torch.compile (inductor, CPU), jitgrad eager (``loss.backward(); opt.step()``),
jitgrad compiled (``jitgrad.value_and_grad``, compiled at once, then ``opt.step(grads)``) and
jitgrad with its default settings (the interpreter until a compile pays, compiled off the
caller's path); and the compile time of the step against the model's depth.

Rows:
  gpt     each framework in a fresh process (an empty jitgrad disk cache: first steps are cold;
          for jitgrad compiled and default, one more process then starts warm from that cache,
          with the modules built ahead of time at the first one's exit): first step, median
          steady step (over the second half of the steps), total for --steps steps
  steady  the steady steps again, in one process, interleaved round by round (medians, ratios
          that a shared machine's drift cancels out of; reuses the gpt row's kernel cache)
  depth   the first compiled step (trace, differentiate, compile; empty cache) at n_layer 1, 2,
          4, 8, each in a fresh process, and the cost per layer (a least-squares slope)

Run: python benchmarks/models.py                      (all rows: tens of minutes on 2 cores)
     python benchmarks/models.py --rows gpt --steps 300
     python benchmarks/models.py --rows gpt --who torch-eager,jitgrad-eager --steps 3 \\
         --n-layer 1 --n-embd 16 --block 8 --batch 4       (a quick check of the script)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))

from _timing import fmt, median_times  # noqa: E402

VOCAB = 65  # the characters of the lecture's tiny Shakespeare
WHO = ("torch-eager", "torch-compile", "jitgrad-eager", "jitgrad-compiled", "jitgrad-default")


# -- one framework's training loop (runs in the worker process) ---------------------------------
def _setup(cfg: dict, who: str, dropout: float):
    """(model, step function, batches) for ``who``; a step returns the loss as a float."""
    import gpt_model
    if who.startswith("torch"):
        import torch as M
    else:
        import jitgrad as M
    M.manual_seed(0)
    model = gpt_model.build(M, VOCAB, n_layer=cfg["n_layer"], n_embd=cfg["n_embd"],
                            n_head=cfg["n_head"], block=cfg["block"], dropout=dropout)
    opt = M.optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    data = rng.integers(0, VOCAB, (min(cfg["steps"], 64), 2, cfg["batch"], cfg["block"]))
    batches = [(M.from_numpy(d[0]), M.from_numpy(d[1])) for d in data]

    if who in ("jitgrad-compiled", "jitgrad-default"):
        vg = M.value_and_grad(gpt_model.loss_fn)

        def step(x, y):
            loss, grads = vg(model, x, y)
            opt.step(grads)
            return loss.item()
        step.compiled = vg
        return model, step, batches
    fwd = model
    if who == "torch-compile":
        fwd = M.compile(model)

    def step(x, y):
        _, loss = fwd(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()
    return model, step, batches


def _first_step(cfg: dict, who: str):
    """Set up ``who`` and time its first step; a compiled row that cannot compile dropout's
    random numbers runs again without dropout (and says so)."""
    note = ""
    for dropout in dict.fromkeys((cfg["dropout"], 0.0)):
        model, step, batches = _setup(cfg, who, dropout)
        t0 = time.perf_counter()
        try:
            loss = step(*batches[0])
        except Exception as e:  # noqa: BLE001  (reported, then retried without dropout)
            if dropout == 0.0 or who in ("torch-eager", "jitgrad-eager"):
                raise
            note = f"dropout {dropout} failed ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
            continue
        return model, step, batches, dropout, time.perf_counter() - t0, loss, note
    raise AssertionError("unreachable")


def worker(cfg: dict) -> dict:
    who = cfg["who"]
    if who.startswith("jitgrad"):
        import jitgrad
        if who == "jitgrad-compiled":
            jitgrad.config.compile_after = 0  # the first call compiles (trace, autodiff, Numba)
    model, step, batches, dropout, first, loss, note = _first_step(cfg, who)
    times, losses = [first], [loss]
    for i in range(1, cfg["steps"]):
        t0 = time.perf_counter()
        losses.append(step(*batches[i % len(batches)]))
        times.append(time.perf_counter() - t0)
    out = {"who": who, "dropout": dropout, "times": times, "losses": losses, "note": note}
    if who.startswith("torch"):
        import torch
        out["threads"] = torch.get_num_threads()
    else:
        import numba
        out["threads"] = numba.config.NUMBA_NUM_THREADS
    if hasattr(step, "compiled"):
        info = step.compiled.cache_info()
        out["info"] = f"{info.traces} trace(s), {info.compiles} compile(s), {info.interpreted} " \
                      f"interpreted call(s)"
        if cfg.get("aot_wait"):
            from jitgrad.backends import aot
            aot.wait()  # build the kernel ahead of time for the warm process (not timed)
    return out


_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def run_worker(cfg: dict, cache_dir: str) -> dict:
    env = dict(os.environ, JITGRAD_CACHE_DIR=cache_dir)
    if cfg.get("threads"):
        env.update({k: str(cfg["threads"]) for k in _THREAD_VARS})
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(cfg)],
                       env=env, capture_output=True, text=True)
    if p.returncode != 0:
        err = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
        return {"who": cfg["who"], "error": err[-1] if err else f"exit status {p.returncode}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


# -- the rows ----------------------------------------------------------------------------------
def _describe(cfg: dict) -> str:
    return (f"n_layer {cfg['n_layer']}, n_embd {cfg['n_embd']}, {cfg['n_head']} heads, block "
            f"{cfg['block']}, batch {cfg['batch']}, vocab {VOCAB}, float32, AdamW lr 1e-3")


def gpt_row(cfg: dict, who: list, caches: dict) -> None:
    print(f"GPT training step ({_describe(cfg)}), {cfg['steps']} steps, each in a fresh process")
    print(f"  {'':34s} {'first step':>11s} {'steady':>11s} {'total':>11s}   time / torch eager's "
          "(steady, total)")
    runs = []
    for w in who:
        runs.append((w, w))
        if w in ("jitgrad-compiled", "jitgrad-default"):  # then a later process, with that
            runs.append((w, f"{w}, warm cache"))                # one's kernels on disk
    base = None
    for w, label in runs:
        warm = label.endswith("warm cache")
        cache = caches.get(w.split("-")[1], caches["eager"])
        # (the first process builds its kernels ahead of time at its end, untimed, as it would
        # in the background when it exits: the warm one then loads them)
        res = run_worker(dict(cfg, who=w, aot_wait=w in ("jitgrad-compiled", "jitgrad-default")
                              and not warm), cache)
        if "error" in res:
            print(f"  {label:34s} skipped: {res['error'][:150]}", flush=True)
            continue
        t = res["times"]
        steady = statistics.median(t[len(t) // 2:])
        total = sum(t)
        if w == "torch-eager":
            base = (steady, total)
        ratio = f"{steady / base[0]:5.2f}x {total / base[1]:6.2f}x" if base else ""
        tail = statistics.mean(res["losses"][-10:])
        print(f"  {label:34s} {fmt(t[0])} {fmt(steady)} {fmt(total)}   {ratio}", flush=True)
        print(f"  {'':34s} {res['threads']} threads, dropout {res['dropout']}, "
              f"loss {res['losses'][0]:.3f} -> {tail:.3f}"
              + (f"; {res['info']}" if "info" in res else "")
              + (f"; {res['note']}" if res["note"] else ""), flush=True)


def steady_row(cfg: dict, who: list, cache_dir: str) -> None:
    """The steady steps of every framework in this process, interleaved."""
    print(f"GPT training step, steady state, interleaved in one process ({_describe(cfg)})")
    os.environ["JITGRAD_CACHE_DIR"] = cache_dir  # the gpt row's kernels, if it ran
    import jitgrad
    jitgrad.config.compile_after = 0
    fns, used = {}, {}
    for w in who:
        if w == "jitgrad-default":
            continue  # steady, it runs the kernel jitgrad-compiled runs
        try:
            _, step, batches, dropout, first, _, _ = _first_step(dict(cfg, steps=8), w)
        except Exception as e:  # noqa: BLE001
            print(f"  {w:22s} skipped: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
            continue
        fns[w] = lambda step=step, batches=batches, it=iter(range(1 << 62)): step(
            *batches[next(it) % len(batches)])
        used[w] = dropout
    if not fns:
        return
    times, ratios = median_times(fns, repeats=7, batch_time=0.3)
    first = next(iter(fns))
    for w, s in times.items():
        lo, hi = ratios[w]
        print(f"  {w:22s} {fmt(s)}   {s / times[first]:5.2f}x {first} [{lo:.2f}-{hi:.2f}]  "
              f"(dropout {used[w]})", flush=True)


def depth_row(cfg: dict, depths: list) -> None:
    print(f"compile time against depth: the first compiled step (trace, differentiate, compile "
          f"with compile_after=0), empty cache, fresh process, n_layer in {depths}")
    ts = []
    for n in depths:
        with tempfile.TemporaryDirectory() as d:
            res = run_worker(dict(cfg, who="jitgrad-compiled", steps=1, n_layer=n), d)
        if "error" in res:
            print(f"  n_layer {n}: failed: {res['error'][:150]}")
            return
        ts.append(res["times"][0])
        print(f"  n_layer {n:2d}   {fmt(ts[-1])}   (dropout {res['dropout']})", flush=True)
    if len(ts) > 1:
        slope, icpt = np.polyfit(depths, ts, 1)
        print(f"  linear fit: {slope:.2f} s per layer + {icpt:.2f} s")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rows", default="gpt,steady,depth", help="comma-separated: gpt,steady,depth")
    ap.add_argument("--who", default=",".join(WHO), help=f"comma-separated subset of {','.join(WHO)}")
    ap.add_argument("--n-layer", type=int, default=2)
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--block", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--depths", default="1,2,4,8")
    ap.add_argument("--threads", type=int, help="threads for each process's BLAS, OpenMP and Numba "
                    "(default: theirs, usually one per core)")
    ap.add_argument("--cache-dir", help="jitgrad's kernel cache for the compiled rows (default: a "
                    "new empty one; an existing one makes 'cold' first steps warm)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))))
        return
    cfg = dict(steps=a.steps, n_layer=a.n_layer, n_embd=a.n_embd, n_head=a.n_head, block=a.block,
               batch=a.batch, dropout=a.dropout, threads=a.threads)
    who = [w for w in a.who.split(",") if w]
    unknown = set(who) - set(WHO)
    if unknown:
        ap.error(f"unknown --who {sorted(unknown)}; choose from {','.join(WHO)}")
    rows = a.rows.split(",")
    if a.threads:  # this process too (the steady row), before torch, BLAS or Numba load
        os.environ.update({k: str(a.threads) for k in _THREAD_VARS})
    # (A background ahead-of-time build may still write into the folders as they go.)
    with tempfile.TemporaryDirectory(prefix="jg-gpt-", ignore_cleanup_errors=True) as tmp:
        caches = {"compiled": a.cache_dir or os.path.join(tmp, "compiled"),
                  "default": a.cache_dir or os.path.join(tmp, "default"), "eager": tmp}
        if "gpt" in rows:
            gpt_row(cfg, who, caches)
        if "steady" in rows:
            steady_row(cfg, who, caches["compiled"])
        if "depth" in rows:
            depth_row(cfg, [int(d) for d in a.depths.split(",")])


if __name__ == "__main__":
    main()
