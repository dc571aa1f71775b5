"""Scalar code both Numba backends generate: an elementwise equation as a Python expression on
its operands' scalar texts (the registry's template, typed to the equation's dtype), and the
index expressions that read a broadcast operand inside a loop nest. The CPU backend's loops and
the CUDA backend's kernels share them, so neither borrows from the other.

>>> from jitgrad.backends.scalar_code import broadcast_index
>>> broadcast_index((1, 3), (2, 4, 3), ["i", "j", "k"])
['0', 'k']
"""

from __future__ import annotations

from jitgrad import dtypes
from jitgrad.backends.numba_values import _NP, _RETYPES, Unsupported
from jitgrad.ops.elementwise import astype_p, clamp_p, invert_p, pow_scalar_p


def scalar_expr(e, args: list[str], vector: bool = False, template: str | None = None) -> str:
    """Python text for one elementwise equation on scalar operand texts ``args`` (the
    registry's template, or ``template`` where given, typed to the equation's dtype)."""
    tmpl = e.prim.expr if template is None else template
    dt = e.out.aval.dtype
    if vector and e.prim.vector and dt.is_floating_point and template is None:
        # float32 loops take the float32 variant where there is one (else float64's).
        f32 = dt is dtypes.float32 and e.inputs[0].aval.dtype is dtypes.float32
        tmpl = (e.prim.vector.get("float32") if f32 else None) or e.prim.vector.get("float64") \
            or tmpl
    if tmpl is None:
        raise Unsupported(f"no scalar template for {e.prim.name}")
    params = {k: (repr(v) if not isinstance(v, dtypes.DType) else _NP[v])
              for k, v in e.params.items()}
    prim = e.prim
    if prim is astype_p:
        params["cast"] = _NP[e.params["dtype"]]
    if prim is clamp_p:
        dt = e.out.aval.dtype
        for k in ("lo", "hi"):
            v = e.params[k]
            params[k] = ("np.inf" if k == "hi" else "-np.inf") if v is None else repr(v)
            if dt.category == 1 and v is None:
                params[k] = "np.iinfo(np.int64).max" if k == "hi" else "np.iinfo(np.int64).min"
    if prim is pow_scalar_p and e.params["p"] == 2:
        text = f"({args[0]} * {args[0]})"
    elif prim is invert_p:
        text = f"(not {args[0]})" if e.out.aval.dtype is dtypes.bool_ else f"(~{args[0]})"
    else:
        text = tmpl.format(*args, **params)
    if dt is not dtypes.bool_ and (dt is dtypes.float32 or prim in _RETYPES or any(
            a.aval.dtype is not dt for a in e.inputs)):
        # Keep the result in its IR dtype (math.* gives float64, a comparison bool...);
        # where every operand already has it, the wrapper only slows Numba's typing.
        return f"{_NP[dt]}({text})"
    return text


def broadcast_index(src_shape: tuple, shape: tuple, idx: list) -> list:
    """Index expressions reading an array of ``src_shape`` at loop position ``idx`` over
    ``shape`` (NumPy broadcasting: dims aligned on the right, size-1 dims read at 0)."""
    n, k = len(shape), len(src_shape)
    return [idx[n - k + j] if src_shape[j] == shape[n - k + j] else "0" for j in range(k)]
