"""The project's benchmark workloads for jitgrad, PyTorch eager and JAX jit (each when
installed), in one process: medians over repeats, and ratios. First-call latency and peak memory
run in fresh processes. The workloads: a scalar function per call, the norm-driven while loop
per call (steady state, and in total with its compiles over inputs whose trip counts
differ), a loop whose gradient needs every iteration, a loop with an if in its body, the
hessian through a loop, an
elementwise gradient on 1e6 float64, a 784-256-10 tanh MLP step at batch 128, and that MLP's
per-example gradients (vmap of grad).

Run: python benchmarks/run.py            (pip install -e ".[bench]" for the comparisons)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from _timing import fmt, median_times  # noqa: E402

import jitgrad as jg  # noqa: E402

# The steady-state figures are the compiled kernels': each trace compiles at once here. Users'
# functions first run on the interpreter for as long as a compile takes (config.compile_after);
# the totals over fresh processes (loop_total, fresh_process) measure that default.
jg.config.compile_after = 0

try:
    import torch
except ImportError:
    torch = None
try:
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
except ImportError:
    jax = None

RATIOS: dict[str, dict[str, tuple]] = {}


def compare(workload: str, fns: dict, repeats: int = 9) -> None:
    """Time ``fns`` (the first is jitgrad compiled) interleaved, round by round; the ratios are
    medians of each round's own ratio, which a drifting machine speed cancels out of."""
    times, ratios = median_times(fns, repeats=repeats)
    for who, seconds in times.items():
        print(f"  {who:22s} {fmt(seconds)}", flush=True)
    first = next(iter(fns))
    # The ratio of the medians printed above (so the two always agree in direction), and the
    # range of each round's own ratio (a noisy machine shows as a wide one).
    RATIOS[workload] = {who: (times[who] / times[first], ratios[who])
                        for who in fns if who != first}


def scalar() -> None:
    print("scalar x*y + y**2, forward+backward per call")
    f = jg.value_and_grad(lambda x, y: x * y + y ** 2, argnums=(0, 1))
    x, y = jg.tensor(2.0), jg.tensor(3.0)
    fns = {"jitgrad compiled": lambda: f(x, y)}

    def eager(M):
        def step():
            a = M.tensor(2.0, requires_grad=True)
            b = M.tensor(3.0, requires_grad=True)
            (a * b + b ** 2).backward()
        return step
    fns["jitgrad eager"] = eager(jg)
    if torch is not None:
        fns["torch eager"] = eager(torch)
    if jax is not None:
        jf = jax.jit(jax.value_and_grad(lambda x, y: x * y + y ** 2, argnums=(0, 1)))
        xa, ya = jnp.float32(2.0), jnp.float32(3.0)
        fns["jax jit"] = lambda: jax.block_until_ready(jf(xa, ya))
    compare("scalar", fns)
    print("the same with Python floats as the arguments")
    fns = {"jitgrad compiled": lambda: f(2.0, 3.0)}
    if jax is not None:
        fns["jax jit"] = lambda: jax.block_until_ready(jf(2.0, 3.0))
    compare("scalar floats", fns)


def doubling(x):
    y = x * 2
    while y.norm() < 1000:
        y = y * 2
    return y


def while_loop() -> None:
    print("while-loop VJP, steady state over 64 inputs (traced beforehand)")
    rng = np.random.default_rng(0)
    pool = [rng.standard_normal(3).astype(np.float32) * 10.0 ** rng.uniform(-3, 2)
            for _ in range(64)]
    v = np.array([0.1, 1.0, 0.0001], dtype=np.float32)
    vt = jg.tensor(v)
    f = jg.grad(lambda x: (doubling(x) * vt).sum())
    tv = torch.tensor(v) if torch is not None else None
    _steady("while", f, pool, lambda x: doubling(x).backward(tv))
    print(f"    traces: {f.cache_info().traces}")


def _steady(label: str, f, pool: list, eager) -> None:
    """``compare`` of compiled ``f`` (traced on every input first) with torch eager running
    ``eager(x)`` on a fresh leaf ``x``, over the inputs in ``pool`` in turn."""
    xs = [jg.tensor(p) for p in pool]
    for x in xs:
        f(x)
    it = iter(range(1 << 62))
    fns = {"jitgrad compiled": lambda: f(xs[next(it) % len(xs)])}
    if torch is not None:
        txs = [torch.tensor(p) for p in pool]
        fns["torch eager"] = lambda: eager(txs[next(it) % len(txs)].clone().requires_grad_())
    compare(label, fns)


