"""Python induction variables of a lifted loop: an iteration cap such as

    it = 0
    while (err > tol).any() and it < 60:
        x = x - f(x) / df(x)
        it += 1

The trace sees ``it`` only as Python state that changes at every hit of the loop's header, which
alone would keep the loop from being lifted (``lift.py``: nothing the trace cannot
see may steer the body). A local is taken in as a counter of the lifted loop, an int64 it carries
with the header's test on it part of the loop's condition, when the loop header's bytecode proves
that it is one:

- inside the loop it is written once, by ``it += c`` (or ``it = it + c``, ``-=``) with ``c`` an
  int constant, on every path from the top of the body back to the header;
- the header reads it as ``it < N`` (``<=``, ``>``, ``>=``, either side) with ``N`` an int
  constant, an unchanging local or a global, in a test whose failure leaves the loop: the test
  is a conjunct of the condition;
- it is dead where the loop exits (nothing reads the count after the loop), it is no cell
  variable, and the code does not read its locals by name (``locals()``, ``eval``);
- at the traced hits of the header its values are ``start, start + c, start + 2c, ...``.

A counter that the body reads too (``lr * 0.9 ** it``, ``x[it]``) is one the trace saw as a
different Python number in each iteration (``ReadInBody``): the runtime traces the function again
with that local taken, from the header's first test on, as a traced number of the trace
(``Builder.count_here``, ``trace/numbers.py``), so that the test, the step and the reads are the
IR's and the loop lifts carrying it, as a tensor counter would. Anything else stays as it was:
the loop is not lifted, one trace per trip count.

>>> import jitgrad
>>> def f(x):
...     it = 0
...     while x.sum() < 100 and it < 6:
...         x = x * 2
...         it += 1
...     return x.sum()
>>> g = jitgrad.grad(f, target="reference")
>>> [g(jitgrad.tensor([v])).item() for v in (1.0, 30.0, 1e-3)]
[64.0, 4.0, 64.0]
>>> g.cache_info().traces
1
"""

from __future__ import annotations

import dis
import types
from typing import NamedTuple

from jitgrad import dtypes
from jitgrad.ir.graph import Eqn, Graph, Lit, Var
from jitgrad.ir.primitive import Aval
from jitgrad.trace.builder import hide_locals
from jitgrad.trace.liveness import live_at

_SKIP = frozenset({"CACHE", "NOP", "EXTENDED_ARG", "TO_BOOL", "PRECALL", "RESUME"})
_INTROSPECTION = frozenset({"locals", "vars", "eval", "exec", "_getframe", "currentframe"})
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}
# The test that holds exactly when ``op`` fails, for a condition that must stay False.
_NEGATE = {"<": "ge", "<=": "gt", ">": "le", ">=": "lt"}
_PRIM = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}
_HOLDS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
          ">=": lambda a, b: a >= b}
_ADD = {"+", "+=", "BINARY_ADD", "INPLACE_ADD"}
_SUB = {"-", "-=", "BINARY_SUBTRACT", "INPLACE_SUBTRACT"}


class Counter(NamedTuple):
    """One proven induction variable: its value at the first traced hit, its step, and the
    header's tests on it as (op, bound): the loop goes on only while ``counter op bound``."""

    name: str
    start: int
    step: int
    tests: tuple

    def holds(self, hit: int) -> bool:
        """Whether every test holds at the header's ``hit``-th evaluation (from 0)."""
        v = self.start + hit * self.step
        return all(_HOLDS[op](v, bound) for op, bound in self.tests)


class NotInduction(Exception):
    """Why a changing local is not a counter the lifted loop can carry."""


class ReadInBody(NotInduction):
    """A proven counter that the loop's body reads too (``lr * 0.9 ** it``, ``x[it]``): the trace
    saw each read as a different Python number. Traced again with the counter a traced number
    from the header's first test on (``Builder.count_locals``), the loop lifts with it carried.
    ``site``: (code, header line, local's name)."""

    def __init__(self, why: str, site: tuple) -> None:
        super().__init__(why)
        self.site = site


