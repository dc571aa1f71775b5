"""A profiler for eager ops (forward and backward) and compiled functions.

>>> import jitgrad
>>> x = jitgrad.ones(3, requires_grad=True)
>>> with jitgrad.autograd.profiler.profile(record_shapes=True) as prof:
...     (x * 2).sum().backward()
>>> "MulBackward0" in prof.key_averages().table()
True
"""

from __future__ import annotations

import time
from collections import OrderedDict

from jitgrad.ops import registry


class FunctionEventAvg:
    """Totals for one key: calls, self and total CPU time (microseconds), input shapes."""

    def __init__(self, key: str, shapes: str = "") -> None:
        self.key = key
        self.input_shapes = shapes
        self.count = 0
        self.cpu_time_total = 0.0
        self.self_cpu_time_total = 0.0

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / max(self.count, 1)

    def __repr__(self) -> str:
        return (f"<FunctionEventAvg key={self.key} count={self.count} "
                f"cpu_time_total={self.cpu_time_total:.1f}us>")


class CompiledStats:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.time_total = 0.0
        self.traces = 0
        self.interpreted = 0  # calls its traces ran on the interpreter before compiling
        self.compile_s = 0.0


class EventList(list):
    """What ``key_averages()`` returns: averaged events, and a printable table."""

    def __init__(self, events, compiled, record_shapes: bool) -> None:
        super().__init__(events)
        self.compiled = compiled
        self.record_shapes = record_shapes

    def table(self, sort_by: str = "cpu_time_total", row_limit: int = 100) -> str:
        key = {"cpu_time_total": lambda e: e.cpu_time_total,
               "self_cpu_time_total": lambda e: e.self_cpu_time_total,
               "count": lambda e: e.count, "cpu_time": lambda e: e.cpu_time}.get(sort_by)
        if key is None:
            raise ValueError(f"sort_by must be cpu_time_total, self_cpu_time_total, cpu_time or "
                             f"count, got {sort_by!r}")
        rows = sorted(self, key=key, reverse=True)[:row_limit]
        total_self = sum(e.self_cpu_time_total for e in self) or 1.0
        name_w = max([len(e.key) for e in rows] + [len("Name")]) + 2
        head = (f"{'Name':<{name_w}}{'Self CPU %':>11}{'Self CPU':>12}{'CPU total':>12}"
                f"{'CPU time avg':>14}{'# of Calls':>12}")
        if self.record_shapes:
            head += "  Input Shapes"
        rule = "-" * len(head)
        lines = [rule, head, rule]
        for e in rows:
            line = (f"{e.key:<{name_w}}{100 * e.self_cpu_time_total / total_self:>10.2f}%"
                    f"{_us(e.self_cpu_time_total):>12}{_us(e.cpu_time_total):>12}"
                    f"{_us(e.cpu_time):>14}{e.count:>12}")
            if self.record_shapes:
                line += f"  {e.input_shapes}"
            lines.append(line)
        lines.append(rule)
        lines.append(f"Self CPU time total: {_us(total_self)}")
        if self.compiled:
            lines.append("")
            cw = max([len(c.name) for c in self.compiled.values()] + [len("Compiled function")]) + 2
            ch = (f"{'Compiled function':<{cw}}{'Calls':>8}{'Traces':>8}{'Interpreted':>13}"
                  f"{'Compile time':>14}{'Time per call':>15}")
            lines += ["-" * len(ch), ch, "-" * len(ch)]
            for c in self.compiled.values():
                lines.append(f"{c.name:<{cw}}{c.calls:>8}{c.traces:>8}{c.interpreted:>13}"
                             f"{_us(c.compile_s * 1e6):>14}"
                             f"{_us(c.time_total / max(c.calls, 1)):>15}")
            lines.append("-" * len(ch))
        return "\n".join(lines)


def _us(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


class profile:
    """Record eager ops (forward under their primitive's name, backward under the node's name,
    e.g. ``MulBackward0``) and calls of compiled functions, while the block runs."""

    def __init__(self, enabled: bool = True, *, use_cuda: bool = False, use_device=None,
                 record_shapes: bool = False, with_flops: bool = False,
                 profile_memory: bool = False, with_stack: bool = False,
                 with_modules: bool = False, use_kineto: bool = False, use_cpu: bool = True,
                 experimental_config=None, acc_events: bool = False) -> None:
        # The rest of torch's arguments are accepted and change nothing here: eager tensors are
        # on the host, and the times are the host's.
        self.enabled = enabled
        self.record_shapes = record_shapes
        self._events: "OrderedDict[tuple, FunctionEventAvg]" = OrderedDict()
        self._compiled: "OrderedDict[int, CompiledStats]" = OrderedDict()
        self._stack: list = []

    def __enter__(self):
        if self.enabled:
            registry.eager_observers.append(self)
        return self

    def __exit__(self, *exc) -> None:
        if self in registry.eager_observers:
            registry.eager_observers.remove(self)

    # -- hooks -------------------------------------------------------------------------------
    def begin(self, name: str, shapes: str = ""):
        """Open an event (an eager op, or a backward node); ``end`` closes it."""
        self._stack.append(0.0)
        return (name, shapes, time.perf_counter())

    def before(self, prim, args, params):
        return self.begin(prim.name, str([list(a.shape) for a in args])
                          if self.record_shapes else "")

    def after(self, token, prim, args, params, out) -> None:
        self.end(token)

    def end(self, token) -> None:
        name, shapes, t0 = token
        dt = (time.perf_counter() - t0) * 1e6
        child = self._stack.pop()
        if self._stack:
            self._stack[-1] += dt
        ev = self._events.get((name, shapes))
        if ev is None:
            ev = self._events[(name, shapes)] = FunctionEventAvg(name, shapes)
        ev.count += 1
        ev.cpu_time_total += dt
        ev.self_cpu_time_total += dt - child

    def compiled_call(self, runtime, name: str, seconds: float) -> None:
        """One call of a compiled function; ``seconds`` excludes tracing and compiling."""
        c = self._compiled.get(id(runtime))
        if c is None:
            c = self._compiled[id(runtime)] = CompiledStats(name)
        c.calls += 1
        c.time_total += seconds * 1e6
        c.traces = runtime.traces
        c.interpreted = runtime.interpreted
        c.compile_s = runtime.compile_seconds

    # -- results -----------------------------------------------------------------------------
    def key_averages(self, group_by_input_shape: bool = False) -> EventList:
        if group_by_input_shape:
            events = list(self._events.values())
        else:
            merged: "OrderedDict[str, FunctionEventAvg]" = OrderedDict()
            for ev in self._events.values():
                m = merged.get(ev.key)
                if m is None:
                    m = merged[ev.key] = FunctionEventAvg(ev.key, ev.input_shapes)
                elif ev.input_shapes and ev.input_shapes not in m.input_shapes:
                    m.input_shapes += " " + ev.input_shapes
                m.count += ev.count
                m.cpu_time_total += ev.cpu_time_total
                m.self_cpu_time_total += ev.self_cpu_time_total
            events = list(merged.values())
        return EventList(events, self._compiled, self.record_shapes)

    def table(self, **kw) -> str:
        return self.key_averages().table(**kw)