LOOP_TOTAL = textwrap.dedent("""
    import sys, time
    import numpy as np
    import jitgrad as jg

    def doubling(x):
        y = x * 2
        while y.norm() < 1000:
            y = y * 2
        return y

    rng = np.random.default_rng(1)
    pool = [(rng.standard_normal(3) * 10.0 ** rng.uniform(-6, 3)).astype(np.float32)
            for _ in range(3000)]
    v = np.array([0.1, 1.0, 0.0001], dtype=np.float32)
    if sys.argv[1] == "jitgrad":
        vt = jg.tensor(v)
        f = jg.grad(lambda x: (doubling(x) * vt).sum())
        xs = [jg.tensor(p) for p in pool]
        t0 = time.perf_counter()
        for x in xs:
            f(x)
        info = f.cache_info()
        print(time.perf_counter() - t0, info.traces, info.compiles, "numba" in sys.modules)
        from jitgrad.backends import aot
        aot.wait()  # the ahead-of-time build of the kernel, for later processes (not timed)
    else:
        import torch
        tv = torch.tensor(v)
        xs = [torch.tensor(p) for p in pool]
        t0 = time.perf_counter()
        for x in xs:
            x = x.clone().requires_grad_()
            doubling(x).backward(tv)
        print(time.perf_counter() - t0, 0, 0, False)
""")


def loop_total() -> None:
    print("while-loop VJP over 3000 inputs spread over nine decades (trip counts 0 to ~30), "
          "total time with every trace and compile, each in a fresh process")
    totals = {}
    with tempfile.TemporaryDirectory() as d:
        runs = [("jitgrad", "jitgrad, empty cache"), ("jitgrad", "jitgrad, a later process")]
        runs += [("torch", "torch eager")] if torch is not None else []
        for who, label in runs:
            # The first process leaves its kernel in the disk cache and builds it ahead of time
            # at exit; the later one loads it without Numba.
            out = subprocess.run([sys.executable, "-c", LOOP_TOTAL, who],
                                 env=dict(os.environ, JITGRAD_CACHE_DIR=d, JITGRAD_AOT="1"),
                                 capture_output=True, text=True, check=True).stdout.split()
            totals[label] = float(out[0])
            extra = f" ({out[1]} traces, {out[2]} compiles" + (
                ", Numba not imported)" if out[3] == "False" else ")") if who == "jitgrad" else ""
            print(f"  {label:26s} {totals[label]:.3f} s{extra}")
    if "torch eager" in totals:
        for label, key in (("jitgrad, empty cache", "while total"),
                           ("jitgrad, a later process", "while total, cached")):
            r = totals["torch eager"] / totals[label]
            RATIOS[key] = {"torch eager": (r, (r, r))}


def damped(w, y, sin):
    while abs(y).sum() > 1e-3:
        y = 0.5 * w * y + 0.01 * sin(y)
    return (y * y).sum() * 1e6


def loop_tape() -> None:
    print("gradient wrt w through a loop whose VJP needs every iteration "
          "(y = 0.5*w*y + 0.01*sin(y) until small), steady state over 64 inputs")
    rng = np.random.default_rng(2)
    ws = [rng.uniform(0.8, 1.6, 4) for _ in range(64)]
    ys = [rng.uniform(0.5, 1.5, 4) * 10.0 ** rng.uniform(-2, 2) for _ in range(64)]
    f = jg.grad(lambda w, y: damped(w, y, jg.sin))
    jw, jy = [jg.tensor(w) for w in ws], [jg.tensor(y) for y in ys]
    worst = 0.0
    for w, y in zip(jw, jy):
        got = f(w, y).numpy()
        we = w.clone().requires_grad_()
        damped(we, y, jg.sin).backward()
        worst = max(worst, float(np.max(np.abs(got - we.grad.numpy()) /
                                        np.maximum(np.abs(we.grad.numpy()), 1e-300))))
    it = iter(range(1 << 62))
    fns = {"jitgrad compiled": lambda: f(jw[next(it) % 64], jy[next(it) % 64])}
    if torch is not None:
        tw, ty = [torch.tensor(w) for w in ws], [torch.tensor(y) for y in ys]

        def teager():
            k = next(it) % 64
            w = tw[k].clone().requires_grad_()
            damped(w, ty[k], torch.sin).backward()
        fns["torch eager"] = teager
    compare("while tape", fns)
    print(f"    traces: {f.cache_info().traces}, compiles: {f.cache_info().compiles}, "
          f"largest relative difference from eager: {worst:.1e}")


