"""Timing helpers shared by the benchmarks: medians over repeats, ratios."""

from __future__ import annotations

import statistics
import time


def _calls_per_batch(fn, min_time: float) -> int:
    """Calls per timed batch: doubled until a batch takes ``min_time``."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 >= min_time or n >= 1 << 20:
            return n
        n *= 2


def _batch(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def median_time(fn, repeats: int = 7, min_time: float = 0.2) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` batches of at least ``min_time``
    (in all)."""
    n = _calls_per_batch(fn, min_time / repeats)
    return statistics.median(_batch(fn, n) for _ in range(repeats))


def _settled_batch(fn, n: int, pause: float) -> float:
    # Thread pools (OpenBLAS, OpenMP, XLA) spin for a while after their last task: let the
    # previous framework's go quiet, then warm this one's, before timing it.
    time.sleep(pause)
    fn()
    return _batch(fn, n)


def median_times(fns: dict, repeats: int = 9, batch_time: float = 0.1,
                 pause: float = 0.05) -> tuple[dict, dict]:
    """Seconds per call of each of ``fns`` (name -> callable), measured interleaved: every round
    times one batch of each, so a shared machine's drift in speed hits all of them alike.
    Returns (median seconds per call, (lowest, highest) over rounds of each one's time divided
    by the first one's time in the same round)."""
    ns = {k: _calls_per_batch(fn, batch_time) for k, fn in fns.items()}
    first = next(iter(fns))
    times: dict = {k: [] for k in fns}
    ratios: dict = {k: [] for k in fns}
    for _ in range(repeats):
        row = {k: _settled_batch(fn, ns[k], pause) for k, fn in fns.items()}
        for k, t in row.items():
            times[k].append(t)
            ratios[k].append(t / row[first])
    return ({k: statistics.median(v) for k, v in times.items()},
            {k: (min(v), max(v)) for k, v in ratios.items()})


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds:8.2f} s "
