"""Timing snippets, as ``torch.utils.benchmark``: ``Timer`` runs a statement many times and
returns a ``Measurement`` (per-run times, their median, mean and interquartile range), printed
as torch prints it. Tutorials use it to compare an eager loop with its ``vmap`` or compiled
form.

>>> import jitgrad
>>> from jitgrad.utils.benchmark import Timer
>>> m = Timer("x.sum()", globals={"x": jitgrad.ones(10)}).timeit(5)
>>> m.number_per_run, len(m.times), m.mean > 0
(5, 1, True)
"""

from __future__ import annotations

import dataclasses
import time
import timeit as _timeit
from typing import Callable

import numpy as np

from jitgrad import _pysource


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """What was timed: the statement, its setup, and the labels a report groups by."""

    stmt: str
    setup: str = "pass"
    global_setup: str = ""
    label: str | None = None
    sub_label: str | None = None
    description: str | None = None
    env: str | None = None
    num_threads: int = 1

    @property
    def title(self) -> str:
        if self.label is None:
            return self.stmt
        return self.label if self.sub_label is None else f"{self.label}: {self.sub_label}"


def _unit(seconds: float) -> tuple[str, float]:
    for name, scale in (("ns", 1e-9), ("us", 1e-6), ("ms", 1e-3)):
        if seconds < scale * 1000:
            return name, scale
    return "s", 1.0


class Measurement:
    """Times of one statement: ``raw_times`` holds each measurement's total for
    ``number_per_run`` runs, ``times`` the time per run (seconds).

    >>> m = Measurement(10, [1.0e-3, 1.1e-3, 1.3e-3, 2.5e-3], TaskSpec("f()"))
    >>> round(m.median * 1e6, 2), round(m.iqr * 1e6, 2)
    (120.0, 52.5)
    >>> print(str(m).split("\\n", 1)[1])  # doctest: +NORMALIZE_WHITESPACE
    f()
      Median: 120.00 us
      IQR:    52.50 us (107.50 to 160.00)
      4 measurements, 10 runs per measurement, 1 thread
      WARNING: Interquartile range is 43.7% of the median measurement.
               This suggests significant environmental influence.
    """

    def __init__(self, number_per_run: int, raw_times: list, task_spec: TaskSpec,
                 metadata: dict | None = None) -> None:
        if not raw_times:
            raise ValueError("Measurement: raw_times is empty; at least one measurement is "
                             "needed")
        self.number_per_run = int(number_per_run)
        self.raw_times = [float(t) for t in raw_times]
        self.task_spec = task_spec
        self.metadata = metadata

    # The labels of the task, as attributes (torch's Measurement forwards them the same way).
    def __getattr__(self, name: str):
        if name in ("stmt", "setup", "label", "sub_label", "description", "env", "num_threads",
                    "title", "global_setup"):
            return getattr(self.task_spec, name)
        raise AttributeError(f"'Measurement' object has no attribute {name!r}")

    @property
    def times(self) -> list:
        return [t / self.number_per_run for t in self.raw_times]

    @property
    def median(self) -> float:
        return float(np.median(self.times))

    @property
    def mean(self) -> float:
        return float(np.mean(self.times))

    @property
    def iqr(self) -> float:
        q25, q75 = np.percentile(self.times, [25, 75])
        return float(q75 - q25)

    @property
    def has_warnings(self) -> bool:
        return self.meets_confidence() is False and len(self.times) >= 4

    def meets_confidence(self, threshold: float = 0.1) -> bool:
        """Whether the spread (IQR over median) is below ``threshold``."""
        return self.iqr / self.median < threshold if self.median > 0 else True

    def __repr__(self) -> str:
        spec = self.task_spec
        lines = [f"<{type(self).__module__}.Measurement object at {hex(id(self))}>", spec.title]
        if spec.description:
            lines.append(spec.description)
        if spec.setup and spec.setup != "pass":
            lines.append(f"setup: {spec.setup}")
        unit, scale = _unit(self.median)
        n, threads = len(self.times), f"{spec.num_threads} thread" + (
            "s" if spec.num_threads != 1 else "")
        if n == 1:
            lines += [f"  {self.median / scale:.2f} {unit}",
                      f"  1 measurement, {self.number_per_run} runs , {threads}"]
        else:
            lines.append(f"  Median: {self.median / scale:.2f} {unit}")
            if n >= 4:
                q25, q75 = np.percentile(self.times, [25, 75])
                lines.append(f"  IQR:    {self.iqr / scale:.2f} {unit} ({q25 / scale:.2f} to "
                             f"{q75 / scale:.2f})")
            lines.append(f"  {n} measurements, {self.number_per_run} runs per measurement, "
                         f"{threads}")
            if self.has_warnings:
                lines += [f"  WARNING: Interquartile range is {self.iqr / self.median:.1%} of "
                          "the median measurement.",
                          "           This suggests significant environmental influence."]
        return "\n".join(lines)

    __str__ = __repr__


