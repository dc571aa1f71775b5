"""The trace builder: where ops go while a function is being traced (and while the autodiff pass
emits adjoint IR). Tracers are ordinary ``Tensor`` objects whose ``_ir`` names their IR value;
during the forward trace they also carry the concrete value, so Python control flow can ask for it
and the answer is recorded as a guard.
"""

from __future__ import annotations

import contextlib
import os
import sys
import types
import weakref
from typing import NamedTuple

import numpy as np

from jitgrad import dtypes
from jitgrad.autograd import grad_mode
from jitgrad.errors import TraceError
from jitgrad.ir.graph import Eqn, Lit, Source, Var
from jitgrad.ops import PRIMITIVES
from jitgrad.ops.registry import Aval
from jitgrad.tensor import Tensor
from jitgrad.trace import pytree as _pytree
from jitgrad.trace.liveness import live_at
from jitgrad.trace.views import current, is_view, mark, write_back

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def user_source() -> Source | None:
    """The innermost frame outside jitgrad: the user's line that caused the current op."""
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not fn.startswith(_PKG_DIR):
            return Source(fn, f.f_lineno)
        f = f.f_back
    return None


def guard_context() -> tuple:
    """Where a guard is and the Python state around it, for loop recognition
    (``loops/lift.py``): the user's call stack inside the traced function as (code,
    source position) pairs, which tells apart two guards on one line, and a snapshot of what
    the trace cannot see in each of those frames (non-tensor locals, the globals their code
    names) and of the Modules (their version): a counter in the caller of the helper that
    tests the condition counts too. Third, the traced values the frames hold
    (``Bindings``)."""
    f = sys._getframe(1)
    frames = []
    while f is not None and f.f_code.co_filename not in TRACE_ROOTS:
        if not f.f_code.co_filename.startswith(_PKG_DIR):
            frames.append(f)
        f = f.f_back
    if not frames:
        return (), None, None
    key = tuple((fr.f_code, _position(fr)) for fr in frames)
    names: list = []
    held: list = []
    state = []
    for depth, fr in enumerate(frames):
        live = live_at(fr.f_code, fr.f_lasti)
        loc = []
        for k, v in fr.f_locals.items():
            if not isinstance(v, Tensor):
                loc.append((k, _snap(v, held=held)))
            elif k in live and isinstance(getattr(v, "_ir", None), Var):
                names.append(((depth, k), v._ir))
        # Tensors are left out of the state: the trace sees them (and a tensor local that is
        # not bound yet at the first test of a loop's condition is bound by its first
        # iteration).
        state.append((fr.f_code.co_name, tuple(loc), ()))
    glb = _reachable_globals(frames, held)
    return key, (tuple(state) + (("globals", (), glb),), _pytree.module_version()), \
        Bindings(tuple(names), tuple(held))


def hide_locals(context: tuple, hidden: set) -> tuple:
    """``context`` without the locals ``hidden`` names ((code, name) pairs) in its state."""
    key, state, binds = context
    if not hidden or state is None:
        return context
    frames, version = state
    out = []
    for depth, f in enumerate(frames):
        code = key[depth][0] if depth < len(key) else None
        if f[0] == "globals" or not any(c is code for c, _ in hidden):
            out.append(f)
        else:
            out.append((f[0], tuple((k, v) for k, v in f[1] if (code, k) not in hidden), f[2]))
    return key, (tuple(out), version), binds


class Bindings(NamedTuple):
    """The traced values the user's frames hold at a guard: ``names``, ((frame depth, name),
    Var) for each tensor local live there (``trace/liveness.py``); ``held``, the Vars of the
    tensors inside containers, objects, globals and closure cells, which no analysis says are
    dead, and ``None`` if some place was not looked into (``_snap``). Attributes of Python
    modules and classes are not looked into: programs keep their own constants there, not
    the values they compute."""

    names: tuple
    held: tuple


