"""The CUDA backend (NVIDIA's numba-cuda): one kernel per fusion group and a host driver per trace.

Loops of the fusion plan become grid-stride kernels over flat device arrays: elementwise bodies
from the registry's scalar templates, full reductions as block reductions in shared memory
finished with one atomic per block, partial reductions (kept axes) with atomics per element.
Scalar work (0-d arithmetic and the guards) runs in single-thread kernels, so a data-dependent
``while`` loop never copies its tensors to the host: a failed guard writes its index and the value
it saw to a two-element status array, the only thing read back. Matmul is a tiled shared-memory
kernel (cuBLAS through CuPy when installed); the few equations without a kernel (mixed
basic/tensor indexing, batched matmul) run on the host with their NumPy body, each named in the
kernel text.
``lower().as_text("kernel")`` shows the whole module.
"""

from __future__ import annotations

import threading

import numpy as np

from jitgrad.backends.base import Backend, Executable
from jitgrad.backends.kernel_ir import CACHE_LINE
from jitgrad.backends.lowering_tables import CUDA
from jitgrad.backends.loop_emitter import emit_body
from jitgrad.backends.scalar_code import broadcast_index as _broadcast_index, scalar_expr
from jitgrad.backends.numba_cuda_calls import CudaCallsMixin, _strides
from jitgrad.backends.numba_cuda_loops import CudaLoopsMixin
from jitgrad.backends.numba_values import _NP, _numel, _root, _Val, literal
from jitgrad.ops.control import guard_failure, guard_types
from jitgrad.ir.graph import Graph, Lit, Var
from jitgrad.ops.control import guard_p
from jitgrad.ops.shape import reshape_p
from jitgrad.transforms.fusion import LoopNest, View, fuse, is_reduction

_HEAD = f"""import math
import numpy as np
import numba
from numba import cuda
{CACHE_LINE}
from jitgrad.backends import _cuda_runtime as rt
from jitgrad.backends._cuda_runtime import floor
from jitgrad.backends._numba_helpers import clamp, floordiv, isinf, isnan, max2, min2, sign
from jitgrad.backends.device_array import DeviceArray
"""


def _acc_dtype(e) -> str:
    return "np.float64" if e.out.aval.dtype.is_floating_point else "np.int64"


def _atomic(e) -> str:
    """The ``cuda.atomic`` function that combines partial results of reduction ``e`` (the
    NaN-propagating ``nanmax``/``nanmin`` for floats)."""
    atomic = e.prim.reduction.atomic
    if atomic is None:
        from jitgrad.backends.numba_values import Unsupported
        raise Unsupported(f"the CUDA backend has no reduction kernel for {e.prim.name} "
                          "(no atomic combines its partial results)")
    return f"nan{atomic}" if atomic in ("max", "min") and _acc_dtype(e) == "np.float64" \
        else atomic


class _Params(dict):
    """A kernel's parameters: driver array name -> parameter name, numbered by first use."""

    def __call__(self, dname: str) -> str:
        if dname not in self:
            self[dname] = f"p{len(self)}"
        return self[dname]


