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
    """One equation on one line; a loop's body graphs are not shown here (``format_graph``
    prints them nested under it)."""
    params = ""
    shown = {k: v for k, v in e.params.items() if not isinstance(v, Graph)}
    if shown:
        params = "[" + " ".join(f"{k}={format_param(v)}" for k, v in shown.items()) + "]"
    args = " ".join(name(a) for a in e.inputs)
    lhs = f"{name.binder(e.out)} = " if e.out is not None else ""
    text = f"{lhs}{e.prim.name}{params} {args}".rstrip()
    if e.src is not None:
        text = f"{text.ljust(width)}  # {e.src}"
    return text


def format_graph(g: Graph, indent: int = 4) -> str:
    return "\n".join(_graph_lines(g, Namer(), indent, 0))


def _graph_lines(g: Graph, name: Namer, indent: int, depth: int) -> list:
    """The graph's lines; nested graphs (loop bodies) follow their equation, indented, sharing
    the names so that every value has one."""
    pad = " " * depth
    consts = " ".join(name.binder(v) for v, _ in g.consts)
    ins = " ".join(name.binder(v) for v in g.inputs)
    rows = []  # (text before the source comment, source, nested lines)
    for e in g.eqns:
        core = format_eqn(_Unsourced(e), name)
        nested = []
        for k, v in e.params.items():
            if isinstance(v, Graph):
                sub = _graph_lines(v, name, indent, depth + indent + 2)
                sub[0] = " " * (depth + indent + 2) + f"{k} " + sub[0].lstrip()
                nested += sub
        rows.append((core, e.src, nested))
    width = max((len(core) for core, _, _ in rows), default=0)
    lines = [f"{pad}{{ lambda {consts + ' ' if consts else ''}; {ins}. let"]
    for core, src, nested in rows:
        lines.append(pad + " " * indent + (f"{core.ljust(width)}  # {src}" if src else core))
        lines += nested
    outs = ", ".join(name(o) for o in g.outputs)
    lines.append(f"{pad}  in ({outs}{',' if len(g.outputs) == 1 else ''}) }}")
    return lines


class _Unsourced:
    """An equation seen without its source line (format_eqn then adds no comment)."""

    __slots__ = ("prim", "inputs", "out", "params", "src")

    def __init__(self, e) -> None:
        self.prim, self.inputs, self.out, self.params, self.src = \
            e.prim, e.inputs, e.out, e.params, None
