"""Lowerings of the non-loop equations ("calls") for the CUDA backend: matmul, permute, softmax,
log_softmax, argmax and argmin along an axis, gathers and scatter_add by index tensors, basic
indexing, index_update, cat and cumsum, each as its own kernel; anything else runs on the host
with its NumPy body. Mixed into ``CudaCodegen``; each lowering is registered against its primitive
in ``lowering.CUDA``, emits driver lines and kernels, and returns False where it has no kernel for
this case.
"""

from __future__ import annotations

import numpy as np

from jitgrad.backends.lowering_tables import CUDA
from jitgrad.backends.numba_values import _NP, _numel, _root, _Val
from jitgrad.ops.control import guard_p
from jitgrad.ops.linalg import matmul_p
from jitgrad.ops.reduce import (argmax_p, argmin_p, cumsum_p, log_softmax_p, prod_others_p,
                                prod_p, softmax_p)
from jitgrad.ops.sorting import argsort_p
from jitgrad.ops.shape import cat_p, getitem_p, index_update_p, permute_p, scatter_add_p
from jitgrad.ops.special import HOST_PRIMS as _SPECIAL
from jitgrad.ops.pointwise_more import HOST_PRIMS as _MORE_SPECIAL, fmod_p
from jitgrad.ops.linalg import LAPACK_PRIMITIVES as _LAPACK

CUDA.builtin(guard_p, "checked in the single-thread kernels of the scalar work")
# numba-cuda's NumPy ufuncs lack fmod (0.30); its math module has C's fmod, which NVVM compiles.
CUDA.template(fmod_p, "math.fmod({0}, {1})")
CUDA.on_host(argsort_p, "a sort runs NumPy's stable argsort on the host")
for _p in (*_SPECIAL, *_MORE_SPECIAL):  # digamma, erfinv, Bessel, igamma: no Numba scalar form
    CUDA.on_host(_p, "a special function with no Numba scalar form: SciPy's body on the host")
for _p in _LAPACK:  # inv, solve, eigh, svd...: NumPy's LAPACK calls, with pivoting and errors
    CUDA.on_host(_p, "a factorization or solve: NumPy's LAPACK call on the host")
CUDA.on_host(prod_p, "no atomic combines partial products across blocks: a trace with one runs "
             "on the host, whole (HostExecutable)")
CUDA.on_host(prod_others_p, "a product of the others along axes (the gradient of prod): rare, "
             "and exact only with a prefix and a suffix pass")


def _strides(shape) -> list[int]:
    """Row-major strides of ``shape``, in elements."""
    out, s = [], 1
    for d in reversed(shape):
        out.append(s)
        s *= int(d)
    return out[::-1]


