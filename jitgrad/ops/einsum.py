"""``einsum``: Einstein summation, a composite of ``diagonal`` (a label repeated within one
operand), ``sum`` (a label no other operand or the output has), ``permute``/``reshape`` and
batched ``matmul`` (one per pair of operands, left to right), so it differentiates and
compiles as those do, with the matrix products on BLAS.

>>> import jitgrad
>>> a, b = jitgrad.ones(2, 3), jitgrad.ones(3, 4)
>>> jitgrad.einsum("ij,jk->ik", a, b).shape
jitgrad.Size([2, 4])
>>> jitgrad.einsum("ii->i", jitgrad.eye(2) * 3)
tensor([3., 3.])
"""

from __future__ import annotations

import numpy as np

from jitgrad.ops.indexing import diagonal
from jitgrad.ops.linalg import matmul
from jitgrad.ops.shape import permute, reshape

def _parse(equation: str, operands) -> tuple[list, list]:
    """Each operand's labels and the output's, with ``...`` expanded into one label per
    broadcast dimension (digits, right-aligned across operands as broadcasting aligns them)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum(): {len(terms)} operand subscripts in {equation!r} but "
                         f"{len(operands)} operands were given")
    n_ell = 0
    labels = []
    for term, op in zip(terms, operands):
        _check_term(term, equation)
        if "..." in term:
            head, tail = term.split("...")
            k = op.ndim - len(head) - len(tail)
            if k < 0:
                raise ValueError(f"einsum(): operand subscripts {term!r} name more dimensions "
                                 f"than the operand's {op.ndim}")
            n_ell = max(n_ell, k)
            labels.append(list(head) + [str(n_ell - k + i) for i in range(k)] + list(tail))
        else:
            if len(term) != op.ndim:
                raise ValueError(f"einsum(): the number of subscripts in {term!r} ({len(term)}) "
                                 f"does not match the number of dimensions ({op.ndim}) of its "
                                 "operand")
            labels.append(list(term))
    ell = [str(i) for i in range(n_ell)]
    if arrow:
        _check_term(rhs, equation)
        if "..." in rhs:
            head, tail = rhs.split("...")
            out = list(head) + ell + list(tail)
        else:
            out = list(rhs)  # broadcast dimensions left out of it are summed
        seen = set()
        for c in out:
            if c in seen:
                raise ValueError(f"einsum(): output subscript {c!r} appears more than once in "
                                 f"{equation!r}")
            seen.add(c)
            if not any(c in lab for lab in labels):
                raise ValueError(f"einsum(): output subscript {c!r} does not appear in the "
                                 f"operands' subscripts of {equation!r}")
    else:  # implicit output: the labels used once, in alphabetical order, after the broadcast ones
        counts: dict = {}
        for lab in labels:
            for c in lab:
                counts[c] = counts.get(c, 0) + 1
        out = ell + sorted(c for c, n in counts.items() if n == 1 and not c.isdigit())
    return labels, out


def _check_term(term: str, equation: str) -> None:
    if term.count("...") > 1 or term.replace("...", "").count("."):
        raise ValueError(f"einsum(): malformed ellipsis in {equation!r}")
    for c in term.replace("...", ""):
        if not c.isalpha():
            raise ValueError(f"einsum(): invalid subscript {c!r} in {equation!r}: subscripts "
                             "are letters a-z and A-Z")


def _diagonals(x, lab: list):
    """Take the diagonal for each label repeated within one operand ('ii->i')."""
    while True:
        dup = next((c for i, c in enumerate(lab) if c in lab[:i]), None)
        if dup is None:
            return x, lab
        i, j = lab.index(dup), len(lab) - 1 - lab[::-1].index(dup)
        if x.shape[i] != x.shape[j]:
            raise RuntimeError(f"einsum(): subscript {dup!r} is repeated for dimensions of "
                               f"different sizes {x.shape[i]} and {x.shape[j]}")
        x = diagonal(x, 0, i, j)  # the diagonal goes last
        lab = [c for k, c in enumerate(lab) if k not in (i, j)] + [dup]


def _sum_out(x, lab: list, keep: set):
    axes = tuple(i for i, c in enumerate(lab) if c not in keep)
    if not axes:
        return x, lab
    return x.sum(dim=axes), [c for c in lab if c in keep]


def _contract(a, la: list, b, lb: list, keep: set):
    """``a`` and ``b`` multiplied and summed over the labels they share that ``keep`` lacks, as
    one batched matmul: (batch, a's own, shared) @ (batch, shared, b's own)."""
    sizes = {}
    for x, lab in ((a, la), (b, lb)):
        for c, s in zip(lab, x.shape):
            if sizes.get(c, 1) != 1 and s != 1 and sizes[c] != s:
                raise RuntimeError(f"einsum(): operands do not broadcast: subscript {c!r} has "
                                   f"sizes {sizes[c]} and {s}")
            sizes[c] = max(sizes.get(c, 1), s)
    batch = [c for c in la if c in lb and c in keep]
    summed = [c for c in la if c in lb and c not in keep]
    own_a = [c for c in la if c not in lb]
    own_b = [c for c in lb if c not in la]
    # A shared summed label of size 1 on one side only broadcasts: sum the other side first.
    for c in list(summed):
        sa, sb = a.shape[la.index(c)], b.shape[lb.index(c)]
        if sa != sb:
            a, la = a.sum(la.index(c)), [d for d in la if d != c]
            b, lb = b.sum(lb.index(c)), [d for d in lb if d != c]
            summed.remove(c)
    pa = permute(a, [la.index(c) for c in batch + own_a + summed])
    pb = permute(b, [lb.index(c) for c in batch + summed + own_b])
    nb = len(batch)
    bsa, bsb = tuple(pa.shape[:nb]), tuple(pb.shape[:nb])
    m = int(np.prod(pa.shape[nb:nb + len(own_a)], dtype=np.int64))
    k = int(np.prod(pa.shape[nb + len(own_a):], dtype=np.int64))
    n = int(np.prod(pb.shape[nb + len(summed):], dtype=np.int64))
    out = matmul(reshape(pa, bsa + (m, k)), reshape(pb, bsb + (k, n)))
    shape = tuple(out.shape[:nb]) + tuple(pa.shape[nb:nb + len(own_a)]) + \
        tuple(pb.shape[nb + len(summed):])
    return reshape(out, shape), batch + own_a + own_b


def einsum(equation: str, *operands):
    """Sum of products of ``operands`` over the subscripts ``equation`` names (``"ij,jk->ik"``
    is a matrix product), as ``torch.einsum``: ``...`` for broadcast dimensions, a repeated
    subscript within one operand for its diagonal, an implicit output (no ``->``) of the
    subscripts used once, in alphabetical order; the operands also as one list."""
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): argument 'equation' must be str, not "
                        f"{type(equation).__name__}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum(): must provide at least one operand")
    for i, op in enumerate(operands):
        if not isinstance(op, Tensor):
            raise TypeError(f"einsum(): operand {i} must be a Tensor, not {type(op).__name__}")
    if len({op.dtype for op in operands}) > 1:
        raise RuntimeError(f"einsum(): expected all operands to have the same dtype, got "
                           f"{[op.dtype.name for op in operands]}")
    labels, out_lab = _parse(equation, operands)
    xs = []
    for op, lab in zip(operands, labels):
        xs.append(_diagonals(op, lab))
    x, lab = xs[0]
    for i in range(1, len(xs) + 1):
        later = {c for _, lb in xs[i:] for c in lb}
        keep = later | set(out_lab)
        x, lab = _sum_out(x, lab, keep)
        if i == len(xs):
            break
        y, ly = _sum_out(*xs[i], keep | set(lab))
        x, lab = _contract(x, lab, y, ly, keep)
    x = permute(x, [lab.index(c) for c in out_lab]) if x.ndim else x
    return x


from jitgrad.tensor import Tensor  # noqa: E402
