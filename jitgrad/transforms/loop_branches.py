"""Loops whose body branches on data: the iterations of a ``while`` that went one way or the
other at an ``if`` in the body, rewritten so that every iteration is the same equations (the
part before the ``if``, a ``cond`` of the two sides, and the values the sides hand on), which
``transforms/loops.py`` then lifts as any loop: one compile for every trip count and every mix
of sides.

Each iteration is split at its first guard, which must be at one site, on a bool, and seen
both ways. The part before it (``A``) is common; each side (``R``) runs to the end of the
iteration, loop condition included. What the sides hand on are the loop's carried slots,
matched between the two sides by where they are read next (union-find over reading sites).
Every side must make every slot (a side that leaves a carried value as it is, as an ``if``
without ``else`` does, is not rewritten), every iteration that took a side must compute it as
the first that took it did, and the first iteration must read each slot's starting value. The
rewrite changes nothing the traced iterations computed; ``_lift``'s checks (the Python state at
every header among them) then decide whether the loop is lifted.

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
"""

from __future__ import annotations

from jitgrad.ir.graph import Eqn, Graph, Lit, Var
from jitgrad.ir.primitive import TupleAval
from jitgrad.ops.control import guard_p
from jitgrad.ops.loops import cond_p, tuple_get_p


class NotBranching(Exception):
    """The run is not a loop whose body branches in a way this rewrite handles."""


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


class _Loop:
    """The run being rewritten: its iterations split at the branch."""

    def __init__(self, g: Graph, pos: list, contexts: list) -> None:
        self.g, self.pos = g, pos
        eqns = g.eqns
        self.n = n = len(pos) - 1
        self.segs = [list(eqns[pos[j] + 1:pos[j + 1]]) for j in range(n)]
        split = {next((q for q, e in enumerate(s) if e.prim is guard_p), None) for s in self.segs}
        if len(split) != 1 or None in split:
            raise NotBranching("the iterations do not branch at one place")
        self.a_len = a = split.pop()
        guards = [s[a] for s in self.segs]
        sites = {contexts[e.params["index"]][0] if e.params["index"] < len(contexts) else None
                 for e in guards}
        self.kinds = [e.params["expect"] for e in guards]
        if len(sites) != 1 or not next(iter(sites)) or \
                not all(isinstance(k, bool) for k in self.kinds) or len(set(self.kinds)) != 2:
            raise NotBranching("the iterations do not take the two sides of one if")
        self.made: dict = {}  # id(var) -> (iteration, "A" or None, position in A or R)
        for j, s in enumerate(self.segs):
            for q, e in enumerate(s):
                if e.out is not None:
                    self.made[id(e.out)] = (j, "A", q) if q < a else (j, None, q - a - 1)

    def side(self, j: int) -> list:
        return self.segs[j][self.a_len + 1:]

    def site(self, j: int, q: int, i: int) -> tuple:
        """Where input ``i`` of equation ``q`` of iteration ``j`` is, the same for every
        iteration that took that side."""
        a = self.a_len
        return ("A", q, i) if q < a else ("R", self.kinds[j], q - a - 1, i)

    def reads(self, j: int):
        """(site, atom) of every input of iteration ``j``, and of header ``j + 1``."""
        for q, e in enumerate(self.segs[j]):
            if q == self.a_len:
                continue  # the branch's own guard: its input is made in A
            for i, x in enumerate(e.inputs):
                yield self.site(j, q, i), x
        yield ("H",), self.g.eqns[self.pos[j + 1]].inputs[0]


