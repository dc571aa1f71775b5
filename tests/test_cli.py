"""The jitgrad CLI: stages with headings; one clear line and a non-zero exit on bad input."""

import subprocess
import sys
import textwrap

import pytest

from jitgrad.cli import main

SRC = textwrap.dedent("""
    import jitgrad as torch

    def f(x, w):
        y = torch.tanh(x @ w)
        while y.norm() < 10:
            y = y * 2
        return y.sum()
""")


@pytest.fixture
def prog(tmp_path):
    p = tmp_path / "prog.py"
    p.write_text(SRC)
    return str(p)


def test_all_stages_with_headings(prog, capsys):
    assert main(["ir", f"{prog}:f", "--args", "f64[3]", "f64[3,2]", "--argnums", "0", "1"]) == 0
    out = capsys.readouterr().out
    for h in ("== forward ==", "== adjoint ==", "== optimized ==", "== kernel ==", "== guards =="):
        assert h in out
    assert "a:f64[3] b:f64[3,2]" in out and "prog.py:5" in out


def test_single_stage_and_jit(prog, capsys):
    assert main(["ir", f"{prog}:f", "--args", "f32[3]", "f32[3,2]", "--stage", "optimized",
                 "--jit"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("{ lambda") and "== forward ==" not in out and "f64" not in out


@pytest.mark.parametrize("argv, message", [
    (["ir", "missing.py:f", "--args", "f64[3]"], "no such file"),
    (["ir", "{prog}:g", "--args", "f64[3]"], "has no function 'g'"),
    (["ir", "{prog}:f", "--args", "f64[3"], "malformed --args"),
    (["ir", "{prog}", "--args", "f64[3]"], "expected FILE.py:FUNC"),
    (["ir", "{prog}:f", "--args", "f64[3]", "f64[4,2]"], "(3,) and (4, 2)"),
])
def test_errors_are_one_line(prog, capsys, argv, message):
    argv = [a.replace("{prog}", prog) for a in argv]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_python_dash_m_and_console_script(prog):
    r = subprocess.run([sys.executable, "-m", "jitgrad", "ir", f"{prog}:nope", "--args",
                        "f64[3]"], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "nope" in r.stderr
