"""Loops whose body branches on data: the iterations of a ``while`` that went one way or the
other at an ``if`` in the body, rewritten so that every iteration is the same equations (the
part before the ``if``, a ``cond`` of the two sides, and the values the sides hand on), which
``lift.py`` then lifts as any loop: one compile for every trip count and every mix
of sides.

Each iteration is split at its first guard, which must be at one site, on a bool, and seen
both ways. The part before it (``A``) is common; each side (``R``) runs to the end of the
iteration, loop condition included. The carried values (slots) are found from the reads: a
value an earlier iteration made, read by an equation, a header's condition, a variable live
at a header (``trace/liveness.py``) or the code after the loop, joins that reading place to the
place that made it (union-find), and each class is one slot. For each slot, each side makes it,
hands on a value made before the ``if``, sets it to a value from before the loop or to another
slot's, or leaves it as it is (an ``if`` without ``else``). The rewrite is made only when that
model gives exactly what every read of the trace read, and refused where the trace cannot tell
two programs apart:

- a value from before the loop read where a slot that started from it had not changed yet
  (``y = x``, then ``x`` or ``y``?) is a slot when nothing else holds that tensor at the
  headers, an invariant when a variable that is not a slot does, and otherwise not rewritten;
- a side after which a slot held what it held before, and what the side could have set it
  to (``else: y = x`` while ``y`` was still ``x``), is not rewritten;
- a value made in the loop kept anywhere but a live variable (a list, an object, a global) is
  not rewritten: a side could change it where no traced read shows.

The rewrite changes nothing the traced iterations computed; ``_lift``'s checks (the Python
state at every header among them) then decide whether the loop is lifted.

>>> import jitgrad
>>> def f(x):
...     y = x
...     while y.abs().sum() < 100:
...         if y.sum() > 0:
...             y = y * -1.5 - 1
...         else:
...             y = y * -2.0 + 1
...     return y.sum()
>>> g = jitgrad.grad(f, target="reference")
>>> [g(jitgrad.tensor([v])).item() for v in (1.0, -3.0, 0.5, 20.0)]
[-40.5, 27.0, 81.0, 9.0]
>>> g.cache_info().traces, g.cache_info().loops
(1, ('...: lifted (7 iterations traced; one kernel for any count)',))

An ``if`` without ``else``: that side leaves ``y`` as it is.

>>> def h(x):
...     y = x
...     while y.abs().sum() < 100:
...         if y.sum() < 0:
...             y = y * -1.5
...         y = y * 2 + 1
...     return y.sum()
>>> g = jitgrad.grad(h, target="reference")
>>> [g(jitgrad.tensor([v])).item() for v in (-3.0, 1.0, 0.5, 20.0, -40.0)]
[-48.0, 64.0, 128.0, 8.0, -3.0]
>>> g.cache_info().traces
1
"""

from __future__ import annotations

from jitgrad.ir.graph import Eqn, Graph, Lit, Var
from jitgrad.ir.primitive import TupleAval
from jitgrad.ops.control import guard_p
from jitgrad.loops.primitives import cond_p, tuple_get_p
from jitgrad.loops.signature import graph_sig


class NotBranching(Exception):
    """The run is not a loop whose body branches in a way this rewrite handles."""


class NoBranch(NotBranching):
    """The run's iterations do not take the two sides of one ``if``."""


class _Sets:
    """Union-find over hashable nodes."""

    def __init__(self) -> None:
        self.up: dict = {}

    def find(self, x):
        self.up.setdefault(x, x)
        while self.up[x] != x:
            self.up[x] = self.up[self.up[x]]
            x = self.up[x]
        return x

    def union(self, a, b) -> None:
        self.up[self.find(a)] = self.find(b)


