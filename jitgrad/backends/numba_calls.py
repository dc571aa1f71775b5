"""Lowerings of the non-loop equations ("calls") for the Numba CPU backend: matmul through
BLAS, permute, cat, softmax and argmax along an axis, indexing (basic slices and gathers by
index tensors), cumsum, and guards. Mixed into ``Codegen``; each lowering is registered against
its primitive in ``lowering.CPU`` and emits source lines.
"""

from __future__ import annotations

from jitgrad import dtypes
from jitgrad.backends import numba_host
from jitgrad.backends.lowering_tables import CPU
from jitgrad.ops.control import guard_p
from jitgrad.ops.linalg import matmul_p
from jitgrad.ops.reduce import (argmax_p, argmin_p, cumsum_p, log_softmax_p, prod_others_p,
                                softmax_p)
from jitgrad.ops.sorting import argsort_p
from jitgrad.ops.shape import cat_p, getitem_p, index_update_p, permute_p, scatter_add_p
from jitgrad.backends.numba_values import (_NP, Unsupported, _numel, _root, _shape, _Val)
from jitgrad.ops.special import HOST_PRIMS as _SPECIAL
from jitgrad.ops.pointwise_more import HOST_PRIMS as _MORE_SPECIAL
from jitgrad.ops.linalg import LAPACK_PRIMITIVES as _LAPACK

# A stable sort with torch's NaN order: NumPy's (a lowering would repeat it in Numba for a rare
# equation; randperm and sort in a training step run one per call).
CPU.on_host(argsort_p, "a sort runs NumPy's stable argsort on the host")
for _p in (*_SPECIAL, *_MORE_SPECIAL):  # digamma, erfinv, Bessel, igamma: no Numba scalar form
    CPU.on_host(_p, "a special function with no Numba scalar form: SciPy's body on the host")
for _p in _LAPACK:  # inv, solve, eigh, svd...: NumPy's LAPACK calls, with pivoting and errors
    CPU.on_host(_p, "a factorization or solve: NumPy's LAPACK call on the host")