def alternating(x):
    y = x
    while y.abs().sum() < 1e4:
        if y.sum() > 0:
            y = y * -1.5 - 1
        else:
            y = y * -2.0 + 1
    return (y * y).sum()


def without_else(x):
    y, z = x * 1.0, x * 0.5
    while z.abs().sum() < 100:
        if (z.sum() * 3.0).sin() > 0:  # no else: that side leaves y as it is
            y = y * 1.5
        z = z + y.abs() * 0.5 + 0.1
    return (y * z).sum()


def loop_branch() -> None:
    for fn, label, what in ((alternating, "while if", "an if on data in its body (the sides "
                             "alternate)"),
                            (without_else, "if no else", "an if without else in its body")):
        print(f"gradient through a while loop with {what}, steady state over 64 inputs")
        rng = np.random.default_rng(3)
        pool = [rng.standard_normal(4) * 10.0 ** rng.uniform(-2, 2) for _ in range(64)]
        f = jg.grad(fn)
        _steady(label, f, pool, lambda x, fn=fn: fn(x).backward())
        print(f"    traces: {f.cache_info().traces}, compiles: {f.cache_info().compiles}")


def newton_capped(a, x, lib):
    # Newton's method for sqrt(a) with an iteration cap, as solvers write it (#30)
    it = 0
    while ((x * x - a).abs() > 1e-9 * a).any() and it < 40:
        x = x - (x * x - a) / (2 * x)
        it += 1
    return x.sum()


def newton_damped(a, x):
    # the same, with a step damped by the count: the body reads the counter (#30)
    it = 0
    while ((x * x - a).abs() > 1e-9 * a).any() and it < 40:
        x = x - (1.0 - 0.5 ** (it + 1)) * (x * x - a) / (2 * x)
        it += 1
    return x.sum()


def sweep_break(x, a):
    # Heron's iteration as a fixed-point sweep: a static range with a break on data
    y = x
    for _ in range(60):
        y = 0.5 * (x + a / x)
        if ((y - x).abs() < 1e-9 * y.abs()).all():
            break
        x = y
    return y.sum()


def loop_cap() -> None:
    print("gradient wrt a through loops with a Python counter: Newton with an iteration cap "
          "(it < 40), the same with a step damped by 0.5 ** it, and a for-range sweep with a "
          "break on data, steady state over 64 inputs")
    rng = np.random.default_rng(4)
    aa = [rng.uniform(1, 9, 4) * 10.0 ** rng.uniform(-3, 6) for _ in range(64)]
    x0 = np.ones(4)
    for label, fn in (("newton cap", lambda a, x: newton_capped(a, x, None)),
                      ("newton damped", newton_damped),
                      ("range break", lambda a, x: sweep_break(x, a))):
        f = jg.grad(fn)
        ja, jx = [jg.tensor(a) for a in aa], jg.tensor(x0)
        worst = 0.0
        for a in ja:
            got = f(a, jx).numpy()
            ae = a.clone().requires_grad_()
            fn(ae, jx).backward()
            worst = max(worst, float(np.max(np.abs(got - ae.grad.numpy()) /
                                            np.maximum(np.abs(ae.grad.numpy()), 1e-300))))
        it = iter(range(1 << 62))
        fns = {"jitgrad compiled": lambda f=f, ja=ja, jx=jx: f(ja[next(it) % 64], jx)}
        if torch is not None:
            ta, tx = [torch.tensor(a) for a in aa], torch.tensor(x0)

            def teager(fn=fn, ta=ta, tx=tx):
                a = ta[next(it) % 64].clone().requires_grad_()
                fn(a, tx).backward()
            fns["torch eager"] = teager
        compare(label, fns)
        print(f"    traces: {f.cache_info().traces}, compiles: {f.cache_info().compiles}, "
              f"largest relative difference from eager: {worst:.1e}")
    if jax is not None:
        def jnewton(a, x):
            def cond(s):
                x, it = s
                return jax.numpy.any(jax.numpy.abs(x * x - a) > 1e-9 * a) & (it < 40)
            return jax.lax.while_loop(cond, lambda s: (s[0] - (s[0] * s[0] - a) / (2 * s[0]),
                                                       s[1] + 1), (x, 0))[0].sum()
        try:
            jax.grad(jnewton)(jax.numpy.asarray(aa[0]), jax.numpy.asarray(x0))
            print("    JAX: reverse mode through lax.while_loop ran")
        except Exception as e:  # noqa: BLE001  (JAX refuses reverse mode through while_loop)
            print(f"    JAX: {type(e).__name__}: {str(e).splitlines()[0][:110]}")


