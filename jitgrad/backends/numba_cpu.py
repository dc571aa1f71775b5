"""The Numba CPU backend: one generated ``@njit`` function per trace.

The fusion plan becomes Python source: each loop is a loop nest (``prange`` when it is large and
its reductions allow) whose body is the registry's scalar templates; calls are NumPy code Numba
compiles (matmul through BLAS) or dedicated loops; guards return their index and the value seen.
The source is written to the disk cache and compiled for the exact input types at once, so a
function that Numba cannot type falls back, whole, to the reference interpreter: slower, never
wrong. ``lower().as_text("kernel")`` shows the source.
"""

from __future__ import annotations

import math

import numpy as np

from jitgrad import dtypes
from jitgrad.errors import GuardFailure
from jitgrad.ir.graph import Graph, Lit, Var
from jitgrad.transforms.fusion import Loop, View, fuse

PARALLEL_MIN = 1 << 17  # elements; smaller loops run on one thread

_NP = {dtypes.float32: "np.float32", dtypes.float64: "np.float64", dtypes.int64: "np.int64",
       dtypes.bool_: "np.bool_"}


# Templates whose Python result type may differ from the operands' (int results, helpers).
_RETYPES = frozenset({"sign", "floor", "clamp", "relu", "astype", "pow_scalar", "pow", "abs"})


class Unsupported(Exception):
    """The plan has something this backend does not generate code for."""


def literal(a: Lit) -> str:
    v, dt = a.value, a.aval.dtype
    if dt is dtypes.bool_:
        return repr(bool(v))
    if dt is dtypes.int64:
        return f"np.int64({int(v)})"
    if math.isnan(v):
        text = "np.nan"
    elif math.isinf(v):
        text = "np.inf" if v > 0 else "-np.inf"
    else:
        text = repr(float(v))
    return f"np.float32({text})" if dt is dtypes.float32 else text


class _Val:
    """How generated code holds an IR value."""

    __slots__ = ("kind", "name", "shape", "src")

    def __init__(self, kind: str, name: str, shape: tuple = (), src=None) -> None:
        self.kind = kind      # scalar | array | temp | bcast (a broadcast of ``src``)
        self.name = name
        self.shape = tuple(shape)
        self.src = src