def split_state(contexts: list, indices: list) -> tuple[list, list]:
    """The counters among the Python state that changes between the header's hits, and the
    hits' contexts with those locals taken out (for the rest of the comparison). Raises
    ``NotInduction`` when a changing local is an int but not proven a counter; a changing
    value of another kind is left in the contexts for the caller to report."""
    states = [contexts[i][1] for i in indices]
    if any(s is None for s in states) or len({len(s[0]) for s in states}) != 1:
        return [], [contexts[i] for i in indices]
    key = contexts[indices[0]][0]
    frames0 = states[0][0]
    found: dict = {}  # (depth, name) -> values per hit
    for depth, frame in enumerate(frames0):
        if frame[0] == "globals" or depth >= len(key):
            continue
        names = [n for n, _ in frame[1]]
        for s in states[1:]:
            if [n for n, _ in s[0][depth][1]] != names:
                return [], [contexts[i] for i in indices]
        for q, name in enumerate(names):
            values = [s[0][depth][1][q][1] for s in states]
            if any(v != values[0] for v in values[1:]):
                found[(depth, name)] = values
    counters: list = []
    for (depth, name), values in found.items():
        if not all(type(v) is int for v in values):
            continue  # not an int: the caller reports the change
        code, position = key[depth]
        counters.append((depth, _prove(code, position[0], name, values, frames0[depth],
                                       frames0[-1])))
    if not counters:
        return [], [contexts[i] for i in indices]
    drop = {(key[d][0], c.name) for d, c in counters}  # every hit has the header's key
    return [c for _, c in counters], [hide_locals(contexts[i], drop) for i in indices]


def _instructions(code: types.CodeType) -> list:
    """(offset, opname, argval, argrepr, line) of each instruction, the two loads of a
    superinstruction split."""
    out = []
    for ins in dis.get_instructions(code):
        if ins.opname in _SKIP:
            continue
        line = ins.positions.lineno if getattr(ins, "positions", None) else ins.starts_line
        op, arg = ins.opname, ins.argval
        if op.startswith("LOAD_FAST") and isinstance(arg, tuple):  # LOAD_FAST_LOAD_FAST & co
            for a in arg:
                out.append((ins.offset, "LOAD_FAST", a, a, line))
            continue
        if op.startswith("LOAD_FAST"):  # _CHECK, _BORROW (3.12+): the same read
            op = "LOAD_FAST"
        elif op == "LOAD_SMALL_INT":  # 3.14: a small int constant
            op = "LOAD_CONST"
        elif isinstance(arg, tuple) and "FAST" in op and op != "STORE_FAST_STORE_FAST":
            op = "UNKNOWN_FAST"  # another superinstruction: a use the analysis does not follow
        out.append((ins.offset, op, arg, ins.argrepr, line))
    return out


def _is_jump(op: str) -> bool:
    return "JUMP" in op


