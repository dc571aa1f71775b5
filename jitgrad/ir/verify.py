"""The IR verifier: run after every pass in the tests. It checks SSA (each Var bound once, used
only after it is bound), that every equation's output matches its primitive's shape/dtype rule,
and that outputs are bound."""

from __future__ import annotations

from jitgrad.ir.graph import Graph, Lit, Var
from jitgrad.ir.primitive import TupleAval


class VerifyError(AssertionError):
    """The graph breaks an IR invariant (a bug in a pass, never a user error)."""


def verify(g: Graph) -> Graph:
    bound: set[int] = set()

    def bind(v, what: str) -> None:
        if not isinstance(v, Var):
            raise VerifyError(f"{what} binds {v!r}, which is not a Var")
        if id(v) in bound:
            raise VerifyError(f"{what} rebinds {v!r}: the IR is SSA")
        bound.add(id(v))

    def use(a, what: str) -> None:
        if isinstance(a, Lit):
            return
        if not isinstance(a, Var):
            raise VerifyError(f"{what} uses {a!r}, which is neither a Var nor a Lit")
        if id(a) not in bound:
            raise VerifyError(f"{what} uses {a!r} before it is bound")

    for v, arr in g.consts:
        bind(v, "a constant")
        if tuple(arr.shape) != tuple(v.aval.shape) or arr.dtype != v.aval.dtype.np:
            raise VerifyError(f"constant {v!r} holds an array of {arr.dtype}{list(arr.shape)}")
    for v in g.inputs:
        bind(v, "an input")
    for i, e in enumerate(g.eqns):
        what = f"equation {i} ({e.prim.name})"
        for a in e.inputs:
            use(a, what)
        for k, sub in e.params.items():
            if isinstance(sub, Graph):  # a loop's body: a graph of its own, verified as one
                try:
                    verify(sub)
                except VerifyError as err:
                    raise VerifyError(f"{what}, its {k}: {err}") from None
        try:
            hash(tuple(e.params.items()))
        except TypeError:
            raise VerifyError(f"{what} has unhashable params {e.params!r}") from None
        aval = e.prim.abstract(*[a.aval for a in e.inputs], **e.params)
        if e.out is None:
            if aval is not None:
                raise VerifyError(f"{what} produces a value but binds none")
            continue
        bind(e.out, what)
        if aval is None or type(aval) is not type(e.out.aval) or \
                tuple(aval.shape) != tuple(e.out.aval.shape) or aval.dtype is not e.out.aval.dtype \
                or (type(aval) is TupleAval and aval != e.out.aval):
            raise VerifyError(f"{what}: its rule gives {aval}, but it binds {e.out.aval}")
    for o in g.outputs:
        use(o, "the outputs")
    return g
