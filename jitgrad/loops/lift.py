"""Loop lifting: the iterations of a data-dependent Python ``while`` loop, unrolled by the trace,
rolled back into one ``while`` equation (``primitives.py``), so that one compile serves every trip
count. This is how tracing JITs close loops: a guard at one site (the same bytecode of the same
call stack) that held several times and then failed is a loop header, and the equations between
consecutive hits of it are the iterations.

A run is lifted only when that is sound; otherwise the trace stays as it is (one trace per trip
count: slower, never wrong). It must have:

- at least two iterations, each the same equations (primitives, parameters, shapes, dtypes,
  source lines) reading the same values from before the loop and, from the iteration before it,
  the same positions: that is the carried state, of fixed shapes and dtypes (and none from two
  iterations back); with only two, no value from before the loop may be both the start of a
  carried value and read as it is (a rebinding such as ``y, z = z, y + z`` looks so);
- the same Python state at every hit of the header: the non-tensor locals of the user's frames
  inside the traced function, the globals their code names, and every Module
  (``builder.guard_context``), so that no counter, list or flag the trace cannot see steers the
  body;
- a header on a boolean (``while y.norm() < 1000``), not on a number read with ``.item()``;
- no value made inside the loop but its carried state used after it (a list of iterates).

Guards inside the body (an ``if`` on data) stay in it: one that fails exits the kernel and the
call re-traces, as any guard does. When the traced iterations took both sides of such an ``if``,
they are rewritten around a ``cond`` first (``branches.py``), and the loop with
the ``cond`` in its body is lifted.

>>> import jitgrad
>>> def f(x):
...     y = x * 2
...     while y.norm() < 1000:
...         y = y * 2
...     return y.sum()
>>> g = jitgrad.grad(f, target="reference")
>>> "while" in g.lower(jitgrad.ones(3)).as_text("forward")
True
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jitgrad import dtypes
from jitgrad.ir.graph import Eqn, Graph, Lit, Source, Var
from jitgrad.ir.primitive import Aval, TupleAval
from jitgrad.ops.control import guard_p
from jitgrad.loops.branches import NoBranch, NotBranching, rewrite as rewrite_branches
from jitgrad.loops.induction import NotInduction, add_counters, split_state
from jitgrad.loops.primitives import tuple_get_p, while_p
from jitgrad.loops.signature import eqn_sig, ref_lit


class LoopReport(NamedTuple):
    """What lifting did with one loop: where its header is, whether it was lifted, how many
    iterations the trace saw, and why not."""

    site: Source | None
    lifted: bool
    trips: int
    reason: str = ""
    key: tuple = ()  # the header's site (builder.guard_context)
    # (code, header line, name) of a counter its body reads: a trace that takes the local as a
    # traced number from the header on can lift the loop (``induction.ReadInBody``)
    count: tuple = ()

    def __str__(self) -> str:
        where = str(self.site) if self.site else "?"
        if self.lifted:
            return f"{where}: lifted ({self.trips} iterations traced; one kernel for any count)"
        return f"{where}: not lifted ({self.reason})"


class _NotLiftable(Exception):
    count: tuple = ()  # induction.ReadInBody's site, when that is why


def lift_loops(g: Graph, sites: list, contexts: list) -> tuple[Graph, tuple]:
    """``g`` with every liftable loop rolled into a ``while``, and a ``LoopReport`` per loop
    found. ``sites``/``contexts``: per guard index, its source line and ``guard_context``."""
    reports: dict = {}
    tried: set = set()
    while True:
        opened: set = set()
        runs = [r for r in _runs(g, contexts, opened) if (r[0], r[1][0]) not in tried]
        if not runs:
            break
        # Innermost first: an outer loop's iterations can only match once the inner loop in
        # each of them is one equation.
        runs.sort(key=lambda r: r[1][-1] - r[1][0])
        key, pos = runs[0]
        tried.add((key, pos[0]))
        first = g.eqns[pos[0]]
        site = sites[first.params["index"]] if first.params["index"] < len(sites) else None
        trips = len(pos) - 1
        if trips < 2:
            # Two iterations show what a loop carries. (One may also be an ``if`` that went
            # one way and then the other: nothing to report.)
            continue
        inner = _straddled(runs, key, pos)
        if inner is not None:
            # A run whose iterations cross another run's headers is an if in that loop's
            # body, not a loop: the loop around it is tried instead (its branch a cond).
            continue
        try:
            g = _lift(g, pos, contexts, (key, pos[0]) in opened)
            reports[key] = LoopReport(site, True, trips, "", key)
        except _NotLiftable as why:
            if (key, pos[0]) in opened:
                # A run that never took its other value is a loop left by a counter's test,
                # or none at all (an if that held at every pass of a Python loop): no report.
                continue
            try:  # iterations that took the two sides of an if: one body with a cond
                g2, pos2 = rewrite_branches(g, pos, contexts)
                g = _lift(g2, pos2, contexts)
                reports[key] = LoopReport(site, True, trips, "", key)
            except NoBranch:
                reports.setdefault(key, LoopReport(site, False, trips, str(why), key,
                                                   why.count))
            except NotBranching as why2:
                reports.setdefault(key, LoopReport(
                    site, False, trips, f"its body's if could not become a cond: {why2}", key))
            except _NotLiftable as why2:  # the cond was made; the loop around it is not liftable
                reports.setdefault(key, LoopReport(site, False, trips, str(why2), key))
    return g, tuple(reports.values())


def unlifted(g: Graph, sites: list, contexts: list, reason: str) -> list:
    """A report, not lifted for ``reason``, of each loop ``lift_loops`` would try in ``g``."""
    runs = _runs(g, contexts)
    out = []
    for key, pos in runs:
        index = g.eqns[pos[0]].params["index"]
        if len(pos) - 1 >= 2 and _straddled(runs, key, pos) is None:
            out.append(LoopReport(sites[index] if index < len(sites) else None, False,
                                  len(pos) - 1, reason, key))
    return out


def _straddled(runs: list, key, pos: list):
    """Another run with a guard inside this run's span but not all of it there: this run's
    "iterations" cross that loop's headers."""
    lo, hi = pos[0], pos[-1]
    for k2, p2 in runs:
        if k2 == key:
            continue
        inside = [lo < i < hi for i in p2]
        if any(inside) and not all(inside):
            return k2
    return None