class _Run:
    """The run being rewritten: its iterations split at the branch, and every read of a value
    in it with the time it happens at (the iteration, or the header before it)."""

    def __init__(self, g: Graph, pos: list, contexts: list) -> None:
        self.g, self.pos = g, pos
        eqns = g.eqns
        self.n = n = len(pos) - 1
        self.segs = [list(eqns[pos[j] + 1:pos[j + 1]]) for j in range(n)]
        split = {next((q for q, e in enumerate(s) if e.prim is guard_p), None) for s in self.segs}
        if len(split) != 1 or None in split:
            raise NoBranch("the iterations do not branch at one place")
        self.a_len = a = split.pop()
        guards = [s[a] for s in self.segs]
        sites = {contexts[e.params["index"]][0] if e.params["index"] < len(contexts) else None
                 for e in guards}
        self.kinds = [e.params["expect"] for e in guards]
        if len(sites) != 1 or not next(iter(sites)) or \
                not all(isinstance(k, bool) for k in self.kinds) or len(set(self.kinds)) != 2:
            raise NoBranch("the iterations do not take the two sides of one if")
        self.binds = []
        for i in pos:
            index = eqns[i].params["index"]
            ctx = contexts[index] if index < len(contexts) else None
            if ctx is None or len(ctx) < 3 or ctx[2] is None:
                raise NotBranching("the variables at the loop's header could not be read")
            self.binds.append(ctx[2])
        self.later = {id(e.out) for e in eqns[pos[-1] + 1:] if e.out is not None}
        self.made: dict = {}  # id(var) -> (iteration, "A" or None, position in A or R)
        for j, s in enumerate(self.segs):
            for q, e in enumerate(s):
                if e.out is not None:
                    self.made[id(e.out)] = (j, "A", q) if q < a else (j, None, q - a - 1)

    def side(self, j: int) -> list:
        return self.segs[j][self.a_len + 1:]

    def before(self, x) -> bool:
        """Whether ``x`` is a value from before the loop (made neither in it nor after it)."""
        return isinstance(x, Var) and id(x) not in self.made and id(x) not in self.later

    def site(self, j: int, q: int, i: int) -> tuple:
        """Where input ``i`` of equation ``q`` of iteration ``j`` is, the same for every
        iteration that took that side."""
        a = self.a_len
        if q == a:
            return ("G",)  # the branch's own condition
        return ("A", q, i) if q < a else ("R", self.kinds[j], q - a - 1, i)

    def producer(self, at: tuple) -> tuple:
        j, part, q = at
        return ("PA", q) if part == "A" else ("P", self.kinds[j], q)

    def events(self):
        """(time, site, atom) of every read: an iteration's equations at its index, a header
        (its condition, and the live variables that hold a traced value) at the index of the
        iteration it starts, the code after the loop at ``n``."""
        g, pos, n = self.g, self.pos, self.n

        def header(j: int):
            yield j, ("H",), g.eqns[pos[j]].inputs[0]
            for name, v in self.binds[j].names:
                yield j, ("N", name), v

        yield from header(0)
        for j, seg in enumerate(self.segs):
            for q, e in enumerate(seg):
                for i, x in enumerate(e.inputs):
                    yield j, self.site(j, q, i), x
            yield from header(j + 1)
        for q, e in enumerate(g.eqns[pos[-1] + 1:]):
            for i, x in enumerate(e.inputs):
                yield n, ("after", q, i), x
        for i, o in enumerate(g.outputs):
            yield n, ("out", i), o