class Codegen:
    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.plan = fuse(graph)
        self.lines: list[str] = []
        self.env: dict[int, _Val] = {}
        self.n = 0
        self.parallel = False
        self.has_blas = any(e.prim.name == "matmul" for e in graph.eqns)
        self.uses: dict[int, list] = {}
        for e in graph.eqns:
            for a in e.inputs:
                if isinstance(a, Var):
                    self.uses.setdefault(id(a), []).append(e)

    def fresh(self, prefix: str = "v") -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def emit(self, line: str, depth: int = 1) -> None:
        self.lines.append("    " * depth + line)

    # -- reading values ----------------------------------------------------------------------
    def val(self, a) -> _Val:
        if isinstance(a, Lit):
            return _Val("scalar", literal(a))
        return self.env[id(a)]

    def read(self, a, shape: tuple, idx: list[str] | None, flat: str | None) -> str:
        """An expression for ``a``'s element at the loop position (broadcasting)."""
        v = self.val(a)
        while v.kind == "bcast":
            v = v.src
        if v.kind in ("scalar", "temp"):
            return v.name
        if flat is not None:
            return f"{v.name}_f[{flat}]"
        n, k = len(shape), len(v.shape)
        parts = [idx[n - k + j] if v.shape[j] == shape[n - k + j] else "0" for j in range(k)]
        return f"{v.name}[{', '.join(parts)}]" if parts else v.name

    def array(self, a, depth: int = 1) -> str:
        """A contiguous array holding ``a`` (broadcasts and scalars are materialized)."""
        v = self.val(a)
        if v.kind == "array":
            return v.name
        shape = tuple(a.aval.shape)
        dt = _NP[a.aval.dtype]
        name = self.fresh("m")
        if v.kind == "scalar" or (v.kind == "bcast" and _root(v).kind == "scalar"):
            self.emit(f"{name} = np.full({_shape(shape)}, {_root(v).name}, {dt})", depth)
        else:
            src = _root(v)
            self.emit(f"{name} = np.empty({_shape(shape)}, {dt})", depth)
            idx = [f"j{i}" for i in range(len(shape))]
            for i, s in enumerate(shape):
                self.emit(f"for j{i} in range({s}):", depth + i)
            n, k = len(shape), len(src.shape)
            parts = [idx[n - k + j] if src.shape[j] == shape[n - k + j] else "0" for j in range(k)]
            self.emit(f"{name}[{', '.join(idx)}] = {src.name}[{', '.join(parts)}]",
                      depth + len(shape))
        if _numel(shape):
            self.emit(f"{name}_f = {name}.reshape(-1)", depth)
        if isinstance(a, Var):
            self.env[id(a)] = _Val("array", name, shape)
        return name

    # -- the program -------------------------------------------------------------------------
    def generate(self) -> str:
        g = self.g
        args = []
        for i, (v, _) in enumerate(g.consts):
            args.append(self.bind_input(v, f"c{i}"))
        for i, v in enumerate(g.inputs):
            args.append(self.bind_input(v, f"a{i}"))
        for step in self.plan.steps:
            if isinstance(step, Loop):
                self.loop(step)
            elif isinstance(step, View):
                self.view(step.eqn)
            else:
                self.call(step.eqn)
        outs = []
        for o in g.outputs:
            v = self.val(o)
            if isinstance(o, Lit) or not o.aval.shape:
                outs.append(_root(v).name if v.kind != "temp" else v.name)
            else:
                outs.append(self.array(o))
        dummies = []
        for o in g.outputs:
            dt = _NP[o.aval.dtype]
            if o.aval.shape:
                dummies.append(f"np.empty({_shape((0,) * len(o.aval.shape))}, {dt})")
            else:
                dummies.append(f"{dt}(0)")
        self.emit(f"return -1, 0.0, ({', '.join(outs)},)")
        head = ["import math", "import numpy as np", "import numba",
                "from jitgrad.backends._numba_helpers import clamp, floor, isinf, isnan, max2, min2, sign",
                "",
                f"@numba.njit(cache=True, parallel={self.parallel}, error_model='numpy')",
                f"def kernel({', '.join(args)}):"]
        body = "\n".join(self.lines).replace("__DUMMIES__", ", ".join(dummies) + ",")
        return "\n".join(head) + "\n" + body + "\n"

    def bind_input(self, v: Var, name: str) -> str:
        if v.aval.shape:
            self.env[id(v)] = _Val("array", name, v.aval.shape)
            if _numel(v.aval.shape):
                self.emit(f"{name}_f = {name}.reshape(-1)")
        else:
            self.env[id(v)] = _Val("scalar", name)
        return name

    def view(self, e) -> None:
        src = self.val(e.inputs[0])
        shape = tuple(e.out.aval.shape)
        if e.prim.name == "reshape" and src.kind == "array":
            name = self.fresh()
            self.emit(f"{name} = {src.name}.reshape({_shape(shape)})")
            self.env[id(e.out)] = _Val("array", name, shape)
            if _numel(shape):
                self.emit(f"{name}_f = {name}.reshape(-1)")
        elif e.prim.name == "reshape" and src.kind == "bcast" and _root(src).kind == "scalar":
            self.env[id(e.out)] = _Val("bcast", "", shape, src)
        elif e.prim.name == "reshape" and src.kind != "scalar":
            self._reshape_named(e, self.array(e.inputs[0]), shape)
        else:  # expand, or a reshape of a scalar: a broadcast read in place
            self.env[id(e.out)] = _Val("bcast", "", shape, src)

    def _reshape_named(self, e, name: str, shape: tuple) -> None:
        out = self.fresh()
        self.emit(f"{out} = {name}.reshape({_shape(shape)})")
        self.env[id(e.out)] = _Val("array", out, shape)
        if _numel(shape):
            self.emit(f"{out}_f = {out}.reshape(-1)")

    # -- loops -------------------------------------------------------------------------------
    def loop(self, lp: Loop) -> None:
        shape = lp.shape
        size = _numel(shape)
        mat = self.plan.materialize
        reds = [e for e in lp.eqns if e.prim.name in ("sum", "mean", "max", "min", "norm", "prod")]
        full = all(not e.out.aval.shape for e in reds)
        arrays_full = all(
            _root(self.val(a)).kind != "array" or tuple(_root(self.val(a)).shape) == shape
            for e in lp.eqns for a in e.inputs if not (isinstance(a, Var) and id(a) in lp.produced))
        flat = full and arrays_full and size > 0
        # No threads beside BLAS: its spinning workers and Numba's would share two cores.
        par = size >= PARALLEL_MIN and full and not self.has_blas and all(
            e.prim.name in ("sum", "mean", "norm") for e in reds)
        if par:
            self.parallel = True
        accs = {}
        for e in lp.eqns:
            if e.prim.name in ("sum", "mean", "max", "min", "norm", "prod"):
                accs[id(e)] = self.reduction_init(e)
            elif id(e.out) in mat:
                name = self.fresh()
                self.emit(f"{name} = np.empty({_shape(shape)}, {_NP[e.out.aval.dtype]})")
                if flat:
                    self.emit(f"{name}_f = {name}.reshape(-1)")
                self.env[id(e.out)] = _Val("array", name, shape)
        rng = "numba.prange" if par else "range"
        if flat:
            self.emit(f"for i in {rng}({size}):")
            idx, fl, depth = None, "i", 2
        else:
            idx = [f"i{k}" for k in range(len(shape))]
            for k, s in enumerate(shape):
                self.emit(f"for i{k} in {rng if k == 0 else 'range'}({s}):", 1 + k)
            fl, depth = None, 1 + len(shape)
        temps: dict[int, str] = {}
        for e in lp.eqns:
            def rd(a):
                if isinstance(a, Var) and id(a) in temps:
                    return temps[id(a)]
                return self.read(a, shape, idx, fl)
            if id(e) in accs:
                self.reduction_step(e, accs[id(e)], rd(e.inputs[0]), shape, idx, depth)
                continue
            t = self.fresh("t")
            self.emit(f"{t} = {self.expr(e, [rd(a) for a in e.inputs])}", depth)
            temps[id(e.out)] = t
            if id(e.out) in mat:
                target = f"{self.env[id(e.out)].name}_f[i]" if flat else \
                    f"{self.env[id(e.out)].name}[{', '.join(idx)}]"
                self.emit(f"{target} = {t}", depth)
        for e in lp.eqns:
            if id(e) in accs:
                self.reduction_finish(e, accs[id(e)], shape)
        for e in lp.eqns:  # temps are not visible after the loop
            if id(e.out) not in self.env:
                self.env[id(e.out)] = _Val("temp", "<dead>")

    def expr(self, e, args: list[str]) -> str:
        tmpl = e.prim.expr
        if tmpl is None:
            raise Unsupported(f"no scalar template for {e.prim.name}")
        params = {k: (repr(v) if not isinstance(v, dtypes.DType) else _NP[v])
                  for k, v in e.params.items()}
        if e.prim.name == "astype":
            params["cast"] = _NP[e.params["dtype"]]
        if e.prim.name == "clamp":
            dt = e.out.aval.dtype
            for k in ("lo", "hi"):
                v = e.params[k]
                params[k] = ("np.inf" if k == "hi" else "-np.inf") if v is None else repr(v)
                if dt is dtypes.int64 and v is None:
                    params[k] = "np.iinfo(np.int64).max" if k == "hi" else "np.iinfo(np.int64).min"
        if e.prim.name == "pow_scalar" and e.params["p"] == 2:
            text = f"({args[0]} * {args[0]})"
        elif e.prim.name == "invert":
            text = f"(not {args[0]})" if e.out.aval.dtype is dtypes.bool_ else f"(~{args[0]})"
        else:
            text = tmpl.format(*args, **params)
        dt = e.out.aval.dtype
        if dt is not dtypes.bool_ and (dt is dtypes.float32 or e.prim.name in _RETYPES or any(
                a.aval.dtype is not dt for a in e.inputs)):
            # Keep the result in its IR dtype (math.* gives float64, a comparison bool...);
            # where every operand already has it, the wrapper only slows Numba's typing.
            return f"{_NP[dt]}({text})"
        return text

    def reduction_init(self, e) -> tuple:
        red = e.prim.name
        x = e.inputs[0].aval
        dt = e.out.aval.dtype
        acc_dt = "np.float64" if dt.is_floating_point else _NP[dt if dt is not dtypes.bool_
                                                                 else dtypes.int64]
        init = {"sum": "0", "mean": "0", "norm": "0", "prod": "1",
                "max": "-np.inf" if dt.is_floating_point else "np.iinfo(np.int64).min",
                "min": "np.inf" if dt.is_floating_point else "np.iinfo(np.int64).max"}[red]
        name = self.fresh("r")
        axes = e.params["axes"]
        if not e.out.aval.shape:
            self.emit(f"{name} = {acc_dt}({init})")
            return (name, None, axes)
        kept = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
        self.emit(f"{name} = np.full({_shape(kept)}, {init}, {acc_dt})")
        return (name, kept, axes)

    def reduction_step(self, e, acc, v: str, shape, idx, depth: int) -> None:
        name, kept, _ = acc
        target = name
        if kept is not None:
            at = ["0" if kept[k] == 1 and shape[k] != 1 else idx[k] for k in range(len(shape))]
            target = f"{name}[{', '.join(at)}]"
        red = e.prim.name
        if red in ("sum", "mean"):
            self.emit(f"{target} += {v}", depth)
        elif red == "norm":
            self.emit(f"{target} += {v} * {v}", depth)
        elif red == "prod":
            self.emit(f"{target} *= {v}", depth)
        else:
            cmp = ">" if red == "max" else "<"
            self.emit(f"if {v} {cmp} {target} or {v} != {v}:", depth)
            self.emit(f"    {target} = {v}", depth)

    def reduction_finish(self, e, acc, shape) -> None:
        name, kept, axes = acc
        dt = _NP[e.out.aval.dtype]
        n = _numel([shape[a] for a in axes])
        red = e.prim.name
        val = name
        if red == "mean":
            val = f"{name} / {n}"
        elif red == "norm":
            val = f"np.sqrt({name})"
        out = self.fresh()
        if kept is None:
            self.emit(f"{out} = {dt}({val})")
            self.env[id(e.out)] = _Val("scalar", out)
            return
        self.emit(f"{out} = ({val}).astype({dt}).reshape({_shape(e.out.aval.shape)})")
        self.env[id(e.out)] = _Val("array", out, e.out.aval.shape)
        if _numel(e.out.aval.shape):
            self.emit(f"{out}_f = {out}.reshape(-1)")

    # -- calls -------------------------------------------------------------------------------
    def call(self, e) -> None:
        fn = getattr(self, f"call_{e.prim.name}", None)
        if e.prim.kind == "elementwise" and not e.out.aval.shape:
            return self.scalar_op(e)
        if e.prim.name in ("sum", "mean", "max", "min", "norm", "prod"):
            return self.scalar_alias(e)  # a reduction of a 0-d value is the value
        if fn is None:
            raise Unsupported(f"the Numba CPU backend has no lowering for {e.prim.name}")
        fn(e)

    def set_array(self, e, expr: str) -> None:
        name = self.fresh()
        self.emit(f"{name} = {expr}")
        shape = tuple(e.out.aval.shape)
        if shape:
            self.env[id(e.out)] = _Val("array", name, shape)
            if _numel(shape):
                self.emit(f"{name}_f = {name}.reshape(-1)")
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
        op = "math.sqrt({0} * {0})" if e.prim.name == "norm" else "{0}"
        self.emit(f"{name} = {_NP[e.out.aval.dtype]}({op.format(v.name)})")
        self.env[id(e.out)] = _Val("scalar", name)

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
        self.emit(f"return {e.params['index']}, {seen}, (__DUMMIES__)", 2)

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
        out = tuple(e.out.aval.shape)
        batch = _numel(out[:-2])
        name = self.fresh()
        self.emit(f"{name} = np.empty({_shape(out)}, {_NP[e.out.aval.dtype]})")
        self.emit(f"{name}_3 = {name}.reshape({batch}, {out[-2]}, {out[-1]})")
        a3 = f"{an}.reshape({batch}, {sa[-2]}, {sa[-1]})" if len(sa) > 2 else None
        b3 = f"{bn}.reshape({batch}, {sb[-2]}, {sb[-1]})" if len(sb) > 2 else None
        if a3:
            self.emit(f"{name}_a = {a3}")
        if b3:
            self.emit(f"{name}_b = {b3}")
        if len(sa) == 1 or len(sb) == 1:
            raise Unsupported("batched matmul with a 1-D operand")
        self.emit(f"for bi in range({batch}):")
        self.emit(f"{name}_3[bi] = np.dot({name + '_a[bi]' if a3 else an}, "
                  f"{name + '_b[bi]' if b3 else bn})", 2)
        self.env[id(e.out)] = _Val("array", name, out)
        self.emit(f"{name}_f = {name}.reshape(-1)")

    def call_permute(self, e) -> None:
        x = self.array(e.inputs[0])
        if e.params["perm"] == (1, 0) and self._only_matmul_reads(e.out):
            # BLAS takes the transpose as a flag: a view, no copy.
            self.env[id(e.out)] = _Val("tview", f"{x}.T", tuple(e.out.aval.shape))
            return
        self.set_array(e, f"np.ascontiguousarray(np.transpose({x}, {e.params['perm']!r}))")

    def _only_matmul_reads(self, v) -> bool:
        uses = self.uses.get(id(v), [])
        return bool(uses) and all(u.prim.name == "matmul" and len(u.inputs[0].aval.shape) == 2
                                  and len(u.inputs[1].aval.shape) == 2 for u in uses) and \
            id(v) not in {id(o) for o in self.g.outputs}

    def call_reshape(self, e) -> None:  # only reached for reshapes of loop results
        x = self.array(e.inputs[0])
        self.set_array(e, f"{x}.reshape({_shape(tuple(e.out.aval.shape))})")

    def call_cat(self, e) -> None:
        xs = [self.array(a) for a in e.inputs]
        self.set_array(e, f"np.concatenate(({', '.join(xs)},), axis={e.params['axis']})")

    def _axis3(self, x, axis: int) -> tuple:
        shape = tuple(x.aval.shape)
        return _numel(shape[:axis]), shape[axis], _numel(shape[axis + 1:])

    def _along_axis(self, e, out_init: str, out_view: bool) -> tuple:
        """Emit ``out = out_init``, (before, axis, after) views of the input (and of the output
        when ``out_view``), and the loops over the positions before and after the axis; returns
        (input name, output name, axis size)."""
        x = self.array(e.inputs[0])
        o, n, i = self._axis3(e.inputs[0], e.params["axis"])
        out = self.fresh()
        self.emit(f"{out} = {out_init.format(o=o, n=n, i=i)}")
        if out_view:
            self.emit(f"{out}_3 = {out}.reshape({o}, {n}, {i})")
        self.emit(f"{x}_3 = {x}.reshape({o}, {n}, {i})")
        self.emit(f"for p in range({o}):")
        self.emit(f"for q in range({i}):", 2)
        return x, out, n

    def _softmax(self, e, log: bool) -> None:
        dt = _NP[e.out.aval.dtype]
        shape = tuple(e.out.aval.shape)
        x, out, n = self._along_axis(e, f"np.empty({_shape(shape)}, {dt})", True)
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
        self.emit(f"{out}_f = {out}.reshape(-1)")

    def call_softmax(self, e) -> None:
        self._softmax(e, False)

    def call_log_softmax(self, e) -> None:
        self._softmax(e, True)

    def _arg(self, e, cmp: str) -> None:
        x, out, n = self._along_axis(e, "np.empty(({o}, {i}), np.int64)", False)
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

    def call_argmax(self, e) -> None:
        self._arg(e, ">")

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

    def _gather(self, e, x_shape: tuple):
        """For ``x[t0, t1, ...]`` with equal-shape index tensors on the leading dims: the index
        arrays' names, their shape, and the number of indexed dims."""
        spec = e.params["index"]
        if not spec or any(item[0] != "t" for item in spec):
            raise Unsupported("mixed advanced indexing")
        first = 1 if e.prim.name in ("getitem", "scatter_add") else 2
        idx = e.inputs[first:]
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
        self.emit(body.format(idx=", ".join(subs), b="b", r="r", rest=rest), 3)

    def call_getitem(self, e) -> None:
        x = self.array(e.inputs[0])
        basic = self._basic(e.params["index"])
        if basic is not None:
            return self.set_array(e, f"np.ascontiguousarray({x}[{basic}])")
        xs = tuple(e.inputs[0].aval.shape)
        names, bshape, k = self._gather(e, xs)
        out = self.fresh()
        oshape = tuple(e.out.aval.shape)
        self.emit(f"{out} = np.empty({_shape(oshape)}, {_NP[e.out.aval.dtype]})")
        self.emit(f"{out}_2 = {out}.reshape({_numel(bshape)}, {_numel(xs[k:])})")
        self.emit(f"{x}_k = {x}.reshape({_shape(xs[:k] + (_numel(xs[k:]),))})")
        self._gather_loop(names, bshape, k, xs, f"{out}_2[{{b}}, {{r}}] = {x}_k[{{idx}}, {{r}}]")
        self.env[id(e.out)] = _Val("array", out, oshape)
        if _numel(oshape):
            self.emit(f"{out}_f = {out}.reshape(-1)")
        else:
            self.env[id(e.out)] = _Val("array", out, oshape)

    def call_scatter_add(self, e) -> None:
        g = self.array(e.inputs[0])
        shape = tuple(e.params["shape"])
        dt = _NP[e.out.aval.dtype]
        out = self.fresh()
        self.emit(f"{out} = np.zeros({_shape(shape)}, {dt})")
        basic = self._basic(e.params["index"])
        if basic is not None:
            self.emit(f"{out}_v = {out}[{basic}]")
            self.emit(f"{out}_v += {g}")
        else:
            names, bshape, k = self._gather(e, shape)
            gs = tuple(e.inputs[0].aval.shape)
            self.emit(f"{g}_2 = {g}.reshape({_numel(bshape)}, {_numel(gs) // max(_numel(bshape), 1)})")
            self.emit(f"{out}_k = {out}.reshape({_shape(shape[:k] + (_numel(shape[k:]),))})")
            self._gather_loop(names, bshape, k, shape, f"{out}_k[{{idx}}, {{r}}] += {g}_2[{{b}}, {{r}}]")
        self.env[id(e.out)] = _Val("array", out, shape)
        if _numel(shape):
            self.emit(f"{out}_f = {out}.reshape(-1)")

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
        self.env[id(e.out)] = _Val("array", out, shape)
        if _numel(shape):
            self.emit(f"{out}_f = {out}.reshape(-1)")

    def call_expand(self, e) -> None:
        self.view(e)


