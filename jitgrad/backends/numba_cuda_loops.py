"""Lowerings of structured control flow for the CUDA backend: a lifted ``while`` is a host loop
in the driver around the body's own driver (its kernels run on the device, and the values stay
there); the only read-back per iteration is the loop condition and the body's guard status.
Its reverse sweep (``while_vjp``) runs the body's VJP driver from the last iteration to the
first, over a tape of the device arrays each iteration started from (kept only when the VJP
reads them). Mixed into ``CudaCodegen``.
"""

from __future__ import annotations

from jitgrad.backends.lowering_tables import CUDA
from jitgrad.backends.numba_values import _NP, Unsupported, _numel, _Val
from jitgrad.loops.primitives import cond_p, limit_of, tuple_get_p, while_p, while_vjp_p


class CudaLoopsMixin:
    """``CudaCodegen``'s lowerings of ``while``, ``tuple_get`` and ``while_vjp``."""

    def nested(self, graph, name: str) -> None:
        """Generate ``graph``'s driver as ``name`` in this module (its kernels too)."""
        if graph.consts:
            raise Unsupported("a loop body with constants of its own")
        sub = type(self)(graph, tag=f"{name}_", host=self.host)
        drv = sub.driver_source(name)
        self.kernels.extend(sub.kernels)
        self.drivers.extend(sub.drivers + [drv])
        self.sigs.update(sub.sigs)

    def _bind(self, name: str, var) -> None:
        self.env[id(var)] = _Val("dev", name, var.aval.shape)
        self.dt[name] = var.aval.dtype.np.name

    @CUDA.register(while_p)
    def call_while(self, e):
        p = e.params
        nc = p["n_carry"]
        w = self.fresh("w")
        fn = f"{w}_body"
        self.nested(p["body"], fn)
        init = [self.dense(a) for a in e.inputs[1:1 + nc]]
        inv = [self.dense(a) for a in e.inputs[1 + nc:]]
        pred = self.dense(e.inputs[0])
        self.emit(f"{w}_c = [{', '.join(init)}]")
        self.emit(f"{w}_p = {pred}.copy_to_host()[0]")
        self.emit(f"{w}_n = 0")
        self.emit(f"{w}_t = []")
        self.emit(f"{w}_s = 1")
        self.emit(f"while {'' if p['expect'] else 'not '}{w}_p:")
        if p["tape"]:  # each iteration's body makes new arrays: the tape keeps references
            # to those of iterations 0, s, 2s, ...; full, every other one and s doubles
            # (loops/primitives.py: Tape).
            self.emit(f"    if {w}_n % {w}_s == 0:")
            self.emit(f"        if len({w}_t) == {limit_of(p.get('tape_limit', 0))}:")
            self.emit(f"            {w}_t, {w}_s = {w}_t[::2], {w}_s * 2")
            self.emit(f"        {w}_t.append({w}_c)")
        self.emit(f"    {w}_o, {w}_st = {fn}({w}_c + [{''.join(f'{a}, ' for a in inv)}], C, E, P)")
        self.emit(f"    if {w}_st is not None and {w}_st.copy_to_host()[0] >= 0:")
        self.emit(f"        return [], {w}_st  # a guard of the body failed: the call re-traces")
        self.emit(f"    {w}_c = [o._flat for o in {w}_o[:{nc}]]")
        self.emit(f"    {w}_p = {w}_o[{nc}]._flat.copy_to_host()[0]")
        self.emit(f"    {w}_n += 1")
        names = []
        for i in range(nc):
            names.append(f"{w}_r{i}")
            self.emit(f"{w}_r{i} = {w}_c[{i}]")
        self.tuples[id(e.out)] = names
        self.loops[id(e.out)] = (f"{w}_c", f"{w}_n", f"{w}_t", f"{w}_s", fn, inv)
        self.env[id(e.out)] = _Val("temp", "<loop results>")
        return None

    @CUDA.register(cond_p)
    def call_cond(self, e):
        """A host ``if`` over the two sides' drivers: the predicate is the one read-back."""
        c = self.fresh("cd")
        ops = [self.dense(a) for a in e.inputs[1:]]
        pred = self.dense(e.inputs[0])
        for side in ("true", "false"):
            self.nested(e.params[side], f"{c}_{side}")
        n = len(e.params["true"].outputs)
        self.emit(f"{c}_fn = {c}_true if {pred}.copy_to_host()[0] else {c}_false")
        self.emit(f"{c}_o, {c}_st = {c}_fn([{''.join(f'{a}, ' for a in ops)}], C, E, P)")
        self.emit(f"if {c}_st is not None and {c}_st.copy_to_host()[0] >= 0:")
        self.emit(f"    return [], {c}_st  # a guard of the side failed: the call re-traces")
        names = []
        for i in range(n):
            names.append(f"{c}_r{i}")
            self.emit(f"{c}_r{i} = {c}_o[{i}]._flat")
        self.tuples[id(e.out)] = names
        self.env[id(e.out)] = _Val("temp", "<branch results>")
        return None

    @CUDA.register(tuple_get_p)
    def call_tuple_get(self, e):
        name = self.tuples[id(e.inputs[0])][e.params["index"]]
        if id(e.out) in self.results:
            # With no iteration a carried value is still its initial array, which may be an
            # argument's: a result gets its own.
            copy = self.fresh()
            self.emit(f"{copy} = cuda.device_array_like({name})")
            self.emit(f"{copy}.copy_to_device({name})")
            name = copy
        self._bind(name, e.out)
        return None

    @CUDA.register(while_vjp_p)
    def call_while_vjp(self, e):
        p = e.params
        fc, fi = p["fc"], p["fi"]
        carries, n, tape, stride, body, body_inv = self.loops[id(e.inputs[0])]
        r = self.fresh("rv")
        fn = f"{r}_vjp"
        self.nested(p["bvjp"], fn)
        cts = [self.dense(a) for a in e.inputs[1:1 + len(fc)]]
        inv_vars = e.inputs[1 + len(fc):]
        inv = [self.dense(a) for a in inv_vars]
        accs = []
        for j in fi:
            a = inv_vars[j]
            accs.append(self.new_array(None, max(1, _numel(a.aval.shape)), fill="0",
                                       dtype=_NP[a.aval.dtype]))
        add = self.fresh("accumulate")
        self.grid_kernel(add, "acc, x", "acc.size", ["acc[i] += x[i]"])
        self.emit(f"{r}_g = [{''.join(f'{c}, ' for c in cts)}]")
        if p["tape"]:
            # Segments last first: each one's values recomputed from the kept first with the
            # body's driver (none when the stride is 1), then the segment backwards.
            self.emit(f"for {r}_k in range(len({tape}) - 1, -1, -1):")
            self.emit(f"    {r}_seg = [{tape}[{r}_k]]")
            self.emit(f"    for _ in range(1, min({stride}, {n} - {r}_k * {stride})):")
            self.emit(f"        {r}_f, _ = {body}({r}_seg[-1] + "
                      f"[{''.join(f'{a}, ' for a in body_inv)}], C, E, P)")
            self.emit(f"        {r}_seg.append([o._flat for o in {r}_f[:len({r}_seg[0])]])")
            self.emit(f"    for {r}_x in reversed({r}_seg):")
            carry, pad = f"{r}_x", "        "
        else:
            self.emit(f"for {r}_j in range({n} - 1, -1, -1):")
            carry, pad = carries, "    "
        self.emit(f"{pad}{r}_o, _ = {fn}({carry} + [{''.join(f'{a}, ' for a in inv)}] + {r}_g, "
                  "C, E, P)")
        self.emit(f"{pad}{r}_g = [o._flat for o in {r}_o[:{len(fc)}]]")
        for k, acc in enumerate(accs):
            x = f"{r}_o[{len(fc) + k}]._flat"
            size = max(1, _numel(inv_vars[fi[k]].aval.shape))
            self.emit(f"{pad}{add}[{self.launch(size)}]({acc}, {x})")
            self.sigs[add] = (self.dt[acc], self.dt[acc])
        names = []
        for k in range(len(fc)):
            names.append(f"{r}_r{k}")
            self.emit(f"{r}_r{k} = {r}_g[{k}]")
        self.tuples[id(e.out)] = names + accs
        self.env[id(e.out)] = _Val("temp", "<loop cotangents>")
        return None
