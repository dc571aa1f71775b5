"""Imports point one way through the compiler's layers: ir -> loops -> transforms -> backends ->
runtime (``runtime``, ``api``). A module may import its own layer and those before it, never one
after it (function-level imports count too). Lifted control flow (``loops``) sits below the
transforms: they take its rules in, and its rules are handed the pass that runs them."""

import ast
import functools
import os

import pytest

PKG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jitgrad")
ORDER = ["ir", "loops", "transforms", "backends", "runtime"]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "jitgrad":
        return None
    return "runtime" if parts[1] in ("runtime", "api") else parts[1] if parts[1] in ORDER else None


def _modules():
    for d, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                rel = os.path.relpath(path, os.path.dirname(PKG))[:-3].replace(os.sep, ".")
                yield rel.removesuffix(".__init__"), path


def _imports(path: str):
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, node.lineno
            for alias in node.names:  # from jitgrad import runtime
                yield f"{node.module}.{alias.name}", node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno


MODULES = [(m, p) for m, p in _modules() if _layer(m) is not None]


@pytest.mark.parametrize("module,path", MODULES, ids=[m for m, _ in MODULES])
def test_no_import_points_backwards(module, path):
    mine = ORDER.index(_layer(module))
    for target, line in _imports(path):
        theirs = _layer(target)
        if theirs is not None:
            assert ORDER.index(theirs) <= mine, (
                f"{module} (layer {ORDER[mine]}) imports {target} (layer {theirs}) at line {line}")


def _jitgrad_imports(path: str):
    for target, line in _imports(path):
        if target.startswith("jitgrad."):
            yield target, line


# What the front end (trace/) and the IR's core may not reach: trace/ builds IR from tensors and
# must not know nn.Module or the backends' device arrays (they register with pytree instead);
# the IR knows primitives and values, not tensors, the eager engine or the ops that use them.
FORBIDDEN = {
    "trace": ("jitgrad.nn", "jitgrad.backends", "jitgrad.runtime", "jitgrad.api",
              "jitgrad.transforms", "jitgrad.loops"),
    "ir": ("jitgrad.ops", "jitgrad.tensor", "jitgrad.autograd", "jitgrad.trace", "jitgrad.nn"),
}
SEALED = [(m, p) for m, p in _modules() if m.split(".")[1:2] and m.split(".")[1] in FORBIDDEN]


@pytest.mark.parametrize("module,path", SEALED, ids=[m for m, _ in SEALED])
def test_front_end_and_ir_core_import_nothing_above_them(module, path):
    for target, line in _jitgrad_imports(path):
        for bad in FORBIDDEN[module.split(".")[1]]:
            assert not (target == bad or target.startswith(bad + ".")), (
                f"{module} imports {target} at line {line}")


# Inside the runtime, dependencies run one way too: the call key and the trace nodes (with the
# executable that stands in for a compile built later) are data the Runtime uses; they import
# no other runtime module, so none of them can reach back into the Runtime.
RUNTIME_DATA = ["callkey", "nodes"]


@pytest.mark.parametrize("name", RUNTIME_DATA)
def test_the_runtimes_data_modules_import_no_other_runtime_module(name):
    path = os.path.join(PKG, "runtime", f"{name}.py")
    for target, line in _jitgrad_imports(path):
        assert not target.startswith(("jitgrad.runtime", "jitgrad.api")), (
            f"runtime.{name} imports {target} at line {line}")