def grow(x):
    # the seed loop with a nonlinear body (the seed's own Hessian is zero): 8 to 14 iterations
    y = x * 2
    while y.norm() < 100:
        y = y * 1.5 + 0.1 * y.sin()
    return (y * y).sum()


def loop_hessian() -> None:
    print("hessian (jacfwd of jacrev) and grad of hessian through a data-dependent while loop, "
          "3 inputs, steady state over 64 inputs whose trip counts differ")
    rng = np.random.default_rng(5)
    xs = [rng.uniform(0.2, 2.0, 3) for _ in range(64)]

    def largest_difference(compiled, eager, inputs) -> float:  # relative, over the inputs
        diffs = [(compiled(x).numpy(), eager(x).numpy()) for x in inputs]
        return max(float(np.max(np.abs(g - w)) / np.max(np.abs(w))) for g, w in diffs)

    h = jg.jit(jg.func.hessian(grow))
    jx = [jg.tensor(x) for x in xs]
    worst = largest_difference(h, jg.func.hessian(grow), jx)  # eager: unrolled
    it = iter(range(1 << 62))
    fns = {"jitgrad compiled": lambda: h(jx[next(it) % 64])}
    if torch is not None:
        from torch import func as tfunc
        tx = [torch.tensor(x) for x in xs]
        th = tfunc.hessian(grow)
        fns["torch.func eager"] = lambda: th(tx[next(it) % 64])
    compare("hessian", fns)
    print(f"    traces: {h.cache_info().traces}, compiles: {h.cache_info().compiles}, "
          f"largest relative difference from eager: {worst:.1e}")
    # a third order: the gradient of the hessian's sum, through the same loop
    third = jg.func.grad(lambda x: jg.func.hessian(grow)(x).sum())
    g3 = jg.jit(third)
    worst = largest_difference(g3, third, jx[:8])
    fns = {"jitgrad compiled": lambda: g3(jx[next(it) % 64])}
    if torch is not None:
        tg3 = tfunc.grad(lambda x: tfunc.hessian(grow)(x).sum())
        fns["torch.func eager"] = lambda: tg3(tx[next(it) % 64])
    print("  grad of hessian (a third order):")
    compare("grad of hessian", fns)
    print(f"    traces: {g3.cache_info().traces}, compiles: {g3.cache_info().compiles}, "
          f"largest relative difference from eager: {worst:.1e}")
    if jax is not None:
        def jgrow(x):
            y = jax.lax.while_loop(lambda y: jnp.linalg.norm(y) < 100,
                                   lambda y: y * 1.5 + 0.1 * jnp.sin(y), x * 2)
            return (y * y).sum()
        try:
            jax.jit(jax.hessian(jgrow))(jnp.asarray(xs[0]))
            print("    JAX: hessian through lax.while_loop ran")
        except Exception as e:  # noqa: BLE001  (reverse mode through while_loop is refused)
            print(f"    JAX: {type(e).__name__}: {str(e).splitlines()[0][:110]}")


def elementwise() -> None:
    print("grad of sum(sin(x)*exp(-x*x) + tanh(x)*x), 1e6 float64")
    xn = np.linspace(-3, 3, 1_000_000)
    f = jg.grad(lambda x: (jg.sin(x) * jg.exp(-x * x) + jg.tanh(x) * x).sum())
    x = jg.tensor(xn)
    fns = {"jitgrad compiled": lambda: f(x)}
    if torch is not None:
        tx = torch.tensor(xn)

        def teager():
            a = tx.detach().requires_grad_()
            (torch.sin(a) * torch.exp(-a * a) + torch.tanh(a) * a).sum().backward()
        fns["torch eager"] = teager
    if jax is not None:
        jf = jax.jit(jax.grad(lambda a: (jnp.sin(a) * jnp.exp(-a * a) + jnp.tanh(a) * a).sum()))
        ja = jnp.asarray(xn)
        fns["jax jit"] = lambda: jax.block_until_ready(jf(ja))
    compare("elementwise", fns, repeats=11)