class CallsMixin:
    """``Codegen``'s lowerings of calls (it supplies ``val``, ``array``, ``emit``, ``env``...)."""

    def call(self, e) -> None:
        if e.prim.kind == "elementwise" and not e.out.aval.shape:
            return self.scalar_op(e)
        if e.prim.reduction is not None:
            return self.scalar_alias(e)  # a reduction of a 0-d value: of that one value
        fn = CPU.rules.get(e.prim)
        if fn is None:
            return self.host_call(e, CPU.host.get(e.prim, f"no lowering for {e.prim.name}"))
        mark, env = len(self.lines), dict(self.env)
        try:
            fn(self, e)
        except Unsupported as why:  # this one equation runs on the host; the rest compiles
            if e.prim.kind == "loop":  # (not a loop: its results are the kernel's own names)
                raise
            del self.lines[mark:]
            self.env = env
            self.host_call(e, str(why))

    def host_call(self, e, why: str) -> None:
        """Run equation ``e``'s NumPy implementation in an object-mode block (numba_host)."""
        if e.out is None:
            raise Unsupported(f"{e.prim.name} on the host: {why}")
        self.host_ops.append((e.prim.name, e.src, why))
        key = numba_host.register(e)
        args = [self.array(a) if a.aval.shape else _root(self.val(a)).name for a in e.inputs]
        name = self.fresh()
        self.emit(f"with numba.objmode({name}={numba_host.numba_type(e.out.aval)!r}):")
        self.emit(f"{name} = run_host({key!r}, ({''.join(f'{a}, ' for a in args)}))", 2)
        if e.out.aval.shape:
            self.publish(e.out, name, tuple(e.out.aval.shape))
        else:
            self.env[id(e.out)] = _Val("scalar", name)

    def set_array(self, e, expr: str) -> None:
        name = self.fresh()
        self.emit(f"{name} = {expr}")
        shape = tuple(e.out.aval.shape)
        if shape:
            self.publish(e.out, name, shape)
        else:
            self.env[id(e.out)] = _Val("scalar", name)

    def scalar_op(self, e) -> None:
        args = [_root(self.val(a)).name for a in e.inputs]
        name = self.fresh()
        self.emit(f"{name} = {self.expr(e, args)}")
        self.env[id(e.out)] = _Val("scalar", name)

    def scalar_alias(self, e) -> None:
        v = _root(self.val(e.inputs[0]))
        name = self.fresh()
        red = e.prim.reduction
        self.emit(f"{name} = {_NP[e.out.aval.dtype]}({red.of_one(v.name)})")
        self.env[id(e.out)] = _Val("scalar", name)

    @CPU.register(guard_p)
    def call_guard(self, e) -> None:
        v = _root(self.val(e.inputs[0])).name
        expect = e.params["expect"]
        if isinstance(expect, float) and expect != expect:
            cond = f"{v} == {v}"
        elif isinstance(expect, bool):
            cond = f"bool({v}) != {expect}"
        else:
            cond = f"{v} != {expect!r}"
        seen = f"(1.0 if {v} else 0.0)" if isinstance(expect, bool) else f"float({v})"
        self.emit(f"if {cond}:")
        self.exit(e.params["index"], seen, 2)

    @CPU.register(matmul_p)
    def call_matmul(self, e) -> None:
        a, b = e.inputs
        if not a.aval.dtype.is_floating_point:
            raise Unsupported("integer matmul")
        sa, sb = tuple(a.aval.shape), tuple(b.aval.shape)
        an = self.val(a).name if self.val(a).kind == "tview" else self.array(a)
        bn = self.val(b).name if self.val(b).kind == "tview" else self.array(b)
        if len(sa) <= 2 and len(sb) <= 2:
            return self.set_array(e, f"np.dot({an}, {bn})")
        if sa[:-2] != sb[:-2] and len(sa) > 2 and len(sb) > 2:
            raise Unsupported("matmul with broadcast batch dimensions")
        if len(sa) == 1 or len(sb) == 1:
            raise Unsupported("batched matmul with a 1-D operand")
        out = tuple(e.out.aval.shape)
        dt = _NP[e.out.aval.dtype]
        batch = _numel(out[:-2])
        if len(sb) == 2:
            # (..., M, K) @ (K, N): the batch's rows are one (B*M, K) matrix, one BLAS call
            rows = f"{an}.reshape({batch * sa[-2]}, {sa[-1]})"
            return self.set_array(e, f"np.dot({rows}, {bn}).reshape({_shape(out)})")
        b3 = f"{bn}.reshape({batch}, {sb[-2]}, {sb[-1]})"
        empty = f"np.empty(({batch}, {out[-2]}, {out[-1]}), {dt})"
        if len(sa) == 2:
            call = f"bmm_left({an}, {b3}, {empty})"
        else:
            call = f"bmm({an}.reshape({batch}, {sa[-2]}, {sa[-1]}), {b3}, {empty})"
        self.set_array(e, f"{call}.reshape({_shape(out)})")

    @CPU.register(permute_p)
    def call_permute(self, e) -> None:
        x = self.array(e.inputs[0])
        if e.params["perm"] == (1, 0) and self._only_matmul_reads(e.out):
            # BLAS takes the transpose as a flag: a view, no copy.
            self.env[id(e.out)] = _Val("tview", f"{x}.T", tuple(e.out.aval.shape))
            return
        perm = e.params["perm"]
        if perm == (1, 0):
            return self.set_array(e, f"np.ascontiguousarray({x}.T)")
        # A loop nest: Numba types np.transpose with a tuple anew at each site (about 2 s of
        # compile each), a copy loop like any other.
        shape = tuple(e.out.aval.shape)
        name = self.fresh()
        self.alloc(name, shape, _NP[e.out.aval.dtype])
        idx = [f"i{k}" for k in range(len(shape))]
        for k, n in enumerate(shape):
            self.emit(f"for {idx[k]} in range({n}):", 1 + k)
        src = [None] * len(shape)
        for k, p in enumerate(perm):
            src[p] = idx[k]
        self.emit(f"{name}[{', '.join(idx)}] = {x}[{', '.join(src)}]", 1 + len(shape))
        self.publish(e.out, name, shape)

    def _only_matmul_reads(self, v) -> bool:
        uses = self.uses.get(id(v), [])
        # (a 2-D right operand of a batched matmul is one 2-D product too)
        return bool(uses) and all(u.prim is matmul_p and len(u.inputs[1].aval.shape) == 2 and
                                  (len(u.inputs[0].aval.shape) == 2 or u.inputs[1] is v)
                                  for u in uses) and \
            id(v) not in {id(o) for o in self.g.outputs}

    @CPU.register(cat_p)
    def call_cat(self, e) -> None:
        xs = [self.array(a) for a in e.inputs]
        self.set_array(e, f"np.concatenate(({', '.join(xs)},), axis={e.params['axis']})")

    def _axis3(self, x, axis: int) -> tuple:
        shape = tuple(x.aval.shape)
        return _numel(shape[:axis]), shape[axis], _numel(shape[axis + 1:])

    def _along_axis(self, e, out_shape: tuple | None, dt: str, out_view: bool,
                    dims: tuple | None = None) -> tuple:
        """Emit an output array of ``out_shape`` (None: one value per position before and
        after the axis) and ``dt``, (before, axis, after) views of the input (and of the output
        when ``out_view``), and the loops over the positions before and after the axis; returns
        (input name, output name, axis size). ``dims``: those sizes, for adjacent axes taken
        as one."""
        x = self.array(e.inputs[0])
        o, n, i = dims or self._axis3(e.inputs[0], e.params["axis"])
        out = self.fresh()
        self.alloc(out, (o, i) if out_shape is None else out_shape, dt)
        if out_view:
            self.emit(f"{out}_3 = {out}.reshape({o}, {n}, {i})")
        self.emit(f"{x}_3 = {x}.reshape({o}, {n}, {i})")
        self.emit(f"for p in range({o}):")
        self.emit(f"for q in range({i}):", 2)
        return x, out, n

    def _softmax(self, e, log: bool) -> None:
        dt = _NP[e.out.aval.dtype]
        shape = tuple(e.out.aval.shape)
        x, out, n = self._along_axis(e, shape, dt, True)
        self.emit("m = -np.inf", 3)
        self.emit(f"for k in range({n}):", 3)
        self.emit(f"if {x}_3[p, k, q] > m or {x}_3[p, k, q] != {x}_3[p, k, q]:", 4)
        self.emit(f"m = {x}_3[p, k, q]", 5)
        self.emit("s = 0.0", 3)
        self.emit(f"for k in range({n}):", 3)
        self.emit(f"s += math.exp({x}_3[p, k, q] - m)", 4)
        self.emit(f"for k in range({n}):", 3)
        if log:
            self.emit(f"{out}_3[p, k, q] = {x}_3[p, k, q] - m - math.log(s)", 4)
        else:
            self.emit(f"{out}_3[p, k, q] = math.exp({x}_3[p, k, q] - m) / s", 4)
        self.env[id(e.out)] = _Val("array", out, tuple(e.out.aval.shape))
        self.flat_alias(out, e.out.aval.shape)

    @CPU.register(softmax_p)
    def call_softmax(self, e) -> None:
        self._softmax(e, False)

    @CPU.register(log_softmax_p)
    def call_log_softmax(self, e) -> None:
        self._softmax(e, True)

    def _arg(self, e, cmp: str) -> None:
        x, out, n = self._along_axis(e, None, "np.int64", False)
        self.emit("best = 0", 3)
        self.emit(f"for k in range(1, {n}):", 3)
        self.emit(f"if {x}_3[p, k, q] {cmp} {x}_3[p, best, q] and {x}_3[p, best, q] == "
                  f"{x}_3[p, best, q] or ({x}_3[p, k, q] != {x}_3[p, k, q] and "
                  f"{x}_3[p, best, q] == {x}_3[p, best, q]):", 4)
        self.emit("best = k", 5)
        self.emit(f"{out}[p, q] = best", 3)
        shape = tuple(e.out.aval.shape)
        if shape:
            self.set_array(e, f"{out}.reshape({_shape(shape)})")
        else:
            self.set_array(e, f"{out}[0, 0]")

    @CPU.register(cumsum_p)
    def call_cumsum(self, e) -> None:
        dt = _NP[e.out.aval.dtype]
        shape = tuple(e.out.aval.shape)
        # Accumulated in the result's dtype, in order, as NumPy's cumsum does.
        x, out, n = self._along_axis(e, shape, dt, True)
        self.emit(f"s = {dt}(0)", 3)
        self.emit(f"for k in range({n}):", 3)
        self.emit(f"s += {x}_3[p, k, q]", 4)
        self.emit(f"{out}_3[p, k, q] = s", 4)
        self.publish(e.out, out, shape)

    @CPU.register(prod_others_p)
    def call_prod_others(self, e) -> None:
        """Each element's product of the others along the reduced axes (the gradient of prod):
        a prefix and a suffix product, exact where elements are zero."""
        xs, axes = tuple(e.inputs[0].aval.shape), tuple(sorted(e.params["axes"]))
        dt = _NP[e.out.aval.dtype]
        if not axes:
            # Over no axes (the prod of a 0-d value, whose gradient this is): each element has
            # no others, and the empty product is 1. The loops below need an axis to run along.
            return self.set_array(e, f"np.ones({_shape(xs)}, {dt})" if xs else f"{dt}(1)")
        if axes != tuple(range(axes[0], axes[-1] + 1)):
            raise Unsupported("prod_others over axes that are not adjacent")
        dims = (_numel(xs[:axes[0]]), _numel(xs[axes[0]:axes[-1] + 1]), _numel(xs[axes[-1] + 1:]))
        x, out, n = self._along_axis(e, xs, dt, True, dims)
        self.emit(f"s = {dt}(1)", 3)
        self.emit(f"for k in range({n}):", 3)
        self.emit(f"{out}_3[p, k, q] = s", 4)
        self.emit(f"s *= {x}_3[p, k, q]", 4)
        self.emit(f"s = {dt}(1)", 3)
        self.emit(f"for k in range({n} - 1, -1, -1):", 3)
        self.emit(f"{out}_3[p, k, q] *= s", 4)
        self.emit(f"s *= {x}_3[p, k, q]", 4)
        self.publish(e.out, out, xs)

    @CPU.register(argmax_p)
    def call_argmax(self, e) -> None:
        self._arg(e, ">")

    @CPU.register(argmin_p)
    def call_argmin(self, e) -> None:
        self._arg(e, "<")

    # indexing: basic indices (ints, slices, None, ...) and gathers by leading index tensors
    def _basic(self, spec) -> str | None:
        parts = []
        for item in spec:
            k = item[0]
            if k == "t":
                return None
            if k == "i":
                parts.append(str(item[1]))
            elif k == "s":
                parts.append(":".join("" if v is None else str(v) for v in item[1:]))
            elif k == "n":
                parts.append("None")
            else:
                parts.append("...")
        return ", ".join(parts) if parts else "..."

    def _gather(self, e):
        """For ``x[t0, t1, ...]`` (getitem, scatter_add) with equal-shape index tensors on the
        leading dims: the index arrays' names, their shape, and the number of indexed dims."""
        spec = e.params["index"]
        if not spec or any(item[0] != "t" for item in spec):
            raise Unsupported("mixed advanced indexing")
        idx = e.inputs[1:]
        shapes = {tuple(a.aval.shape) for a in idx}
        if len(shapes) != 1 or any(a.aval.dtype is not dtypes.int64 for a in idx):
            raise Unsupported("advanced indexing with broadcast or bool index tensors")
        names = [self.array(a) for a in idx]
        return names, shapes.pop(), len(spec)

    def _gather_loop(self, names, bshape, k, x_shape, body: str) -> None:
        nb = _numel(bshape)
        rest = _numel(x_shape[k:])
        self.emit(f"for b in range({nb}):")
        subs = []
        for j, nm in enumerate(names):
            self.emit(f"g{j} = {nm}_f[b] if {nm}_f[b] >= 0 else {nm}_f[b] + {x_shape[j]}", 2)
            subs.append(f"g{j}")
        self.emit(f"for r in range({rest}):", 2)
        self.emit(body.format(idx=", ".join(subs)), 3)

    @CPU.register(getitem_p)
    def call_getitem(self, e) -> None:
        x = self.array(e.inputs[0])
        basic = self._basic(e.params["index"])
        if basic is not None and not e.out.aval.shape:
            # A single element: a scalar, not ascontiguousarray's 1-element array (which gave
            # x[0] of a vector shape (1,)).
            return self.set_array(e, f"{x}[{_element(e.params['index'])}]")
        if basic is not None:
            return self.set_array(e, f"np.ascontiguousarray({x}[{basic}])")
        xs = tuple(e.inputs[0].aval.shape)
        names, bshape, k = self._gather(e)
        out = self.fresh()
        oshape = tuple(e.out.aval.shape)
        self.alloc(out, oshape, _NP[e.out.aval.dtype])
        self.emit(f"{out}_2 = {out}.reshape({_numel(bshape)}, {_numel(xs[k:])})")
        self.emit(f"{x}_k = {x}.reshape({_shape(xs[:k] + (_numel(xs[k:]),))})")
        self._gather_loop(names, bshape, k, xs, f"{out}_2[b, r] = {x}_k[{{idx}}, r]")
        self.publish(e.out, out, oshape)

    @CPU.register(scatter_add_p)
    def call_scatter_add(self, e) -> None:
        shape = tuple(e.params["shape"])
        dt = _NP[e.out.aval.dtype]
        basic = self._basic(e.params["index"])
        if basic is not None and not e.inputs[0].aval.shape:
            # One element (the gradient of x[i, j]): Numba's x[i, j] is a scalar, not a view
            # to add into, so the element is written directly.
            out = self.fresh()
            self.emit(f"{out} = np.zeros({_shape(shape)}, {dt})")
            self.emit(f"{out}[{_element(e.params['index'])}] = "
                      f"{_root(self.val(e.inputs[0])).name}")
            return self.publish(e.out, out, shape)
        g = self.array(e.inputs[0])
        out = self.fresh()
        self.emit(f"{out} = np.zeros({_shape(shape)}, {dt})")
        if basic is not None:
            self.emit(f"{out}_v = {out}[{basic}]")
            self.emit(f"{out}_v += {g}")
        else:
            names, bshape, k = self._gather(e)
            gs = tuple(e.inputs[0].aval.shape)
            self.emit(f"{g}_2 = {g}.reshape({_numel(bshape)}, {_numel(gs) // max(_numel(bshape), 1)})")
            self.emit(f"{out}_k = {out}.reshape({_shape(shape[:k] + (_numel(shape[k:]),))})")
            self._gather_loop(names, bshape, k, shape, f"{out}_k[{{idx}}, r] += {g}_2[b, r]")
        self.publish(e.out, out, shape)

    @CPU.register(index_update_p)
    def call_index_update(self, e) -> None:
        basic = self._basic(e.params["index"])
        if basic is None:
            raise Unsupported("index_update with index tensors")
        x = self.array(e.inputs[0])
        v = self.val(e.inputs[1])
        vv = _root(v).name if _root(v).kind == "scalar" else self.array(e.inputs[1])
        out = self.fresh()
        self.emit(f"{out} = {x}.copy()")
        self.emit(f"{out}[{basic}] = {vv}")
        shape = tuple(e.out.aval.shape)
        self.publish(e.out, out, shape)



def _element(spec) -> str:
    """The subscript of a basic index that picks one element (every dim indexed by an int; an
    ellipsis then stands for no dims)."""
    ints = [str(item[1]) for item in spec if item[0] == "i"]
    return ", ".join(ints) if ints else "()"
