"""Every example in a public docstring runs and prints what it says."""

import doctest
import importlib
import pkgutil

import pytest

import jitgrad

MODULES = sorted(m.name for m in pkgutil.walk_packages(jitgrad.__path__, "jitgrad.")
                 if not m.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                          verbose=False)
    assert res.failed == 0, f"{res.failed} doctest(s) failed in {name}"
