"""Python made at run time becomes code in one place.

jitgrad writes small Python functions from data: the interpreter's function for a graph
(``ir/interpret.py``), the builder of a trace's results and its steady-state call
(``runtime/results.py``), a kernel's call wrapper and the driver of its pieces
(``backends/numba_cpu.py``); and ``utils.benchmark.Timer`` runs its caller's setup code. All of
them run here, so that each one's text is registered with ``linecache`` under a name of its own:
a traceback through generated code shows its lines, and a debugger can step through them. The
kernels Numba compiles are modules in the disk cache (``backends/disk_cache.py``), files with
names of their own already.

>>> twice = define("def twice(x):\\n    return 2 * x\\n", "twice", {}, "example")
>>> twice(3), twice.source.splitlines()[0]
(6, 'def twice(x):')
>>> import linecache
>>> linecache.getline(twice.__code__.co_filename, 2).strip()
'return 2 * x'
"""

from __future__ import annotations

import itertools
import linecache
from collections import OrderedDict

# The texts registered with linecache: the last KEEP of them (a long fuzzing run makes
# thousands of traces; a traceback is wanted for the recent ones).
KEEP = 512
_registered: OrderedDict = OrderedDict()
_serial = itertools.count()


def run(source: str, namespace: dict, label: str) -> None:
    """Run the Python ``source`` in ``namespace``, under the file name ``<jitgrad LABEL N>``
    (``N`` counts the texts run so far), whose lines tracebacks show."""
    filename = f"<jitgrad {label} {next(_serial)}>"
    code = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    _registered[filename] = None
    while len(_registered) > KEEP:
        linecache.cache.pop(_registered.popitem(last=False)[0], None)
    exec(code, namespace)  # noqa: S102  (the one place jitgrad runs Python it wrote)


def define(source: str, name: str, namespace: dict, label: str):
    """Run ``source`` (a definition of the function ``name``) in ``namespace`` and return the
    function, with its text as ``source`` (``lower().as_text("call")`` shows it)."""
    run(source, namespace, label)
    fn = namespace[name]
    fn.source = source
    return fn
