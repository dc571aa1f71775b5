"""glibc's malloc keeps the blocks a step frees for the next step (jitgrad/_malloc.py): a loop
that allocates and frees the same arrays stops faulting their pages in again on every call."""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")

# Page faults (minor) per round of a loop that allocates, writes and frees 8 arrays of 4 MiB.
SCRIPT = """
import resource, sys
import numpy as np
import jitgrad
from jitgrad import _malloc

def rounds(n):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        arrays = [np.ones(1 << 19) for _ in range(8)]
        del arrays
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / n

rounds(3)  # the first rounds fault the heap in either way
print(_malloc.tuned, rounds(20))
"""


def _run(env: dict) -> tuple:
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       env=dict(os.environ, **env), timeout=120)
    assert r.returncode == 0, r.stderr
    tuned, faults = r.stdout.split()
    return tuned == "True", float(faults)


def test_freed_blocks_are_reused_without_faulting_their_pages_again():
    tuned, faults = _run({})
    untuned, untuned_faults = _run({"JITGRAD_MALLOC_TUNING": "0"})
    assert tuned and not untuned
    pages = 8 * (4 << 20) // 4096  # what a round writes: 8192 pages
    assert untuned_faults > pages / 4, untuned_faults  # as glibc is: most pages, every round
    assert faults < pages / 50, faults  # kept: (almost) none


def test_a_bad_value_names_the_variable():
    r = subprocess.run([sys.executable, "-c", "import jitgrad"], capture_output=True, text=True,
                       env=dict(os.environ, JITGRAD_MALLOC_TUNING="maybe"), timeout=120)
    assert r.returncode != 0 and "JITGRAD_MALLOC_TUNING='maybe'" in r.stderr