def _prove(code, line: int, name: str, values: list, frame, glb) -> Counter:
    if name in code.co_cellvars or name in code.co_freevars or \
            _INTROSPECTION & set(code.co_names):
        raise NotInduction(f"the local {name!r} may be read by name")
    ins = _instructions(code)
    if any(op in ("STORE_FAST_LOAD_FAST", "STORE_FAST_STORE_FAST", "DELETE_FAST",
                  "UNKNOWN_FAST") and
           name in (a if isinstance(a, tuple) else (a,)) for _, op, a, _, _ in ins):
        raise NotInduction(f"the local {name!r} is deleted or written in a way not followed")
    head = [k for k, i in enumerate(ins) if i[4] == line]
    if not head:
        raise NotInduction("the loop's header was not found in its code")
    start = ins[head[0]][0]
    backs = [i[0] for i in ins if _is_jump(i[1]) and isinstance(i[2], int) and
             start <= i[2] < i[0]]
    if not backs:
        raise NotInduction("the loop's header was not found in its code")
    end = max(backs)
    region = [k for k, i in enumerate(ins) if start <= i[0] <= end]
    inside = set(region)
    # The one write, ``it += c``.
    stores = [k for k in region if ins[k][1] == "STORE_FAST" and ins[k][2] == name]
    if len(stores) != 1 or stores[0] < 3:
        raise NotInduction(f"the local {name!r} is not written once in the loop as {name} += c")
    s = stores[0]
    load, const, binop = ins[s - 3], ins[s - 2], ins[s - 1]
    if load[1] != "LOAD_FAST" or load[2] != name or const[1] != "LOAD_CONST" or \
            type(const[2]) is not int:
        raise NotInduction(f"the local {name!r} is not changed by an int constant")
    sign = 1 if (binop[3] in _ADD or binop[1] in _ADD) else \
        -1 if (binop[3] in _SUB or binop[1] in _SUB) else 0
    if not sign or const[2] == 0:
        raise NotInduction(f"the local {name!r} is not changed by adding a constant")
    step = sign * const[2]
    if any(b - a != step for a, b in zip(values, values[1:])):
        raise NotInduction(f"the local {name!r} does not step by {step} at every iteration")
    tests, compares, body_read = [], set(), None
    for k in region:
        i = ins[k]
        if i[1] != "LOAD_FAST" or i[2] != name or k == s - 3:
            continue
        if i[4] != line:
            body_read = k if body_read is None else body_read
            continue
        op, bound, at = _test(ins, k, name, line, inside, frame, glb)
        tests.append((op, bound))
        compares.add(at)
    if not tests:
        raise NotInduction(f"the local {name!r} is not tested by the loop's header")
    succ = _successors(ins)
    _conjunct(succ, head, inside, compares, name)
    _every_iteration(ins, succ, region, inside, head, s, name)
    # Dead where the loop is left: nothing after the loop reads the count.
    exits = {ins[m][0] for k in region for m in succ[k] if m not in inside}
    for off in exits:
        if name in live_at(code, off):
            raise NotInduction(f"the local {name!r} is read after the loop")
    if body_read is not None:
        raise ReadInBody(f"the local {name!r} is read in the loop's body (line "
                         f"{ins[body_read][4]}) as a Python number", (code, line, name))
    return Counter(name, values[0], step, tuple(sorted(set(tests))))


def _test(ins: list, k: int, name: str, line: int, inside: set, frame, glb) -> tuple:
    """``(op, bound)`` of the header test that reads the local at ``k``, with ``counter op
    bound`` required for the loop to go on."""
    why = NotInduction(f"the local {name!r} is read in the loop other than by its header's "
                       "test")
    if ins[k][4] != line:
        raise why
    if k + 2 < len(ins) and ins[k + 2][1] == "COMPARE_OP":  # it < N
        bound_at, cmp_at, flip = k + 1, k + 2, False
    elif k >= 1 and k + 1 < len(ins) and ins[k + 1][1] == "COMPARE_OP":  # N > it
        bound_at, cmp_at, flip = k - 1, k + 1, True
    else:
        raise why
    op = str(ins[cmp_at][2]).removeprefix("bool(").removesuffix(")")
    if op not in _FLIP or cmp_at + 1 >= len(ins):
        raise why
    op = _FLIP[op] if flip else op
    bound = _bound(ins[bound_at], name, frame, glb)
    jump = ins[cmp_at + 1]
    if not _is_jump(jump[1]) or "IF" not in jump[1] or "NONE" in jump[1]:
        raise why
    # The test failing must leave the loop: it is then a conjunct of the condition.
    if "FALSE" in jump[1]:
        target = next((m for m, i in enumerate(ins) if i[0] == jump[2]), None)
        leaves = target is None or target not in inside
    else:
        leaves = cmp_at + 2 >= len(ins) or (cmp_at + 2) not in inside
    if not leaves:
        raise NotInduction(f"the loop may go on when the test of {name!r} fails")
    return op, bound, cmp_at


def _bound(i: tuple, name: str, frame, glb) -> int:
    op, arg = i[1], i[2]
    if op == "LOAD_CONST" and type(arg) is int:
        return arg
    if op == "LOAD_FAST" and arg != name:
        v = dict(frame[1]).get(arg)  # unchanged at every hit: not among the changing locals
    elif op == "LOAD_GLOBAL":
        # The snapshot holds the globals of every frame's module by name: a name two modules
        # give different values is not known to be the header's
        found = {repr(val) for n, val in glb[2] if n == arg}
        v = dict(glb[2]).get(arg) if len(found) == 1 else None
    else:
        v = None
    if type(v) is not int:
        raise NotInduction(f"the bound of {name!r} is not an int constant, local or global")
    return v


