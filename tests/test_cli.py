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
    for h in ("== forward ==", "== adjoint ==", "== optimized ==", "== kernel ==", "== call ==",
              "== loops =="):
        assert h in out
    assert "prog.py:6: lifted" in out and "while[" in out
    assert "a:f64[3] b:f64[3,2]" in out and "prog.py:5" in out


def test_call_stage_is_the_function_each_steady_call_runs(prog, capsys):
    """The call wrapper is shown as the Python it is: argument checks, the kernel, the
    results; the general path says why it is taken."""
    assert main(["ir", f"{prog}:f", "--args", "f64[3]", "f64[3,2]", "--stage", "call",
                 "--target", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("def steady(args):") and "kernel(" in out and "return t0, t1" in out
    assert main(["ir", f"{prog}:f", "--args", "f64[3]", "f64[3,2]", "--stage", "call",
                 "--target", "reference"]) == 0
    out = capsys.readouterr().out
    assert "the general call path" in out and "ReferenceExecutable makes no call function" in out


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
    (["ir", "{prog}:f"], "takes 2 arguments, but --args gave 0"),
    (["ir", "{txt}:f", "--args", "f64[3]", "f64[3,2]"], "is not a Python file"),
    (["ir", "{prog}:f", "--args", "f64[3]", "f64[3,2]", "--jit", "--stage", "adjoint"],
     "no adjoint stage"),
])
def test_errors_are_one_line(prog, capsys, argv, message):
    txt = prog[:-3] + ".txt"
    with open(prog) as src, open(txt, "w") as dst:
        dst.write(src.read())
    argv = [a.replace("{prog}", prog).replace("{txt}", txt) for a in argv]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_python_dash_m_and_console_script(prog):
    r = subprocess.run([sys.executable, "-m", "jitgrad", "ir", f"{prog}:nope", "--args",
                        "f64[3]"], capture_output=True, text=True)
    assert r.returncode != 0 and "Traceback" not in r.stderr and "nope" in r.stderr


def test_bare_command_prints_help_and_version(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("jitgrad ")
    with pytest.raises(SystemExit):
        main(["ir", "--help"])
    assert "fixed seed" in capsys.readouterr().out


def test_jit_prints_no_adjoint_section(prog, capsys):
    assert main(["ir", f"{prog}:f", "--args", "f32[3]", "f32[3,2]", "--jit"]) == 0
    out = capsys.readouterr().out
    assert "== forward ==" in out and "== kernel ==" in out and "== adjoint ==" not in out


@pytest.mark.usefixtures("no_lifting")
def test_lower_shows_the_path_the_arguments_take():
    import jitgrad

    @jitgrad.grad
    def f(x):
        y = x * 2
        while y.norm() < 1000:
            y = y * 2
        return y.sum()
    f(jitgrad.tensor([0.3, -0.2, 0.05]))  # 12 doublings
    ones = f.lower(jitgrad.ones(3)).as_text("forward")  # 10 doublings: not the cached trace
    assert ones.count(" mul ") == 10, ones
    assert f.lower(jitgrad.tensor([0.3, -0.2, 0.05])).as_text("forward").count(" mul ") == 12
