"""The Numba CPU backend: one generated ``@njit`` function per trace.

The fusion plan becomes Python source: each loop is a loop nest (``prange`` when it is large and
its reductions allow) whose body is the registry's scalar templates; calls are NumPy code Numba
compiles (matmul through BLAS) or dedicated loops; guards return their index and the value seen.
A kernel with many guards is cut into segment functions it calls in turn (``numba_segments``),
which keeps Numba's compile time linear in the number of guards.
The source is written to the disk cache and compiled for the exact input types at once, so a
function that Numba cannot type falls back, whole, to the reference interpreter: slower, never
wrong. ``lower().as_text("kernel")`` shows the source.
"""

from __future__ import annotations

import bisect
import math
import re
import weakref

import numpy as np

from jitgrad import _blas, dtypes
from jitgrad._pysource import define
from jitgrad.backends import aot, kernel_ir, numba_pieces, numba_random, numba_segments  # noqa: F401
from jitgrad.backends.aot import numba_type
from jitgrad.backends.base import Backend, Executable
from jitgrad.backends.kernel_ir import Alias, Exit
from jitgrad.backends.numba_calls import CallsMixin
from jitgrad.backends.numba_loops import LoopsMixin
from jitgrad.backends.numba_segments import SEGMENT_COST, SEGMENT_LINES
from jitgrad.backends.scalar_code import broadcast_index as _broadcast_index, scalar_expr
from jitgrad.backends.loop_emitter import emit_body
from jitgrad.backends.numba_values import (_NP, PARALLEL_MIN, STATUS_LIBM,
                                           STATUS_OK, Unsupported, _numel,
                                           _root, _shape, _Val, literal,
                                           unused_flat_aliases)
from jitgrad.ops.control import guard_failure, guard_types
from jitgrad.ir.graph import Graph, Lit, Var
from jitgrad.ops.elementwise import cos_p, sin_p
from jitgrad.ops.linalg import matmul_p
from jitgrad.ops.control import guard_p
from jitgrad.ops.shape import reshape_p
from jitgrad.transforms.fusion import LoopNest as Loop, View, fuse, is_reduction

_BLOCK = 1024  # elements per block of a loop whose reductions are buffered
# An array made at a static shape: from HUGEPAGE_MIN_BYTES on, kernels ask for huge pages for
# it (``_numba_helpers.hugepages``), as NumPy does for its own.
HUGEPAGE_MIN_BYTES = 4 << 20
# The names generated code uses for loop indices and block temporaries (local to one step).
_LOCALS = re.compile(r"\b(?:i\d*|j\d*|blk|lo|hi|s|p|q|k|b|r)\b")
# Loop bodies use the registry's vectorizable templates (``Primitive.vector``; libm's are scalar
# calls, 3x slower here) but below this many elements keep libm: vectorizing saves little there
# and costs compile time.
_VECTOR_MIN = 4096
# What a compile costs, for the runtime's choice between interpreting a trace and compiling it
# (``NumbaCPUBackend.compile_cost``), predicted from the kernel's size: UNIT_SECONDS for each
# function Numba compiles and LINE_SECONDS for each line of it, as measured on a 2-core x86-64
# machine (a small GPT's 22 pieces: 0.2-0.4 s for 20 lines, 1.4 s for 70, 1.6-3 s for 90-110),
# shared between the processes that compile pieces side by side, plus IMPORT_SECONDS while Numba
# is not loaded (its NumPy support imports SciPy for BLAS) and LOAD_SECONDS for each module
# its disk cache holds already. Each compile measures how this machine compares (``_pace``: the
# seconds it took over the seconds predicted), and later predictions follow it.
UNIT_SECONDS = 0.1
LINE_SECONDS = 0.014
IMPORT_SECONDS = 0.8
LOAD_SECONDS = 0.03
_pace = 1.0
# Kernels of this many lines or more compile as shared pieces (numba_pieces).
PIECES_LINES = SEGMENT_LINES