class CudaCodegen(CudaCallsMixin, CudaLoopsMixin):
    def __init__(self, graph: Graph, tag: str = "", host: list | None = None) -> None:
        self.g = graph
        self.plan = fuse(graph)
        self.kernels: list[str] = []
        self.drivers: list[str] = []  # the drivers of loop bodies, called by this one
        self.drv: list[str] = []
        self.env: dict[int, _Val] = {}
        # Equations the driver runs with their NumPy body (a loop body's share the list).
        self.host: list = [] if host is None else host
        self.tag = tag  # a loop body's names: its kernels and buffers share the module's
        self.tuples: dict[int, list] = {}  # id(loop results) -> driver names of its values
        self.loops: dict[int, tuple] = {}  # id(while results) -> (carries, count, tape)
        self.n = 0
        self.guards = any(e.out is None and e.prim is guard_p for e in graph.eqns)
        self.scalar_block: list = []
        self.dt: dict[str, str] = {"st": "float64"}   # driver array name -> dtype
        self.sigs: dict[str, tuple] = {}             # kernel name -> its parameters' dtypes
        # Intermediates live in scratch buffers kept across calls (allocating device memory per
        # call costs more than most kernels); only the results are allocated fresh.
        self.results = {id(o) for o in graph.outputs if isinstance(o, Var)}
        self.pooled: set[str] = set()

    def fresh(self, p: str = "v") -> str:
        self.n += 1
        return f"{p}{self.tag}{self.n}"

    def emit(self, line: str) -> None:
        self.drv.append("    " + line)

    def val(self, a) -> _Val:
        if isinstance(a, Lit):
            return _Val("lit", literal(a))
        return self.env[id(a)]

    def new_array(self, var, n: int, fill: str | None = None, dtype: str | None = None) -> str:
        """A driver line that allocates ``var``'s flat array (``fill``ed when given): fresh for a
        result, a reused scratch buffer otherwise. Returns its name."""
        name = self.fresh("acc" if var is None else "v")
        dt = dtype or _NP[var.aval.dtype]
        fresh = var is not None and isinstance(var, Var) and id(var) in self.results
        if fresh:
            how = f"rt.full({n}, {fill}, {dt})" if fill is not None else \
                f"cuda.device_array({n}, {dt})"
        else:
            self.pooled.add(name)
            how = f"rt.scratch(P, {name!r}, {n}, {dt}" + (f", {fill})" if fill is not None else ")")
        self.emit(f"{name} = {how}")
        self.dt[name] = dt[3:]
        return name

    def alloc(self, var, n: int) -> str:
        name = self.new_array(var, n)
        self.env[id(var)] = _Val("dev", name, var.aval.shape)
        return name

    # -- the program -------------------------------------------------------------------------
    def generate(self) -> str:
        drv = self.driver_source("driver")
        return (_HEAD + "\n\n" + "\n\n".join(self.kernels) + "\n\n" +
                "".join(d + "\n\n" for d in self.drivers) + drv +
                "\n\n\n# Each kernel's parameters: flat arrays of these dtypes.\n"
                + f"SIGNATURES = {self.sigs!r}\n")

    def driver_source(self, fn: str) -> str:
        """The driver ``fn(args, C, E, P)``; the kernels it launches go to ``kernels``."""
        g = self.g
        for i, (v, _) in enumerate(g.consts):
            self.env[id(v)] = _Val("dev", f"c{i}", v.aval.shape)
            self.dt[f"c{i}"] = v.aval.dtype.np.name
            self.emit(f"c{i} = C[{i}]")
        for i, v in enumerate(g.inputs):
            self.env[id(v)] = _Val("dev", f"a{i}", v.aval.shape)
            self.dt[f"a{i}"] = v.aval.dtype.np.name
            self.emit(f"a{i} = rt.to_device(args[{i}], {_NP[v.aval.dtype]})")
        if self.guards:
            self.emit("st = rt.status()")
        for step in self.plan.steps:
            if not isinstance(step, (LoopNest, View)) and self.is_scalar(step.eqn):
                self.scalar_block.append(step.eqn)
                continue
            self.flush_scalars()
            if isinstance(step, LoopNest):
                self.loop(step)
            elif isinstance(step, View):
                self.view(step.eqn)
            else:
                self.call(step.eqn)
        self.flush_scalars()
        # (The runtime copies outputs that alias an argument or a constant.)
        outs = []
        for o in g.outputs:
            name = self.dense(o)
            if name in self.pooled:  # a view of a scratch buffer: the caller gets its own copy
                copy = self.fresh()
                self.emit(f"{copy} = cuda.device_array_like({name})")
                self.emit(f"{copy}.copy_to_device({name})")
                name = copy
            outs.append(f"DeviceArray({name}, {tuple(o.aval.shape)!r})")
        self.emit(f"return [{', '.join(outs)}], {'st' if self.guards else 'None'}")
        return f"def {fn}(args, C, E, P):\n" + "\n".join(self.drv)

    def dense(self, a) -> str:
        """A flat device array holding ``a`` (literals and broadcasts are materialized)."""
        v = self.val(a)
        if v.kind == "dev":
            return v.name
        shape = tuple(a.aval.shape)
        n = max(1, _numel(shape))
        root = _root(v)
        if root.kind == "lit":
            name = self.new_array(a, n, fill=root.name)
        else:  # a broadcast: one copy kernel
            k = self.fresh("bcast")
            self.grid_kernel(k, "src, out", n,
                             [*self.unravel(shape), f"out[i] = {self.index(root, shape, 'i')}"])
            name = self.new_array(a, n)
            self.run(k, self.launch(n), [root.name, name])
        if isinstance(a, Var):
            self.env[id(a)] = _Val("dev", name, shape)
        return name

    def kernel(self, lines: list[str]) -> None:
        self.kernels.append("@cuda.jit(cache=CACHE)\n" + "\n".join(lines))

    @staticmethod
    def grid_lines(k: str, params: str, n, body: list[str], pre=(), var: str = "i") -> list[str]:
        """A grid-stride kernel ``k(params)``: ``pre`` once per thread, then ``body`` for every
        position ``var`` below ``n`` that the thread owns."""
        return [f"def {k}({params}):", f"    {var} = cuda.grid(1)", *["    " + ln for ln in pre],
                f"    while {var} < {n}:", *["        " + ln for ln in body],
                f"        {var} += cuda.gridsize(1)"]

    def grid_kernel(self, k: str, params: str, n, body: list[str], var: str = "i") -> None:
        self.kernel(self.grid_lines(k, params, n, body, var=var))

    def run(self, k: str, grid: str, names: list) -> None:
        """Launch kernel ``k`` on driver arrays ``names`` (all flat: one signature per kernel)."""
        self.emit(f"{k}[{grid}]({', '.join(names)})")
        self.sigs[k] = tuple(self.dt[n] for n in names)

    @staticmethod
    def launch(n: int) -> str:
        from jitgrad.backends import _cuda_runtime as rt
        return f"{rt.blocks(n)}, {rt.THREADS}"

    # -- indexing ----------------------------------------------------------------------------
    @staticmethod
    def unravel(shape) -> list[str]:
        """Lines computing i0..i{d-1} from the flat position i over ``shape``."""
        if len(shape) <= 1:
            return ["i0 = i"] if shape else []
        lines = ["r = i"]
        for k in range(len(shape) - 1, 0, -1):
            lines.append(f"i{k} = r % {shape[k]}")
            lines.append(f"r = r // {shape[k]}")
        lines.append("i0 = r")
        return lines

    @staticmethod
    def index(root: _Val, shape, flat: str, name: str | None = None) -> str:
        """``root``'s element at the position of a loop over ``shape`` (broadcasting)."""
        name = name or "src"
        if _numel(root.shape) == 1:
            return f"{name}[0]"
        if tuple(root.shape) == tuple(shape):
            return f"{name}[{flat}]"
        idx = [f"i{k}" for k in range(len(shape))]
        parts = _broadcast_index(root.shape, shape, idx)
        terms = [f"{p} * {s}" if s != 1 else p for p, s in zip(parts, _strides(root.shape))
                 if p != "0"]
        return f"{name}[{' + '.join(terms) or '0'}]"

    # -- loops -------------------------------------------------------------------------------
    def loop(self, lp: LoopNest) -> None:
        shape, n = lp.shape, _numel(lp.shape)
        mat = self.plan.materialize
        k = self.fresh("loop")
        param = _Params()
        body: list[str] = []
        finish: list[tuple] = []      # (reduction eqn, accumulator, out name, kept size)
        full_reds: list[tuple] = []   # (eqn, local partial, accumulator param)
        pre: list[str] = []
        for e in lp.eqns:
            if not is_reduction(e) and id(e.out) in mat:
                self.alloc(e.out, n)
        def read(a) -> str:
            root = _root(self.val(a))
            if root.kind == "lit":
                return root.name
            return self.index(root, shape, "i", param(root.name))

        def value(e, args: list) -> str:
            t = self.fresh("t")
            body.append(f"{t} = {scalar_expr(e, args, template=CUDA.templates.get(e.prim))}")
            return t

        emit_body(lp, mat, read, value,
                  lambda e, v: self.reduction(e, v, shape, param, body, pre, finish, full_reds),
                  lambda e, t: body.append(f"{param(self.env[id(e.out)].name)}[i] = {t}"))
        names = list(param)  # every parameter is known once the body is
        src = self.grid_lines(k, ", ".join(param[d] for d in names), n,
                              [*self.unravel(shape), *body], pre)
        for e, local, acc in full_reds:
            from jitgrad.backends import _cuda_runtime as rt
            sh = "shi" if _acc_dtype(e) == "np.int64" else "shf"
            ty = "numba.int64" if sh == "shi" else "numba.float64"
            decl = f"    {sh} = cuda.shared.array({rt.THREADS}, {ty})"
            if decl not in src:
                src.insert(1, decl)
            atomic = _atomic(e)
            # A tree reduction over the block in shared memory, then one atomic per block.
            src += ["    tid = cuda.threadIdx.x", f"    {sh}[tid] = {local}", "    cuda.syncthreads()",
                    f"    s = {rt.THREADS // 2}", "    while s > 0:", "        if tid < s:",
                    f"            {sh}[tid] = {e.prim.reduction.binary(f'{sh}[tid]', f'{sh}[tid + s]')}",
                    "        cuda.syncthreads()", "        s //= 2",
                    "    if tid == 0:", f"        cuda.atomic.{atomic}({acc}, 0, {sh}[0])",
                    "    cuda.syncthreads()"]
        self.kernel(["\n".join(src)])
        self.run(k, self.launch(n), names)
        if finish:
            self.finish(finish)
        for e in lp.eqns:
            if id(e.out) not in self.env:
                self.env[id(e.out)] = _Val("temp", "<dead>")

    def reduction(self, e, v: str, shape, param, body, pre, finish, full_reds) -> None:
        red, axes = e.prim.reduction, e.params["axes"]
        acc_dt = _acc_dtype(e)
        atomic = _atomic(e)
        cast = red.map.format(f"{acc_dt}({v})")
        init_text = red.identity(acc_dt == "np.float64")
        kept = tuple(1 if i in axes else s for i, s in enumerate(shape))
        size = _numel(kept)
        acc = self.new_array(None, size, fill=init_text, dtype=acc_dt)
        if not e.out.aval.shape:
            local = self.fresh("part")
            pre.append(f"{local} = {acc_dt}({init_text})")
            body.append(f"{local} = {red.binary(local, cast)}")
            full_reds.append((e, local, param(acc)))
        else:
            idx = [f"i{k}" for k in range(len(shape))]
            terms = [f"{idx[k]} * {s}" if s != 1 else idx[k]
                     for k, s in enumerate(_strides(kept)) if kept[k] != 1]
            at = " + ".join(terms) or "0"
            body.append(f"cuda.atomic.{atomic}({param(acc)}, {at}, {cast})")
        out = self.alloc(e.out, max(1, size))
        n = _numel([shape[a] for a in axes])
        finish.append((e, acc, out, size, n))

    def finish(self, items: list) -> None:
        """One kernel turns the accumulators into the reductions' results (mean, sqrt, dtype)."""
        k = self.fresh("finish")
        m = max(it[3] for it in items)
        lines, params = [], []
        for j, (e, acc, out, size, n) in enumerate(items):
            params += [acc, out]
            x = f"a{j}[i]"
            val = e.prim.reduction.finish.format(x, n=n, m="math")
            lines += [f"if i < {size}:", f"    o{j}[i] = {_NP[e.out.aval.dtype]}({val})"]
        self.grid_kernel(k, ", ".join(f"a{j}, o{j}" for j in range(len(items))), m, lines)
        self.run(k, self.launch(m), params)

    # -- scalar work and guards --------------------------------------------------------------
    @staticmethod
    def is_scalar(e) -> bool:
        if e.out is None:
            return e.prim is guard_p
        if e.out.aval.shape:
            return False
        return e.prim.kind == "elementwise" or (is_reduction(e) and not e.inputs[0].aval.shape)

    def flush_scalars(self) -> None:
        eqns, self.scalar_block = self.scalar_block, []
        if not eqns:
            return
        k = self.fresh("scalar")
        param = _Params()
        temps: dict[int, str] = {}

        def rd(a) -> str:
            if isinstance(a, Var) and id(a) in temps:
                return temps[id(a)]
            root = _root(self.val(a))
            return root.name if root.kind == "lit" else f"{param(root.name)}[0]"

        body = []
        for e in eqns:
            if e.out is None:
                body += self.guard(e, rd(e.inputs[0]), param("st"))
                continue
            x = rd(e.inputs[0])
            red = e.prim.reduction
            if red is not None:  # of a 0-d value: of that one value (norm: its magnitude)
                text = f"{_NP[e.out.aval.dtype]}({red.of_one(x)})"
            else:
                text = scalar_expr(e, [rd(a) for a in e.inputs],
                                   template=CUDA.templates.get(e.prim))
            t = self.fresh("t")
            body.append(f"{t} = {text}")
            temps[id(e.out)] = t
            out = self.alloc(e.out, 1)
            body.append(f"{param(out)}[0] = {t}")
        names = list(param)
        self.kernel([f"def {k}({', '.join(param[d] for d in names)}):",
                     *["    " + b for b in body]])
        self.run(k, "1, 1", names)

    @staticmethod
    def guard(e, v: str, st: str) -> list[str]:
        expect = e.params["expect"]
        if isinstance(expect, float) and expect != expect:
            cond = f"{v} == {v}"
        elif isinstance(expect, bool):
            cond = f"bool({v}) != {expect}"
        else:
            cond = f"{v} != {expect!r}"
        seen = f"(1.0 if {v} else 0.0)" if isinstance(expect, bool) else f"np.float64({v})"
        return [f"if ({cond}) and {st}[0] < 0:  # the first guard to fail wins",
                f"    {st}[0] = {e.params['index']}", f"    {st}[1] = {seen}"]

    # -- views and calls ---------------------------------------------------------------------
    def view(self, e) -> None:
        src = self.val(e.inputs[0])
        shape = tuple(e.out.aval.shape)
        if e.prim is reshape_p and _root(src).kind != "lit":
            # Flat storage: a reshape of a dense value is the same array with a new shape.
            name = self.dense(e.inputs[0])
            self.env[id(e.out)] = _Val("dev", name, shape)
        else:
            self.env[id(e.out)] = _Val("bcast", "", shape, src)



