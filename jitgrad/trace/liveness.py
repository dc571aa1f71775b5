"""Which local variables of a Python function are live at an instruction: read later on some
path before they are written. At a loop's header these are the loop's Python state, what
``loops/branches.py`` must carry; a local that is dead there (a temporary of one side
of an ``if``) is written again before anything reads it, so its value at the header does not
matter.

The analysis errs towards live: cell and free variables (a nested function may read them at
any time) are always live, an instruction inside a ``try`` block can reach its handler, and an
opcode this does not know that names a local counts as reading it. More live names only make
loop lifting refuse more often.

>>> def f(x):
...     y = x
...     while y < 10:
...         t = y * 2
...         y = t + 1
...     return y
>>> sorted(live_at(f.__code__, header_offset(f.__code__)))
['y']
"""

from __future__ import annotations

import dis
import types
import weakref

_STOP = {"RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE", "JUMP_FORWARD",
         "JUMP_BACKWARD", "JUMP_ABSOLUTE", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP",
         "JUMP_NO_INTERRUPT"}
# Per code object, weakly: programs made with exec (a fuzzer's thousands) come and go.
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _names(arg) -> tuple:
    return arg if isinstance(arg, tuple) else (arg,)


def _effect(ins: dis.Instruction) -> tuple[frozenset, frozenset]:
    """(read, written) locals of one instruction; a write after a read in one instruction
    (``STORE_FAST_LOAD_FAST``) reads the value just written, not the one before."""
    op = ins.opname
    if op in ("STORE_FAST", "DELETE_FAST", "STORE_FAST_STORE_FAST"):
        return frozenset(), frozenset(_names(ins.argval))
    if op == "STORE_FAST_LOAD_FAST":
        store, load = ins.argval
        return frozenset({load} - {store}), frozenset({store})
    if op.startswith("LOAD_FAST") or (ins.opcode in dis.haslocal):
        return frozenset(_names(ins.argval)), frozenset()
    return frozenset(), frozenset()


def _analyse(code: types.CodeType) -> dict:
    """Per instruction offset, the locals live just before it."""
    instrs = list(dis.get_instructions(code))
    at = {ins.offset: k for k, ins in enumerate(instrs)}
    succ: list[list[int]] = []
    for k, ins in enumerate(instrs):
        nxt = [] if ins.opname in _STOP or k + 1 == len(instrs) else [k + 1]
        if (ins.opcode in dis.hasjrel or ins.opcode in dis.hasjabs) and ins.argval in at:
            nxt.append(at[ins.argval])
        succ.append(nxt)
    parse = getattr(dis, "_parse_exception_table", None)
    for entry in (parse(code) if parse is not None else ()):
        for k, ins in enumerate(instrs):
            if entry.start <= ins.offset < entry.end and entry.target in at:
                succ[k].append(at[entry.target])
    always = frozenset(code.co_cellvars) | frozenset(code.co_freevars)
    effects = [_effect(ins) for ins in instrs]
    live = [frozenset()] * len(instrs)
    changed = True
    while changed:
        changed = False
        for k in range(len(instrs) - 1, -1, -1):
            out = frozenset().union(*(live[s] for s in succ[k])) if succ[k] else frozenset()
            read, written = effects[k]
            new = read | (out - written) | always
            if new != live[k]:
                live[k] = new
                changed = True
    return {ins.offset: live[k] for k, ins in enumerate(instrs)}


def live_at(code: types.CodeType, offset: int) -> frozenset:
    """The locals of ``code`` live just before the instruction at byte ``offset`` (every
    local when the offset is not an instruction's)."""
    table = _CACHE.get(code)
    if table is None:
        table = _CACHE[code] = _analyse(code)
    found = table.get(offset)
    if found is None:
        return frozenset(code.co_varnames) | frozenset(code.co_cellvars) | \
            frozenset(code.co_freevars)
    return found


def header_offset(code: types.CodeType) -> int:
    """The first conditional jump of ``code`` (in the example, a ``while`` test)."""
    return next(ins.offset for ins in dis.get_instructions(code)
                if "JUMP" in ins.opname and "IF" in ins.opname)