# Import cycles: the strongly connected components of the graph of jitgrad's imports (every
# import counts, function-level ones too). Those below are the only ones left; each component
# found must lie inside one of them, so a new cycle, or one that grows, fails. The core (tensor,
# ops, autograd, trace, loops, transforms) is one knot still being untied; the IR's Graph prints
# itself with the printer, which knows nested Graphs by their class; nn.functional re-exports
# ops.scatter_more's convolutions, which call nn.functional, and the losses and attention layers
# both import nn.functional and are re-exported by it.
CYCLES_LEFT = [
    "ir.graph ir.printer",
    "_out _tensor_methods autograd.engine autograd.forward_ad autograd.function "
    "autograd.functional autograd.graph devices factories func linalg._checks linalg._decomp "
    "linalg._legacy linalg._lu linalg._norms loops.branches loops.induction loops.lift "
    "loops.primitives loops.rules loops.second_reverse loops.signature ops ops._rules ops.control "
    "ops.elementwise ops.indexing ops.linalg ops.linalg_householder ops.linalg_ldl ops.linalg_lu "
    "ops.pointwise_more ops.random ops.reduce ops.registry ops.rounding ops.shape ops.sorting "
    "ops.special ops.triangular ops.trig special tensor trace.builder trace.implicit "
    "trace.numbers trace.pytree trace.ranges trace.tracer transforms.autodiff transforms.batching "
    "transforms.forward transforms.replay transforms.simplify",
    "nn.attention nn.conv_transpose nn.ctc nn.functional nn.layers nn.losses nn.mha "
    "ops.scatter_more",
]


@functools.cache
def _import_graph() -> dict:
    """Module -> the jitgrad modules it imports (a name imported from a package counts as its
    submodule when there is one, else as the package)."""
    paths = dict(_modules())

    def resolve(name: str) -> str | None:
        while name not in paths and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in paths else None

    graph = {}
    for module, path in paths.items():
        targets = set()
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    name = f"{node.module}.{alias.name}"
                    targets.add(name if name in paths else resolve(node.module))
            elif isinstance(node, ast.Import):
                targets |= {resolve(alias.name) for alias in node.names}
        graph[module] = {t for t in targets if t and t != module and t.startswith("jitgrad")}
    return graph


def _cycles(graph: dict) -> list:
    """The strongly connected components of more than one module: the modules each one reaches
    and is reached from."""
    def reach(start, edges):
        seen, todo = set(), [start]
        while todo:
            for w in edges[todo.pop()] - seen:
                seen.add(w)
                todo.append(w)
        return seen

    back = {m: {n for n in graph if m in graph[n]} for m in graph}
    comps, done = [], set()
    for m in sorted(graph):
        if m not in done:
            comp = (reach(m, graph) & reach(m, back)) | {m}
            done |= comp
            if len(comp) > 1:
                comps.append(comp)
    return comps


def test_no_import_cycles_but_the_known_ones():
    allowed = [{f"jitgrad.{m}" for m in c.split()} for c in CYCLES_LEFT]
    for comp in _cycles(_import_graph()):
        assert any(comp <= known for known in allowed), (
            f"an import cycle that is not one of the known ones: {sorted(comp)}")


# Cycles that were broken, by moving what both sides use down: the version (jitgrad._version),
# the lowering tables (backends.lowering_tables), the windows of convolution and pooling
# (nn._sliding), numba_type (to backends.aot), the device transfers (to backends.device_array);
# nn.modules reads the classes from the modules that define them.
BROKEN = {
    "cuda": "backends._cuda_runtime backends.device_array",
    "lowering": "backends.lowering backends.numba_calls backends.numba_cuda_calls "
                "backends.numba_cuda_loops backends.numba_loops backends.numba_random",
    "conv": "nn.conv nn.pooling nn.resample",
    "nn": "nn nn.modules",
    "package": "api backends backends.aot backends.disk_cache backends.numba_build "
               "backends.numba_cpu backends.numba_cuda runtime runtime.core utils utils.data "
               "utils.data.dataloader utils.data.sampler",
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_cycles_stay_broken(name):
    modules = {f"jitgrad.{m}" for m in BROKEN[name].split()}
    modules |= {"jitgrad"} if name == "package" else set()
    for comp in _cycles(_import_graph()):
        assert not comp & modules, f"an import cycle again: {sorted(comp)}"
