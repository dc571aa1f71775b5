"""Lowerings of structured control flow for the Numba CPU backend: a lifted ``while`` is a loop
inside the kernel with its body's code inlined (one function for Numba to compile: each function
costs a compile of its own), and its reverse sweep (``while_vjp``) a loop that runs the body's VJP
from the last iteration to the first. The carried values each iteration starts from go on a tape
that grows by doubling, kept only when the VJP reads them. Mixed into ``Codegen``.
"""

from __future__ import annotations

from jitgrad.backends.kernel_ir import statement
from jitgrad.backends.lowering_tables import CPU
from jitgrad.backends.numba_values import _NP, Unsupported, _root, _Val
from jitgrad.loops.primitives import cond_p, limit_of, tuple_get_p, while_p, while_vjp_p

_TAPE0 = 16  # iterations the tape holds before it first grows


class LoopsMixin:
    """``Codegen``'s lowerings of ``while``, ``tuple_get`` and ``while_vjp``."""

    def operand(self, a) -> str:
        """A name for ``a`` as generated functions take it: a contiguous array, or a scalar."""
        return self.array(a) if a.aval.shape else _root(self.val(a)).name

    def inline(self, graph, names: list[str], tag: str, depth: int) -> list[str]:
        """Emit ``graph``'s code here (``depth``: the indentation), its inputs bound to the
        plain names ``names``, its own names prefixed with ``tag``; returns its outputs'."""
        if graph.consts:
            raise Unsupported("a loop body with constants of its own")
        sub = type(self)(graph, nested=True, libm=self.libm)
        sub.tag = tag
        for v, name in zip(graph.inputs, names):
            if v.aval.shape:
                sub.publish(v, name, tuple(v.aval.shape))
            else:
                sub.env[id(v)] = _Val("scalar", name)
        sub.steps()
        outs = sub.output_names()
        self.lines += [statement(line, depth - 1) for line in sub.lines]
        self.host_ops.extend(sub.host_ops)
        self.parallel = self.parallel or sub.parallel
        return outs

    def _tape_grow(self, tape: str, n: str, shape: tuple, dt: str, limit: int,
                   depth: int) -> None:
        dims = ", ".join([f"min({n} * 2, {limit})"] + [str(s) for s in shape])
        self.emit(f"if {n} == {tape}.shape[0]:", depth)
        self.emit(f"{tape}_g = np.empty(({dims},), {dt})", depth + 1)
        self.emit(f"{tape}_g[:{n}] = {tape}", depth + 1)
        self.emit(f"{tape} = {tape}_g", depth + 1)

    @CPU.register(while_p)
    def call_while(self, e) -> None:
        p = e.params
        nc = p["n_carry"]
        w = self.fresh("w")
        init = [self.operand(a) for a in e.inputs[1:1 + nc]]
        inv = [self.operand(a) for a in e.inputs[1 + nc:]]
        pred = _root(self.val(e.inputs[0])).name
        cs = [f"{w}_c{i}" for i in range(nc)]
        for c, v in zip(cs, init):
            self.emit(f"{c} = {v}")
        self.emit(f"{w}_p = {pred}")
        self.emit(f"{w}_n = 0")
        tapes = []
        limit = limit_of(p.get("tape_limit", 0))
        if p["tape"]:
            # The tape keeps iterations 0, s, 2s, ... (``{w}_m`` of them, s = ``{w}_s``); full,
            # it keeps every other entry and s doubles (loops/primitives.py: Tape).
            self.emit(f"{w}_m = 0")
            self.emit(f"{w}_s = 1")
            for i, a in enumerate(e.inputs[1:1 + nc]):
                shape, dt = tuple(a.aval.shape), _NP[a.aval.dtype]
                t = f"{w}_t{i}"
                dims = (min(_TAPE0, limit),) + shape
                self.alloc(t, dims, dt)
                tapes.append(t)
        self.emit(f"while {'' if p['expect'] else 'not '}{w}_p:")
        if tapes:
            self.emit(f"if {w}_n % {w}_s == 0:", 2)
            self.emit(f"if {w}_m == {limit}:", 3)
            for t in tapes:
                self.emit(f"{t}[:{limit // 2}] = {t}[::2].copy()", 4)
            self.emit(f"{w}_m = {limit // 2}", 4)
            self.emit(f"{w}_s *= 2", 4)
            for i, (t, a) in enumerate(zip(tapes, e.inputs[1:1 + nc])):
                self._tape_grow(t, f"{w}_m", tuple(a.aval.shape), _NP[a.aval.dtype], limit, 3)
                self.emit(f"{t}[{w}_m] = {cs[i]}", 3)
            self.emit(f"{w}_m += 1", 3)
        # (A guard of the body that fails returns from the kernel: the call re-traces.)
        outs = self.inline(p["body"], cs + inv, f"{w}_", 2)
        # All at once: a carried value may be another's previous one (a swap).
        self.emit(f"{', '.join(cs + [f'{w}_p'])} = {', '.join(outs)}", 2)
        self.emit(f"{w}_n += 1", 2)
        self.tuples[id(e.out)] = cs
        self.loops[id(e.out)] = (cs, f"{w}_n", tapes, f"{w}_m", f"{w}_s", e)
        self.env[id(e.out)] = _Val("temp", "<loop results>")

    @CPU.register(cond_p)
    def call_cond(self, e) -> None:
        """Both sides inlined under an ``if``: one function, so one compile for the two."""
        c = self.fresh("cd")
        ops = [self.operand(a) for a in e.inputs[1:]]
        pred = _root(self.val(e.inputs[0])).name
        rs = [f"{c}_r{i}" for i in range(len(e.params["true"].outputs))]
        lhs = f"{', '.join(rs)}{',' if len(rs) == 1 else ''}"
        for line, side in ((f"if {pred}:", "true"), ("else:", "false")):
            self.emit(line)
            outs = self.inline(e.params[side], ops, f"{c}_{side[0]}", 2)
            self.emit(f"{lhs} = {', '.join(outs)}{',' if len(rs) == 1 else ''}", 2)
        self.tuples[id(e.out)] = rs
        self.env[id(e.out)] = _Val("temp", "<branch results>")

    @CPU.register(tuple_get_p)
    def call_tuple_get(self, e) -> None:
        name = self.tuples[id(e.inputs[0])][e.params["index"]]
        shape = tuple(e.out.aval.shape)
        if not shape:
            self.env[id(e.out)] = _Val("scalar", name)
            return
        if id(e.out) in self.outputs:
            # With no iteration a carried value is still its initial array, which may be an
            # argument's or a constant's: a result gets its own.
            copy = self.fresh()
            self.emit(f"{copy} = {name}.copy()")
            name = copy
        self.publish(e.out, name, shape)

    @CPU.register(while_vjp_p)
    def call_while_vjp(self, e) -> None:
        p = e.params
        fc, fi = p["fc"], p["fi"]
        cs, n, tapes, m, stride, fwd = self.loops[id(e.inputs[0])]
        r = self.fresh("rv")
        cts = [self.operand(a) for a in e.inputs[1:1 + len(fc)]]
        inv_vars = e.inputs[1 + len(fc):]
        inv = [self.operand(a) for a in inv_vars]
        gs = [f"{r}_g{k}" for k in range(len(fc))]
        accs = [f"{r}_a{k}" for k in range(len(fi))]
        for g, c in zip(gs, cts):
            self.emit(f"{g} = {c}")
        for acc, j in zip(accs, fi):
            a = inv_vars[j]
            dt = _NP[a.aval.dtype]
            shape = tuple(a.aval.shape)
            self.emit(f"{acc} = np.zeros(({', '.join(map(str, shape))},), {dt})" if shape
                      else f"{acc} = {dt}(0)")
        carry, depth = cs, 2
        if p["tape"]:
            self._segments(r, fwd, tapes, inv, n, m, stride)
            carry, depth = [f"{r}_x{i}" for i in range(len(tapes))], 3
            for i, (x, t) in enumerate(zip(carry, tapes)):
                self.emit(f"{x} = {t}[{r}_k] if {r}_len == 1 else {r}_b{i}[{r}_j]", 3)
        else:
            self.emit(f"for {r}_j in range({n} - 1, -1, -1):")
        outs = self.inline(p["bvjp"], carry + inv + gs, f"{r}_", depth)
        # The invariants first: an invariant's cotangent may be a carried one passed through
        # (``y = y * a + w``: w's is y's), which is the name the update below rebinds.
        for k, acc in enumerate(accs):
            self.emit(f"{acc} += {outs[len(fc) + k]}", depth)
        self.emit(f"{', '.join(gs)}{',' if len(gs) == 1 else ''} = "
                  f"{', '.join(outs[:len(fc)])}{',' if len(gs) == 1 else ''}", depth)
        self.tuples[id(e.out)] = gs + accs
        self.env[id(e.out)] = _Val("temp", "<loop cotangents>")

    def _segments(self, r: str, fwd, tapes: list, inv: list, n: str, m: str, s: str) -> None:
        """Open the reverse sweep over a tape of every ``s``-th iteration: for each kept entry,
        last first, the values of its segment's other iterations recomputed with the body into
        ``{r}_b*`` (none when ``s`` is 1), then a loop ``{r}_j`` over the segment backwards.
        The loop body that follows reads iteration ``{r}_k * s + {r}_j``'s values."""
        nc = fwd.params["n_carry"]
        carried = fwd.inputs[1:1 + nc]
        for i, a in enumerate(carried):
            dims = ", ".join([s] + [str(d) for d in a.aval.shape])
            self.emit(f"{r}_b{i} = np.empty(({dims},), {_NP[a.aval.dtype]})")
        self.emit(f"for {r}_k in range({m} - 1, -1, -1):")
        self.emit(f"{r}_len = min({s}, {n} - {r}_k * {s})", 2)
        self.emit(f"if {r}_len > 1:", 2)
        ys = [f"{r}_y{i}" for i in range(nc)]
        for i, (y, t) in enumerate(zip(ys, tapes)):
            self.emit(f"{y} = {t}[{r}_k]", 3)
            self.emit(f"{r}_b{i}[0] = {y}", 3)
        self.emit(f"for {r}_i in range(1, {r}_len):", 3)
        outs = self.inline(fwd.params["body"], ys + inv, f"{r}_f", 4)
        self.emit(f"{', '.join(ys)}{',' if nc == 1 else ''} = "
                  f"{', '.join(outs[:nc])}{',' if nc == 1 else ''}", 4)
        for i, y in enumerate(ys):
            self.emit(f"{r}_b{i}[{r}_i] = {y}", 4)
        self.emit(f"for {r}_j in range({r}_len - 1, -1, -1):", 2)
