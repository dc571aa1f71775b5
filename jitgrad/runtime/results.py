"""How a call's results are built: straight-line generated code where the call is plain (this is
on every steady-state call), the one generated function per signature that runs a whole
steady-state call (``_steady``; ``lower().as_text("call")`` shows it), and the general path."""

from __future__ import annotations

import numpy as np



from jitgrad._pysource import define
from jitgrad.nn.parameter import Parameter
from jitgrad.tensor import Tensor
from jitgrad.trace.pytree import num_leaves, unflatten
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
        steady = self._steady(node, call, build, args)
        if steady is not None:
            return steady.source
        why = []
        if node.exe.steady is None:
            why.append(f"the {type(node.exe).__name__} makes no call function")
        if not self._plain(node, call):
            why.append("the arguments or results are nested, on a device, or with aux")
        if call.implicit or node.traced.refs:
            why.append("the function reads tensors from globals, closures or Modules")
        head = "# the general call path (Runtime.execute): " + "; ".join(why) + "\n"
        return head + getattr(build, "source", "# results built by Runtime.finish")

    def _steady(self, node: TraceNode, call: Call, build, args: tuple):
        """The whole steady-state call in one generated function, where the executable can make
        one (the Numba CPU backend) and the call's inputs are its arguments ``args`` (tensors
        and Python numbers): it checks the arguments' types, shapes and dtypes (a static
        number's value) and those of the tensors it reads from closures, globals and outside
        (inputs after the arguments'), itself, and returns ``_MISS`` when any differs from
        this call's. A differentiated number becomes its 0-d input. Else None."""
        make = node.exe.steady
        if make is None or not self._plain(node, call):
            return None
        n = len(args)
        ns = {"new": object.__new__, "Tensor": Tensor, "Parameter": Parameter, "build": build,
              "ndarray": np.ndarray, "asarray": np.asarray,
              "MISS": _MISS, "implicit": self.implicit.state, "EXTRA": self.implicit.extra}
        # Guards are compiled into the kernel: once the tree has children, this trace still
        # answers every call whose guards pass, and raises GuardFailure for the others.
        prologue = [f"if len(args) != {n}:", "    return MISS"]

        def input_array(k: int, expr: str, like) -> None:
            """Input ``v{k}`` is the array ``expr``, of ``like``'s shape and dtype."""
            ns[f"S{k}"], ns[f"D{k}"] = like.shape, like.dtype
            prologue.extend([f"v{k} = {expr}",
                             f"if v{k}.shape != S{k} or v{k}.dtype is not D{k}:",
                             "    return MISS"])

        n_leaves = len(call.leaves)
        if not self.implicit.fixed:
            # A closure or global may come to hold another tensor (or none), or a Python value
            # the trace baked in may have changed: the tensors it reads now are inputs after
            # the arguments', of the shapes and dtypes this trace was built for.
            prologue += ["its, iex = implicit()",
                         f"if len(its) != {len(call.implicit)} or "
                         "(iex is not EXTRA and iex != EXTRA):", "    return MISS"]
            for m, t in enumerate(call.implicit):
                input_array(n_leaves + m, f"its[{m}]._value", t._value)
        elif call.implicit:
            return None
        for r, t in enumerate(node.traced.refs):  # outside tensors the trace met: read afresh
            k = n_leaves + len(call.implicit) + r
            ns[f"R{k}"] = t
            input_array(k, f"R{k}._value", t._value)
        if n:  # (a function of no arguments unpacks nothing)
            prologue.append(f"{', '.join(f'a{i}' for i in range(n))}{',' if n == 1 else ''} = args")
        leaves = iter(call.leaves)
        j = 0
        for i, (a, tree) in enumerate(zip(args, call.trees)):
            if type(a) is Tensor or type(a) is Parameter:
                prologue += [f"if type(a{i}) is not Tensor and type(a{i}) is not Parameter:",
                             "    return MISS"]
                input_array(j, f"a{i}._value", next(leaves)._value)
                j += 1
            elif type(a) is np.ndarray:  # a NumPy array: an input as it is
                prologue += [f"if type(a{i}) is not ndarray:", "    return MISS"]
                input_array(j, f"a{i}", next(leaves)._value)
                j += 1
            elif isinstance(a, np.generic):  # a NumPy scalar: a 0-d input of its dtype
                next(leaves)
                ns[f"T{j}"] = type(a)
                prologue += [f"if type(a{i}) is not T{j}:", "    return MISS",
                             f"v{j} = asarray(a{i})"]
                j += 1
            elif tree == _TENSOR:  # a differentiated number: a 0-d input of the leaf's dtype
                ns[f"T{j}"] = next(leaves)._value.dtype.type
                prologue += [f"if type(a{i}) is not {type(a).__name__}:", "    return MISS",
                             f"v{j} = T{j}(a{i})"]
                j += 1
            else:  # static: part of the trace
                ns[f"K{i}"] = a
                prologue += [f"if type(a{i}) is not {type(a).__name__} or a{i} != K{i}:",
                             "    return MISS"]
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