def mlp() -> None:
    print("784-256-10 tanh MLP, cross-entropy, batch 128 float32: loss and parameter gradients")
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((128, 784)).astype(np.float32)
    tb = rng.integers(0, 10, 128)
    jg.manual_seed(0)
    model = jg.nn.Sequential(jg.nn.Linear(784, 256), jg.nn.Tanh(), jg.nn.Linear(256, 10))
    f = jg.value_and_grad(lambda m, x, t: jg.nn.functional.cross_entropy(m(x), t))
    x, t = jg.tensor(xb), jg.tensor(tb)
    fns = {"jitgrad compiled": lambda: f(model, x, t)}

    def eager():
        model.zero_grad()
        jg.nn.functional.cross_entropy(model(x), t).backward()
    fns["jitgrad eager"] = eager
    if torch is not None:
        tm = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.Tanh(), torch.nn.Linear(256, 10))
        tx, tt = torch.tensor(xb), torch.tensor(tb)

        def teager():
            tm.zero_grad()
            torch.nn.functional.cross_entropy(tm(tx), tt).backward()
        fns["torch eager"] = teager
    if jax is not None:
        params = [jnp.asarray(p.detach().numpy()) for p in model.parameters()]

        def loss(ps, x, t):
            w1, b1, w2, b2 = ps
            logits = jnp.tanh(x @ w1.T + b1) @ w2.T + b2
            lp = jax.nn.log_softmax(logits, axis=1)
            return -jnp.take_along_axis(lp, t[:, None], axis=1).mean()
        jf = jax.jit(jax.value_and_grad(loss))
        ja, jt = jnp.asarray(xb), jnp.asarray(tb)
        fns["jax jit"] = lambda: jax.block_until_ready(jf(params, ja, jt))
    compare("mlp", fns, repeats=15)


def per_example() -> None:
    print("per-example gradients of the 784-256-10 tanh MLP (vmap of grad), batch 128 float32")
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((128, 784)).astype(np.float32)
    yb = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 128)]  # one-hot targets
    shapes = [(256, 784), (256,), (10, 256), (10,)]
    pb = [(rng.standard_normal(s) * 0.05).astype(np.float32) for s in shapes]

    def loss(lib, log_softmax):
        def f(w1, b1, w2, b2, x, y):
            logits = lib.tanh(x @ w1.T + b1) @ w2.T + b2
            return -(log_softmax(logits) * y).sum()
        return f
    dims = (None, None, None, None, 0, 0)
    jl = loss(jg, lambda z: jg.nn.functional.log_softmax(z, dim=-1))
    f = jg.jit(jg.func.vmap(jg.func.grad(jl, argnums=(0, 1, 2, 3)), in_dims=dims))
    ps, x, y = [jg.tensor(p) for p in pb], jg.tensor(xb), jg.tensor(yb)
    fns = {"jitgrad compiled": lambda: f(*ps, x, y)}
    eager = jg.func.vmap(jg.func.grad(jl, argnums=(0, 1, 2, 3)), in_dims=dims)
    fns["jitgrad eager vmap"] = lambda: eager(*ps, x, y)
    one = jg.grad(jl, argnums=(0, 1, 2, 3))
    fns["jitgrad compiled loop"] = lambda: [one(*ps, x[i], y[i]) for i in range(128)]
    if torch is not None:
        import torch.func as tf
        tl = loss(torch, lambda z: torch.log_softmax(z, dim=-1))
        tps, tx, ty = [torch.tensor(p) for p in pb], torch.tensor(xb), torch.tensor(yb)
        tg = tf.vmap(tf.grad(tl, argnums=(0, 1, 2, 3)), in_dims=dims)
        fns["torch.func vmap"] = lambda: tg(*tps, tx, ty)
    if jax is not None:
        jxl = loss(jnp, lambda z: jax.nn.log_softmax(z, axis=-1))
        jf = jax.jit(jax.vmap(jax.grad(jxl, argnums=(0, 1, 2, 3)), in_axes=dims))
        jps, jx, jy = [jnp.asarray(p) for p in pb], jnp.asarray(xb), jnp.asarray(yb)
        fns["jax jit vmap"] = lambda: jax.block_until_ready(jf(*jps, jx, jy))
    compare("per-example", fns, repeats=9)


