"""Long kernels as shared pieces: compile cost that follows a model's distinct structure.

A transformer's trace repeats itself: each head, each layer, and the same op patterns in forward
and backward emit the same code up to names. A long kernel is cut before each matmul (the steps
between two matmuls are a layer's unit of structure, so repeated layers cut alike), each piece
becomes a function of the values it reads, and its text is made canonical: every local name is
renamed in order of first appearance, the parameters ordered by first read. Pieces with the same
canonical text are one function, compiled once and cached on disk in a module of its own keyed
by that text, so a repeated layer costs a call, not a compile, in this trace, in later traces
and in later processes.

The pieces are called in turn by a plain Python function (not compiled: Numba would link every
piece into one module and optimize them together again), which holds the values between calls
and returns at the first failed guard, as the segments of one compiled function do
(``numba_segments``). A call costs a few microseconds, so short kernels stay one function.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import keyword
import tokenize

from jitgrad.backends.numba_segments import (_ASSIGN, _FOR, _aliases_made_again,
                                             _defs_and_uses, _dummy)
from jitgrad.backends.kernel_ir import Alias, has_exit, render
from jitgrad.backends.numba_values import STATUS_OK

# A piece ends at its next matmul once it has this many lines; a piece of more lines than
# PIECE_MAX is cut at its next step whatever it is (long elementwise stretches compile faster
# in parts too).
PIECE_MIN = 8
PIECE_MAX = 300
_KEEP = frozenset(dir(builtins)) | frozenset(keyword.kwlist)


class Pieces(str):
    """A kernel's source (the text ``lower().kernels`` shows) that compiles as pieces:
    ``units`` maps each distinct piece's name to its module source, ``driver`` is the Python
    function calling them."""

    units: dict
    sigs: dict
    driver: str

    @classmethod
    def make(cls, units: dict, sigs: dict, driver: str) -> "Pieces":
        text = "\n".join(units.values()) + "\n# the driver (plain Python)\n" + driver
        out = cls(text)
        out.units, out.sigs, out.driver = units, sigs, driver
        return out


def groups(lines: list[str], starts: list[int], heavy: list[bool]) -> list[int]:
    """Where pieces start (line indices): at a heavy step (a matmul) once the piece has
    ``PIECE_MIN`` lines, and at any step once it has ``PIECE_MAX``."""
    cuts = []
    last = 0
    for start, h in zip(starts, heavy):
        if start == 0:
            continue
        n = start - last
        if (h and n >= PIECE_MIN) or n >= PIECE_MAX:
            cuts.append(start)
            last = start
    return cuts


def build(lines: list[str], cuts: list[int], params: list[str], types: dict, head: list[str],
          decorator: str, out_dummies: str) -> Pieces | None:
    """The kernel body ``lines`` (of ``def kernel(params)``, early returns as ``kernel_ir.Exit``)
    as pieces cut before the line indices ``cuts``, or None when a value passing between
    pieces has no known type (the caller keeps one function)."""
    final = lines[-1]
    if not final.startswith(f"    return {STATUS_OK}, 0.0, ("):
        return None
    # The driver returns the kernel's outputs itself: a last piece that returned them all would
    # take every gradient of the model as a parameter (188 at 8 layers; Numba's typing of such
    # a signature and tuple costs more than the rest of the piece).
    lines = lines[:-1]
    # The flat aliases of the kernel's arguments (``c3_f = c3``), made at its top, are made again
    # in each piece that reads them (``pre`` below): kept, they would make the first piece take
    # every argument (a model's dropout draws have one constant each).
    top = set(params)
    keep = [not (isinstance(line, Alias) and line.depth == 1 and line.base in top)
            for line in lines]
    cuts = [sum(keep[:c]) for c in cuts]
    lines = [line for line, k in zip(lines, keep) if k]
    bounds = [0] + sorted({c for c in cuts if 0 < c < len(lines)}) + [len(lines)]
    segs = [lines[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
    info = [_defs_and_uses(s) for s in segs]
    known = set(params)
    ins = []
    for (defined, reads) in info:
        wanted: list = []
        for n in reads:  # in order of first read: the canonical order of parameters
            base = n[:-2] if n.endswith("_f") and n[:-2] in types and n[:-2] in known else n
            if base in known and base not in wanted:
                wanted.append(base)
        ins.append(wanted)
        known |= defined
    outs: list = [[] for _ in segs]
    needed = set(_defs_and_uses([final])[1])
    for k in range(len(segs) - 1, -1, -1):
        defined = info[k][0]
        outs[k] = [n for n in _first_defined(segs[k]) if n in needed]
        needed = (needed - defined) | set(ins[k])
    if any(n not in types for o in outs + ins for n in o):
        return None
    units: dict = {}
    sigs: dict = {}
    driver = [f"def kernel({', '.join(params)}):"]
    for k, body in enumerate(segs):
        pre = _aliases_made_again(info[k], ins[k], types)
        guarded = has_exit(body)
        dummies = "".join(f"{_dummy(types[n])}, " for n in outs[k])
        text = "\n".join(pre + render(body, dummies))
        names = "".join(f"{n}, " for n in outs[k])
        text += f"\n    return {STATUS_OK}, 0.0, ({names})"
        src, _ = canonical(f"def unit({', '.join(ins[k])}):\n{text}\n", head)
        name = "u_" + hashlib.sha256((decorator + src).encode()).hexdigest()[:16]
        units.setdefault(name, "\n".join(head) + f"\n{decorator}\n{src}")
        # (dtype name, dimensions) of each parameter: the piece compiles for exactly these
        sigs.setdefault(name, [(types[n][0].replace("np.", "").replace("bool_", "bool"),
                                types[n][1]) for n in ins[k]])
        driver.append(f"    st, seen, ({names}) = {name}({', '.join(ins[k])})")
        if guarded:
            driver.append(f"    if st != {STATUS_OK}:")
            driver.append(f"        return st, seen, ({out_dummies})")
        for n in outs[k]:
            if not types[n][1]:
                # Numba hands scalars back as Python numbers: their dtype again, so the next
                # piece computes in it (float32 stays float32) and is typed as compiled
                driver.append(f"    {n} = {types[n][0]}({n})")
    driver.append(final)
    return Pieces.make(units, sigs, "\n".join(driver) + "\n")


def _first_defined(lines: list[str]) -> list[str]:
    """The names a piece assigns, in the order of their first assignment."""
    seen: dict = {}
    for line in lines:
        m = _ASSIGN.match(line) or _FOR.match(line)
        if m:
            for n in m.group(1).split(","):
                seen.setdefault(n.strip(), None)
    return list(seen)


def canonical(src: str, head: list[str]) -> tuple[str, dict]:
    """``src`` with every local name renamed ``x0, x1, ...`` in order of first appearance
    (attribute names, builtins and the names ``head`` imports stay), and the renaming."""
    keep = _KEEP | _imported(head)
    names: dict = {}
    out = []
    toks = [t for t in tokenize.generate_tokens(io.StringIO(src).readline)]
    # Inside brackets, ``name=`` is a keyword argument, not a local; except in
    # ``numba.objmode(v=...)``, whose keywords are the locals the block assigns.
    opened: list = []  # per open bracket, the name just before it
    for i, tok in enumerate(toks):
        s = tok.string
        if tok.type == tokenize.OP and s in "([{":
            opened.append(toks[i - 1].string if i else "")
        elif tok.type == tokenize.OP and s in ")]}":
            opened.pop()
        elif tok.type == tokenize.NAME and s not in keep and s != "unit":
            prev = toks[i - 1] if i else None
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            attribute = prev is not None and prev.type == tokenize.OP and prev.string == "."
            keyword_arg = bool(opened) and opened[-1] != "objmode" and nxt is not None and \
                nxt.string == "="
            if not attribute and not keyword_arg:
                s = names.setdefault(s, f"x{len(names)}")
        out.append((tok.type, s))
    return tokenize.untokenize(out), names


_IMPORTED: dict = {}


def _imported(head: list[str]) -> frozenset:
    key = tuple(head)
    got = _IMPORTED.get(key)
    if got is None:
        text = "\n".join(head)
        got = set()
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.NAME:
                got.add(tok.string)
        got = _IMPORTED[key] = frozenset(got)
    return got