class CudaExecutable(Executable):
    """Runs the driver: arguments (host or device arrays) in, ``DeviceArray``s out; a failed
    guard (read back from the device) raises ``GuardFailure``."""

    # Intermediates live in scratch buffers the next call overwrites: the runtime copies any
    # result that views one.
    pools_intermediates = True

    def __init__(self, module, source: str, graph: Graph, host: list) -> None:
        from jitgrad.backends import _cuda_runtime as rt
        self.driver = module.driver
        self.source = source
        self.graph = graph
        self.host = host
        self.host_ops = tuple((e.prim.name, e.src, "no CUDA kernel for it") for e in host)
        self.consts = [rt.to_device(np.asarray(arr), np.asarray(arr).dtype)
                       for _, arr in graph.consts]
        self.guard_types = guard_types(graph)
        self.pool: dict = {}
        self._lock = threading.Lock()

    def __call__(self, args: list) -> list:
        with self._lock:  # calls share the scratch buffers
            outs, st = self.driver(args, self.consts, self.host, self.pool)
        if st is not None:
            s = st.copy_to_host()
            if s[0] >= 0:
                raise guard_failure(self.guard_types, int(s[0]), s[1])
        return outs

    @property
    def kernels(self) -> list:
        return [self.source]

    def text(self) -> str:
        return self.source