def _reachable_globals(frames, held: list) -> tuple:
    """The globals the frames' code loads, and those of the user functions it reaches through
    them (a helper's counter), with the contents of those functions' closure cells. The
    traced tensors among them go to ``held``."""
    from jitgrad.trace.implicit import _user, global_names
    seen: set = set()
    out = []
    stack = [(fr.f_code, fr.f_globals, None) for fr in frames]
    while stack and len(seen) < 64:
        code, glb, cells = stack.pop()
        if code in seen:
            continue
        seen.add(code)
        for cell in cells or ():
            try:
                out.append(("<cell>", _snap(cell.cell_contents, held=held)))
            except ValueError:  # an empty cell
                pass
        for name in global_names(code):
            if name not in glb:
                continue
            v = glb[name]
            if isinstance(v, types.FunctionType) and _user(v.__code__):
                stack.append((v.__code__, v.__globals__, v.__closure__))
            else:
                snap = _snap(v, held=held)
                if not isinstance(v, Tensor):
                    out.append((name, snap))
    return tuple(out)


# The files whose frames start a traced function (the tracer's, and the function transforms'
# trace_graph, transforms/replay.py): the walk of the user's frames stops there. The frames
# above are suspended while the function runs, so their state cannot steer it; walking them
# snapshotted the whole program's stack at every guard of a transform traced eagerly.
TRACE_ROOTS = {os.path.join(os.path.dirname(os.path.abspath(__file__)), "tracer.py")}


_POSITIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # per code object


def _set_local(frame, name: str, value) -> bool:
    """Bind ``name`` to ``value`` in the running ``frame`` (of a function that called into
    the trace), as a debugger does: Python 3.13's ``f_locals`` writes through; before it, the
    frame's dict of locals is written back with ``PyFrame_LocalsToFast``. Whether it took."""
    try:
        loc = frame.f_locals
        loc[name] = value
        if sys.version_info < (3, 13):
            import ctypes
            ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))
        return frame.f_locals.get(name) is value
    except Exception:  # noqa: BLE001  (no such API here: the local stays a Python int)
        return False


def _position(frame) -> tuple:
    """Where in its source the frame's current instruction is: line and columns (Python 3.11+),
    so that CPython's two copies of a ``while`` condition (the test before the loop and the one
    at its end) are one site, and two conditions on one line are two."""
    code = frame.f_code
    pos = _POSITIONS.get(code)
    if pos is None:
        pos = _POSITIONS[code] = list(code.co_positions()) if hasattr(code, "co_positions") \
            else []
    i = frame.f_lasti // 2
    return pos[i] if i < len(pos) else (frame.f_lineno,)


_PLAIN = (int, bool, str, bytes, type(None), complex)
_OPAQUE = (types.FunctionType, types.ModuleType, type, types.BuiltinFunctionType,
           types.MethodType, types.CodeType)


def _snap(v, depth: int = 0, held: list | None = None):
    """A comparable picture of a Python value, tensors left out (the IR tracks them). The Vars
    of the traced tensors met go to ``held``, and a ``None`` there says that some place that
    could hold one was not looked into (a Module, a bound method, an object or container too
    deep or too long)."""
    t = type(v)
    if t in _PLAIN:
        return v
    if t is float:
        return ("float", repr(v))  # NaN equals itself here
    if isinstance(v, Tensor):
        if held is not None and isinstance(getattr(v, "_ir", None), Var):
            held.append(v._ir)
        return "tensor"
    if depth > 3 or isinstance(v, _OPAQUE):
        if held is not None:
            if depth > 3 or t is types.MethodType:
                held.append(None)
            elif t is types.FunctionType:
                for cell in v.__closure__ or ():
                    try:
                        _snap(cell.cell_contents, depth + 1, held)
                    except ValueError:  # an empty cell
                        pass
        return (t, id(v))
    if t in (list, tuple):
        if held is not None and len(v) > 256:
            held.append(None)
        return (t, len(v), tuple(_snap(x, depth + 1, held) for x in v[:256]))
    if t is dict:
        if held is not None and len(v) > 256:
            held.append(None)
        return (t, len(v), tuple((k, _snap(x, depth + 1, held))
                                 for k, x in list(v.items())[:256]))
    if isinstance(v, np.ndarray):
        return (t, v.shape, v.dtype.str, v.tobytes() if v.size <= 4096 else id(v))
    d = getattr(v, "__dict__", None)
    if isinstance(v, _pytree.Module) or (isinstance(d, dict) and depth >= 2):
        if held is not None:
            held.append(None)
        if isinstance(v, _pytree.Module):
            return (t, id(v))  # its attributes: the module version
    if isinstance(d, dict) and depth < 2:
        return (t, id(v), tuple((k, _snap(x, depth + 1, held)) for k, x in d.items()))
    return (t, id(v))


