"""Every python code block of README.md and docs/*.md runs: the blocks of a page in order, in
one namespace, as a reader pastes them, in a fresh process from the repository root. A block
after ``<!-- needs: cuda -->`` or ``<!-- needs: mpi -->`` runs only where that is available
(CUDA: a GPU or numba-cuda's simulator)."""

import glob
import importlib.util
import os
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(os.path.relpath(p, ROOT)
                               for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
_BLOCK = re.compile(r"^(?P<indent>[ \t]*)```python\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
_NEEDS = re.compile(r"<!--\s*needs:\s*(\w+)\s*-->\s*$")


def blocks(page: str) -> list[tuple[str, str | None, int]]:
    """(code, what it needs or None, line) for each python block of ``page``."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        text = f.read()
    out = []
    for m in _BLOCK.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        need = _NEEDS.search(before)
        out.append((textwrap.dedent(m.group("body")), need.group(1) if need else None,
                    text.count("\n", 0, m.start()) + 1))
    return out


def _have_mpi() -> bool:
    if importlib.util.find_spec("mpi4py") is None:
        return False
    r = subprocess.run([sys.executable, "-c", "from mpi4py import MPI; MPI.COMM_WORLD.Get_size()"],
                       capture_output=True, timeout=120)
    return r.returncode == 0


AVAILABLE = {"cuda": importlib.util.find_spec("numba_cuda") is not None, "mpi": _have_mpi()}


def test_the_pages_have_blocks():
    assert sum(len(blocks(p)) for p in PAGES) >= 8


CASES = [(p, None) for p in PAGES if blocks(p)] + sorted(
    {(p, need) for p in PAGES for _, need, _ in blocks(p) if need is not None})


@pytest.mark.parametrize("page,need", CASES, ids=[f"{p}-{n or 'plain'}" for p, n in CASES])
def test_code_blocks_run_in_order(page, need, tmp_path):
    """The page's plain blocks; with ``need``, the blocks that need it too (all in order)."""
    if need is not None and not AVAILABLE.get(need, False):
        pytest.skip(f"{page}: blocks that need {need}, which is not available here")
    parts = [f"# --- {page}, line {line}\n{code}" for code, n, line in blocks(page)
             if n is None or n == need]
    script = tmp_path / "page.py"
    script.write_text("\n".join(parts))
    env = dict(os.environ, PYTHONPATH=ROOT, MPLBACKEND="Agg")
    env.pop("JITGRAD_COMPILE_AFTER", None)  # the defaults a reader has (conftest.py sets it)
    if not os.path.exists("/dev/nvidia0"):
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    r = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{page}: a code block failed\n{r.stdout}\n{r.stderr}"
