"""The IR's text form, jaxpr-like: ``{ lambda consts ; inputs. let eqns in (outputs) }``.

Names are handed out in order of first appearance (``a``, ``b``, ... ``z``, ``ba``, ...), so the
same program always prints the same text; shapes and dtypes annotate every binder, and each
equation ends with the user's ``file:line`` when known. docs/ir.md gives the grammar.
"""

from __future__ import annotations

import string

from jitgrad import dtypes
from jitgrad.ir.graph import SHORT, Graph, Lit, aval_str


def _name(i: int) -> str:
    """0 -> a, 25 -> z, 26 -> ba: base 26 with 'a' as the zero digit (as jaxpr names run)."""
    letters = string.ascii_lowercase
    s = ""
    while True:
        s = letters[i % 26] + s
        i //= 26
        if i == 0:
            return s


class Namer:
    def __init__(self) -> None:
        self.names: dict[int, str] = {}

    def __call__(self, v) -> str:
        if isinstance(v, Lit):
            return f"{_lit(v.value)}:{SHORT[v.aval.dtype]}"
        k = id(v)
        n = self.names.get(k)
        if n is None:
            n = self.names[k] = _name(len(self.names))
        return n

    def binder(self, v) -> str:
        return f"{self(v)}:{aval_str(v.aval)}"


def _lit(v) -> str:
    return repr(v)


def format_index(spec) -> str:
    """An indexing primitive's ``index`` parameter as Python writes it (``[0, 1:3, None]``)."""
    parts = []
    for item in spec:
        k = item[0]
        if k == "i":
            parts.append(str(item[1]))
        elif k == "s":
            a, b, c = ("" if v is None else str(v) for v in item[1:])
            parts.append(f"{a}:{b}" + (f":{c}" if c else ""))
        elif k == "n":
            parts.append("None")
        elif k == "e":
            parts.append("...")
        else:
            parts.append(f"<tensor {item[1]}>")
    return "[" + ", ".join(parts) + "]"


def format_param(v) -> str:
    if isinstance(v, dtypes.DType):
        return SHORT[v]
    if isinstance(v, tuple) and v and isinstance(v[0], tuple) and v[0] and isinstance(v[0][0], str):
        return format_index(v)
    if isinstance(v, tuple):
        inner = ",".join(format_param(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


def format_eqn(e, name: Namer, width: int = 0) -> str:
    params = ""
    if e.params:
        params = "[" + " ".join(f"{k}={format_param(v)}" for k, v in e.params.items()) + "]"
    args = " ".join(name(a) for a in e.inputs)
    lhs = f"{name.binder(e.out)} = " if e.out is not None else ""
    text = f"{lhs}{e.prim.name}{params} {args}".rstrip()
    if e.src is not None:
        text = f"{text.ljust(width)}  # {e.src}"
    return text


def format_graph(g: Graph, indent: int = 4) -> str:
    name = Namer()
    consts = " ".join(name.binder(v) for v, _ in g.consts)
    ins = " ".join(name.binder(v) for v in g.inputs)
    head = f"{{ lambda {consts + ' ' if consts else ''}; {ins}. let"
    bodies = []
    for e in g.eqns:
        bodies.append(format_eqn(e, name))
    width = max((len(b.split("  # ")[0]) for b in bodies), default=0)
    # Re-format with aligned source comments (names are already fixed, so this is stable).
    lines = [head]
    for e, b in zip(g.eqns, bodies):
        core = b.split("  # ")[0]
        lines.append(" " * indent + (f"{core.ljust(width)}  # {e.src}" if e.src else core))
    outs = ", ".join(name(o) for o in g.outputs)
    lines.append(f"  in ({outs}{',' if len(g.outputs) == 1 else ''}) }}")
    return "\n".join(lines)