def rewrite(g: Graph, pos: list, contexts: list) -> tuple[Graph, list]:
    """``g`` with the iterations between the header guards at ``pos`` rewritten around a
    ``cond``, and the header guards' new positions."""
    lp = _Loop(g, pos, contexts)
    n, made, kinds = lp.n, lp.made, lp.kinds
    sets = _Sets()
    # Slots: what an iteration's side makes and the next iteration (or its header, or the code
    # after the loop) reads, joined by where it is read.
    for j in range(n):
        for site, x in lp.reads(j):
            at = made.get(id(x)) if isinstance(x, Var) else None
            if at is None or at[0] == j and site != ("H",):
                continue
            prev = j - 1 if site != ("H",) else j
            if at[0] != prev:
                raise NotBranching("an iteration reads a value from two or more iterations back")
            if at[1] == "A":
                if site == ("H",):
                    continue  # a condition made before the branch: the same place every time
                raise NotBranching("a value made before the branch is carried")
            sets.union(site, ("P", kinds[at[0]], at[2]))
    tail = g.eqns[pos[-1] + 1:]
    for k, x in [(("after", q, i), x) for q, e in enumerate(tail) for i, x in enumerate(e.inputs)] \
            + [(("out", i), o) for i, o in enumerate(g.outputs)]:
        at = made.get(id(x)) if isinstance(x, Var) else None
        if at is not None:
            if at[0] != n - 1 or at[1] == "A":
                raise NotBranching("a value made inside the loop is used after it")
            sets.union(k, ("P", kinds[n - 1], at[2]))
    by_root: dict = {}
    for node in list(sets.up):
        if node[0] == "P":
            by_root.setdefault(sets.find(node), {}).setdefault(node[1], []).append(node[2])
    slots = []  # per slot: {side: position in R}
    for root, sides in by_root.items():
        if set(sides) != {True, False} or any(len(v) != 1 for v in sides.values()):
            raise NotBranching("a side leaves a carried value as it is")
        slots.append((root, {k: v[0] for k, v in sides.items()}))
    slots.sort(key=lambda s: (s[1][True], s[1][False]))
    roots = {r: k for k, (r, _) in enumerate(slots)}
    rep = {kinds[j]: j for j in range(n - 1, -1, -1)}  # the first iteration of each side
    for _, p in slots:
        a, b = (lp.side(rep[k])[p[k]].out.aval for k in (True, False))
        if a != b:
            raise NotBranching(f"the two sides make a carried value of different shapes or "
                               f"dtypes ({a.dtype.name}{list(a.shape)} and "
                               f"{b.dtype.name}{list(b.shape)})")

    def slot(site):
        return roots.get(sets.find(site)) if site in sets.up else None

    # Each slot's start: the value the first iteration (or the header before it) reads there.
    init: dict = {}
    for site, x in [(("H",), g.eqns[pos[0]].inputs[0])] + [
            (s, x) for s, x in lp.reads(0) if s != ("H",)]:
        k = slot(site)
        if k is not None and (isinstance(x, Lit) or id(x) in made or
                              init.setdefault(k, x) is not x):
            raise NotBranching("the first iteration does not start a carried value from one value")
    if len(init) != len(slots):
        raise NotBranching("the first iteration does not read every carried value")
    for k, (_, p) in enumerate(slots):
        if init[k].aval != lp.side(rep[True])[p[True]].out.aval:
            raise NotBranching("a carried value changes its shape or dtype in the loop")
    # Every read at a slot's site is that slot (its start, or what the iteration before made).
    for j in range(n):
        for site, x in lp.reads(j):
            k = slot(site) if site != ("H",) else None
            if k is None:
                continue
            at = made.get(id(x)) if isinstance(x, Var) else None
            if j == 0:
                ok = x is init[k]
            else:
                ok = at is not None and at[0] == j - 1 and at[1] is None and \
                    at[2] == slots[k][1][kinds[j - 1]]
            if not ok:
                raise NotBranching("a carried value is read inconsistently")
    later = set(kinds[1:])
    starts = {id(v) for v in init.values()}
    for q, e in enumerate(lp.side(0)):
        if kinds[0] in later:
            break
        for i, x in enumerate(e.inputs):
            if isinstance(x, Var) and id(x) in starts and slot(("R", kinds[0], q, i)) is None:
                # Only the first iteration took this side: whether it read a carried value's
                # start or the same value as an invariant, no later iteration tells.
                raise NotBranching("only the first iteration took one side, and it reads a "
                                   "carried value's start")
    a_reads, outer = _operands(lp, slot)
    sides: dict = {}
    for j in range(n):
        graph = _side(lp, j, slots, slot, a_reads, outer)
        rep = sides.setdefault(kinds[j], graph)
        from jitgrad.transforms.loops import graph_sig
        if graph_sig(graph) != graph_sig(rep):
            raise NotBranching(f"iteration {j + 1} computes its side differently from the first "
                               "that took it")
    return _rebuild(lp, slots, init, a_reads, outer, sides)