def _with_location(e: Exception, src: Source | None) -> Exception:
    if src is None or "(at " in str(e):
        return e
    msg = f"{e.args[0] if e.args else e} (at {src.file}:{src.line})"
    try:
        new = type(e)(msg)
    except Exception:  # an exception type with another constructor: keep it as it is
        e.add_note(f"at {src.file}:{src.line}")
        return e
    return new


def locate(e: Exception) -> Exception:
    """``e`` with the user's innermost ``file:line`` from its traceback added to the message."""
    tb = e.__traceback__
    src = None
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if not fn.startswith(_PKG_DIR):
            src = Source(fn, tb.tb_lineno)
        tb = tb.tb_next
    return _with_location(e, src)


class Builder:
    """Collects equations. ``concrete`` says whether tracers carry values (the forward trace)."""

    def __init__(self, concrete: bool = True) -> None:
        self.concrete = concrete
        self.eqns: list[Eqn] = []
        self.consts: list[tuple[Var, np.ndarray]] = []
        self.inputs: list[Var] = []
        self.known: dict[int, Tensor] = {}      # id(outside tensor) -> its tracer
        self.refs: list[tuple[Var, Tensor]] = []  # outside tensors met during the trace
        self.input_tracers: set[int] = set()
        self.guard_sites: list[Source | None] = []
        self.guard_context: list[tuple] = []  # per guard: guard_context()
        # Reports of the loops in function transforms traced inside this trace (not lifted).
        self.nested_loops: list = []
        self.in_transform = False  # a function transform's trace (transforms/replay.py)
        self.src_override: Source | None = None
        self._keep: list = []  # outside tensors whose ids are keys of ``known``
        self.arrays: dict[int, Tensor] = {}  # id(live NumPy array) -> its input's tracer
        self.random_draws = 0  # draws so far: each one's number (factories._traced_uniform)
        self._zeros: dict = {}  # loop site -> its counter's start (``range_loop``)
        self._hidden: set = set()  # (code, local) of range loop variables nothing reads
        # (code, header line, local) of while loops' counters that their bodies read: taken as
        # traced numbers at the header (``count_here``; ``loops/induction.ReadInBody``)
        self.count_locals: frozenset = frozenset()

    # -- making tracers ----------------------------------------------------------------------
    def tracer(self, var: Var, value: np.ndarray | None) -> Tensor:
        if value is not None:
            t = Tensor._wrap(value)
        else:
            t = object.__new__(Tensor)
            t._value = None
            t._rg = False
            t.grad_fn = None
            t._vc = [0]
            t._aval = var.aval
        t._ir = var
        t._builder = self
        return t

    def new_input(self, value: np.ndarray | None, aval: Aval | None = None) -> Tensor:
        if aval is None:
            aval = Aval(tuple(value.shape), dtypes._BY_NP[value.dtype])
        v = Var(aval)
        self.inputs.append(v)
        t = self.tracer(v, value)
        self.input_tracers.add(id(t))
        self._keep.append(t)  # its id marks an input: no other tensor may take it over
        return t

    def register_outside(self, outside: Tensor, tracer: Tensor) -> None:
        """Map a tensor from outside the function (a Module parameter, a closure tensor) to
        the tracer of its input."""
        self.known[id(outside)] = tracer
        self._keep.append(outside)
        self.input_tracers.add(id(tracer))

    def literal(self, v, dtype: dtypes.DType) -> Tensor:
        return self.tracer(Lit(v, dtype), np.array(v, dtype=dtype.np) if self.concrete else None)

    def live_array(self, arr) -> Tensor | None:
        """The input tracer of a live NumPy array (a global's, a closure's: ``implicit.py``),
        or None for any other value."""
        return self.arrays.get(id(arr)) if type(arr) is np.ndarray else None

    def const(self, arr: np.ndarray) -> Tensor:
        var = Var(Aval(tuple(arr.shape), dtypes._BY_NP[arr.dtype]))
        self.consts.append((var, arr))
        return self.tracer(var, arr if self.concrete else None)

    def atom(self, t: Tensor):
        """The IR atom for a tensor used in the trace; outside tensors become live inputs."""
        if t._ir is not None and t.__dict__.get("_builder") is self:
            return t._ir
        known = self.known.get(id(t))
        if known is not None:
            return known._ir
        # A tensor created outside and reached by another path (an attribute, a helper's
        # global): a live input held by reference, read afresh at every call.
        if t._value is None:
            raise TraceError("an abstract value from another trace reached this one")
        tr = self.new_input(t._value)
        self.refs.append((tr._ir, t))
        self.register_outside(t, tr)
        return tr._ir

    # -- recording ---------------------------------------------------------------------------
    def bind(self, prim, args: tuple, params: dict) -> Tensor:
        src = self.src_override or user_source()
        for a in args:
            if a._view_of is not None:
                current(a)  # rebinds a view whose base was written in place since (trace/views)
        atoms = [self.atom(a) for a in args]
        try:
            aval = prim.abstract(*[a.aval for a in atoms], **params)
        except (ValueError, IndexError, TypeError, RuntimeError) as e:
            raise _with_location(e, src) from None
        value = None
        if self.concrete:
            vals = [a._value for a in args]
            value = prim.impl(*vals, **params)
            if value is not None and type(value) is not np.ndarray and type(value) is not tuple:
                value = np.asarray(value)  # (a loop's results stay a tuple: tuple_get reads it)
            if value is not None and prim.layout is not None:  # torch's strides, as eager's
                value = prim.layout(value, vals, params)
        out = Var(aval) if aval is not None else None
        self.eqns.append(Eqn(prim, tuple(atoms), out, params, src))
        if out is None:
            return None
        t = self.tracer(out, value)
        if not grad_mode.state.enabled and self.concrete and prim.vjp is not None:
            # Computed under no_grad: the value is used, its derivative is not.
            t = self.bind(PRIMITIVES["stop_gradient"], (t,), {})
        if prim.view and is_view(prim, args):
            mark(t, args[0], prim, params, args[1:])
        return t

    def mark_view(self, view: Tensor, base: Tensor, prim, params: dict, rest: tuple) -> None:
        """Record that ``view`` is a view of ``base`` made by ``prim`` (an op whose primitive
        copies, as ``diagonal``'s gather, but which torch defines as a view): trace/views."""
        mark(view, base, prim, params, rest)

    def detach(self, t: Tensor) -> Tensor:
        return self.bind(PRIMITIVES["stop_gradient"], (t,), {})

    def concretize(self, t: Tensor, why: str):
        """Python asked for a tracer's value: answer it, and record a guard on the answer."""
        if not self.concrete:
            raise TraceError(f"{why}() of an abstract value: a VJP rule must not branch on data")
        if why in ("numpy", "__array__"):
            src = user_source()
            raise TraceError(
                f"calling NumPy on a traced tensor would freeze its current value into the "
                f"compiled code (at {src.file}:{src.line}); use jitgrad's own ops (jitgrad.exp, "
                f"jitgrad.where, ...) inside compiled functions, or .item()/float() for a scalar "
                f"(which is guarded)" if src else "calling NumPy on a traced tensor is not allowed")
        current(t)  # (rebinds a view whose base was written since)
        value = t._value
        if why == "bool":
            if value.size != 1:
                raise RuntimeError(f"Boolean value of Tensor with {value.size} values is ambiguous")
            b = t if t.dtype is dtypes.bool_ else t != 0
            self._guard(b, bool(value.reshape(())))
            return value
        if why == "tolist":
            if value.size > 64:
                raise TraceError(f"tolist() of a traced tensor of {value.size} elements would add "
                                 f"a guard per element; compute with tensor ops instead")
            flat = t.reshape(-1)
            for i in range(value.size):
                self._guard(flat[i], value.reshape(-1)[i].item())
            return value
        if value.size != 1:
            raise ValueError(f"a Tensor with {value.size} elements cannot be converted to Scalar")
        self._guard(t, value.reshape(()).item())
        return value

    @contextlib.contextmanager
    def at(self, src: Source | None):
        """Equations bound inside are attributed to ``src`` rather than the calling frame."""
        prev, self.src_override = self.src_override, src
        try:
            yield
        finally:
            self.src_override = prev

    def bind_at(self, src: Source | None, prim, args: tuple, params: dict):
        """``bind``, attributing the equation to ``src`` rather than the calling frame."""
        with self.at(src):
            return self.bind(prim, args, params)

    def replay_guard(self, t: Tensor, expect, src: Source | None) -> None:
        """A guard replayed from another trace: the frames here are not the ones it tested,
        so it is a site of its own, never mistaken for a loop header."""
        self._guard(t, expect, src, context=((object(), src), None, None))

    def _guard(self, t: Tensor, expect, src: Source | None = None,
               context: tuple | None = None) -> None:
        """Record a guard. ``context``: its site and Python state for loop recognition, when
        not the current frames' (a replayed guard's is a site of its own)."""
        src = src or user_source()
        if self.count_locals and context is None:
            self.count_here()
        index = len(self.guard_sites)
        self.guard_sites.append(src)
        self.guard_context.append(context if context is not None else
                                  hide_locals(guard_context(), self._hidden))
        if t.ndim:
            t = self.bind_at(src, PRIMITIVES["reshape"], (t,), {"shape": ()})
        self.bind_at(src, PRIMITIVES["guard"], (t,), {"expect": expect, "index": index})

    def count_here(self) -> None:
        """At a test in the header of a ``while`` whose counter its body reads
        (``count_locals``), the counter, a Python int until now, becomes a traced number
        (``trace/numbers.py``) of the trace: ``it += 1`` and ``it < 60`` are then the trace's,
        and so is what the body computes from it (``0.9 ** it``, ``x[it]``). Each start value
        is one constant per site, as a ``range`` loop's counter is: the loop in each iteration
        of an outer one starts from the same value. The local is left out of the Python state
        from then on."""
        from jitgrad.trace.numbers import number
        f = sys._getframe(1)
        while f is not None and f.f_code.co_filename not in TRACE_ROOTS:
            for code, line, name in self.count_locals:
                if f.f_code is not code or _position(f)[0] != line:
                    continue
                v = f.f_locals.get(name)
                if type(v) is not int or not -2 ** 63 <= v < 2 ** 63:
                    continue
                site = (code, line, name, v)
                if site not in self._zeros:
                    self._zeros[site] = self.const(np.array(v, np.int64))
                if _set_local(f, name, number(self._zeros[site], int)):
                    self._hidden.add((code, name))
            f = f.f_back

    def range_loop(self, frame, match: tuple, arg):
        """A ``for`` over ``range`` of a tensor's value (``trace/ranges.py``): the iterator
        whose headers guard ``counter < N``, with ``N`` that value in the trace, or None when
        the call is not one this can take."""
        name, kind, var, breaks, reads = match
        x = name if kind == "const" else frame.f_locals.get(name)
        if type(x) is int and kind in ("const", "tensor"):
            # range(N) of a Python int whose body can break: N a literal of the trace
            if not breaks or arg != x:
                return None
            return self._counted_loop(frame, var, self.literal(x, dtypes.int64), x, reads)
        if not isinstance(x, Tensor) or x._ir is None or x.__dict__.get("_builder") is not self \
                or x.numel() != 1:
            return None
        if kind == "tensor":
            if arg is not x or x.dtype is not dtypes.int64:
                return None
        else:
            if type(arg) is not int or (kind == "item" and x.dtype is not dtypes.int64):
                return None
            if not self._drop_last_guard(x):
                return None
        src = Source(frame.f_code.co_filename, frame.f_lineno)
        xs = x if not x.ndim else self.bind_at(src, PRIMITIVES["reshape"], (x,), {"shape": ()})
        if x.dtype.is_floating_point:
            # int() of NaN or inf raises: such a value re-traces, and Python raises then.
            bad = self.bind_at(src, PRIMITIVES["bitwise_or"], (
                self.bind_at(src, PRIMITIVES["isnan"], (xs,), {}),
                self.bind_at(src, PRIMITIVES["isinf"], (xs,), {})), {})
            self._guard(bad, False, src)
        n = xs if x.dtype is dtypes.int64 else self.bind_at(
            src, PRIMITIVES["astype"], (xs,), {"dtype": dtypes.int64})  # truncates, as int()
        return self._counted_loop(frame, var, n, int(arg) if kind != "tensor" else
                                  int(x._value.reshape(())), reads)

    def _counted_loop(self, frame, var: str, n: Tensor, count: int, reads: bool):
        """The iterator of ``range(count)`` whose headers guard ``counter < n`` (``n`` the
        count in the trace), the loop variable ``var`` left out of the Python state at every
        guard while it runs: nothing reads it, or (``reads``) the body does, and gets the
        counter as a traced number (``trace/numbers.py``)."""
        from jitgrad.trace.ranges import LoopRange
        src = Source(frame.f_code.co_filename, frame.f_lineno)
        # One zero per loop site: the inner loop of each iteration of an outer one starts from
        # the same value, as iterations must to be lifted, and from another than the outer's
        # counter (a value both carried and read as it is would stop the outer one).
        site = (frame.f_code, frame.f_lasti)
        if site not in self._zeros:
            self._zeros[site] = self.const(np.zeros((), np.int64))
        counter = [self._zeros[site]]
        one = self.literal(1, dtypes.int64)
        # The loop variable counts up and nothing reads it, or the loop's body only, as a traced
        # number that is no Python state (ranges._find): it is left out of
        # the Python state at every guard from here on, in the loop (its headers, an if on data
        # that breaks out of it) and after it (where a break leaves it at its last value).
        self._hidden.add((frame.f_code, var))

        def header(i: int, last: bool) -> Tensor:
            if i:
                counter[0] = self.bind_at(src, PRIMITIVES["add"], (counter[0], one), {})
            cond = self.bind_at(src, PRIMITIVES["lt"], (counter[0], n), {})
            self._guard(cond, not last, src)
            return counter[0]
        return LoopRange(self, count, header, reads)

    def _drop_last_guard(self, x: Tensor) -> bool:
        """Take back the guard just made on ``x``'s value (its only use is the range)."""
        if not self.eqns or self.eqns[-1].prim is not PRIMITIVES["guard"]:
            return False
        g = self.eqns[-1]
        if g.params["index"] != len(self.guard_sites) - 1:
            return False
        src = g.inputs[0]
        if src is not x._ir:
            made = len(self.eqns) > 1 and self.eqns[-2]
            if not (made and made.out is src and made.prim is PRIMITIVES["reshape"]
                    and made.inputs[0] is x._ir):
                return False
        self.eqns.pop()
        self.guard_sites.pop()
        self.guard_context.pop()
        return True

    def inplace(self, target: Tensor, compute, name: str) -> Tensor:
        """In-place ops on tracers rebind the tracer to the new value (SSA underneath)."""
        if target._ir is None or id(target) in self.input_tracers:
            src = user_source()
            where = f" (at {src.file}:{src.line})" if src else ""
            raise TraceError(f"{name}: a compiled function cannot modify its inputs or tensors from "
                             f"outside it in place{where}; compute a new tensor instead "
                             f"(y = x + 1 rather than x += 1)")
        current(target)
        out = compute(target)
        if tuple(out.shape) != tuple(target.shape):
            out = out.expand(*target.shape) if out.ndim <= target.ndim else out
            if tuple(out.shape) != tuple(target.shape):
                raise RuntimeError(f"{name}: output with shape {list(target.shape)} doesn't match "
                                   f"the broadcast shape {list(out.shape)}")
        if out.dtype is not target.dtype:
            out = out.to(target.dtype)
        target._ir, target._value, target._aval = out._ir, out._value, out._aval
        # a view's write reaches its base, as eagerly
        write_back(self, target, name, PRIMITIVES["index_update"])
        return target

    def inline(self, graph, inputs: list) -> list:
        """Replay ``graph`` into this trace with ``inputs`` (tensors of this trace or outside
        it) bound to its inputs; returns tracers for its outputs. Guards become this trace's."""
        env: dict[int, Tensor] = {}
        for v, arr in graph.consts:
            env[id(v)] = self.const(arr)
        for v, t in zip(graph.inputs, inputs):
            env[id(v)] = t

        def get(a):
            if isinstance(a, Lit):
                return self.literal(a.value, a.aval.dtype)
            return env[id(a)]

        for e in graph.eqns:
            args = [get(a) for a in e.inputs]
            if e.out is None:
                self.replay_guard(args[0], e.params["expect"], e.src)
                continue
            env[id(e.out)] = self.bind_at(e.src, e.prim, tuple(args), e.params)
        return [get(o) for o in graph.outputs]
