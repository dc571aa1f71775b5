"""Long kernels in segments. Numba's compile time grows with the square of one function's
size: each guard is an early return that releases every live array, its SSA pass rewrites the
whole function once per reassigned name, and its lowering and LLVM's passes grow faster than
linearly in the function's length. So a kernel past a budget of guards, or of lines, is cut at
top-level statement boundaries into segment functions that the kernel calls in turn. The kernel
holds the values between calls; each segment takes the values it reads from the kernel's
arguments or from earlier segments, and returns the status, the value a failed guard saw, and
the values later segments read, so what passes grows with the reads and the compile stays
linear. Calls cost compile time too, so short kernels stay one function.
"""

from __future__ import annotations

import re

from jitgrad.backends.kernel_ir import Alias, has_exit, render
from jitgrad.backends.numba_values import STATUS_OK

# Guards per segment.
SEGMENT_COST = 16
# Lines per segment: Numba's lowering and LLVM's passes grow faster than linearly in the size of
# one function, so a long trace is cut too, guards or not.
SEGMENT_LINES = 400

_NAME = re.compile(r"\b[A-Za-z_]\w*\b")
_ASSIGN = re.compile(r"^\s*(\w+(?:\s*,\s*\w+)*)\s*(?:[-+*/]?=)(?!=)")
_FOR = re.compile(r"^\s*for\s+(\w+)\s+in\b")


def _defs_and_uses(lines: list[str]) -> tuple[set, list]:
    """Names a segment assigns, and the names it reads before (or without) assigning them."""
    defined: set = set()
    reads: list = []
    for line in lines:
        m = _ASSIGN.match(line) or _FOR.match(line)
        targets = {t.strip() for t in m.group(1).split(",")} if m else set()
        rhs = line[m.end():] if m else line
        if m and not _FOR.match(line) and re.match(r"^\s*\w+\s*[-+*/]=", line):
            rhs = line  # an augmented assignment reads its target too
        for n in _NAME.findall(rhs):
            if n not in defined:
                reads.append(n)
        defined |= targets
    return defined, reads


def _aliases_made_again(info: tuple, ins, types: dict) -> list[Alias]:
    """The flat aliases a segment (or piece) reads of arrays it takes (``ins``) without making
    them itself (``info``: its defined names and reads): each function makes its own, since
    an alias passed between functions would be one more parameter."""
    defined, reads = info
    return [Alias(n[:-2], types[n[:-2]][1], 1) for n in
            sorted({n for n in reads if n.endswith("_f") and n[:-2] in ins and n not in defined})]


def split(lines: list[str], cuts: list[int], params: list[str], types: dict,
          decorator: str, out_dummies: str) -> str | None:
    """The kernel body ``lines`` (of ``def kernel(params)``, early returns as ``kernel_ir.Exit``)
    as segment functions and a kernel calling them, cut before each line index of ``cuts``.
    ``types`` gives ``(dtype text, ndim)`` of the names that may pass between segments; None
    when a value that must pass has no known type (the caller keeps one function)."""
    bounds = [0] + cuts + [len(lines)]
    segs = [lines[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    info = [_defs_and_uses(s) for s in segs]
    known = set(params)
    ins = []  # what each segment reads from the kernel's arguments or earlier segments
    for defined, reads in info:
        wanted = set()
        for n in reads:
            if n.endswith("_f") and n[:-2] in types and n[:-2] in known:
                wanted.add(n[:-2])  # a flat alias: made again from its array
            elif n in known:
                wanted.add(n)
        ins.append(sorted(wanted))
        known |= defined
    # Each segment hands back only what a later one reads, and takes only what it reads: the
    # kernel holds the values between calls, so what passes grows with the reads, not with
    # the values live across every cut (all of the forward pass, in a gradient).
    outs: list = [[] for _ in segs]
    needed: set = set()
    for k in range(len(segs) - 1, -1, -1):
        defined = info[k][0]
        outs[k] = sorted(defined & needed)
        needed = (needed - defined) | set(ins[k])
    if any(n not in types for o in outs for n in o):
        return None
    out = []
    main = [decorator, f"def kernel({', '.join(params)}):"]
    for k, body in enumerate(segs):
        pre = _aliases_made_again(info[k], ins[k], types)
        last = k == len(segs) - 1
        guarded = has_exit(body)
        dummies = out_dummies if last else "".join(f"{_dummy(types[n])}, " for n in outs[k])
        text = "\n".join(pre + render(body, dummies))
        names = "".join(f"{n}, " for n in outs[k])
        call = f"segment{k}({', '.join(ins[k])})"
        if last:
            main.append(f"    return {call}")
        else:
            text += f"\n    return {STATUS_OK}, 0.0, ({names})"
            main.append(f"    st, seen, ({names}) = {call}")
            if guarded:  # a segment without guards cannot fail: no exit to release values at
                main.append(f"    if st != {STATUS_OK}:")
                main.append(f"        return st, seen, ({out_dummies})")
        out.append(f"{decorator}\ndef segment{k}({', '.join(ins[k])}):\n{text}\n")
    return "\n".join(out) + "\n" + "\n".join(main) + "\n"


def _dummy(t) -> str:
    dtype, ndim = t
    if ndim:
        return f"np.empty({'(0,)' if ndim == 1 else repr((0,) * ndim)}, {dtype})"
    return f"{dtype}(0)"
