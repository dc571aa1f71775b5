"""The IR: graph, printer, verifier and the NumPy reference interpreter."""

from jitgrad.ir.graph import SHORT, Eqn, Graph, Lit, Source, Var, aval_str  # noqa: F401
from jitgrad.ir.interpret import interpret  # noqa: F401
from jitgrad.ir.verify import VerifyError, verify  # noqa: F401