FIRST_CALL = textwrap.dedent("""
    import sys
    import time
    t0 = time.perf_counter()
    import numpy as np
    import jitgrad as jg
    t1 = time.perf_counter()
    jg.config.compile_after = None if sys.argv[1] == "default" else 0
    f = jg.grad(lambda x: (jg.sin(x) * jg.exp(-x * x) + jg.tanh(x) * x).sum())
    x = jg.tensor(np.linspace(-3, 3, 1000))
    f(x)
    t2 = time.perf_counter()
    print(t1 - t0, t2 - t1, "numba" in sys.modules)
    from jitgrad.backends import aot
    aot.wait()  # the background ahead-of-time build, when one was queued
""")

PEAK = textwrap.dedent("""
    import numpy as np, jitgrad as jg

    def status(key):  # kB, from the kernel's own accounting of this process
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    n = 10_000_000
    f = jg.grad(lambda x: (jg.sin(x) * jg.exp(-x * x) + jg.tanh(x) * x).sum())
    arr = np.arange(n, dtype=np.float64)                # built in place: no temporaries
    arr *= 6.0 / n
    arr -= 3.0
    x = jg.from_numpy(arr)
    jg.config.compile_after = 0  # a compiled call's memory (the interpreter's is eager's)
    g = f(x)    # the first call traces (evaluating once with NumPy) and compiles
    del g
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")                                   # reset the peak-RSS mark
    base = status("VmRSS")
    g = f(x)
    peak = status("VmHWM")
    # A steady-state call's peak memory, counting the input it reads, in input sizes.
    print((arr.nbytes + peak - base) / arr.nbytes)
""")

EAGER_PEAK = textwrap.dedent("""
    import sys
    import numpy as np
    m = __import__(sys.argv[1])  # jitgrad or torch, the same eager program

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024

    n = 10_000_000
    x = m.tensor(np.linspace(-3, 3, n), requires_grad=True)
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = status("VmRSS")
    (m.sin(x) * m.exp(-x * x) + m.tanh(x) * x).sum().backward()
    print((n * 8 + status("VmHWM") - base) / (n * 8))
""")



def fresh_process() -> None:
    print("first call of the elementwise gradient in a fresh process (import excluded)")
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, JITGRAD_CACHE_DIR=d)
        for label, aot, policy in (("interpreted (the default)", "1", "default"),
                                   ("compiled, empty disk cache", "1", "compile"),
                                   ("from disk cache", "1", "compile"),
                                   ("from Numba's cache alone", "0", "compile")):
            out = subprocess.run([sys.executable, "-c", FIRST_CALL, policy],
                                 env=dict(env, JITGRAD_AOT=aot),
                                 capture_output=True, text=True, check=True).stdout.split()
            print(f"  {label:26s} import {float(out[0]):.2f} s, first call {float(out[1]):.3f} s"
                  f"{'' if out[2] == 'True' else ' (Numba not imported)'}")
        out = subprocess.run([sys.executable, "-c", PEAK], env=env, capture_output=True,
                             text=True, check=True).stdout
        print(f"peak memory of a steady-state 1e7 float64 gradient call, input included: "
              f"{float(out):.2f}x the input's bytes (input + gradient alone would be 2x)")
        for who in ["jitgrad"] + (["torch"] if torch is not None else []):
            out = subprocess.run([sys.executable, "-c", EAGER_PEAK, who], env=env,
                                 capture_output=True, text=True, check=True).stdout
            print(f"  the same gradient eagerly, {who}: {float(out):.2f}x")


def summary() -> None:
    print("\nratios (median time of the other / median time of jitgrad compiled; above 1 means "
          "jitgrad is faster; in brackets the range of the rounds' own ratios)")
    for w, d in RATIOS.items():
        print(f"  {w:12s} " + "   ".join(f"{who}: {r:6.2f}x [{lo:.2f}-{hi:.2f}]"
                                        for who, (r, (lo, hi)) in d.items()))


if __name__ == "__main__":
    which = sys.argv[1:] or ["scalar", "while", "loops", "elementwise", "mlp", "per-example",
                             "fresh"]
    for name, fn in (("scalar", scalar), ("while", while_loop), ("loops", loop_total),
                     ("loops", loop_tape), ("loops", loop_branch), ("loops", loop_cap),
                     ("caps", loop_cap), ("loops", loop_hessian), ("hessian", loop_hessian),
                     ("elementwise", elementwise),
                     ("mlp", mlp),
                     ("per-example", per_example), ("fresh", fresh_process)):
        if name in which:
            fn()
    summary()