def _operands(lp: _Loop, slot) -> tuple[list, list]:
    """What the sides read besides the slots: positions in A, and values from before the
    loop (in order of first reading)."""
    a_reads: list = []
    outer: list = []
    for j in range(lp.n):
        for q, e in enumerate(lp.side(j)):
            for i, x in enumerate(e.inputs):
                if isinstance(x, Lit) or slot(("R", lp.kinds[j], q, i)) is not None:
                    continue
                at = lp.made.get(id(x))
                if at is None:
                    if all(x is not o for o in outer):
                        outer.append(x)
                elif at[0] == j and at[1] == "A" and at[2] not in a_reads:
                    a_reads.append(at[2])
                elif at[0] != j:
                    raise NotBranching("a side reads an earlier iteration outside the carried "
                                       "values")
    return a_reads, outer


def _side(lp: _Loop, j: int, slots: list, slot, a_reads: list, outer: list) -> Graph:
    """Iteration ``j``'s side as a graph from (slots..., A values..., values from before the
    loop...) to its slots."""
    kind, seg = lp.kinds[j], lp.segs[j]
    r = lp.side(j)
    ins_slot = [Var(r[p[kind]].out.aval) for _, p in slots]
    ins_a = {p: Var(seg[p].out.aval) for p in a_reads}
    ins_o = [Var(x.aval) for x in outer]
    env: dict = {}
    body = []
    for q, e in enumerate(r):
        ins = []
        for i, x in enumerate(e.inputs):
            k = slot(("R", kind, q, i))
            if isinstance(x, Lit):
                ins.append(x)
            elif k is not None:
                ins.append(ins_slot[k])
            elif id(x) in env:
                ins.append(env[id(x)])
            elif id(x) in lp.made:
                ins.append(ins_a[lp.made[id(x)][2]])
            else:
                ins.append(ins_o[next(m for m, o in enumerate(outer) if o is x)])
        out = Var(e.out.aval) if e.out is not None else None
        if out is not None:
            env[id(e.out)] = out
        body.append(Eqn(e.prim, tuple(ins), out, e.params, e.src))
    outs = tuple(env[id(r[p[kind]].out)] for _, p in slots)
    return Graph((), (*ins_slot, *[ins_a[p] for p in a_reads], *ins_o), tuple(body), outs)


def _rebuild(lp: _Loop, slots, init, a_reads, outer, sides) -> tuple[Graph, list]:
    g, pos = lp.g, lp.pos
    ren: dict = {}

    def rn(x):
        return ren.get(id(x), x) if isinstance(x, Var) else x

    def renamed(e: Eqn) -> Eqn:
        return Eqn(e.prim, tuple(rn(x) for x in e.inputs), e.out, e.params, e.src)

    eqns = list(g.eqns[:pos[0] + 1])
    new_pos = [pos[0]]
    inside: set = set()  # the values the sides made: only their slots may be read outside
    carry_in = [init[k] for k in range(len(slots))]
    avals = TupleAval(tuple(sides[True].outputs[k].aval for k in range(len(slots))))
    for j in range(lp.n):
        seg, kind = lp.segs[j], lp.kinds[j]
        eqns += [renamed(e) for e in seg[:lp.a_len]]
        guard = seg[lp.a_len]
        w = Var(avals)
        ops = (rn(guard.inputs[0]), *carry_in, *[seg[p].out for p in a_reads], *outer)
        eqns.append(Eqn(cond_p, ops, w, {"true": sides[True], "false": sides[False]},
                        guard.src))
        r = lp.side(j)
        inside.update(id(e.out) for e in r if e.out is not None)
        carry_in = []
        for k, (_, p) in enumerate(slots):
            v = Var(avals.avals[k])
            eqns.append(Eqn(tuple_get_p, (w,), v, {"index": k}, guard.src))
            ren[id(r[p[kind]].out)] = v
            carry_in.append(v)
        new_pos.append(len(eqns))
        eqns.append(renamed(g.eqns[pos[j + 1]]))
    eqns += [renamed(e) for e in g.eqns[pos[-1] + 1:]]
    outputs = tuple(rn(o) for o in g.outputs)
    for e in eqns:
        for x in e.inputs:
            if isinstance(x, Var) and id(x) in inside:
                raise NotBranching("a value a side makes is read outside it")
    if any(isinstance(o, Var) and id(o) in inside for o in outputs):
        raise NotBranching("a value a side makes is a result")
    return Graph(g.consts, g.inputs, tuple(eqns), outputs), new_pos
