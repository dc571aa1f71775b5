"""Every primitive has a rule on every backend, keyed by the Primitive object, and the rules
added with the tables (cumsum, prod's gradient) agree with the reference interpreter and torch."""

import ast
import os

import numpy as np
import pytest

import jitgrad as jg
from jitgrad.backends import lowering
from jitgrad.backends.numba_cpu import NumbaExecutable
from jitgrad.ops import PRIMITIVES
from jitgrad.ops.registry import Primitive

PKG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "jitgrad")


@pytest.mark.parametrize("backend", sorted(lowering.TABLES))
def test_every_primitive_has_a_rule_on_every_backend(backend):
    cover = lowering.coverage(backend)
    assert set(cover) == set(PRIMITIVES.values())
    missing = sorted(p.name for p, how in cover.items() if how == "missing")
    assert not missing, f"{backend}: no lowering, template, spec or host reason for {missing}"
    for p, how in cover.items():
        if how.startswith("host"):
            assert len(how) > len("host: ") + 20, f"{backend}: {p.name} runs on the host unexplained"


def test_tables_are_keyed_by_primitive_objects():
    lowering.coverage("numba-cpu")  # imports the backends' rules
    for table in lowering.TABLES.values():
        for prim in [*table.rules, *table.host, *table.builtins]:
            assert type(prim) is Primitive and PRIMITIVES[prim.name] is prim
    with pytest.raises(ValueError, match="already has a lowering"):
        lowering.CPU.register(PRIMITIVES["matmul"])(lambda cg, e: None)


def _dispatch_by_name(path: str) -> list[int]:
    """Lines comparing a primitive's name (``e.prim.name == ...``, ``... in (...)``) or looking a
    method up by it (``getattr(self, f"call_{...}")``)."""
    lines = []
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and \
                node.left.attr == "name" and isinstance(node.left.value, ast.Attribute) and \
                node.left.value.attr == "prim":
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and \
                any(isinstance(a, ast.JoinedStr) for a in node.args):
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("layer", ["backends", "transforms"])
def test_no_dispatch_on_primitive_names(layer):
    found = {}
    for f in sorted(os.listdir(os.path.join(PKG, layer))):
        if f.endswith(".py"):
            lines = _dispatch_by_name(os.path.join(PKG, layer, f))
            if lines:
                found[f] = lines
    assert not found, f"name dispatch in {layer}/: {found}"


def _programs():
    def scan(x):
        return (x.cumsum(0) * x).sum() + x.cumsum(1).sin().sum()

    def prods(x):  # with zeros: prod's gradient must stay exact there
        return x.prod() + x.prod(dim=1).sum() + (x * x).prod(dim=0).sum()

    return {"cumsum": scan, "prod": prods}


@pytest.mark.parametrize("name", ["cumsum", "prod"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_new_lowerings_compile_and_match(name, dtype):
    fn = _programs()[name]
    xv = np.array([[1.5, -2.0, 0.0, 0.5], [0.25, 3.0, -1.0, 2.0], [0.0, 0.0, 1.0, -0.5]])
    x = jg.tensor(xv, dtype=getattr(jg, dtype))
    num = jg.value_and_grad(fn, target="numba-cpu")
    ref = jg.value_and_grad(fn, target="reference")
    (v, g), (vr, gr) = num(x), ref(x)
    assert isinstance(num.lower(x)._node.exe, NumbaExecutable)
    assert num.cache_info().fallbacks == ()
    assert g.dtype is getattr(jg, dtype)
    tol = 1e-12 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(v.numpy(), vr.numpy(), rtol=tol)
    np.testing.assert_allclose(g.numpy(), gr.numpy(), rtol=tol, atol=tol)
    torch = pytest.importorskip("torch")
    xt = torch.tensor(xv, dtype=getattr(torch, dtype), requires_grad=True)
    fn_t = {"cumsum": lambda x: (x.cumsum(0) * x).sum() + x.cumsum(1).sin().sum(),
            "prod": lambda x: x.prod() + x.prod(dim=1).sum() + (x * x).prod(dim=0).sum()}[name]
    fn_t(xt).backward()
    np.testing.assert_allclose(g.numpy(), xt.grad.numpy(), rtol=max(tol, 1e-6), atol=1e-6)


def test_integer_cumsum_compiles():
    f = jg.jit(lambda n: n.cumsum(0) * 2, target="numba-cpu")
    n = jg.tensor([3, -1, 4, 1, 5])
    np.testing.assert_array_equal(f(n).numpy(), np.cumsum([3, -1, 4, 1, 5]) * 2)
    b = jg.tensor([True, False, True])
    assert f(b).dtype is jg.int64 and f(b).tolist() == [2, 2, 4]
    assert f.cache_info().fallbacks == ()