class _Slots:
    """The carried values: classes of reading sites that see one Python variable, each with
    what every side does to it, its start, and its value at every time. A side makes it at a
    position of its own (``("P", p)``), sets it to a value made before the branch
    (``("A", q)``), to a value from before the loop (``("O", var)``), or to what a slot held
    when the iteration began (``("S", k)``: itself when the side leaves it as it is)."""

    def __init__(self, lp: _Run, events: list) -> None:
        self.lp = lp
        made, n, kinds = lp.made, lp.n, lp.kinds
        sets = _Sets()
        for t, site, x in events:
            at = made.get(id(x)) if isinstance(x, Var) else None
            if at is not None and at[0] < t:  # made by an earlier iteration: carried
                sets.union(site, lp.producer(at))
        roots: dict = {}
        for _t, site, _ in events:  # slots numbered in the order they are first read
            if site in sets.up:
                roots.setdefault(sets.find(site), len(roots))
        self.sets, self.roots, self.extra = sets, roots, {}
        self.does: list = [{} for _ in roots]  # per slot: {side: what it does (above)}
        for node in list(sets.up):
            if node[0] == "P":
                k = roots[sets.find(node)]
                if self.does[k].setdefault(node[1], ("P", node[2])) != ("P", node[2]):
                    raise NotBranching("one side makes a carried value at two places")
        seen: dict = {}  # (time, slot) -> the value read there
        self.named: dict = {}  # id(value) -> the slots (None: no slot) of variables holding it
        for t, site, x in events:
            k = self.of(site)
            if k is not None and seen.setdefault((t, k), x) is not x:
                raise NotBranching("a carried value is read inconsistently")
            if site[0] == "N":
                self.named.setdefault(id(x), set()).add(k)
        self.complete = not any(v is None for b in lp.binds for v in b.held)
        self.held = {id(v) for b in lp.binds for v in b.held if v is not None}
        for k, d in enumerate(self.does):
            for kind in (True, False):
                if kind not in d:
                    d[kind] = self._what_a_side_does(k, kind, seen)
        # Values at every time; ("init", k) stands for slot k's start until it is known.
        cur: list = [("init", k) for k in range(len(roots))]
        self.at = [list(cur)]
        for j in range(n):
            prev = list(cur)
            for k, d in enumerate(self.does):
                how = d[kinds[j]]
                cur[k] = lp.side(j)[how[1]].out if how[0] == "P" else \
                    lp.segs[j][how[1]].out if how[0] == "A" else \
                    how[1] if how[0] == "O" else prev[how[1]]
            self.at.append(list(cur))
        self.init: dict = {}
        for t, site, x in events:
            k = self.of(site)
            v = self.at[t][k] if k is not None else None
            if not isinstance(v, tuple):
                continue
            if not lp.before(x) or self.init.setdefault(v[1], x) is not x:
                raise NotBranching("a carried value does not start from one value from before "
                                   "the loop")
        if len(self.init) != len(roots):
            raise NotBranching("a carried value is not read before the loop changes it")
        for row in self.at:
            for k, v in enumerate(row):
                if isinstance(v, tuple):
                    row[k] = self.init[v[1]]
        self._check_avals()
        self._resolve(events)
        for t, site, x in events:
            k = self.of(site)
            if k is not None and x is not self.at[t][k]:
                raise NotBranching("a carried value is read inconsistently")

    def _what_a_side_does(self, k: int, kind: bool, seen: dict) -> tuple:
        """What side ``kind`` (which makes no value of its own for slot ``k``) does to it: the
        one choice that gives what was read after every iteration that took it. Where two fit
        (``c = x`` when ``c`` still held ``x``), the trace cannot tell: not rewritten."""
        lp = self.lp
        fits = None
        for j in range(lp.n):
            after = seen.get((j + 1, k))
            if lp.kinds[j] is not kind or after is None:
                continue
            at = lp.made.get(id(after)) if isinstance(after, Var) else None
            here: set = set()
            if at is not None and at[:2] == (j, "A"):
                here.add(("A", at[2]))
            elif lp.before(after) and self.has_holder(after, k):
                here.add(("O", after))
            for k2 in range(len(self.roots)):
                before = seen.get((j, k2), after)  # a slot not read then may have held it
                if before is after and (at is None or at[0] < j):
                    here.add(("S", k2))
            fits = here if fits is None else fits & here
        if not fits:
            raise NotBranching("a carried value is not read after each side" if fits is None
                               else "a side sets a carried value in a way no one choice gives")
        if len(fits) > 1:
            raise NotBranching("the trace cannot tell whether a side leaves a carried value as "
                               "it is or sets it to another value")
        return fits.pop()

    def has_holder(self, v: Var, k: int | None) -> bool:
        """Whether something other than slot ``k``'s variables may hold ``v`` at the headers
        (a program can only read a value from before the loop through something that holds
        it)."""
        return not self.complete or id(v) in self.held or \
            bool(self.named.get(id(v), set()) - {k})

    def of(self, site) -> int | None:
        if site in self.sets.up:
            return self.roots.get(self.sets.find(site))
        return self.extra.get(site)

    def _check_avals(self) -> None:
        lp = self.lp
        for k in range(len(self.does)):
            want = self.init[k].aval
            for j in range(lp.n):
                got = self.at[j + 1][k].aval
                if got != want:
                    raise NotBranching(
                        f"a carried value changes its shape or dtype in the loop "
                        f"({want.dtype.name}{list(want.shape)} and "
                        f"{got.dtype.name}{list(got.shape)})")

    def _resolve(self, events: list) -> None:
        """Sites that only ever read values from before the loop: each is an invariant, or
        one slot that had not changed yet whenever the site ran. When both (or two slots)
        fit every read, the trace cannot tell which the program reads: not rewritten.

        A site is an invariant only if something holds its value at the headers: a live
        variable that is not a slot, or a container, object or global (``Bindings``), unless
        the frames hold places that were not looked into. ``y = x`` before a loop that
        changes ``y`` in one side, with ``x`` dead: a read of that tensor is of ``y``."""
        reads: dict = {}
        for t, site, x in events:
            if self.of(site) is None:
                reads.setdefault(site, []).append((t, x))
        holders = set(self.held)
        # The variables first: what they hold decides whether a value has a holder.
        for site, rs in sorted(reads.items(), key=lambda kv: kv[0][0] != "N"):
            if not any(self.lp.before(x) for _, x in rs):
                continue  # it reads values made in the loop or after it
            same = all(x is rs[0][1] for _, x in rs)
            fits = [k for k in range(len(self.roots)) if all(x is self.at[t][k] for t, x in rs)]
            if site[0] != "N" and same and self.complete and id(rs[0][1]) not in holders:
                same = False  # nothing else holds it: it is not an invariant
            if same and not fits:
                if site[0] == "N":
                    holders.add(id(rs[0][1]))
                continue
            if len(fits) == 1 and not same:
                self.extra[site] = fits[0]
                continue
            raise NotBranching("a value from before the loop is read where the trace cannot "
                               "tell whether it is that value or a carried one not changed yet")


