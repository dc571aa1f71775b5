"""Statements of a generated kernel that carry their meaning, not only their text.

A kernel body is a list of lines. Most are final text; two kinds are statements that later
passes act on, so they say what they are instead of being recognised by their text:

- an early return (``Exit``): what it hands back (zero-size stand-ins for the values its
  function returns) is known only once the kernel is cut into segments or pieces, each
  returning values of its own, so it is rendered for the function that holds it (``render``)
  as the last step. Until then its text shows no values, which is what the analyses over a
  body's lines (which names a statement reads) should see;
- a flat alias (``Alias``): the flat view of an array that flat loops index, dropped where no
  loop reads it and made again by each piece that reads it.

Both are strings (their text as it stands) with their fields, and keep their kind when a loop
body's code is inlined deeper (``indented``) or a step's locals are renamed (``renamed``).
"""

from __future__ import annotations

from typing import Callable

# The line of every kernel module that says whether Numba may cache its functions: a module
# loaded from the disk cache has a file, one compiled in memory (no usable cache folder) has
# none, and Numba refuses to cache functions without a file. Decorators say ``cache=CACHE``.
CACHE_LINE = "CACHE = __file__ is not None"


class Exit(str):
    """``return status, seen, (<stand-ins>)``: a failed guard or the libm fallback leaving the
    kernel (``depth``: its indentation in levels of four spaces).

    >>> e = Exit(3, "float(v2)", 2)
    >>> e
    '        return 3, float(v2), ()'
    >>> e.render("np.empty((0,), np.float64), ")
    '        return 3, float(v2), (np.empty((0,), np.float64), )'
    >>> e.indented(1).depth
    3
    """

    status: int
    seen: str
    depth: int

    def __new__(cls, status: int, seen: str, depth: int) -> "Exit":
        out = super().__new__(cls, f"{'    ' * depth}return {status}, {seen}, ()")
        out.status, out.seen, out.depth = status, seen, depth
        return out

    def render(self, dummies: str) -> str:
        """The statement returning ``dummies`` (the holding function's stand-ins, each
        followed by a comma) after the status and the value seen."""
        return f"{'    ' * self.depth}return {self.status}, {self.seen}, ({dummies})"

    def indented(self, levels: int) -> "Exit":
        """The same exit ``levels`` deeper (a loop body's code inlined in its kernel)."""
        return Exit(self.status, self.seen, self.depth + levels)

    def renamed(self, rename: Callable[[str], str]) -> "Exit":
        """The same exit reporting ``rename(seen)`` (a step's locals given their own names)."""
        return Exit(self.status, rename(self.seen), self.depth)


def render(lines: list, dummies: str) -> list[str]:
    """``lines`` with every ``Exit`` rendered to return ``dummies``."""
    return [line.render(dummies) if isinstance(line, Exit) else line for line in lines]


def has_exit(lines: list) -> bool:
    """Whether any of ``lines`` leaves the function early (its caller must then check)."""
    return any(isinstance(line, Exit) for line in lines)


class Alias(str):
    """``base_f = base`` (``base.reshape(-1)`` for more than one dimension, ``ndim``): the
    flat view of array ``base`` that flat loops index as ``base_f``. A 1-d array is its own
    (Numba's reshape costs ~0.2 s of compile the first time a process uses it).

    >>> Alias("m3", 2, 1)
    '    m3_f = m3.reshape(-1)'
    >>> Alias("a0", 1, 1).flat
    'a0_f'
    """

    base: str
    ndim: int
    depth: int

    def __new__(cls, base: str, ndim: int, depth: int) -> "Alias":
        view = base if ndim == 1 else f"{base}.reshape(-1)"
        out = super().__new__(cls, f"{'    ' * depth}{base}_f = {view}")
        out.base, out.ndim, out.depth = base, ndim, depth
        return out

    @property
    def flat(self) -> str:
        return f"{self.base}_f"

    def indented(self, levels: int) -> "Alias":
        return Alias(self.base, self.ndim, self.depth + levels)

    def renamed(self, rename: Callable[[str], str]) -> "Alias":
        return Alias(rename(self.base), self.ndim, self.depth)


def statement(line: str, levels: int = 0, rename: Callable[[str], str] | None = None) -> str:
    """``line`` ``levels`` deeper with its names passed through ``rename``, keeping its kind."""
    if isinstance(line, (Exit, Alias)):
        if rename is not None:
            line = line.renamed(rename)
        return line.indented(levels) if levels else line
    if rename is not None:
        line = rename(line)
    return "    " * levels + line