class Timer:
    """Time ``stmt`` (a string of Python, run with ``globals``) after running ``setup`` once,
    as ``torch.utils.benchmark.Timer``. ``num_threads`` is recorded in the report; jitgrad's
    eager ops do not start threads of their own.

    >>> t = Timer("sum(range(100))", label="sum", description="builtin")
    >>> m = t.blocked_autorange(min_run_time=0.01)
    >>> m.title, m.median > 0, len(m.times) >= 1
    ('sum', True, True)
    """

    def __init__(self, stmt: str = "pass", setup: str = "pass", global_setup: str = "",
                 timer: Callable[[], float] = time.perf_counter, globals: dict | None = None,  # noqa: A002
                 label: str | None = None, sub_label: str | None = None,
                 description: str | None = None, env: str | None = None,
                 num_threads: int = 1, language: str = "python") -> None:
        if not isinstance(stmt, str):
            raise ValueError(f"Timer: stmt must be a string of Python code, got "
                             f"{type(stmt).__name__}")
        if str(getattr(language, "name", language)).lower() not in ("python", "py"):
            raise ValueError(f"Timer: only language='python' is supported, got {language!r}")
        if not isinstance(num_threads, int) or num_threads < 1:
            raise ValueError(f"Timer: num_threads must be a positive int, got {num_threads!r}")
        self._spec = TaskSpec(stmt, setup, global_setup, label, sub_label, description, env,
                              num_threads)
        scope = dict(globals or {})
        if global_setup:
            _pysource.run(global_setup, scope, "Timer setup")  # the caller's code, as torch
        self._timer = _timeit.Timer(stmt, setup, timer=timer, globals=scope)

    def _run(self, number: int) -> float:
        return self._timer.timeit(number)

    def timeit(self, number: int = 1000000) -> Measurement:
        """One measurement of ``number`` runs, after a short warm-up."""
        if not isinstance(number, int) or number < 1:
            raise ValueError(f"timeit: number must be a positive int, got {number!r}")
        self._run(max(number // 100, 2))
        return Measurement(number, [self._run(number)], self._spec)

    def _block_size(self, block_time: float) -> int:
        """Runs per measurement: grow by 10x until a block takes ``block_time`` (at least
        0.1 ms, so the timer's own overhead stays negligible)."""
        number = 1
        while self._run(number) < max(block_time, 1e-4) and number < 10 ** 9:
            number *= 10
        return number

    def blocked_autorange(self, callback=None, min_run_time: float = 0.2) -> Measurement:
        """Measurements of a block of runs each, repeated until ``min_run_time`` seconds."""
        number = self._block_size(min_run_time / 10)  # about ten measurements
        raw, total = [], 0.0
        while total < min_run_time or not raw:
            t = self._run(number)
            raw.append(t)
            total += t
            if callback is not None:
                callback(number, t)
        return Measurement(number, raw, self._spec)

    def adaptive_autorange(self, threshold: float = 0.1, *, min_run_time: float = 0.01,
                           max_run_time: float = 10.0, callback=None) -> Measurement:
        """Measure until the spread (IQR over median) drops below ``threshold``, taking at
        least ``min_run_time`` and at most ``max_run_time`` seconds."""
        number = self._block_size(1e-3)
        raw, total = [], 0.0
        while True:
            t = self._run(number)
            raw.append(t)
            total += t
            if callback is not None:
                callback(number, t)
            if total >= max_run_time:
                break
            if total >= min_run_time and len(raw) >= 4 and \
                    Measurement(number, raw, self._spec).meets_confidence(threshold):
                break
        return Measurement(number, raw, self._spec)
