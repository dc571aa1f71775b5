"""``torch.linalg``: norms, inverses, solves, determinants and factorizations, on real float32
and float64 (batches of) matrices, with torch's names, results and gradients.

The factorizations and solves are primitives with LAPACK bodies (``jitgrad.ops.linalg``) whose
derivatives are the standard adjoint formulas written with jitgrad ops, so they differentiate to
any order, in forward mode and under ``vmap``, and compiled code calls LAPACK on the host; the
norms and products are compositions of other ops.

>>> import jitgrad as torch
>>> A = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64, requires_grad=True)
>>> x = torch.linalg.solve(A, torch.tensor([1.0, 2.0], dtype=torch.float64))
>>> torch.linalg.slogdet(A).logabsdet.backward()
>>> A.grad  # d log|det A| / dA = A^-T
tensor([[ 0.2727, -0.0909],
        [-0.0909,  0.3636]], dtype=jitgrad.float64)
"""

from jitgrad.linalg._decomp import (  # noqa: F401
    cholesky, cholesky_ex, cond, det, eigh, eigvalsh, inv, inv_ex, lstsq, matrix_exp,
    matrix_rank, pinv, qr,
    slogdet, solve, solve_triangular, svd, svdvals, tensorinv, tensorsolve,
)
from jitgrad.linalg._householder import householder_product  # noqa: F401
from jitgrad.linalg._ldl import ldl_factor, ldl_factor_ex, ldl_solve  # noqa: F401
from jitgrad.linalg._lu import (  # noqa: F401
    lu, lu_factor, lu_factor_ex, lu_solve, solve_ex,
)
from jitgrad.linalg._norms import (  # noqa: F401
    cross, diagonal, matrix_norm, matrix_power, multi_dot, norm, vander, vecdot, vector_norm,
)
from jitgrad.ops.linalg import LinAlgError, matmul  # noqa: F401
