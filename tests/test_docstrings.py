"""Every example in a public docstring runs and prints what it says."""

import doctest
import importlib
import pathlib

import pytest

import jitgrad

# Every module file, namespace packages included (``trace/`` and ``transforms/`` have no
# ``__init__.py``, and ``pkgutil.walk_packages`` does not look into them).
_ROOT = pathlib.Path(jitgrad.__file__).parent
MODULES = sorted(
    ".".join(("jitgrad", *p.relative_to(_ROOT).with_suffix("").parts)).removesuffix(".__init__")
    for p in _ROOT.rglob("*.py") if p.name != "__main__.py" and "__pycache__" not in p.parts)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                          verbose=False)
    assert res.failed == 0, f"{res.failed} doctest(s) failed in {name}"
