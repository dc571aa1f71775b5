"""The ``jitgrad`` command line: print a function's IR at each compilation stage.

    jitgrad ir FILE.py:FUNC --args f64[3] f32[2,4] [--argnums 0 1]
               [--stage forward|adjoint|optimized|kernel|all] [--target cpu|cuda] [--jit]

Arguments are random tensors of the given dtype and shape (``f32[]`` is a scalar), drawn from a
fixed seed, so the output is reproducible; where the function branches on values, those values
pick the path whose trace is shown. Errors print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys

import numpy as np

_ARG = re.compile(r"^(f32|f64|i64|bool)\[(\d+(?:,\d+)*)?\]$")


class CliError(Exception):
    pass


def parse_arg(spec: str, rng: np.random.Generator):
    m = _ARG.match(spec.replace(" ", ""))
    if not m:
        raise CliError(f"malformed --args entry {spec!r}: expected DTYPE[DIMS] such as f64[3], "
                       "f32[2,4] or f32[] (DTYPE is f32, f64, i64 or bool)")
    import jitgrad
    dt, dims = m.group(1), m.group(2)
    shape = tuple(int(d) for d in dims.split(",")) if dims else ()
    if dt == "i64":
        return jitgrad.tensor(rng.integers(0, 3, shape).astype(np.int64))
    if dt == "bool":
        return jitgrad.tensor(rng.random(shape) > 0.5)
    return jitgrad.tensor(rng.standard_normal(shape).astype(np.float32 if dt == "f32" else
                                                           np.float64))


def load_function(target: str):
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise CliError(f"expected FILE.py:FUNC, got {target!r}")
    if not os.path.isfile(path):
        raise CliError(f"no such file: {path}")
    if not path.endswith(".py"):
        raise CliError(f"{path} is not a Python file (expected FILE.py:FUNC)")
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec = importlib.util.spec_from_file_location("_jitgrad_cli_target", path)
    if spec is None or spec.loader is None:
        raise CliError(f"{path} cannot be imported as a Python module")
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    except Exception as e:  # the user's module failed to import: say so in one line
        raise CliError(f"importing {path} failed: {type(e).__name__}: {e}") from None
    fn = getattr(mod, name, None)
    if fn is None:
        raise CliError(f"{path} has no function {name!r}")
    if not callable(fn):
        raise CliError(f"{path}:{name} is not callable")
    return getattr(fn, "__wrapped__", fn) if hasattr(fn, "lower") else fn


def _parser() -> argparse.ArgumentParser:
    import jitgrad
    p = argparse.ArgumentParser(prog="jitgrad", description="Inspect what jitgrad compiles.")
    p.add_argument("--version", action="version", version=f"jitgrad {jitgrad.__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    ir = sub.add_parser(
        "ir", help="print a function's IR at each compilation stage",
        description="Trace FUNC on random arguments and print its IR. The argument values are "
                    "drawn from a fixed seed, so the output is reproducible; where FUNC "
                    "branches on values (if/while on a tensor), these values pick the path "
                    "whose trace is shown.")
    ir.add_argument("spec", metavar="FILE.py:FUNC", help="the function to compile")
    ir.add_argument("--args", nargs="*", default=None, metavar="SPEC",
                    help="one DTYPE[DIMS] per argument of FUNC, e.g. f64[3] f32[2,4] f32[] "
                         "(DTYPE: f32, f64, i64, bool); values are random, from a fixed seed")
    ir.add_argument("--argnums", nargs="*", type=int, default=[0], metavar="N",
                    help="the positions of the arguments to differentiate (default: 0)")
    ir.add_argument("--stage", default="all",
                    choices=["forward", "adjoint", "optimized", "kernel", "call", "all"],
                    help="which stage to print (default: all)")
    ir.add_argument("--target", default="cpu", choices=["cpu", "cuda", "reference"],
                    help="the backend whose kernel is shown (default: cpu)")
    ir.add_argument("--jit", action="store_true",
                    help="compile the forward function only (no adjoint stage)")
    return p


def main(argv: list | None = None) -> int:
    p = _parser()
    ns = p.parse_args(argv)
    if ns.cmd is None:
        p.print_help()
        return 2
    try:
        return _ir(ns)
    except CliError as e:
        print(f"jitgrad: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # errors raised while tracing the user's function
        print(f"jitgrad: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


def _ir(ns) -> int:
    import jitgrad
    rng = np.random.default_rng(0)
    args = [parse_arg(s, rng) for s in ns.args or []]
    fn = load_function(ns.spec)
    n = _positional_count(fn)
    if n is not None and len(args) != n:
        raise CliError(f"{ns.spec} takes {n} argument{'s' if n != 1 else ''}, but --args gave "
                       f"{len(args)}: give one DTYPE[DIMS] per argument, e.g. --args "
                       f"{' '.join(['f64[3]'] * max(n, 1))}")
    if ns.jit and ns.stage == "adjoint":
        raise CliError("--jit compiles the forward function only: it has no adjoint stage")
    if ns.jit:
        compiled = jitgrad.jit(fn, target=ns.target)
    else:
        argnums = ns.argnums[0] if len(ns.argnums) == 1 else tuple(ns.argnums)
        compiled = jitgrad.grad(fn, argnums=argnums, target=ns.target)
    lowered = compiled.lower(*args)
    if ns.jit and ns.stage == "all":
        print("\n\n".join(f"== {s} ==\n{lowered.as_text(s)}" for s in ("forward", "optimized",
                                                                         "kernel", "call")))
    else:
        print(lowered.as_text(ns.stage))
    if lowered.loops and ns.stage in ("forward", "all"):
        print("\n== loops ==")
        for line in lowered.loops:
            print(f"  {line}")
    guards = lowered.guards
    if guards and ns.stage in ("forward", "all"):
        print("\n== guards ==")
        for i, site, expect in guards:
            print(f"  {i}: {site} expects {expect!r}")
    return 0


def _positional_count(fn) -> int | None:
    """How many positional arguments ``fn`` needs (None when it takes ``*args``)."""
    import inspect
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
               and p.default is p.empty)


if __name__ == "__main__":
    sys.exit(main())