class Codegen(CallsMixin, LoopsMixin):
    """Turns a fusion plan into the source of one ``@njit`` kernel (``nested``: the code of a
    loop's body, inlined in the kernel; ``libm``: the kernel's twin, which computes every sin
    and cos with libm, for arguments beyond the vectorized functions' range)."""

    def __init__(self, graph: Graph, nested: bool = False, libm: bool = False) -> None:
        self.g = graph
        self.is_nested = nested
        self.libm = libm
        self.tag = ""  # a prefix of every generated name (a loop body inlined in a kernel)
        self.tuples: dict[int, list] = {}  # id(loop results) -> the names of its values
        self.loops: dict[int, tuple] = {}  # id(while results) -> (carries, trip count, tapes)
        self.outputs = {id(o) for o in graph.outputs if isinstance(o, Var)}
        self.plan = fuse(graph)
        self.lines: list[str] = []
        self.env: dict[int, _Val] = {}
        self.n = 0
        self.parallel = False
        self.has_blas = any(e.prim is matmul_p for e in graph.eqns)
        self.host_ops: list = []  # (primitive, source line, why) run in object mode
        self.uses: dict[int, list] = {}
        for e in graph.eqns:
            for a in e.inputs:
                if isinstance(a, Var):
                    self.uses.setdefault(id(a), []).append(e)

    def fresh(self, prefix: str = "v") -> str:
        self.n += 1
        return f"{self.tag}{prefix}{self.n}"

    def emit(self, line: str, depth: int = 1) -> None:
        self.lines.append("    " * depth + line)

    def exit(self, status: int, seen: str, depth: int = 1) -> None:
        """Emit an early return of ``status`` and the value ``seen`` (kernel_ir.Exit: what it
        hands back for the outputs is written once the functions holding it are known)."""
        self.lines.append(Exit(status, seen, depth))

    def flat_alias(self, name: str, shape, depth: int = 1) -> None:
        """Emit ``name_f``, the flat view of array ``name`` that flat loops index (kernel_ir.Alias;
        the kernel drops the ones no loop reads)."""
        self.lines.append(Alias(name, len(shape), depth))

    def alloc(self, name: str, shape: tuple, dt: str, depth: int = 1) -> None:
        """Emit ``name = np.empty(shape, dt)`` (``dt``: NumPy's name, ``np.float64``); a large
        one asks for huge pages, outside a loop body inlined in a kernel."""
        self.emit(f"{name} = np.empty({_shape(shape)}, {dt})", depth)
        nbytes = math.prod(int(s) for s in shape) * np.dtype(dt.removeprefix("np.")).itemsize
        if not self.is_nested and nbytes >= HUGEPAGE_MIN_BYTES:
            self.emit(f"hugepages({name})", depth)

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
        parts = _broadcast_index(v.shape, shape, idx)
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
            self.alloc(name, shape, dt, depth)
            idx = [f"j{i}" for i in range(len(shape))]
            for i, s in enumerate(shape):
                self.emit(f"for j{i} in range({s}):", depth + i)
            parts = _broadcast_index(src.shape, shape, idx)
            self.emit(f"{name}[{', '.join(idx)}] = {src.name}[{', '.join(parts)}]",
                      depth + len(shape))
        if _numel(shape):
            self.flat_alias(name, shape, depth)
        if isinstance(a, Var):
            self.env[id(a)] = _Val("array", name, shape)
        return name

    # -- the program -------------------------------------------------------------------------
    def steps(self) -> list[int]:
        """Emit the plan's steps; returns where segments may start (numba_segments): after a
        budget of guards, or of lines when the kernel is long enough that one function would
        cost more to compile than the calls between segments."""
        # Where segments may start (and those a guard budget set), and guards since the last
        # of those: counted apart from the line cuts, so that a short kernel, which keeps only
        # the guard cuts, is cut exactly every SEGMENT_COST guards.
        cuts, by_guards, cost = [], [], 0
        self.starts, self.heavy = [], []  # each step's first line, and whether it is a matmul
        for k, step in enumerate(self.plan.steps):
            here = len(self.lines)
            self.starts.append(here)
            self.heavy.append(not isinstance(step, (Loop, View)) and step.eqn.prim is matmul_p)
            if not self.is_nested and cost >= SEGMENT_COST:
                cuts.append(here)
                by_guards.append(here)
                cost = 0
            elif not self.is_nested and here - (cuts[-1] if cuts else 0) >= SEGMENT_LINES:
                cuts.append(here)
            if isinstance(step, Loop):
                self.loop(step)
            elif isinstance(step, View):
                self.view(step.eqn)
            else:
                self.call(step.eqn)
                cost += step.eqn.prim is guard_p
            # Loop indices and block temporaries of their own per step: a name assigned in many
            # places costs Numba's SSA pass a rewrite of the whole function.
            def own(text: str, k: int = k) -> str:
                return _LOCALS.sub(rf"\g<0>_{k}", text)
            self.lines[here:] = [kernel_ir.statement(line, rename=own)
                                 for line in self.lines[here:]]
        return cuts if len(self.lines) >= 3 * SEGMENT_LINES else by_guards

    def output_names(self) -> list[str]:
        """Names holding the graph's outputs (arrays materialized, scalars as they are)."""
        outs = []
        for o in self.g.outputs:
            v = self.val(o)
            if isinstance(o, Lit) or not o.aval.shape:
                outs.append(_root(v).name if v.kind != "temp" else v.name)
            else:
                outs.append(self.array(o))
        return outs

    def generate(self) -> str:
        g = self.g
        args = []
        for i, (v, _) in enumerate(g.consts):
            args.append(self.bind_input(v, f"c{i}"))
        for i, v in enumerate(g.inputs):
            args.append(self.bind_input(v, f"a{i}"))
        cuts = self.steps()
        outs = self.output_names()
        dummies = []
        for o in g.outputs:
            dt = _NP[o.aval.dtype]
            if o.aval.shape:
                dummies.append(f"np.empty({_shape((0,) * len(o.aval.shape))}, {dt})")
            else:
                dummies.append(f"{dt}(0)")
        self.emit(f"return {STATUS_OK}, 0.0, ({', '.join(outs)},)")
        decorator = f"@numba.njit(cache=CACHE, parallel={self.parallel}, error_model='numpy')"
        head = ["import math", "import numpy as np", "import numba",
                kernel_ir.CACHE_LINE,
                "from jitgrad.backends._numba_helpers import (bmm, bmm_left, clamp, floor,",
                "                                             floordiv, hugepages, isinf, isnan,",
                "                                             max2, min2, rand_u32, rand_u64, sign)",
                "from jitgrad.backends._vecmath import (libm_ok, libm_sincos, trig_ok, vcos, vexp,",
                "                                       vsin, vsincos, vtanh)",
                "from jitgrad.backends._vecmath32 import vexp32, vtanh32",
                ""]
        if self.host_ops:
            head.insert(-1, "from jitgrad.backends.numba_host import run_host")
        dead = unused_flat_aliases(self.lines)
        lines = [line for i, line in enumerate(self.lines) if i not in dead]
        out_dummies = ", ".join(dummies) + ","
        gone = sorted(dead)
        if len(lines) >= PIECES_LINES and not self.is_nested:
            # A long kernel: pieces shared by content (numba_pieces), cut before matmuls.
            starts = [c - bisect.bisect_left(gone, c) for c in self.starts]
            pieces = numba_pieces.build(lines, numba_pieces.groups(lines, starts, self.heavy),
                                        args, self.value_types(), head[:-1], decorator,
                                        out_dummies)
            if pieces is not None:
                return pieces
        if cuts:
            # the cuts, in the pruned lines
            cuts = [c - bisect.bisect_left(gone, c) for c in cuts]
            split = numba_segments.split(lines, cuts, args, self.value_types(), decorator,
                                         out_dummies)
            if split is not None:
                return "\n".join(head) + "\n" + split
        body = "\n".join(kernel_ir.render(lines, out_dummies))
        return "\n".join(head + [decorator, f"def kernel({', '.join(args)}):"]) + "\n" + \
            body + "\n"

    def value_types(self) -> dict:
        """``name -> (dtype text, ndim)`` of the generated names that hold IR values."""
        g = self.g
        out = {}
        for v in [c for c, _ in g.consts] + list(g.inputs) + [e.out for e in g.eqns if e.out]:
            val = self.env.get(id(v))
            if val is not None and val.kind in ("array", "scalar", "tview") and \
                    val.name.isidentifier():
                out[val.name] = (_NP[v.aval.dtype], len(v.aval.shape) if val.kind != "scalar"
                                 else 0)
        return out

    def publish(self, var, name: str, shape) -> None:
        """``var`` is now the contiguous array ``name`` (with a flat alias for flat loops)."""
        self.env[id(var)] = _Val("array", name, shape)
        if _numel(shape):
            self.flat_alias(name, shape)

    def bind_input(self, v: Var, name: str) -> str:
        if v.aval.shape:
            self.publish(v, name, v.aval.shape)
        else:
            self.env[id(v)] = _Val("scalar", name)
        return name

    def view(self, e) -> None:
        src = self.val(e.inputs[0])
        shape = tuple(e.out.aval.shape)
        if e.prim is reshape_p and _root(src).kind != "scalar":
            # A reshape of an array is a view of it (a broadcast one is materialized first).
            name = src.name if src.kind == "array" else self.array(e.inputs[0])
            out = self.fresh()
            if not shape:  # to 0-d: the one element, a scalar (Numba's 0-d arrays are not)
                n = len(e.inputs[0].aval.shape)
                self.emit(f"{out} = {name}[{', '.join(['0'] * n) if n else '()'}]")
                self.env[id(e.out)] = _Val("scalar", out)
                return
            self.emit(f"{out} = {name}.reshape({_shape(shape)})")
            self.publish(e.out, out, shape)
        else:  # expand, or a reshape of a scalar: a broadcast read in place
            self.env[id(e.out)] = _Val("bcast", "", shape, src)

    # -- loops -------------------------------------------------------------------------------
    def loop(self, lp: Loop) -> None:
        shape = lp.shape
        size = _numel(shape)
        mat = self.plan.materialize
        reds = [e for e in lp.eqns if is_reduction(e)]
        full = all(not e.out.aval.shape for e in reds)
        arrays_full = all(
            _root(self.val(a)).kind != "array" or tuple(_root(self.val(a)).shape) == shape
            for e in lp.eqns for a in e.inputs if not (isinstance(a, Var) and id(a) in lp.produced))
        flat = full and arrays_full and size > 0
        # No threads beside BLAS: its spinning workers and Numba's would share two cores.
        par = size >= PARALLEL_MIN and full and not self.has_blas and all(
            e.prim.reduction.combine == "add" for e in reds)
        if par:
            self.parallel = True
        for e in lp.eqns:
            if not is_reduction(e) and id(e.out) in mat:
                name = self.fresh()
                self.alloc(name, shape, _NP[e.out.aval.dtype])
                self.publish(e.out, name, shape)  # later flat loops read it through name_f
        start = len(self.lines)
        flag = self.fresh("tb")
        if self.loop_body(lp, shape, size, flat, par, flag):
            # The vectorized sin/cos reduce arguments exactly only below 2**19: when any
            # argument was larger, the kernel says so (-2) and the caller runs its libm twin.
            self.lines.insert(start, f"    {flag} = 0")
            self.emit(f"if {flag} > 0:")
            self.exit(STATUS_LIBM, "0.0", 2)
        for e in lp.eqns:  # temps are not visible after the loop
            if id(e.out) not in self.env:
                self.env[id(e.out)] = _Val("temp", "<dead>")

    def loop_body(self, lp: Loop, shape, size, flat, par, flag) -> bool:
        """Emit accumulators, the loop nest and the reductions' results; returns whether the
        body calls the vectorized sin/cos (which then need a fallback)."""
        mat = self.plan.materialize
        accs = {id(e): self.reduction_init(e) for e in lp.eqns if is_reduction(e)}
        rng = "numba.prange" if par else "range"
        blocked = flat and bool(accs) and size > _BLOCK
        if blocked:
            # Reductions go through a block buffer, so the elementwise loop carries no
            # floating-point recurrence and LLVM can vectorize it.
            nblk = -(-size // _BLOCK)
            self.emit(f"for blk in {rng}({nblk}):")
            self.emit(f"lo = blk * {_BLOCK}", 2)
            self.emit(f"hi = min(lo + {_BLOCK}, {size})", 2)
            for k in accs:
                self.emit(f"{accs[k][0]}_b = np.empty({_BLOCK}, np.float64)", 2)
            self.emit("for i in range(lo, hi):", 2)
            idx, fl, depth = None, "i", 3
        elif flat:
            self.emit(f"for i in {rng}({size}):")
            idx, fl, depth = None, "i", 2
        else:
            idx = [f"i{k}" for k in range(len(shape))]
            for k, s in enumerate(shape):
                self.emit(f"for i{k} in {rng if k == 0 else 'range'}({s}):", 1 + k)
            fl, depth = None, 1 + len(shape)
        trig = False
        # sin and cos of the same value share one range reduction (the backward of sin is cos).
        kinds: dict = {}
        for e in lp.eqns:
            if e.prim in (sin_p, cos_p) and e.out.aval.dtype.is_floating_point:
                kinds.setdefault(_key(e.inputs[0]), set()).add(e.prim)
        pairs: dict = {}  # value key -> name of its (sin, cos) tuple
        vector = size >= _VECTOR_MIN

        def reduce(e, v: str) -> None:
            if blocked:
                self.emit(f"{accs[id(e)][0]}_b[i - lo] = {e.prim.reduction.map.format(v)}", depth)
            else:
                self.reduction_step(e, accs[id(e)], v, shape, idx, depth)

        # The libm twin has the same statements, with libm's functions (its check passes).
        ok, sincos = ("libm_ok", "libm_sincos") if self.libm else ("trig_ok", "vsincos")

        def value(e, args: list) -> str:
            nonlocal trig
            t = self.fresh("t")
            if vector and e.prim in (sin_p, cos_p) and e.out.aval.dtype.is_floating_point:
                trig = True
                key = _key(e.inputs[0])
                if len(kinds[key]) == 2:
                    if key not in pairs:
                        pairs[key] = self.fresh("sc")
                        self.emit(f"{flag} += 0 if {ok}({args[0]}) else 1", depth)
                        self.emit(f"{pairs[key]} = {sincos}({args[0]})", depth)
                    # the value is its half of the pair, typed as the equation's
                    text = self.expr(e, [f"{pairs[key]}[{0 if e.prim is sin_p else 1}]"],
                                     template="{0}")
                else:
                    self.emit(f"{flag} += 0 if {ok}({args[0]}) else 1", depth)
                    text = self.expr(e, args, vector=not self.libm)
            else:
                text = self.expr(e, args, vector=vector)
            self.emit(f"{t} = {text}", depth)
            return t

        def store(e, t: str) -> None:
            target = f"{self.env[id(e.out)].name}_f[i]" if flat else \
                f"{self.env[id(e.out)].name}[{', '.join(idx)}]"
            self.emit(f"{target} = {t}", depth)

        emit_body(lp, mat, lambda a: self.read(a, shape, idx, fl), value, reduce, store)
        if blocked:
            for e in lp.eqns:
                if id(e) in accs:
                    self.block_combine(e, accs[id(e)][0])
        for e in lp.eqns:
            if id(e) in accs:
                self.reduction_finish(e, accs[id(e)], shape)
        return trig

    def block_combine(self, e, acc: str) -> None:
        """Fold one block's buffered values into the accumulator, in order."""
        red = e.prim.reduction
        if red.combine in ("add", "mul"):
            op = "+=" if red.combine == "add" else "*="
            self.emit(f"s = {red.identity(True)}.0", 2)
            self.emit("for j in range(hi - lo):", 2)
            self.emit(f"s {op} {acc}_b[j]", 3)
            self.emit(f"{acc} {op} s", 2)
            return
        cmp = ">" if red.combine == "max" else "<"
        self.emit("for j in range(hi - lo):", 2)
        self.emit(f"if {acc}_b[j] {cmp} {acc} or {acc}_b[j] != {acc}_b[j]:", 3)
        self.emit(f"{acc} = {acc}_b[j]", 4)

    def expr(self, e, args: list[str], vector: bool = False, template: str | None = None) -> str:
        return scalar_expr(e, args, vector, template)

    def reduction_init(self, e) -> tuple:
        x = e.inputs[0].aval
        dt = e.out.aval.dtype
        acc_dt = "np.float64" if dt.is_floating_point else _NP[dt if dt is not dtypes.bool_
                                                                 else dtypes.int64]
        init = e.prim.reduction.identity(dt.is_floating_point)
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
        red = e.prim.reduction
        if red.combine in ("add", "mul"):
            self.emit(f"{target} {'+=' if red.combine == 'add' else '*='} {red.map.format(v)}",
                      depth)
        else:
            cmp = ">" if red.combine == "max" else "<"
            self.emit(f"if {v} {cmp} {target} or {v} != {v}:", depth)
            self.emit(f"    {target} = {v}", depth)

    def reduction_finish(self, e, acc, shape) -> None:
        name, kept, axes = acc
        dt = _NP[e.out.aval.dtype]
        n = _numel([shape[a] for a in axes])
        # (over an array of accumulators, NumPy's functions where a scalar's are math's)
        val = e.prim.reduction.finish.format(name, n=n, m="math" if kept is None else "np")
        out = self.fresh()
        if kept is None:
            self.emit(f"{out} = {dt}({val})")
            self.env[id(e.out)] = _Val("scalar", out)
            return
        self.emit(f"{out} = ({val}).astype({dt}).reshape({_shape(e.out.aval.shape)})")
        self.publish(e.out, out, e.out.aval.shape)



class NumbaExecutable(Executable):
    """Calls the compiled kernel: contiguous inputs in, guard failures out as exceptions.

    The call itself is a few lines of Python generated for this kernel's inputs and outputs
    (no loops over flags per call): it is on every compiled call's path."""

    __slots__ = ("kernel", "source", "graph", "guard_types", "_call", "_libm", "_ns", "_params",
                 "_outs", "new_outputs", "host_ops", "_blas")

    def __init__(self, kernel, source: str, graph: Graph) -> None:
        self.kernel = kernel
        self.source = source
        self.graph = graph
        self._libm = None
        self.host_ops: tuple = ()  # equations run in object mode (numba_host)
        self.guard_types = guard_types(graph)
        # a kernel with matmuls lets the BLAS threads follow the machine's load (_blas.tick)
        self._blas = any(e.prim is matmul_p for e in graph.walk())
        ns = {"kernel": kernel, "slow": self._slow, "_a": np.array, "_c": _contiguous,
              "tick": _blas.tick}
        params = []  # the kernel's arguments; {j} is the j-th input array
        for i, (_, arr) in enumerate(graph.consts):
            ns[f"c{i}"] = np.ascontiguousarray(arr) if arr.ndim else arr[()]
            params.append(f"c{i}")
        for j, v in enumerate(graph.inputs):
            params.append(f"{{{j}}}[()]" if not v.aval.shape else f"_c({{{j}}})")
        self._ns, self._params = ns, params
        args = [f"args[{j}]" for j in range(len(graph.inputs))]
        outs = []
        for i, o in enumerate(graph.outputs):
            if o.aval.shape:
                outs.append(f"outs[{i}]")
            else:  # Numba returns scalars as Python numbers: restore the dtype, as 0-d arrays
                ns[f"d{i}"] = o.aval.dtype.np
                outs.append(f"_a(outs[{i}], d{i})")
        # 0-d outputs are new arrays on every call: never a view of an argument to copy.
        self.new_outputs = frozenset(i for i, o in enumerate(graph.outputs) if not o.aval.shape)
        src = (f"def call(args):\n    {self._kernel_call(args)}\n"
               f"    if status != {STATUS_OK}:\n        return slow(status, observed, args)\n"
               f"    return [{', '.join(outs)}]\n")
        self._call = define(src, "call", ns, "kernel call")
        self._outs = outs

    @property
    def dense_outputs(self) -> bool:
        """Whether every output is a writable C-contiguous array (the runtime then skips the
        check of each result's flags): Numba's arrays are, as the kernel's outputs are typed C
        arrays; an equation run on the host gives its NumPy body's array, which may be
        read-only."""
        return not self.host_ops

    def _kernel_call(self, arrays: list[str]) -> str:
        """The line that runs the kernel on the input arrays ``arrays`` (expressions)."""
        call = f"status, observed, outs = kernel({', '.join(p.format(*arrays) for p in self._params)})"
        return f"tick(); {call}" if self._blas else call

    def steady(self, prologue: list[str], finish: list[str], ns: dict):
        """One function for a whole steady-state call, ``steady(args)``: ``prologue`` (lines of
        code) checks the arguments and binds the input arrays to ``v0, v1, ...``, the kernel
        runs, and ``finish`` builds the result from the outputs ``o0, o1, ...``
        (``ns['build']`` builds it from an output list, for the libm twin). A failed guard
        raises GuardFailure, as ``__call__``."""
        vs = [f"v{j}" for j in range(len(self.graph.inputs))]
        lines = ["def steady(args):"] + ["    " + line for line in prologue] + [
            f"    {self._kernel_call(vs)}",
            f"    if status != {STATUS_OK}:",
            f"        return build(slow(status, observed, [{', '.join(vs)}]))"]
        lines += [f"    o{i} = {o}" for i, o in enumerate(self._outs)]
        lines += ["    " + line for line in finish]
        return define("\n".join(lines), "steady", dict(self._ns, **ns), "steady call")

    def _slow(self, status: int, observed, args: list) -> list:
        if status == STATUS_LIBM:  # a sin/cos argument beyond the vectorized range
            if self._libm is None:
                self._libm = compile_source(libm_twin(self.graph), self.graph, aot_ok=False)
            return self._libm(args)
        raise guard_failure(self.guard_types, status, observed)

    def __call__(self, args: list) -> list:
        return self._call(args)

    @property
    def kernels(self) -> list:
        return [self.source]

    def text(self) -> str:
        return self.source


def _key(a):
    """Identifies an equation's operand: the same key, the same value in a loop."""
    return ("lit", a.value, a.aval.dtype) if isinstance(a, Lit) else id(a)


def _contiguous(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _numba_type(aval):
    return numba_type(aval.dtype.np.name, len(aval.shape))


class NumbaCPUBackend(Backend):
    """Compiles each trace to one ``@njit`` kernel; falls back to the reference interpreter for
    a trace it cannot generate or Numba cannot compile (logged under JITGRAD_LOG=compile)."""

    name = "numba-cpu"
    defers_compile = True

    def compile(self, graph: Graph):
        from jitgrad.backends.reference import ReferenceExecutable
        from jitgrad._settings import log as _log
        _build_later.pop(id(graph), None)
        try:
            source, host_ops = _generate(graph)
            # object-mode blocks do not build ahead of time: no AOT for those kernels
            exe = compile_source(source, graph, aot_ok=not host_ops)
            exe.host_ops = host_ops
            return exe
        except Unsupported as e:
            _log("compile", f"reference interpreter for this trace: {e}")
            return ReferenceExecutable(graph, note=str(e))
        except _NumbaFailed as e:
            _log("compile", f"reference interpreter for this trace: Numba failed: {e}")
            return ReferenceExecutable(graph, note=f"Numba could not compile it ({e.kind})")

    def start_build(self, graph: Graph):
        """Compile ``graph``'s kernel in a build process (``numba_build``) and return its
        handle; None where it cannot (the caller then compiles in place, as ``compile``)."""
        from jitgrad.backends import numba_build
        try:
            source = _generate(graph)[0]
        except Unsupported:
            return None  # the interpreter runs it either way: compile() says so at once
        if isinstance(source, numba_pieces.Pieces):
            # one process per core: the interpreter's calls share the cores with the build for
            # a while, and the kernel arrives in half the time
            todo = [job for job in _piece_jobs(source, _unbuilt(source)) if not _cached(job[0])]
            return numba_build.start(todo, numba_build.workers())
        from jitgrad.backends import disk_cache
        return numba_build.start([(*disk_cache.source_path(source), "kernel",
                                   [(v.aval.dtype.np.name, len(v.aval.shape))
                                    for v in _arguments(graph)])])

    @staticmethod
    def build_later(graph: Graph) -> None:
        """Build ``graph``'s kernel ahead of time when this process exits, unless it compiled
        by then: a trace the interpreter ran for a whole process runs compiled in the next."""
        if aot.enabled():
            _build_later[id(graph)] = graph

    def compile_cost(self, graph: Graph) -> float:
        """The seconds that compiling ``graph`` is expected to take now: none for a kernel built
        ahead of time, whole or every piece of it (it loads in milliseconds), or one Numba
        cannot take (the interpreter runs it either way); else ``predicted_seconds``."""
        try:
            source, ak, _ = _lowering(graph)
        except Unsupported:
            return 0.0
        if isinstance(source, numba_pieces.Pieces):
            from jitgrad.backends import numba_build
            units = [source.units[n] for n in _unbuilt(source)]
            parallel = numba_build.workers()  # (the pieces compile side by side)
        else:
            if ak is not None and aot.enabled() and aot.built(ak):
                return 0.0
            units, parallel = [source], 1
        return predicted_seconds(units, parallel)


def predicted_seconds(units: list, parallel: int = 1) -> float:
    """What compiling the modules ``units`` (their sources) is predicted to take, ``parallel``
    of them at a time: Numba's import if it is not loaded, a load for each one its disk cache
    holds, and the size of the others, at this process's pace (none for no modules: all of a
    kernel's pieces were built ahead of time)."""
    import os
    import sys

    if not units:
        return 0.0

    from jitgrad.backends import disk_cache
    d = disk_cache.cache_dir()
    work = loads = 0.0
    for text in units:
        if d is not None and disk_cache._numba_files(
                os.path.join(d, f"jg_{disk_cache.key(text)}.py")):
            loads += LOAD_SECONDS
        else:
            work += _work([text])
    return (0.0 if "numba" in sys.modules else IMPORT_SECONDS) + loads + \
        _pace * work / max(1, min(parallel, len(units)))


def _measured(seconds: float, units: list, parallel: int) -> None:
    """Follow the pace of a compile of the modules ``units`` (none of them cached) that took
    ``seconds``: later predictions scale by it (within a factor of 4 of the measured
    machine's)."""
    global _pace
    work = _work(units)
    if work > 0:
        _pace = min(4.0, max(0.25, seconds * max(1, min(parallel, len(units))) / work))


def _work(units: list) -> float:
    """The seconds compiling the modules ``units`` took on the machine the constants were
    measured on (``_pace`` 1)."""
    return sum(UNIT_SECONDS + LINE_SECONDS * text.count("\n") for text in units)


def _aot_key(source: str, graph: Graph) -> str | None:
    """The key of ``source``'s module built ahead of time, or None for a kernel that does not
    build so (a parallel one). An AOT module takes exactly the argument types it was built for:
    they are in its key."""
    if "parallel=False" not in source or isinstance(source, numba_pieces.Pieces):
        return None  # (pieces load from Numba's cache, each shared by content)
    return aot.key(source + "".join(f"\n# {v.aval.dtype} {len(v.aval.shape)}"
                                    for v in _arguments(graph)))


# graph -> (its kernel source, the equations that run on the host): generated once per graph,
# which the rule of when to compile, a build process's start and the compile all ask for (a
# model's step takes a quarter of a second to generate)
_generated: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _generate(graph: Graph) -> tuple:
    """``graph``'s kernel source and its host equations (``Codegen.host_ops``); raises
    ``Unsupported``."""
    got = _generated.get(graph)
    if got is None:
        cg = Codegen(graph)
        got = _generated[graph] = (cg.generate(), tuple(cg.host_ops))
    return got


def _lowering(graph: Graph) -> tuple:
    """``graph``'s kernel source, its AOT key (None for a kernel that does not build ahead of
    time: a parallel one, or one with object-mode blocks) and its arguments' (NumPy dtype name,
    number of dimensions); raises ``Unsupported``."""
    source, host_ops = _generate(graph)
    ak = None if host_ops else _aot_key(source, graph)
    return source, ak, [(v.aval.dtype.np.name, len(v.aval.shape)) for v in _arguments(graph)]


def _arguments(graph: Graph) -> list:
    """The kernel's arguments, in order: the graph's constants, then its inputs."""
    return [c for c, _ in graph.consts] + list(graph.inputs)


# id -> graph: NumbaCPUBackend.build_later's, held weakly (a graph's constants may be large)
_build_later: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _queue_builds() -> None:
    """At exit: queue the AOT builds of the interpreted traces that never compiled."""
    for graph in list(_build_later.values()):
        try:
            source, ak, arg_types = _lowering(graph)
        except Exception:  # noqa: BLE001  (Unsupported, or any failure: exit goes on unbuilt)
            continue
        if isinstance(source, numba_pieces.Pieces):
            counted = True  # the pieces of one kernel count as one build
            for name, k in _piece_aot_keys(source).items():
                if aot.request_source(source.units[name], k, source.sigs[name], counted):
                    counted = False
        elif ak is not None:
            aot.request_source(source, ak, arg_types)
    _build_later.clear()


class _NumbaFailed(Exception):
    def __init__(self, e: Exception) -> None:
        super().__init__(f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")
        self.kind = type(e).__name__


def libm_twin(graph: Graph):
    """The source of ``graph``'s kernel with libm's sin and cos, for arguments beyond the
    vectorized range: generated again from the graph, not edited from the first kernel's text."""
    return Codegen(graph, libm=True).generate()


def compile_source(source: str, graph: Graph, aot_ok: bool = True) -> NumbaExecutable:
    """Write ``source`` to the disk cache, compile it for ``graph``'s input types, and wrap it.
    A stale or corrupt Numba cache entry is purged and compiled again once. A serial kernel
    compiled ahead of time (``aot``) loads without Numba; one that is not yet is queued."""
    import os
    import sys
    import time

    if isinstance(source, numba_pieces.Pieces):
        return _compile_pieces(source, graph)
    ak = _aot_key(source, graph) if aot_ok and aot.enabled() else None
    if ak is not None:
        kernel = aot.load(ak)
        if kernel is not None:
            return NumbaExecutable(kernel, source, graph)
    from jitgrad.backends import disk_cache
    path, k = disk_cache.source_path(source)  # (imports Numba)
    t0 = time.perf_counter()
    fresh = not _cached(path)
    sig = tuple(_numba_type(v.aval) for v in _arguments(graph))
    retried = False
    while True:
        try:
            mod = disk_cache.load(path, k, source)
            mod.kernel.compile(sig)
            if fresh:
                _measured(time.perf_counter() - t0, [source], 1)
            disk_cache.record_numba_cache(path)
            if ak is not None and path is not None:
                aot.request(path, ak, next(s for s in mod.kernel.nopython_signatures
                                           if s.args == sig))
            return NumbaExecutable(mod.kernel, source, graph)
        except OSError as e:  # Numba could not write its cache (a full disk): go on in memory
            sys.modules.pop(f"jitgrad_kernel_{k}", None)
            if path is None:
                raise _NumbaFailed(e) from e
            disk_cache.purge_numba_cache(path)
            disk_cache.disable(f"{os.path.dirname(path)!r} cannot be written "
                               f"({disk_cache._reason(e)})")
            path = None
        except Exception as e:  # a stale/corrupt Numba cache entry, or a typing failure
            sys.modules.pop(f"jitgrad_kernel_{k}", None)
            if path is not None:
                disk_cache.purge_numba_cache(path)
            if retried:
                raise _NumbaFailed(e) from e
            retried = True


def _piece_jobs(source, names=None) -> list:
    """Each distinct piece (of ``names``, by default all) as a build job: its module written to
    the disk cache (path, key), its function's name and its argument types."""
    from jitgrad.backends import disk_cache
    return [(*disk_cache.source_path(source.units[name]), "unit", source.sigs[name])
            for name in (source.units if names is None else names)]


def _unbuilt(source) -> list:
    """The names of the pieces of ``source`` not built ahead of time (all, with AOT off)."""
    if not aot.enabled():
        return list(source.units)
    return [n for n, k in _piece_aot_keys(source).items() if not aot.built(k)]


def _piece_aot_keys(source) -> dict:
    """Each distinct piece's AOT key (its text and argument types, as ``_aot_key``)."""
    return {name: aot.key(text + "".join(f"\n# {d} {n}" for d, n in source.sigs[name]))
            for name, text in source.units.items()}


def _cached(path: str | None) -> bool:
    """Whether Numba's disk cache holds a compiled piece for the module at ``path``."""
    from jitgrad.backends import disk_cache
    return path is not None and bool(disk_cache._numba_files(path))


def _compile_pieces(source, graph: Graph) -> NumbaExecutable:
    """Load (or compile) each distinct piece from its own module in the disk cache, keyed by its
    text, and the plain-Python driver that calls them in turn."""
    import sys
    import time

    from jitgrad.backends import disk_cache, numba_build
    ns: dict = {"np": np}
    # The pieces built ahead of time load without Numba (a warm start that needs no other
    # piece never imports it); the others load from Numba's cache or compile, and are queued
    # to build ahead of time for the next process.
    aot_keys = _piece_aot_keys(source) if aot.enabled() else {}
    for name, k in aot_keys.items():
        unit = aot.load(k)
        if unit is not None:
            ns[name] = unit
    names = [name for name in source.units if name not in ns]
    jobs = _piece_jobs(source, names)  # (each piece's module written once, read by both loops)
    t0 = time.perf_counter()
    todo = [job for job in jobs if not _cached(job[0])]
    fresh = [source.units[name] for name, job in zip(names, jobs) if job in todo]
    parallel = 1
    if len(todo) >= 2 * numba_build.workers() > 2:
        # Compiled in place but on every core: the pieces are independent, so build processes
        # compile those not cached yet side by side into the disk cache, and this process loads
        # them (a failed build leaves its pieces to the loop below, which compiles what is not
        # cached). A warm start starts none: a process costs a second of imports.
        build = numba_build.start(todo, numba_build.workers())
        if build is not None:
            build.wait()
            parallel = numba_build.workers()
    counted = True  # the pieces of one kernel count as one AOT build
    for name, (path, k, _, sig) in zip(names, jobs):
        try:
            mod = disk_cache.load(path, k, source.units[name])
            args = tuple(numba_type(d, n) for d, n in sig)
            mod.unit.compile(args)
            disk_cache.record_numba_cache(path)
            ns[name] = mod.unit
            if aot_keys and path is not None and aot.request(
                    path, aot_keys[name],
                    next(s for s in mod.unit.nopython_signatures if s.args == args), counted):
                counted = False
        except Exception as e:  # noqa: BLE001  (a piece Numba cannot take: the interpreter runs)
            sys.modules.pop(f"jitgrad_kernel_{k}", None)
            if path is not None:
                disk_cache.purge_numba_cache(path)
            raise _NumbaFailed(e) from e
    driver = define(source.driver, "kernel", ns, "pieces driver")  # the pieces' calls in turn
    if fresh:
        _measured(time.perf_counter() - t0, fresh, parallel)
    return NumbaExecutable(driver, source, graph)


aot.before_exit.append(_queue_builds)
