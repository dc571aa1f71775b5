"""The long differential fuzzing run: N programs of ``fuzzing.py`` (its pieces of live state and
in-place writes into results included), each from its own seeded ``random.Random``, counted
instead of stopping at the first failure; each failing program goes to a file of its own.

    python tests/fuzz_long.py --target reference --programs 10000 [--seed S]
    python tests/fuzz_long.py --target cpu --programs 2000
    python tests/fuzz_long.py --target cpu --seed S --only I      # program I of a run again

Not collected by pytest (the name does not match ``test_*.py``). It prints the programs (and
those eager jitgrad refuses, skipped as invalid), the calls and how many ran compiled code, the
traces, mismatches (compiled against eager, and eager against PyTorch where it is installed),
exceptions of compiled functions where eager runs, and the fallbacks: functions that ran
eagerly (past the re-trace limit, or a tensor they could not locate) and, on the CPU, traces
run on the interpreter. Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import atexit
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# As the test suite runs (tests/conftest.py): each trace compiles at once, no ahead-of-time
# builds, kernels in a folder of this run's own unless JITGRAD_CACHE_DIR says where.
os.environ.setdefault("JITGRAD_COMPILE_AFTER", "0")
os.environ.setdefault("JITGRAD_AOT_BUILDS", "0")
os.environ.setdefault("JITGRAD_AOT", "0")
if "JITGRAD_CACHE_DIR" not in os.environ:
    os.environ["JITGRAD_CACHE_DIR"] = tempfile.mkdtemp(prefix="jitgrad-fuzz-")
    atexit.register(shutil.rmtree, os.environ["JITGRAD_CACHE_DIR"], ignore_errors=True)

from tests.fuzzing import (CompiledRaised, EagerRaised, new_stats,  # noqa: E402
                           run_program)

FAILURES = ("mismatch", "exception", "torch", "eager_raised", "timeout", "harness")


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def classify(e: BaseException) -> str:
    if isinstance(e, _Timeout):
        return "timeout"
    if isinstance(e, CompiledRaised):
        return "exception"
    if isinstance(e, EagerRaised):
        return "eager_raised"
    if isinstance(e, AssertionError):
        return "torch" if "vs torch" in str(e) or "where torch runs" in str(e) else "mismatch"
    return "harness"


def run_one(i: int, args, stats: dict, torch) -> tuple[str | None, str, str]:
    """(failure kind or None, the program's note, the traceback)."""
    r = random.Random(f"{args.seed}:{i}")
    notes: list = []
    signal.alarm(args.timeout)
    try:
        run_program(lambda n: r.randrange(n) if n > 1 else 0, args.target, stats, torch,
                    on_note=notes.append)
    except Exception as e:  # noqa: BLE001  (counted and written out)
        return classify(e), "".join(notes), traceback.format_exc()
    finally:
        signal.alarm(0)
    return None, "".join(notes), ""


def summary(stats: dict, fails: dict, elapsed: float, target: str) -> str:
    s = stats
    pieces = ", ".join(f"{k} {v}" for k, v in s["pieces"].items())
    warn = ", ".join(f"{k} {v}" for k, v in sorted(s["warnings"].items())) or "none"
    cpu = f"; traces compiled by Numba {s['numba']}, on the interpreter {s['fallback']}" \
        if target == "cpu" else ""
    return (f"target {target}: {s['programs']} programs run ({s['invalid']} more skipped as "
            f"invalid) in {elapsed:.0f} s\n"
            f"  reading pieces: {pieces}\n"
            f"  calls {s['calls']}, compiled calls {s['compiled_calls']}, traces {s['traces']}, "
            f"lifted loops {s['lifted']}, results written in place {s['writes']}\n"
            f"  mismatches {fails['mismatch']}, exceptions where eager runs "
            f"{fails['exception']}, eager vs torch {fails['torch']}, eager raising after a "
            f"change {fails['eager_raised']}, timeouts {fails['timeout']}, harness errors "
            f"{fails['harness']}\n"
            f"  fallbacks: functions run eagerly {s['eager_fallbacks']}{cpu}\n"
            f"  warnings: {warn}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=["reference", "cpu"], default="reference")
    ap.add_argument("--programs", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="the first program's index")
    ap.add_argument("--only", type=int, default=None, help="run program ONLY alone")
    ap.add_argument("--minutes", type=float, default=None,
                    help="stop (and report) after this long, even short of --programs")
    ap.add_argument("--timeout", type=int, default=300, help="seconds one program may take")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "jitgrad-fuzz-failures"),
                    help="the folder failing programs go to")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch cross-check")
    ap.add_argument("--every", type=int, default=500, help="print progress every N programs")
    args = ap.parse_args(argv)
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            pass
    signal.signal(signal.SIGALRM, _alarm)
    stats = new_stats()
    fails = dict.fromkeys(FAILURES, 0)
    indices = [args.only] if args.only is not None else \
        range(args.start, args.start + args.programs)
    t0 = time.perf_counter()
    done = 0
    for i in indices:
        if args.minutes is not None and time.perf_counter() - t0 > args.minutes * 60:
            print(f"stopped after {args.minutes} minutes, at program {i}", flush=True)
            break
        kind, note, tb = run_one(i, args, stats, torch)
        done += 1
        if kind is not None:
            fails[kind] += 1
            os.makedirs(args.out, exist_ok=True)
            path = os.path.join(args.out, f"{args.target}-seed{args.seed}-{i}-{kind}.txt")
            with open(path, "w") as f:
                f.write(f"# python tests/fuzz_long.py --target {args.target} --seed "
                        f"{args.seed} --only {i}\n{note}\n\n{tb}")
            print(f"program {i}: {kind}, written to {path}\n{tb.strip().splitlines()[-1]}",
                  flush=True)
        if args.every and done % args.every == 0:
            dt = time.perf_counter() - t0
            print(f"[{done} programs, {dt:.0f} s, {done / dt:.1f}/s] "
                  + summary(stats, fails, dt, args.target).splitlines()[3].strip(), flush=True)
    print(summary(stats, fails, time.perf_counter() - t0, args.target), flush=True)
    return 1 if any(fails.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
