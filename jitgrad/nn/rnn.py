"""Recurrent cells, as torch's: ``RNNCell``, ``LSTMCell`` and ``GRUCell`` (one time step; a
Python loop over time steps traces and compiles like any other code).

>>> import jitgrad
>>> cell = jitgrad.nn.LSTMCell(3, 2)
>>> h, c = cell(jitgrad.ones(4, 3))
>>> tuple(h.shape), tuple(c.shape)
((4, 2), (4, 2))
"""

from __future__ import annotations

import math

from jitgrad import factories, ops
from jitgrad.errors import ShapeError
from jitgrad.nn import functional as F
from jitgrad.nn import init
from jitgrad.nn.module import Module
from jitgrad.nn.parameter import Parameter


class _Cell(Module):
    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 dtype=None) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        n = self._gates * hidden_size
        self.weight_ih = Parameter(factories.empty(n, input_size, dtype=dtype))
        self.weight_hh = Parameter(factories.empty(n, hidden_size, dtype=dtype))
        if bias:
            self.bias_ih = Parameter(factories.empty(n, dtype=dtype))
            self.bias_hh = Parameter(factories.empty(n, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # torch's: every weight uniform in (-1/sqrt(hidden), 1/sqrt(hidden)).
        k = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            init.uniform_(p, -k, k)

    def _inputs(self, x, hx, n_states: int):
        """``x`` as (batch, input) and the states as (batch, hidden); whether x was 1-D."""
        if x.ndim not in (1, 2):
            raise ValueError(f"{type(self).__name__}: Expected input to be 1D or 2D, got "
                             f"{x.ndim}D instead")
        if x.shape[-1] != self.input_size:
            raise ShapeError(f"{type(self).__name__}({self.input_size}, {self.hidden_size}): "
                             f"input has {x.shape[-1]} features (shape {tuple(x.shape)})")
        single = x.ndim == 1
        x2 = x.reshape(1, -1) if single else x
        if hx is None:
            z = factories.zeros(x2.shape[0], self.hidden_size, dtype=x.dtype)
            states = [z] * n_states
        else:
            states = list(hx) if n_states > 1 else [hx]
            states = [h.reshape(1, -1) if single else h for h in states]
            for h in states:
                if tuple(h.shape) != (x2.shape[0], self.hidden_size):
                    raise ShapeError(f"{type(self).__name__}: hidden state has shape "
                                     f"{tuple(h.shape)}, expected "
                                     f"{(x2.shape[0], self.hidden_size)}")
        return x2, states, single

    def _gates_of(self, x, h):
        gi = F.linear(x, self.weight_ih, self.bias_ih)
        gh = F.linear(h, self.weight_hh, self.bias_hh)
        return gi, gh

    def _chunk(self, t, k: int):
        n = self.hidden_size
        return t[:, k * n:(k + 1) * n]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_Cell):
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or ``relu``), as ``torch.nn.RNNCell``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(input_size, hidden_size, bias, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):  # noqa: A002
        x, (h,), single = self._inputs(input, hx, 1)
        gi, gh = self._gates_of(x, h)
        out = (ops.tanh if self.nonlinearity == "tanh" else ops.relu)(gi + gh)
        return out.reshape(-1) if single else out


class LSTMCell(_Cell):
    """One LSTM step, as ``torch.nn.LSTMCell``: gates in torch's order (input, forget, cell,
    output); returns ``(h', c')``."""

    _gates = 4

    def forward(self, input, hx=None):  # noqa: A002
        x, (h, c), single = self._inputs(input, hx, 2)
        gi, gh = self._gates_of(x, h)
        g = gi + gh
        i, f = ops.sigmoid(self._chunk(g, 0)), ops.sigmoid(self._chunk(g, 1))
        cell, o = ops.tanh(self._chunk(g, 2)), ops.sigmoid(self._chunk(g, 3))
        c2 = f * c + i * cell
        h2 = o * ops.tanh(c2)
        return (h2.reshape(-1), c2.reshape(-1)) if single else (h2, c2)


class GRUCell(_Cell):
    """One GRU step, as ``torch.nn.GRUCell``: gates in torch's order (reset, update, new)."""

    _gates = 3

    def forward(self, input, hx=None):  # noqa: A002
        x, (h,), single = self._inputs(input, hx, 1)
        gi, gh = self._gates_of(x, h)
        r = ops.sigmoid(self._chunk(gi, 0) + self._chunk(gh, 0))
        z = ops.sigmoid(self._chunk(gi, 1) + self._chunk(gh, 1))
        n = ops.tanh(self._chunk(gi, 2) + r * self._chunk(gh, 2))
        h2 = (1 - z) * n + z * h
        return h2.reshape(-1) if single else h2