def _root(v: _Val) -> _Val:
    while v.kind == "bcast":
        v = v.src
    return v


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _shape(shape) -> str:
    shape = tuple(int(s) for s in shape)
    return f"({shape[0]},)" if len(shape) == 1 else repr(shape)


def generate(graph: Graph) -> tuple[str, bool]:
    """Source of the kernel for ``graph`` and whether it uses parallel loops."""
    cg = Codegen(graph)
    return cg.generate(), cg.parallel


class NumbaExecutable:
    """Calls the compiled kernel: contiguous inputs in, guard failures out as exceptions."""

    __slots__ = ("kernel", "source", "consts", "out_dtypes", "guard_types", "graph", "scalar_in")

    def __init__(self, kernel, source: str, graph: Graph) -> None:
        self.kernel = kernel
        self.source = source
        self.graph = graph
        self.consts = [np.ascontiguousarray(arr) if arr.ndim else arr[()] for _, arr in graph.consts]
        self.scalar_in = [not v.aval.shape for v in graph.inputs]
        self.out_dtypes = [None if o.aval.shape else o.aval.dtype.np for o in graph.outputs]
        self.guard_types = {e.params["index"]: type(e.params["expect"]) for e in graph.eqns
                            if e.out is None and e.prim.name == "guard"}

    def __call__(self, args: list) -> list:
        prepared = self.consts + [a[()] if s else (a if a.flags.c_contiguous else
                                                    np.ascontiguousarray(a))
                                  for a, s in zip(args, self.scalar_in)]
        status, observed, outs = self.kernel(*prepared)
        if status >= 0:
            t = self.guard_types.get(status, float)
            raise GuardFailure(status, t(observed) if t in (bool, int) else observed)
        # Numba returns scalars as Python numbers: give them back their dtype, as 0-d arrays.
        return [o if dt is None else np.array(o, dtype=dt) for o, dt in zip(outs, self.out_dtypes)]

    @property
    def kernels(self) -> list:
        return [self.source]

    def text(self) -> str:
        return self.source