class HostExecutable(Executable):
    """A trace with something the CUDA backend has no kernel for (a ``prod`` reduction): the
    NumPy interpreter runs it on host copies, and the results go to the device like any other."""

    def __init__(self, graph: Graph, note: str) -> None:
        self.graph = graph
        self.note = note

    def __call__(self, args: list) -> list:
        from jitgrad.backends import _cuda_runtime as rt
        from jitgrad.backends.device_array import DeviceArray
        from jitgrad.ir.interpret import interpret
        host = [a if isinstance(a, np.ndarray) else DeviceArray(rt.to_device(a, None), v.aval.shape)
                .numpy() for a, v in zip(args, self.graph.inputs)]
        return [DeviceArray(rt.to_device(np.asarray(o), np.asarray(o).dtype), np.shape(o))
                for o in interpret(self.graph, host)]

    @property
    def kernels(self) -> list:
        return []

    def text(self) -> str:
        return (f"# CUDA backend: no kernels for this trace ({self.note}); the NumPy interpreter "
                "runs it on the host and the results are copied to the device\n" + str(self.graph))


class NumbaCUDABackend(Backend):
    name = "numba-cuda"
    on_device = True

    def compile(self, graph: Graph):
        from jitgrad.backends import disk_cache
        from jitgrad.backends.numba_values import Unsupported
        from jitgrad._settings import log as _log
        cg = CudaCodegen(graph)
        try:
            source = cg.generate()
        except Unsupported as e:
            _log("compile", f"host interpreter for this trace: {e}")
            return HostExecutable(graph, str(e))
        path, k = disk_cache.source_path(source)
        # CUDA kernels compile (and are cached by Numba) at their first launch, after this:
        # their files are not checked against digests.
        mod = disk_cache.load(path, k, source, verify=False)
        return CudaExecutable(mod, source, graph, cg.host)


def check_available() -> None:
    """Raise a clear error unless numba-cuda and a GPU (or the simulator) are there."""
    try:
        import numba_cuda  # noqa: F401
        from numba import cuda
    except ImportError as e:
        raise RuntimeError("target='cuda' needs NVIDIA's numba-cuda package: "
                           "pip install 'jitgrad[cuda]'") from e
    import numba
    if numba.config.ENABLE_CUDASIM:
        return
    if not cuda.is_available():
        raise RuntimeError("target='cuda': no usable CUDA GPU was found (numba-cuda is installed, "
                           "but the driver or device is missing). Set NUMBA_ENABLE_CUDASIM=1 "
                           "before starting Python to run on Numba's CUDA simulator instead.")