class CudaCallsMixin:
    """``CudaCodegen``'s lowerings of calls (it supplies ``dense``, ``alloc``, ``grid_kernel``,
    ``run``, ``launch``, ``fresh``, ``emit``...)."""

    def call(self, e) -> None:
        fn = CUDA.rules.get(e.prim)
        if fn is not None and fn(self, e) is not False:
            return
        self.host_call(e)

    def host_call(self, e) -> None:
        """Run ``e`` with its NumPy body (inputs copied to the host, the result back)."""
        self.host.append(e)
        ins = []
        for a in e.inputs:
            v = self.val(a)
            root = _root(v)
            shape = tuple(a.aval.shape)
            ins.append(f"({root.name}, {tuple(root.shape)!r}, {shape!r})")
        name = self.fresh()
        self.emit(f"{name} = rt.host_eqn(E[{len(self.host) - 1}], [{', '.join(ins)}])"
                  f"  # {e.prim.name}: no CUDA kernel, runs on the host")
        self.env[id(e.out)] = _Val("dev", name, e.out.aval.shape)
        self.dt[name] = e.out.aval.dtype.np.name

    @CUDA.register(matmul_p)
    def call_matmul(self, e):
        a, b = e.inputs
        sa, sb = tuple(a.aval.shape), tuple(b.aval.shape)
        if len(sa) > 2 or len(sb) > 2 or not a.aval.dtype.is_floating_point:
            return False
        m = sa[0] if len(sa) == 2 else 1
        k = sa[-1]
        nn = sb[1] if len(sb) == 2 else 1
        an, bn = self.dense(a), self.dense(b)
        out = self.alloc(e.out, m * nn)
        self.emit(f"{out} = rt.matmul({an}, {bn}, {m}, {k}, {nn}, {out})")
        return None

    @CUDA.register(permute_p)
    def call_permute(self, e):
        src = self.dense(e.inputs[0])
        st = _strides(e.inputs[0].aval.shape)
        shape = tuple(e.out.aval.shape)
        out = self.alloc(e.out, max(1, _numel(shape)))
        self._strided_kernel("permute", shape, 0, [st[p] for p in e.params["perm"]],
                             lambda at: f"q1[i] = q0[{at}]", [src, out])
        return None


    # -- along an axis: one thread per position before x after the axis ----------------------
    def _along(self, e, name: str, body) -> None:
        """A kernel over the positions before x after ``e``'s axis; ``body(at, n)`` gives its
        lines, reading element ``k`` along the axis at ``at("k")``, the axis length ``n``."""
        x = self.dense(e.inputs[0])
        shape = tuple(e.inputs[0].aval.shape)
        ax = e.params["axis"]
        o, n, i = _numel(shape[:ax]), shape[ax], _numel(shape[ax + 1:])
        k = self.fresh(name)
        lines = [f"base = (j // {i}) * {n * i} + j % {i}",
                 *body(lambda kk: f"base + {kk} * {i}", n)]
        self.grid_kernel(k, "x, out", o * i, lines, var="j")
        out = self.alloc(e.out, max(1, _numel(e.out.aval.shape)))
        self.run(k, self.launch(o * i), [x, out])

    def _softmax(self, e, log: bool):
        if not e.out.aval.dtype.is_floating_point:
            return False

        def body(at, n):
            xk = f"x[{at('k')}]"
            last = f"out[{at('k')}] = {xk} - m - math.log(s)" if log \
                else f"out[{at('k')}] = math.exp({xk} - m) / s"
            return ["m = -np.inf", f"for k in range({n}):", f"    if {xk} > m or {xk} != {xk}:",
                    f"        m = {xk}", "s = 0.0", f"for k in range({n}):",
                    f"    s += math.exp({xk} - m)", f"for k in range({n}):", "    " + last]
        self._along(e, "log_softmax" if log else "softmax", body)
        return None

    @CUDA.register(softmax_p)
    def call_softmax(self, e):
        return self._softmax(e, False)

    @CUDA.register(log_softmax_p)
    def call_log_softmax(self, e):
        return self._softmax(e, True)

    def _arg(self, e, cmp: str):
        # NaN wins (NumPy's argmax/argmin return the first NaN); else the first extreme.
        def body(at, n):
            xk, xb = f"x[{at('k')}]", f"x[{at('best')}]"
            return ["best = 0", f"for k in range(1, {n}):",
                    f"    if ({xk} {cmp} {xb} and {xb} == {xb}) or "
                    f"({xk} != {xk} and {xb} == {xb}):", "        best = k", "out[j] = best"]
        self._along(e, "arg", body)
        return None

    @CUDA.register(cumsum_p)
    def call_cumsum(self, e):
        # In order, in the result's dtype, as NumPy's cumsum: one thread per line along the axis.
        zero = f"{_NP[e.out.aval.dtype]}(0)"
        self._along(e, "cumsum", lambda at, n: [f"s = {zero}", f"for k in range({n}):",
                                                f"    s += x[{at('k')}]", f"    out[{at('k')}] = s"])
        return None

    @CUDA.register(argmax_p)
    def call_argmax(self, e):
        return self._arg(e, ">")

    @CUDA.register(argmin_p)
    def call_argmin(self, e):
        return self._arg(e, "<")

    # -- gathers by leading index tensors (what cross-entropy and embedding lookups use) ---------
    def _gather(self, e, x_shape):
        spec = e.params["index"]
        idx = e.inputs[1:]
        if not spec or any(item[0] != "t" for item in spec) or \
                len({tuple(a.aval.shape) for a in idx}) != 1 or \
                any(a.aval.dtype.np != np.int64 for a in idx):
            return None
        k = len(spec)
        rest = _numel(x_shape[k:])
        strides = _strides(x_shape[:k])
        names = [self.dense(a) for a in idx]
        terms = [f"(g{j} if g{j} >= 0 else g{j} + {x_shape[j]}) * {strides[j] * rest}"
                 for j in range(k)]
        loads = [f"g{j} = ix{j}[b]" for j in range(k)]
        return names, _numel(idx[0].aval.shape), rest, loads, " + ".join(terms)

    def _by_index(self, name: str, got, x: str, out: str, stmt: str) -> None:
        """A kernel over the elements ``_gather`` found (``got``): ``stmt(pos)``, with ``pos``
        the position in the indexed array of element ``j`` of the gathered values."""
        names, nb, rest, loads, off = got
        k = self.fresh(name)
        ix = ", ".join(f"ix{j}" for j in range(len(names)))
        self.grid_kernel(k, f"x, out, {ix}", nb * rest,
                         [f"b = j // {rest}", *loads, stmt(f"{off} + j % {rest}")],
                         var="j")
        self.run(k, self.launch(nb * rest), [x, out, *names])

    # -- basic indices (ints, slices, None, ...): a strided view, known when compiling ---------
    @staticmethod
    def _positions(spec, shape):
        """(offset, strides) in elements: element j of ``x[index]`` is element offset +
        sum(j_k * strides_k) of x. None when the index uses tensors or x is empty."""
        if any(item[0] == "t" for item in spec) or not _numel(shape):
            return None
        from jitgrad.ops.shape import np_index
        pos = np.asarray(np.arange(_numel(shape)).reshape(shape)[np_index(spec, ())])
        if not pos.size:
            return None
        return int(pos.reshape(-1)[0]), [st // pos.itemsize for st in pos.strides], pos.shape

    def _strided_kernel(self, name: str, shape, offset: int, strides, stmt: str, args: list):
        """A kernel over ``shape`` running ``stmt(at)``, ``at`` the strided source position."""
        n = _numel(shape)
        at = " + ".join([str(offset)] + [f"i{k} * {st}" for k, st in enumerate(strides) if st])
        k = self.fresh(name)
        self.grid_kernel(k, ", ".join(f"q{j}" for j in range(len(args))), n,
                         [*self.unravel(shape), stmt(at)])
        self.run(k, self.launch(n), args)

    @CUDA.register(getitem_p)
    def call_getitem(self, e):
        xs = tuple(e.inputs[0].aval.shape)
        basic = self._positions(e.params["index"], xs)
        if basic is not None:
            offset, strides, shape = basic
            x = self.dense(e.inputs[0])
            out = self.alloc(e.out, max(1, _numel(shape)))
            self._strided_kernel("slice", shape, offset, strides, lambda at: f"q1[i] = q0[{at}]", [x, out])
            return None
        got = self._gather(e, xs)
        if got is None:
            return False
        x = self.dense(e.inputs[0])
        out = self.alloc(e.out, max(1, got[1] * got[2]))
        self._by_index("gather", got, x, out, lambda pos: f"out[j] = x[{pos}]")
        return None

    @CUDA.register(scatter_add_p)
    def call_scatter_add(self, e):
        shape = tuple(e.params["shape"])
        basic = self._positions(e.params["index"], shape)
        if basic is not None:  # a basic index names each position once: no atomics
            offset, strides, vshape = basic
            g = self.dense(e.inputs[0])
            out = self.new_array(e.out, _numel(shape), fill="0")
            self.env[id(e.out)] = _Val("dev", out, shape)
            self._strided_kernel("unslice", vshape, offset, strides, lambda at: f"q1[{at}] += q0[i]",
                                 [g, out])
            return None
        got = self._gather(e, shape)
        if got is None:
            return False
        g = self.dense(e.inputs[0])
        out = self.new_array(e.out, max(1, _numel(shape)), fill="0")
        self.env[id(e.out)] = _Val("dev", out, shape)
        self._by_index("scatter_add", got, g, out, lambda pos: f"cuda.atomic.add(out, {pos}, x[j])")
        return None

    @CUDA.register(index_update_p)
    def call_index_update(self, e):
        shape = tuple(e.inputs[0].aval.shape)
        basic = self._positions(e.params["index"], shape)
        if basic is None:
            return False
        offset, strides, vshape = basic
        x = self.dense(e.inputs[0])
        out = self.alloc(e.out, _numel(shape))
        k = self.fresh("copy")
        n = _numel(shape)
        self.grid_kernel(k, "x, out", n, ["out[i] = x[i]"])
        self.run(k, self.launch(n), [x, out])
        root = _root(self.val(e.inputs[1]))
        if root.kind == "lit":
            self._strided_kernel("update", vshape, offset, strides, lambda at: f"q0[{at}] = {root.name}",
                                 [out])
        else:
            v = self.index(root, vshape, "i", "q1")
            self._strided_kernel("update", vshape, offset, strides, lambda at: f"q0[{at}] = {v}",
                                 [out, root.name])
        return None

    @CUDA.register(cat_p)
    def call_cat(self, e):
        shape = tuple(e.out.aval.shape)
        ax = e.params["axis"]
        inner = _numel(shape[ax + 1:])
        out = self.alloc(e.out, max(1, _numel(shape)))
        off = 0
        for a in e.inputs:
            na = a.aval.shape[ax]
            n = _numel(a.aval.shape)
            if n:
                x = self.dense(a)
                k = self.fresh("cat")
                block = na * inner
                self.grid_kernel(k, "x, out", n, [
                    f"r = j % {block}",
                    f"out[(j // {block}) * {shape[ax] * inner} + {off * inner} + r] = x[j]"],
                    var="j")
                self.run(k, self.launch(n), [x, out])
            off += na
        return None