def rewrite(g: Graph, pos: list, contexts: list) -> tuple[Graph, list]:
    """``g`` with the iterations between the header guards at ``pos`` rewritten around a
    ``cond``, and the header guards' new positions."""
    lp = _Run(g, pos, contexts)
    for j in range(1, lp.n + 1):
        if any(id(v) in lp.made for v in lp.binds[j].held):
            raise NotBranching("a value made in the loop is kept in a container, an object or "
                               "a global, where the trace cannot follow it")
    events = list(lp.events())
    slots = _Slots(lp, events)
    a_reads, outer = _operands(lp, slots)
    sides: dict = {}
    for j in range(lp.n):
        graph = _side(lp, j, slots, a_reads, outer)
        rep = sides.setdefault(lp.kinds[j], graph)
        if graph_sig(graph) != graph_sig(rep):
            raise NotBranching(f"iteration {j + 1} computes its side differently from the first "
                               "that took it")
    return _rebuild(lp, slots, a_reads, outer, sides)


def _operands(lp: _Run, slots: _Slots) -> tuple[list, list]:
    """What the sides read besides the slots: positions in A (the values a side hands on
    among them), and values from before the loop (in order of first reading)."""
    a_reads: list = sorted({how[1] for d in slots.does for how in d.values() if how[0] == "A"})
    outer: list = []
    for d in slots.does:
        for how in d.values():
            if how[0] == "O" and all(how[1] is not o for o in outer):
                outer.append(how[1])
    for j in range(lp.n):
        for q, e in enumerate(lp.side(j)):
            for i, x in enumerate(e.inputs):
                if isinstance(x, Lit) or slots.of(("R", lp.kinds[j], q, i)) is not None:
                    continue
                at = lp.made.get(id(x))
                if at is None:
                    if all(x is not o for o in outer):
                        outer.append(x)
                elif at[0] == j and at[1] == "A" and at[2] not in a_reads:
                    a_reads.append(at[2])
    return a_reads, outer


