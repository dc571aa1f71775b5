"""How a call's results are built: straight-line generated code where the call is plain (this is
on every steady-state call), the one generated function per signature that runs a whole
steady-state call (``_steady``; ``lower().as_text("call")`` shows it), and the general path."""

from __future__ import annotations


from jitgrad._pysource import define
from jitgrad.tensor import Tensor
from jitgrad.trace.pytree import num_leaves, unflatten
from jitgrad.runtime.callkey import CallKey, refs_checks
from jitgrad.runtime.nodes import _MISS, _TENSOR, Call, TraceNode


class ResultsMixin:
    """``Runtime``'s result building (it supplies ``mode``, ``argnums``, ``target``...)."""

    def _plain(self, node: TraceNode, call: Call) -> bool:
        """Whether results can be built with straight-line code: host arrays, and a tensor in
        and out where the tree structure matters."""
        plain = node.traced.out_tree == _TENSOR and (self.mode == "jit" or all(
            call.trees[i] == _TENSOR for i in self._argnums()))
        return plain and not self.backend.on_device and not self.has_aux

    def _result_lines(self, node: TraceNode, outs: list[str]) -> list[str]:
        """Straight-line code building the result from output arrays ``outs`` (expressions):
        copies of aliased outputs (``copy_out``) and, unless the executable promises
        ``dense_outputs``, of any that is not a writable C-contiguous array; Tensor objects;
        the result tuple."""
        lines = []
        new = node.exe.new_outputs  # outputs the executable made on this call
        dense = node.exe.dense_outputs
        for i, src in enumerate(outs):
            if i in node.copy_out and i not in new:
                src += ".copy()"
            elif not dense and i not in new:
                # Results are written in place (``g.mul_(s)``): a read-only broadcast (the
                # interpreter's gradient of a sum) or a strided view becomes an array of its
                # own; an array that already is one passes for two flag reads.
                lines.append(f"r{i} = {src}")
                src = f"r{i} if r{i}.flags.writeable and r{i}.flags.c_contiguous else r{i}.copy()"
            lines += [f"t{i} = new(Tensor)", f"t{i}._value = {src}", f"t{i}._rg = False",
                      f"t{i}.grad_fn = None", f"t{i}._vc = [0]"]
        n, nums = len(outs), self.argnums
        if self.mode == "jit":
            lines.append("return t0")
        elif isinstance(nums, int):
            lines.append("return t0, t1")
        else:
            lines.append(f"return t0, ({''.join(f't{i}, ' for i in range(1, n))})")
        return lines

    def _builder(self, node: TraceNode, call: Call):
        """``finish`` for one trace and call structure: straight-line code where ``_plain``
        (this is on every steady-state call); else the general path."""
        if not self._plain(node, call):
            return lambda outs: self.finish(node, call, outs)
        n = len(node.optimized.outputs)
        lines = ["def build(outs):"] + ["    " + line for line in self._result_lines(
            node, [f"outs[{i}]" for i in range(n)])]
        return define("\n".join(lines), "build", {"new": object.__new__, "Tensor": Tensor},
                      "results")

    def call_text(self, node: TraceNode, call: Call, args: tuple) -> str:
        """The Python that runs a steady-state call of ``node`` with arguments like ``args``:
        the generated function where there is one, else why the general path runs."""
        build = self._builder(node, call)
        implicit, extra = self.implicit.state()
        steady = self._steady(node, call, build, CallKey.plain(args, self._dynamic, implicit,
                                                                extra))
        if steady is not None:
            return steady.source
        why = []
        if node.exe.steady is None:
            why.append(f"the {type(node.exe).__name__} makes no call function")
        plain = self._plain(node, call)
        if not plain:
            why.append("the arguments or results are nested, on a device, or with aux")
        if call.implicit or node.traced.refs:
            why.append("the function reads tensors from globals, closures or Modules")
        head = "# the general call path (Runtime.execute): " + "; ".join(why) + "\n"
        return head + (build.source if plain else "# results built by Runtime.finish")

    def _steady(self, node: TraceNode, call: Call, build, key: CallKey | None):
        """The whole steady-state call in one generated function, where the executable can make
        one (the Numba CPU backend) and the call is plain (``key``: its ``CallKey``; None when
        it is not): it checks that its call has ``key`` itself (``CallKey.checks``: the
        arguments' types, shapes and dtypes, a static number's value, those of the tensors it
        reads from closures and globals) and the shapes and dtypes of the outside tensors the
        trace read, and returns ``_MISS`` when any differs. Else None."""
        make = node.exe.steady
        if make is None or key is None or not self._plain(node, call):
            return None
        if self.implicit.fixed and call.implicit:
            return None
        ns = {"new": object.__new__, "Tensor": Tensor, "build": build, "MISS": _MISS,
              "implicit": self.implicit.state}
        # A closure or global may come to hold another tensor (or none), or a Python value the
        # trace baked in may have changed, unless the function reads none (Implicit.fixed).
        # Guards are compiled into the kernel: once the tree has children, this trace still
        # answers every call whose guards pass, and raises GuardFailure for the others.
        prologue = key.checks(call.leaves, ns, implicit=not self.implicit.fixed)
        # outside tensors the trace met: read afresh, inputs after the implicit ones
        prologue += refs_checks(node.traced.refs, len(call.leaves) + len(call.implicit), ns)
        finish = self._result_lines(node, [f"o{i}" for i in range(len(node.optimized.outputs))])
        return make(prologue, finish, ns)

    def _structure(self, tree, call: Call, tensors: list):
        if tree == _TENSOR and self.mode == "grad":  # common cases, without walking trees
            nums = self.argnums
            if isinstance(nums, int):
                if len(tensors) == 2 and call.trees[nums] == _TENSOR:
                    return tensors[0], tensors[1]
            elif len(tensors) == len(nums) + 1 and all(call.trees[i] == _TENSOR for i in nums):
                return tensors[0], tuple(tensors[1:])
        n_fwd = num_leaves(tree)
        value = unflatten(tree, tensors[:n_fwd])
        if self.mode == "jit":
            return value
        grads = iter(tensors[n_fwd:])
        per_arg = []
        for i in self._argnums():
            t = call.trees[i]
            per_arg.append(unflatten(t, [next(grads) for _ in range(num_leaves(t))]))
        g = per_arg[0] if isinstance(self.argnums, int) else tuple(per_arg)
        return value, g
