"""Structured control flow in the IR: the primitives a lifted loop is made of.

- ``while``: ``while[body expect n_carry tape tape_limit] pred init... inv...`` runs ``body`` (a Graph from
  ``(carry..., inv...)`` to ``(carry'..., pred')``) for as long as ``pred`` equals ``expect``,
  and gives a tuple: the final carried values, the trip count and (``tape``) the carried values
  each iteration started from. ``pred`` is the loop condition evaluated before the loop: the
  loop is the rotated form of Python's ``while cond: body``.
- ``cond[true false] pred operand...``: the graph ``true`` or ``false`` (each from the operands
  to the results) as ``pred`` says, and gives a tuple of its results: a Python ``if`` on data
  whose two sides were both traced, in one kernel (``loops/merge.py``); its reverse is
  a ``cond`` of the two sides' VJPs.
- ``tuple_get[index]``: one value of such a tuple.
- ``while_vjp[bvjp n_carry fc fi tape reverses] w ct... inv...``: the reverse sweep of a ``while``
  whose results ``w`` are: for each iteration, last first, ``bvjp`` (the body's VJP: a Graph
  from ``(carry..., inv..., ct of the floating carries...)`` to ``(ct of the floating
  carries..., ct of the floating invariants...)``) maps the cotangent of the values an
  iteration made to that of the values it started from, reading them from the tape; the
  invariants' cotangents are summed over iterations. It gives the cotangents of the floating
  initial values (``fc``: their positions) and of the floating invariants (``fi``).
  ``reverses`` says what it is, for its own reverse (``second_reverse.py``): ``"loop"``, the
  VJP of the loop ``w`` with respect to those; ``"rows"``, that VJP for each row of cotangents
  batched on their first axis (``jacrev``); None, a transformed one with no reverse.

  The tape holds at most ``tape_limit`` entries (a ``while`` parameter: ``config.
  loop_tape_budget`` over the bytes one iteration carries). A loop that runs longer thins it:
  every other entry goes and the stride between those kept doubles, so the tape keeps the
  values of iterations ``0, s, 2s, ...``. The reverse sweep then takes the segments last first,
  recomputes each segment's values from its first with the body, and runs ``bvjp`` over them:
  at most ``tape_limit + s`` iterations' values in memory, for one more forward pass of the
  loop (checkpointing at a stride chosen as the loop runs).

Only the loop-lifting pass (``loops/lift.py``) and the autodiff pass make these; eager
code never sees them. Their reference semantics are the implementations below.
"""

from __future__ import annotations

import numpy as np

from jitgrad.ir.graph import Lit, Var
from jitgrad.ir.interpret import interpret
from jitgrad.ir.primitive import Aval, TupleAval, register
from jitgrad.ops import registry


# Helpers of the loop rules (``rules.py``) and of ``second_reverse.py``, which ``rules.py``
# imports as it loads: here, so that both share one of each.
def bind(prim, args, params):
    """``prim`` applied to ``args`` wherever ops go now (the trace or sweep at work)."""
    return registry.bind(prim, tuple(args), params)


def full(x, batched: bool, size: int):
    """``x`` carrying the batch (broadcast along it when it does not)."""
    return x if batched else x.expand(size, *x.shape)


def add_wanted(sw, targets: list, value) -> None:
    """In the reverse sweep ``sw``, add ``value(k)`` to the cotangent of each ``targets[k]``
    whose cotangent is wanted (``value`` is called only for those)."""
    for k, a in enumerate(targets):
        if isinstance(a, Var) and sw.tr(a)._rg:
            sw.add(a, value(k))


def reads_carry(bvjp, n_carry: int) -> bool:
    """Whether a loop body's VJP reads the values an iteration started from (the loop then
    keeps them on a tape)."""
    reads = {id(a) for x in bvjp.eqns for a in x.inputs} | {id(o) for o in bvjp.outputs}
    return any(id(v) in reads for v in bvjp.inputs[:n_carry])


def same_operand(a, b) -> bool:
    """Whether ``a`` and ``b`` (IR atoms, or tracers of them) are one operand: the same
    variable, or equal literals (each replay of a graph makes its literals afresh)."""
    if a is b:
        return True
    a = a if getattr(a, "_ir", None) is None else a._ir
    b = b if getattr(b, "_ir", None) is None else b._ir
    return a is b or (isinstance(a, Lit) and isinstance(b, Lit) and a.key() == b.key())


def _truth(pred) -> object:
    return np.asarray(pred).item()