def _side(lp: _Run, j: int, slots: _Slots, a_reads: list, outer: list) -> Graph:
    """Iteration ``j``'s side as a graph from (slots..., A values..., values from before the
    loop...) to its slots."""
    kind, seg = lp.kinds[j], lp.segs[j]
    r = lp.side(j)
    ins_slot = [Var(v.aval) for v in slots.at[0]]
    ins_a = {p: Var(seg[p].out.aval) for p in a_reads}
    ins_o = [Var(x.aval) for x in outer]
    of_outer = {id(x): v for x, v in zip(outer, ins_o)}
    env: dict = {}
    body = []
    for q, e in enumerate(r):
        ins = []
        for i, x in enumerate(e.inputs):
            k = slots.of(("R", kind, q, i))
            if isinstance(x, Lit):
                ins.append(x)
            elif k is not None:
                ins.append(ins_slot[k])
            elif id(x) in env:
                ins.append(env[id(x)])
            elif id(x) in lp.made:
                ins.append(ins_a[lp.made[id(x)][2]])
            else:
                ins.append(of_outer[id(x)])
        out = Var(e.out.aval) if e.out is not None else None
        if out is not None:
            env[id(e.out)] = out
        body.append(Eqn(e.prim, tuple(ins), out, e.params, e.src))
    outs = []
    for d in slots.does:
        how = d[kind]
        outs.append(env[id(r[how[1]].out)] if how[0] == "P" else
                    ins_a[how[1]] if how[0] == "A" else
                    of_outer[id(how[1])] if how[0] == "O" else ins_slot[how[1]])
    return Graph((), (*ins_slot, *[ins_a[p] for p in a_reads], *ins_o), tuple(body), tuple(outs))


def _rebuild(lp: _Run, slots: _Slots, a_reads, outer, sides) -> tuple[Graph, list]:
    """The run with each iteration's side a ``cond``: every read of a carried value (before
    the branch, at a header, after the loop) takes the slot the cond before it made."""
    g, pos = lp.g, lp.pos
    carry = list(slots.at[0])  # the slots' values at the current time

    def renamed(e: Eqn, site) -> Eqn:
        ins = []
        for i, x in enumerate(e.inputs):
            k = slots.of(site(i))
            ins.append(carry[k] if k is not None else x)
        return Eqn(e.prim, tuple(ins), e.out, e.params, e.src)

    eqns = list(g.eqns[:pos[0] + 1])
    new_pos = [pos[0]]
    avals = TupleAval(tuple(v.aval for v in slots.at[0]))
    for j in range(lp.n):
        seg = lp.segs[j]
        eqns += [renamed(e, lambda i, q=q, j=j: lp.site(j, q, i))
                 for q, e in enumerate(seg[:lp.a_len])]
        guard = seg[lp.a_len]
        k = slots.of(("G",))
        pred = carry[k] if k is not None else guard.inputs[0]
        w = Var(avals)
        ops = (pred, *carry, *[seg[p].out for p in a_reads], *outer)
        eqns.append(Eqn(cond_p, ops, w, {"true": sides[True], "false": sides[False]},
                        guard.src))
        carry = []
        for k, aval in enumerate(avals.avals):
            v = Var(aval)
            eqns.append(Eqn(tuple_get_p, (w,), v, {"index": k}, guard.src))
            carry.append(v)
        new_pos.append(len(eqns))
        eqns.append(renamed(g.eqns[pos[j + 1]], lambda i: ("H",)))
    eqns += [renamed(e, lambda i, q=q: ("after", q, i))
             for q, e in enumerate(g.eqns[pos[-1] + 1:])]
    outputs = []
    for i, o in enumerate(g.outputs):
        k = slots.of(("out", i))
        outputs.append(carry[k] if k is not None else o)
    inside = {id(e.out) for j in range(lp.n) for e in lp.side(j) if e.out is not None}
    for e in eqns:
        for x in e.inputs:
            if isinstance(x, Var) and id(x) in inside:
                raise NotBranching("a value a side makes is read outside it")
    if any(isinstance(o, Var) and id(o) in inside for o in outputs):
        raise NotBranching("a value a side makes is a result")
    return Graph(g.consts, g.inputs, tuple(eqns), tuple(outputs)), new_pos
