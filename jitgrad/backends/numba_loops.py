"""Lowerings of structured control flow for the Numba CPU backend: a lifted ``while`` is a loop
inside the kernel with its body's code inlined (one function for Numba to compile: each function
costs a compile of its own), and its reverse sweep (``while_vjp``) a loop that runs the body's VJP
from the last iteration to the first. The carried values each iteration starts from go on a tape
that grows by doubling, kept only when the VJP reads them. Mixed into ``Codegen``.
"""

from __future__ import annotations

from jitgrad.backends.lowering import CPU
from jitgrad.backends.numba_values import _NP, Unsupported, _root, _Val
from jitgrad.ops.loops import cond_p, tuple_get_p, while_p, while_vjp_p

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
        sub = type(self)(graph, nested=True)
        sub.tag = tag
        for v, name in zip(graph.inputs, names):
            if v.aval.shape:
                sub.publish(v, name, tuple(v.aval.shape))
            else:
                sub.env[id(v)] = _Val("scalar", name)
        sub.steps()
        outs = sub.output_names()
        self.lines += ["    " * (depth - 1) + line for line in sub.lines]
        self.host_ops.extend(sub.host_ops)
        self.parallel = self.parallel or sub.parallel
        return outs

    def _tape_grow(self, tape: str, n: str, shape: tuple, dt: str, depth: int) -> None:
        dims = ", ".join([f"{n} * 2"] + [str(s) for s in shape])
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
        if p["tape"]:
            for i, a in enumerate(e.inputs[1:1 + nc]):
                shape, dt = tuple(a.aval.shape), _NP[a.aval.dtype]
                t = f"{w}_t{i}"
                self.emit(f"{t} = np.empty(({', '.join(str(s) for s in (_TAPE0,) + shape)},), {dt})")
                tapes.append(t)
        self.emit(f"while {'' if p['expect'] else 'not '}{w}_p:")
        for i, (t, a) in enumerate(zip(tapes, e.inputs[1:1 + nc])):
            self._tape_grow(t, f"{w}_n", tuple(a.aval.shape), _NP[a.aval.dtype], 2)
            self.emit(f"{t}[{w}_n] = {cs[i]}", 2)
        # (A guard of the body that fails returns from the kernel: the call re-traces.)
        outs = self.inline(p["body"], cs + inv, f"{w}_", 2)
        # All at once: a carried value may be another's previous one (a swap).
        self.emit(f"{', '.join(cs + [f'{w}_p'])} = {', '.join(outs)}", 2)
        self.emit(f"{w}_n += 1", 2)
        self.tuples[id(e.out)] = cs
        self.loops[id(e.out)] = (cs, f"{w}_n", tapes)
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
        cs, n, tapes = self.loops[id(e.inputs[0])]
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
        self.emit(f"for {r}_j in range({n} - 1, -1, -1):")
        carry = cs
        if p["tape"]:
            carry = [f"{r}_x{i}" for i in range(len(tapes))]
            for x, t in zip(carry, tapes):
                self.emit(f"{x} = {t}[{r}_j]", 2)
        outs = self.inline(p["bvjp"], carry + inv + gs, f"{r}_", 2)
        # The invariants first: an invariant's cotangent may be a carried one passed through
        # (``y = y * a + w``: w's is y's), which is the name the update below rebinds.
        for k, acc in enumerate(accs):
            self.emit(f"{acc} += {outs[len(fc) + k]}", 2)
        self.emit(f"{', '.join(gs)}{',' if len(gs) == 1 else ''} = "
                  f"{', '.join(outs[:len(fc)])}{',' if len(gs) == 1 else ''}", 2)
        self.tuples[id(e.out)] = gs + accs
        self.env[id(e.out)] = _Val("temp", "<loop cotangents>")