def _runs(g: Graph, contexts: list, opened: set | None = None) -> list:
    """(site key, guard positions) of each loop candidate: guards at one site whose expected
    value is one bool several times, then the other (the exit). With ``opened``, also the
    last run of a site that never took the other value (a loop left by its Python part, an
    iteration cap: ``induction.py``), each noted there by (key, first position)."""
    by_site: dict = {}
    for i, e in enumerate(g.eqns):
        if e.prim is guard_p and e.params["index"] < len(contexts):
            key = contexts[e.params["index"]][0]
            if key:
                by_site.setdefault(key, []).append(i)
    out = []
    for key, pos in by_site.items():
        start = 0
        for n, i in enumerate(pos):
            expect = g.eqns[i].params["expect"]
            head = g.eqns[pos[start]].params["expect"]
            if not isinstance(head, bool):
                start = n + 1
                continue
            if expect != head:  # the exit: a run from pos[start] to here
                out.append((key, pos[start:n + 1]))
                start = n + 1
        if opened is not None and len(pos) - start >= 3 and \
                isinstance(g.eqns[pos[start]].params["expect"], bool):
            out.append((key, pos[start:]))
            opened.add((key, pos[start]))
    return out


def _state_change(contexts: list, indices: list) -> str | None:
    """Which Python value the trace cannot see differs between hits of the header, if any."""
    first = contexts[indices[0]][1]
    for i in indices[1:]:
        other = contexts[i][1]
        if other == first:
            continue
        if first is None or other is None:
            return "its Python state could not be read"
        (frames, _), (frames2, _) = first, other
        for (fn, loc, glb), (_, loc2, glb2) in zip(frames, frames2):
            for (name, a), (name2, b) in zip(loc, loc2):
                if name != name2 or a != b:
                    return f"the local {name!r} of {fn} changes from one iteration to the next"
            if len(loc) != len(loc2):
                return f"a local variable of {fn} appears during the loop"
            if glb != glb2:
                names = [n for (n, a), (_, b) in zip(glb, glb2) if a != b] or ["?"]
                return (f"the global {names[0]!r} (read by the function or a helper it calls) "
                        "changes from one iteration to the next")
        return "a Module changes from one iteration to the next"
    return None


