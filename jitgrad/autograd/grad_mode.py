"""Grad-mode switches: context managers that are also decorators, never loose globals.

>>> import jitgrad
>>> x = jitgrad.tensor(1.0, requires_grad=True)
>>> with jitgrad.no_grad():
...     (x * 2).requires_grad
False
"""

from __future__ import annotations

import functools
import inspect


class _GradState:
    __slots__ = ("enabled", "anomaly", "anomaly_check_nan")

    def __init__(self) -> None:
        self.enabled = True
        self.anomaly = False
        self.anomaly_check_nan = True


state = _GradState()


class _Switch:
    """Base for mode switches: a context manager and a decorator."""

    def _enter_value(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def __enter__(self):
        self._prev = state.enabled
        state.enabled = self._enter_value()
        return self

    def __exit__(self, *exc) -> None:
        state.enabled = self._prev

    def __call__(self, fn):
        if inspect.isgeneratorfunction(fn):
            raise TypeError("grad-mode decorators do not support generator functions")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)(*self._ctor_args()):
                return fn(*args, **kwargs)

        return wrapper

    def _ctor_args(self) -> tuple:
        return ()


class no_grad(_Switch):
    """Disable gradient recording inside the block or the decorated function.

    >>> import jitgrad
    >>> @jitgrad.no_grad()
    ... def f(x):
    ...     return x * 2
    >>> f(jitgrad.ones(2, requires_grad=True)).requires_grad
    False
    """

    def _enter_value(self) -> bool:
        return False


class enable_grad(_Switch):
    """Re-enable gradient recording inside a ``no_grad`` block.

    >>> import jitgrad
    >>> x = jitgrad.tensor(1.0, requires_grad=True)
    >>> with jitgrad.no_grad():
    ...     with jitgrad.enable_grad():
    ...         (x * 2).requires_grad
    True
    """

    def _enter_value(self) -> bool:
        return True


class set_grad_enabled(_Switch):
    """Set gradient recording on or off: as a call, a context manager or a decorator.

    >>> import jitgrad
    >>> with jitgrad.set_grad_enabled(False):
    ...     jitgrad.is_grad_enabled()
    False
    """

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        # Called as a plain function, it switches at once (torch does the same).
        self._prev = state.enabled
        state.enabled = self.mode

    def _enter_value(self) -> bool:
        return self.mode

    def __enter__(self):
        state.enabled = self.mode
        return self

    def _ctor_args(self) -> tuple:
        return (self.mode,)

    def __call__(self, fn):
        state.enabled = self._prev  # used as a decorator: undo the immediate switch
        return super().__call__(fn)


class inference_mode(no_grad):
    """An alias of ``no_grad`` kept for PyTorch code that uses it."""

    def __init__(self, mode: bool = True) -> None:
        self.mode = mode

    def _enter_value(self) -> bool:
        return state.enabled if not self.mode else False

    def _ctor_args(self) -> tuple:
        return (self.mode,)


def is_grad_enabled() -> bool:
    return state.enabled


class detect_anomaly:
    """Check every backward function for NaN results and name the forward op that made them.

    >>> import jitgrad
    >>> with jitgrad.autograd.detect_anomaly():
    ...     x = jitgrad.tensor(-1.0, requires_grad=True)
    ...     y = x.sqrt()
    """

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self):
        self._prev = (state.anomaly, state.anomaly_check_nan)
        state.anomaly, state.anomaly_check_nan = True, self.check_nan
        return self

    def __exit__(self, *exc) -> None:
        state.anomaly, state.anomaly_check_nan = self._prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper


def set_detect_anomaly(mode: bool) -> None:
    state.anomaly = bool(mode)


def is_anomaly_enabled() -> bool:
    return state.anomaly