def _numba_type(aval):
    import numba
    scalar = {dtypes.float32: numba.float32, dtypes.float64: numba.float64,
              dtypes.int64: numba.int64, dtypes.bool_: numba.boolean}[aval.dtype]
    if not aval.shape:
        return scalar
    return numba.types.Array(scalar, len(aval.shape), "C")


class NumbaCPUBackend:
    """Compiles each trace to one ``@njit`` kernel; falls back to the reference interpreter for
    a trace it cannot generate or Numba cannot compile (logged under JITGRAD_LOG=compile)."""

    name = "numba-cpu"

    def compile(self, graph: Graph):
        from jitgrad.backends import disk_cache
        from jitgrad.backends.reference import ReferenceExecutable
        from jitgrad.runtime import _log
        try:
            source, _ = generate(graph)
        except Unsupported as e:
            _log("compile", f"reference interpreter for this trace: {e}")
            return ReferenceExecutable(graph, note=str(e))
        path, k = disk_cache.source_path(source)
        sig = tuple(_numba_type(v.aval) for v, _ in graph.consts) + \
            tuple(_numba_type(v.aval) for v in graph.inputs)
        for attempt in range(2):
            try:
                mod = disk_cache.load(path, k)
                mod.kernel.compile(sig)
                return NumbaExecutable(mod.kernel, source, graph)
            except Exception as e:  # a stale/corrupt Numba cache entry, or a typing failure
                disk_cache.purge_numba_cache(path)
                import sys
                sys.modules.pop(f"jitgrad_kernel_{k}", None)
                if attempt == 1:
                    _log("compile", f"reference interpreter for this trace: Numba failed: "
                                    f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
                    return ReferenceExecutable(graph, note=f"Numba could not compile it "
                                                           f"({type(e).__name__})")
        raise AssertionError("unreachable")