def _lift(g: Graph, pos: list, contexts: list, open_: bool = False) -> Graph:
    eqns = g.eqns
    guards = [eqns[i] for i in pos]
    expect = guards[0].params["expect"]
    hits = [e.params["index"] for e in guards]
    try:  # an iteration cap or other counter the header tests becomes carried state
        counters, masked = split_state(contexts, hits)
    except NotInduction as why:
        err = _NotLiftable(f"{_state_change(contexts, hits)} ({why})")
        err.count = getattr(why, "site", ())
        raise err from None
    change = _state_change(masked, list(range(len(masked))))
    if change:
        raise _NotLiftable(change)
    if open_ and not any(not c.holds(len(pos) - 1) for c in counters):
        raise _NotLiftable("the loop was left without its condition failing")
    segs = [eqns[pos[j] + 1:pos[j + 1]] for j in range(len(pos) - 1)]
    where: dict = {}  # id(var) -> (segment, position) of the equation that makes it
    for j, seg in enumerate(segs):
        for q, e in enumerate(seg):
            if e.out is not None:
                where[id(e.out)] = (j, q)

    def refs(j: int):
        def ref(a):
            if isinstance(a, Lit):
                return ref_lit(a)
            at = where.get(id(a))
            if at is None:
                return ("out", id(a))
            if at[0] == j:
                return ("loc", at[1])
            if at[0] == j - 1:
                return ("car", at[1])
            raise _NotLiftable("an iteration reads a value from two or more iterations back")
        return ref

    sig = [eqn_sig(e, refs(1)) for e in segs[1]]
    for j in range(2, len(segs)):
        if len(segs[j]) != len(sig) or any(eqn_sig(e, refs(j)) != s
                                           for e, s in zip(segs[j], sig)):
            raise _NotLiftable(f"iteration {j + 1} computes differently from iteration 2"
                               f"{_python_read(segs[j], segs[1])}")
    # The first iteration reads from before the loop what the others read from the one before.
    init: dict = {}
    if len(segs[0]) != len(sig):
        raise _NotLiftable("the first iteration computes differently from the second"
                           f"{_python_read(segs[0], segs[1])}")
    for e0, s in zip(segs[0], sig):
        s0 = eqn_sig(e0, refs(0))
        if s0[:4] != s[:4] or len(s0[4]) != len(s[4]):
            raise _NotLiftable("the first iteration computes differently from the second"
                               f"{_python_read(segs[0], segs[1])}")
        for a, r0, r in zip(e0.inputs, s0[4], s[4]):
            if r[0] == "car" and r0[0] == "out":
                if init.setdefault(r[1], a) is not a:
                    raise _NotLiftable("the first iteration computes differently from the second")
            elif r0 != r:
                raise _NotLiftable("the first iteration computes differently from the second")
    if len(segs) == 2:
        # With two iterations, a value from before the loop that the second reads as it is
        # may be a carried variable rebound to it (``y, z = z, y + z`` with y and z the same
        # tensor at first): when that value is also what a carried slot starts from, only a
        # third iteration tells the two apart (it then reads a value from two iterations back).
        outer = {r[1] for s in sig for r in s[4] if r[0] == "out"}
        if any(id(v) in outer for v in init.values()):
            raise _NotLiftable("a value from before the loop is both carried and read as it is; "
                               "two iterations cannot tell whether a variable was rebound to it")
    # The header's condition is made in each iteration, at the same place.
    qp = []
    for j, e in enumerate(guards[1:]):
        at = where.get(id(e.inputs[0])) if isinstance(e.inputs[0], Var) else None
        if at is None or at[0] != j:
            raise _NotLiftable("the loop condition is not computed in the loop")
        qp.append(at[1])
    if len(set(qp)) != 1:
        raise _NotLiftable("the loop condition is computed at different places")
    carried = sorted(init)
    last = segs[-1]
    for q in carried:
        a, made = init[q].aval, last[q].out.aval
        if tuple(a.shape) != tuple(made.shape) or a.dtype is not made.dtype:
            raise _NotLiftable(f"a carried value changes from {a.dtype.name}{list(a.shape)} to "
                               f"{made.dtype.name}{list(made.shape)} (at {last[q].src})")
    # Nothing made in the loop but the carried state may be used after it.
    after = list(eqns[pos[-1] + 1:])
    used = [(a, e.src) for e in after for a in e.inputs] + [(o, None) for o in g.outputs]
    keep = {id(last[q].out) for q in carried}
    for a, src in used:
        if isinstance(a, Var) and id(a) in where and id(a) not in keep:
            at = f" (at {src})" if src else ""
            raise _NotLiftable(f"a value made inside the loop is used after it{at}: only the "
                               "values it carries from one iteration to the next can be")
    body, outer = _body(segs[1], sig, carried, qp[0])
    starts, consts = [], list(g.consts)
    if counters:
        try:
            body = add_counters(body, counters, expect, len(carried))
        except NotInduction as why:
            raise _NotLiftable(str(why)) from None
        for c in counters:
            starts.append(Var(Aval((), dtypes.int64)))
            consts.append((starts[-1], np.array(c.start, np.int64)))
    n_carry = len(carried) + len(counters)
    w = Var(TupleAval(tuple(init[q].aval for q in carried) + tuple(v.aval for v in starts)))
    loop = Eqn(while_p, (guards[0].inputs[0], *[init[q] for q in carried], *starts, *outer), w,
               {"body": body, "expect": expect, "n_carry": n_carry, "tape": False},
               guards[0].src)
    gets = [Eqn(tuple_get_p, (w,), last[q].out, {"index": i}, last[q].src)
            for i, q in enumerate(carried)]
    return Graph(consts, g.inputs, (*eqns[:pos[0]], loop, *gets, *after), g.outputs)


