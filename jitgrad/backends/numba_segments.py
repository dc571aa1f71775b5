"""Kernels with many guards in segments: each guard is an early return, and Numba's compile
time grows with the square of their number in one function (every return releases every live
array, and its SSA pass rewrites the whole function once per reassigned name), so a kernel past
a budget of guards is cut, at top-level statement boundaries, into segment functions that the
kernel calls in turn. Each takes the values it reads from earlier segments and returns the
status, the value a failed guard saw, and the values later segments read. Passing values costs
compile time too, so kernels within the budget stay one function.
"""

from __future__ import annotations

import re

from jitgrad.backends.numba_values import STATUS_OK

# Guards per segment.
SEGMENT_COST = 16

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


def split(lines: list[str], cuts: list[int], params: list[str], types: dict,
          decorator: str, out_dummies: str) -> str | None:
    """The kernel body ``lines`` (of ``def kernel(params)``, guards returning ``__DUMMIES__``)
    as segment functions and a kernel calling them, cut before each line index of ``cuts``.
    ``types`` gives ``(dtype text, ndim)`` of the names that may pass between segments; None
    when a value that must pass has no known type (the caller keeps one function)."""
    bounds = [0] + cuts + [len(lines)]
    segs = [lines[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    info = [_defs_and_uses(s) for s in segs]
    known = set(params)
    avail = []  # names defined before each segment
    for defined, _ in info:
        avail.append(set(known))
        known |= defined
    # Backward liveness over the segments: what each must receive and hand on.
    live_after: list = [set() for _ in segs]
    needs = set()
    for k in range(len(segs) - 1, -1, -1):
        live_after[k] = set(needs)
        defined, reads = info[k]
        wanted = {n for n in reads if n in avail[k]}
        for n in list(wanted):
            if n.endswith("_f") and n[:-2] in types:  # a flat alias: made again from its array
                wanted.discard(n)
                wanted.add(n[:-2])
        needs = (needs - defined) | wanted
    live_before = [sorted(needs)] + [sorted(live_after[k - 1]) for k in range(1, len(segs))]
    out = []
    calls = []
    for k, body in enumerate(segs):
        ins, outs = live_before[k], sorted(live_after[k])
        if any(n not in types for n in outs):
            return None
        pre = []
        for n in sorted({n for n in info[k][1] if n.endswith("_f") and n[:-2] in ins
                         and n not in info[k][0]}):
            base = n[:-2]
            pre.append(f"    {n} = {base}" if types[base][1] == 1 else
                       f"    {n} = {base}.reshape(-1)")
        last = k == len(segs) - 1
        dummies = out_dummies if last else "".join(f"{_dummy(types[n])}, " for n in outs)
        text = "\n".join(pre + body).replace("__DUMMIES__", dummies)
        if not last:
            text += f"\n    return {STATUS_OK}, 0.0, ({''.join(f'{n}, ' for n in outs)})"
        out.append(f"{decorator}\ndef segment{k}({', '.join(ins)}):\n{text}\n")
        calls.append((ins, outs))
    main = [decorator, f"def kernel({', '.join(params)}):"]
    for k, (ins, outs) in enumerate(calls[:-1]):
        main.append(f"    st, seen, ({''.join(f'{n}, ' for n in outs)}) = segment{k}({', '.join(ins)})")
        main.append("    if st != -1:")
        main.append(f"        return st, seen, ({out_dummies})")
    main.append(f"    return segment{len(calls) - 1}({', '.join(calls[-1][0])})")
    return "\n".join(out) + "\n" + "\n".join(main) + "\n"


def _dummy(t) -> str:
    dtype, ndim = t
    if ndim:
        return f"np.empty({'(0,)' if ndim == 1 else repr((0,) * ndim)}, {dtype})"
    return f"{dtype}(0)"