class Tape:
    """What a taped ``while`` keeps for its reverse sweep: the carried values of iterations
    ``0, stride, 2 * stride, ...``, and the body and invariants that recompute the others."""

    def __init__(self, limit: int, body, inv: list) -> None:
        self.limit, self.body, self.inv = limit, body, inv
        self.saved: list = []
        self.stride = 1

    def keep(self, n: int, carry: list) -> None:
        """Record the values iteration ``n`` starts from, if it is one the tape keeps."""
        if n % self.stride:
            return
        if len(self.saved) == self.limit:  # full: keep every other entry, twice as far apart
            self.saved = self.saved[::2]
            self.stride *= 2
        self.saved.append(carry)

    def segment(self, k: int, n: int) -> list:
        """The values iterations ``k * stride ...`` (up to ``n``) start from: the kept first
        one, the others recomputed with the body."""
        seg = [self.saved[k]]
        nc = len(seg[0])
        for _ in range(1, min(self.stride, n - k * self.stride)):
            outs = interpret(self.body, list(seg[-1]) + self.inv)
            seg.append([np.asarray(o) for o in outs[:nc]])
        return seg


def _while_impl(pred, *operands, body, expect, n_carry, tape, tape_limit=0):
    carry = list(operands[:n_carry])
    inv = list(operands[n_carry:])
    n, saved = 0, Tape(limit_of(tape_limit), body, inv) if tape else None
    while _truth(pred) == expect:
        if tape:
            saved.keep(n, carry)
        outs = interpret(body, carry + inv)
        carry, pred = [np.asarray(o) for o in outs[:n_carry]], outs[n_carry]
        n += 1
    return _own(carry, operands) + (n, saved)


def limit_of(tape_limit: int) -> int:
    """The entries a tape may hold: even (thinning halves it) and at least 2; 0 is no limit."""
    return (max(2, tape_limit) // 2 * 2) if tape_limit else 1 << 62


def _while_abstract(pred: Aval, *operands: Aval, body, expect, n_carry, tape,
                    tape_limit=0) -> TupleAval:
    return TupleAval(tuple(Aval(tuple(a.shape), a.dtype) for a in operands[:n_carry]))


def _tuple_get_abstract(w: TupleAval, index: int) -> Aval:
    return w.avals[index]


def _while_vjp_impl(w, *operands, bvjp, n_carry, fc, fi, tape, reverses=None):
    n, saved = w[n_carry], w[n_carry + 1]
    cts = list(operands[:len(fc)])
    inv = list(operands[len(fc):])
    acc = [np.zeros(np.shape(inv[j]), inv[j].dtype) for j in fi]
    final = list(w[:n_carry])
    # Without a tape the VJP reads no carry: one segment of n iterations, each given ``final``.
    for k in range(len(saved.saved) - 1, -1, -1) if tape else [0]:
        seg = saved.segment(k, n) if tape else [final] * n
        for carry in reversed(seg):
            outs = interpret(bvjp, list(carry) + inv + cts)
            cts = [np.asarray(o) for o in outs[:len(fc)]]
            acc = [a + np.asarray(o) for a, o in zip(acc, outs[len(fc):])]
    # (no iteration gives the cotangents passed in; the loop's own values stay its own)
    return _own(cts + acc, list(operands) + final)


def _while_vjp_abstract(w: TupleAval, *operands: Aval, bvjp, n_carry, fc, fi, tape,
                        reverses=None) -> TupleAval:
    # each cotangent is shaped as the one passed in (a batched one has the batch axis the
    # loop's own values lack: jacrev of a loop, vmap's rows)
    inv = operands[len(fc):]
    return TupleAval(tuple(Aval(tuple(c.shape), c.dtype) for c in operands[:len(fc)]) + tuple(
        Aval(tuple(inv[j].shape), inv[j].dtype) for j in fi))


def _own(outs, operands) -> tuple:
    """Results as arrays of their own: a side (or a loop that ran no iteration) may pass an
    operand on, or a view of one (a reshape), or give one value twice, and a result must never
    share memory with an argument or another result."""
    done: list = []
    for o in outs:
        o = np.asarray(o)
        seen = any(np.may_share_memory(o, a) for a in operands if type(a) is np.ndarray) or \
            any(np.may_share_memory(o, d) for d in done)
        done.append(np.array(o) if seen else o)
    return tuple(done)


def _cond_impl(pred, *operands, true, false):
    return _own(interpret(true if _truth(pred) else false, list(operands)), operands)


def _cond_abstract(pred: Aval, *operands: Aval, true, false) -> TupleAval:
    return TupleAval(tuple(Aval(tuple(o.aval.shape), o.aval.dtype) for o in true.outputs))


while_p = register("while", _while_impl, _while_abstract, None, saves="none", kind="loop")
cond_p = register("cond", _cond_impl, _cond_abstract, None, saves="none", kind="loop")
tuple_get_p = register("tuple_get", lambda w, index: w[index], _tuple_get_abstract, None,
                       saves="none", kind="loop")
while_vjp_p = register("while_vjp", _while_vjp_impl, _while_vjp_abstract, None, saves="none",
                       kind="loop")