def _python_read(a: list, b: list) -> str:
    """Why two iterations differ, where it is that they read a value as a Python number (a
    loop's counter as a list index, ``float(i)``: ``trace/numbers.py``), whose guards expect
    a different number in each; else nothing."""
    for e, f in zip(a, b):
        if e.prim is not f.prim or e.src != f.src:
            return ""
        if e.prim is guard_p and e.params["expect"] != f.params["expect"] and \
                not isinstance(e.params["expect"], bool):
            return (f": each reads a value as a different Python number at {e.src} (the "
                    "loop's counter as float(i) or a list's index, say)")
    return ""


def _body(seg, sig, carried: list, qp: int) -> tuple[Graph, list]:
    """The body graph, ``(carry..., invariants...) -> (carry'..., pred)``, from one iteration's
    equations (fresh variables), and the outer values it reads as invariants."""
    cin = {q: Var(seg[q].out.aval) for q in carried}
    outer: list = []
    inv: dict = {}
    loc: dict = {}
    body = []
    for q, (e, s) in enumerate(zip(seg, sig)):
        ins = []
        for a, r in zip(e.inputs, s[4]):
            if r[0] == "lit":
                ins.append(a)
            elif r[0] == "loc":
                ins.append(loc[r[1]])
            elif r[0] == "car":
                ins.append(cin[r[1]])
            else:
                if id(a) not in inv:
                    inv[id(a)] = Var(a.aval)
                    outer.append(a)
                ins.append(inv[id(a)])
        out = Var(e.out.aval) if e.out is not None else None
        if out is not None:
            loc[q] = out
        body.append(Eqn(e.prim, tuple(ins), out, e.params, e.src))
    inputs = [cin[q] for q in carried] + [inv[id(a)] for a in outer]
    outputs = [loc[q] for q in carried] + [loc[qp]]
    return Graph((), inputs, body, outputs), outer
