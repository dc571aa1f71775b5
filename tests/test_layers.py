"""Imports point one way through the compiler's layers: ir -> loops -> transforms -> backends ->
runtime (``runtime``, ``api``). A module may import its own layer and those before it, never one
after it (function-level imports count too). Lifted control flow (``loops``) sits below the
transforms: they take its rules in, and its rules are handed the pass that runs them."""

import ast
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
