"""Settings and logging, below every layer that reads them (the backends and the runtime):
``jitgrad.config`` and ``JITGRAD_LOG``.
"""

from __future__ import annotations

import contextlib
import os
import sys


class Config:
    """Global defaults; each compiled function may override ``retrace_limit``.

    >>> import jitgrad
    >>> jitgrad.config.retrace_limit
    32
    >>> with jitgrad.config.patch(retrace_limit=4):
    ...     jitgrad.config.retrace_limit
    4
    >>> jitgrad.config.retrace_limit
    32
    """

    @contextlib.contextmanager
    def patch(self, **settings):
        """Set ``settings`` within a ``with`` block (or a function it decorates), and put the
        values before back after it."""
        unknown = [k for k in settings if k not in vars(self)]
        if unknown:
            raise AttributeError(f"config.patch: no setting named {unknown[0]!r}; the settings "
                                 f"are {', '.join(sorted(vars(self)))}")
        before = {k: getattr(self, k) for k in settings}
        for k, v in settings.items():
            setattr(self, k, v)
        try:
            yield self
        finally:
            for k, v in before.items():
                setattr(self, k, v)

    def __init__(self) -> None:
        self.retrace_limit = 32
        # A value guard (float(), .item()) that forces this many re-traces is "unstable".
        self.unstable_guard_limit = 8
        # Verify the IR after every pass (the tests switch this on).
        self.verify = False
        # Build serial CPU kernels ahead of time in the background, and load them so in later
        # processes, without importing Numba (backends/aot.py; also JITGRAD_AOT=0, which turns
        # both the builds and the loading off).
        self.aot = True
        # Start the background builder at exit; off (also JITGRAD_AOT_BUILDS=0), modules built
        # before still load: for machines where no process may outlive its program (CI, a
        # shared box), while ``aot.wait()`` still builds in the foreground on request.
        self.aot_builds: bool = _switch("JITGRAD_AOT_BUILDS")
        # Seconds of wall time a background builder may take (waiting for a free core
        # included) before it stops and leaves its remaining jobs queued for the next one: a
        # short run must not leave minutes of compiling behind. Also JITGRAD_AOT_BUDGET.
        self.aot_budget: float = _seconds("JITGRAD_AOT_BUDGET", 120.0)
        # Compile a CPU trace in a build process while the interpreter serves its calls, and
        # swap the kernel in when it is ready (backends/numba_build.py): a training loop never
        # stalls on a compile. Off (also JITGRAD_BACKGROUND_COMPILE=0), or with
        # compile_after=0, the caller compiles in place.
        self.compile_in_background: bool = _switch("JITGRAD_BACKGROUND_COMPILE")
        # Threads of the BLAS libraries jitgrad calls (NumPy's and SciPy's OpenBLAS), set when
        # jitgrad is imported (jitgrad/_blas.py); None leaves them as they are. "adaptive" (the
        # default): one per core, but one alone while a build process of this process compiles
        # (a BLAS thread spinning beside a busy core made a GPT step 3-80x slower). Also
        # JITGRAD_BLAS_THREADS (a count, "adaptive", or "auto").
        self.blas_threads: int | str | None = _threads("JITGRAD_BLAS_THREADS", "adaptive")
        # Roll the iterations of data-dependent while loops into one loop that serves every
        # trip count (loops/lift.py); off: one trace per trip count.
        self.lift_loops = True
        # A CPU trace that still has guards runs on the interpreter at its first call and
        # compiles at its second at the earliest: a trace that serves one call never pays a
        # compile.
        self.defer_guarded = True
        # A CPU trace runs on the interpreter until its calls there have taken as long as
        # compiling it is predicted to (None: from the size of its kernel and what the disk
        # cache holds; a kernel built ahead of time loads at once), then compiles: a function
        # called for less time than a compile takes never pays one, and one called for longer
        # pays at most about twice the better of the two choices. A number: that many seconds
        # instead; 0: compile at once. Also JITGRAD_COMPILE_AFTER (seconds, or "auto").
        self.compile_after: float | None = _compile_after(os.environ.get("JITGRAD_COMPILE_AFTER"))
        # Bytes the tape of one differentiated lifted loop may hold (the values each iteration
        # started from): a loop that runs longer keeps every s-th iteration's and recomputes
        # the rest in its reverse sweep (loops/primitives.py). Read when the loop is differentiated,
        # so it applies to traces made after it is set. None: no limit. Also
        # JITGRAD_LOOP_TAPE_BUDGET (bytes, or "none").
        self.loop_tape_budget: int | None = _bytes("JITGRAD_LOOP_TAPE_BUDGET", 1 << 30)
        # A guard on a bool whose two outcomes were both traced merges the two traces into one
        # graph with a cond (loops/merge.py): one kernel for both sides of an if.
        self.merge_branches = True


def _compile_after(text: str | None) -> float | None:
    if text is None or text.strip().lower() in ("", "auto"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ValueError(f"JITGRAD_COMPILE_AFTER={text!r}: expected a number of seconds (0 or "
                         "more), or 'auto'")
    return seconds


def _switch(name: str, default: bool = True) -> bool:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    value = {"1": True, "true": True, "on": True, "yes": True,
             "0": False, "false": False, "off": False, "no": False}.get(text.strip().lower())
    if value is None:
        raise ValueError(f"{name}={text!r}: expected 1 or 0")
    return value


def _threads(name: str, default):
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    if text.strip().lower() == "auto":
        return None
    if text.strip().lower() == "adaptive":
        return "adaptive"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name}={text!r}: expected a number of threads (1 or more), "
                         "adaptive or auto")
    return n


def _bytes(name: str, default: int) -> int | None:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    if text.strip().lower() == "none":
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{name}={text!r}: expected a number of bytes (1 or more) or none")
    return n


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # nan too
        raise ValueError(f"{name}={text!r}: expected a number of seconds (0 or more)")
    return seconds


config = Config()


def log(kind: str, msg: str) -> None:
    """Print ``msg`` to stderr when ``JITGRAD_LOG`` names ``kind`` (retrace, compile)."""
    if kind in os.environ.get("JITGRAD_LOG", "").split(","):
        print(f"[jitgrad {kind}] {msg}", file=sys.stderr)