def _successors(ins: list) -> list:
    at = {i[0]: k for k, i in enumerate(ins)}
    stop = ("RETURN", "RAISE", "RERAISE")
    out = []
    for k, i in enumerate(ins):
        op = i[1]
        uncond = _is_jump(op) and "IF" not in op and "FOR_ITER" not in op
        nxt = [] if uncond or op.startswith(stop) or k + 1 == len(ins) else [k + 1]
        if _is_jump(op) or op == "FOR_ITER":
            if isinstance(i[2], int) and i[2] in at:
                nxt.append(at[i[2]])
        out.append(nxt)
    return out


def _conjunct(succ: list, head: list, inside: set, compares: set, name: str) -> None:
    """Every way through the header into the body passes a test of the counter (``A or it <
    N`` enters the body on ``A`` alone: the test is no conjunct there)."""
    header = set(head)
    todo = [k for k in head if k == head[0] or k - 1 not in header]
    seen: set = set()
    while todo:
        k = todo.pop()
        if k in seen or k in compares:
            continue
        seen.add(k)
        for m in succ[k]:
            if m in header:
                todo.append(m)
            elif m in inside:
                raise NotInduction(f"the loop may go on without testing {name!r}")


def _every_iteration(ins, succ, region, inside, head, store: int, name: str) -> None:
    """Every path from the top of the body back to the header passes the write: the count
    steps at every iteration, whatever the body's ``if``s take."""
    header = set(head)
    body_entry = {m for k in head for m in succ[k] if m in inside and m not in header}
    if not body_entry:  # a loop on one line: its body is not told from its header
        raise NotInduction(f"the loop of {name!r} is written on one line")
    seen, todo = set(), list(body_entry)
    while todo:
        k = todo.pop()
        if k in seen or k == store:
            continue
        seen.add(k)
        for m in succ[k]:
            if m in header or (m in body_entry and ins[m][0] <= ins[k][0]):
                raise NotInduction(f"an iteration may skip the write of {name!r}")
            if m in inside:
                todo.append(m)


def add_counters(body: Graph, counters: list, expect: bool, n_carry: int) -> Graph:
    """``body`` (``(carry..., inv...) -> (carry'..., pred)``) carrying the counters after its
    own carried values, each stepped once, with the header's tests on the stepped values
    joined to ``pred``: the loop goes on while ``pred == expect`` and every test holds."""
    from jitgrad.ops.registry import PRIMITIVES
    i64 = dtypes.int64
    pred = body.outputs[-1]
    if not isinstance(pred, Var) or pred.aval.dtype is not dtypes.bool_ or pred.aval.shape != ():
        raise NotInduction("the loop's condition is not one bool")
    ins, eqns, outs = [], list(body.eqns), []
    src = body.eqns[-1].src if body.eqns else None
    for c in counters:
        cin, cout = Var(Aval((), i64)), Var(Aval((), i64))
        ins.append(cin)
        eqns.append(Eqn(PRIMITIVES["add"], (cin, Lit(c.step, i64)), cout, {}, src))
        outs.append(cout)
        for op, bound in c.tests:
            ok = Var(Aval((), dtypes.bool_))
            # expect False: the loop goes on while pred is False, so pred | (the test fails)
            prim = PRIMITIVES[_PRIM[op] if expect else _NEGATE[op]]
            eqns.append(Eqn(prim, (cout, Lit(bound, i64)), ok, {}, src))
            joined = Var(Aval((), dtypes.bool_))
            eqns.append(Eqn(PRIMITIVES["bitwise_and" if expect else "bitwise_or"],
                            (pred, ok), joined, {}, src))
            pred = joined
    inputs = (*body.inputs[:n_carry], *ins, *body.inputs[n_carry:])
    outputs = (*body.outputs[:n_carry], *outs, pred)
    return Graph(body.consts, inputs, eqns, outputs)
