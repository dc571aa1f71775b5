"""Recurrent layers, as torch's: the cells ``RNNCell``, ``LSTMCell`` and ``GRUCell`` (one time
step) and the sequence modules ``RNN``, ``LSTM`` and ``GRU`` (layers, directions, dropout between
layers), with torch's parameter names and gate order so state dicts load both ways. The time loop
is a Python loop over the cell's math: it runs eagerly and traces like any other code.

>>> import jitgrad
>>> cell = jitgrad.nn.LSTMCell(3, 2)
>>> h, c = cell(jitgrad.ones(4, 3))
>>> tuple(h.shape), tuple(c.shape)
((4, 2), (4, 2))
"""

from __future__ import annotations

import math
import numbers
import warnings

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


# -- one time step of each kind, on (batch, features) tensors --------------------------------
# ``gi`` is the input's projection x W_ih^T + b_ih, computed for all time steps at once.

def _split(t, k: int, n: int):
    return t[:, k * n:(k + 1) * n]


def _rnn_step(act):
    def step(gi, h, c, w_hh, b_hh, w_hr):
        return act(gi + F.linear(h, w_hh, b_hh)), None
    return step


def _lstm_step(gi, h, c, w_hh, b_hh, w_hr):
    g = gi + F.linear(h, w_hh, b_hh)
    n = g.shape[1] // 4
    i, f = ops.sigmoid(_split(g, 0, n)), ops.sigmoid(_split(g, 1, n))
    cell, o = ops.tanh(_split(g, 2, n)), ops.sigmoid(_split(g, 3, n))
    c = f * c + i * cell
    h = o * ops.tanh(c)
    return (h if w_hr is None else F.linear(h, w_hr)), c


def _gru_step(gi, h, c, w_hh, b_hh, w_hr):
    gh = F.linear(h, w_hh, b_hh)
    n = gh.shape[1] // 3
    r = ops.sigmoid(_split(gi, 0, n) + _split(gh, 0, n))
    z = ops.sigmoid(_split(gi, 1, n) + _split(gh, 1, n))
    new = ops.tanh(_split(gi, 2, n) + r * _split(gh, 2, n))
    return (1 - z) * new + z * h, None


class _RNNBase(Module):
    _gates = 1
    _name = "RNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, dtype=None) -> None:
        super().__init__()
        if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or \
                not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if proj_size < 0 or (proj_size and proj_size >= hidden_size):
            raise ValueError(f"proj_size must be in [0, hidden_size), got proj_size={proj_size} "
                             f"with hidden_size={hidden_size}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        d = 2 if bidirectional else 1
        out = proj_size or hidden_size
        n = self._gates * hidden_size
        # Registered in torch's order (layer, direction, then w_ih w_hh b_ih b_hh w_hr), so that
        # ``parameters()`` lines up with a torch model's.
        for layer in range(num_layers):
            for sfx in ("", "_reverse")[:d]:
                fin = input_size if layer == 0 else out * d
                shapes = [("weight_ih", (n, fin)), ("weight_hh", (n, out))]
                if bias:
                    shapes += [("bias_ih", (n,)), ("bias_hh", (n,))]
                if proj_size:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                for name, shape in shapes:
                    setattr(self, f"{name}_l{layer}{sfx}",
                            Parameter(factories.empty(*shape, dtype=dtype)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        k = 1.0 / math.sqrt(self.hidden_size)  # torch's: everything uniform in (-k, k)
        for p in self.parameters():
            init.uniform_(p, -k, k)

    def flatten_parameters(self) -> None:
        """Nothing to do: torch packs the weights for cuDNN here; model code calls it often."""

    def _step(self):
        raise NotImplementedError

    def _weights(self, layer: int, sfx: str):
        get = lambda name: self._parameters.get(f"{name}_l{layer}{sfx}")  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh"), get("weight_hr")

    def _check_input(self, x):
        if x.ndim not in (2, 3):
            raise ValueError(f"{self._name}: Expected input to be 2D or 3D, got {x.ndim}D "
                             "instead")
        if x.shape[-1] != self.input_size:
            raise ShapeError(f"input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {x.shape[-1]}")
        w = self.weight_ih_l0
        if x.dtype != w.dtype:
            raise ValueError(f"{self._name} input dtype ({x.dtype}) does not match weight dtype "
                             f"({w.dtype}). Convert input: input.to({w.dtype}), or convert "
                             f"model: model.to({x.dtype})")

    def _state(self, h, batched: bool, n: int, size: int, what: str, dtype):
        """An initial state as (layers * directions, batch, size): zeros when not given."""
        d = 2 if self.bidirectional else 1
        want = (self.num_layers * d, n, size)
        if h is None:
            return factories.zeros(*want, dtype=dtype)
        if not batched:
            h = h.unsqueeze(1)
        if tuple(h.shape) != want:
            raise ShapeError(f"Expected {what} size {want if batched else (want[0], want[2])}, "
                             f"got {list(h.shape if batched else h.shape[::2])}")
        return h

    def _run(self, input, states):  # noqa: A002
        """The layers over ``input`` (L, N, F); ``states`` is (h0, c0 or None). Returns the
        last layer's output (L, N, D * H) and the final states, each (layers * D, N, H)."""
        h0, c0 = states
        d = 2 if self.bidirectional else 1
        length = input.shape[0]
        if length == 0:
            raise ShapeError(f"Expected sequence length to be larger than 0 in {self._name}")
        step = self._step()
        x, hs, cs = input, [], []
        for layer in range(self.num_layers):
            outs = []
            for k, sfx in enumerate(("", "_reverse")[:d]):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights(layer, sfx)
                gi = F.linear(x, w_ih, b_ih)  # every time step's input projection at once
                h, c = h0[layer * d + k], None if c0 is None else c0[layer * d + k]
                ys = [None] * length
                for t in (range(length) if k == 0 else range(length - 1, -1, -1)):
                    h, c = step(gi[t], h, c, w_hh, b_hh, w_hr)
                    ys[t] = h
                outs.append(ops.stack(ys))
                hs.append(h)
                cs.append(c)
            x = outs[0] if d == 1 else ops.cat(outs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, ops.stack(hs), (None if c0 is None else ops.stack(cs))

    def _forward(self, input, hx):  # noqa: A002
        self._check_input(input)
        batched = input.ndim == 3
        if not batched:
            x = input.unsqueeze(1)
        else:
            x = input.transpose(0, 1) if self.batch_first else input
        lstm = self._gates == 4
        if hx is not None:
            parts = tuple(hx) if lstm else (hx,)
            want = 3 if batched else 2
            if any(h.ndim != want for h in parts):
                kind = "batched 3-D" if batched else "unbatched 2-D"
                if lstm:
                    raise ShapeError(f"For {kind} input, hx and cx should also be {want}-D but "
                                     f"got ({parts[0].ndim}-D, {parts[1].ndim}-D) tensors")
                raise ShapeError(f"For {kind} input, hx should also be {want}-D but got "
                                 f"{parts[0].ndim}-D tensor")
        else:
            parts = (None, None) if lstm else (None,)
        n = x.shape[1]
        h0 = self._state(parts[0], batched, n, self.proj_size or self.hidden_size,
                         "hidden[0]" if lstm else "hidden", input.dtype)
        c0 = self._state(parts[1], batched, n, self.hidden_size, "hidden[1]",
                         input.dtype) if lstm else None
        out, h_n, c_n = self._run(x, (h0, c0))
        if not batched:
            out, h_n = out.squeeze(1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, ((h_n, c_n) if lstm else h_n)

    def forward(self, input, hx=None):  # noqa: A002
        return self._forward(input, hx)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first:
            s += f", batch_first={self.batch_first}"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(_RNNBase):
    """Elman RNN over a sequence, as ``torch.nn.RNN``: ``h_t = tanh(x_t W_ih^T + b_ih +
    h_{t-1} W_hh^T + b_hh)`` (or ``relu``). Input (L, N, H_in), or (N, L, H_in) with
    ``batch_first``, or unbatched (L, H_in); returns ``(output, h_n)``.

    >>> import jitgrad
    >>> rnn = jitgrad.nn.RNN(3, 4, num_layers=2, bidirectional=True)
    >>> out, h_n = rnn(jitgrad.randn(5, 2, 3))
    >>> tuple(out.shape), tuple(h_n.shape)
    ((5, 2, 8), (4, 2, 4))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, dtype)
        self.nonlinearity = nonlinearity

    def _step(self):
        return _rnn_step(ops.tanh if self.nonlinearity == "tanh" else ops.relu)


class LSTM(_RNNBase):
    """Long short-term memory over a sequence, as ``torch.nn.LSTM`` (gates in torch's order:
    input, forget, cell, output; ``proj_size`` projects h). ``hx`` is ``(h_0, c_0)``; returns
    ``(output, (h_n, c_n))``.

    >>> import jitgrad
    >>> lstm = jitgrad.nn.LSTM(3, 4, batch_first=True)
    >>> out, (h_n, c_n) = lstm(jitgrad.randn(2, 5, 3))
    >>> tuple(out.shape), tuple(h_n.shape), tuple(c_n.shape)
    ((2, 5, 4), (1, 2, 4), (1, 2, 4))
    >>> [n for n, _ in lstm.named_parameters()]
    ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']
    """

    _gates = 4
    _name = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, dtype=None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, dtype)

    def _step(self):
        return _lstm_step


class GRU(_RNNBase):
    """Gated recurrent unit over a sequence, as ``torch.nn.GRU`` (gates in torch's order:
    reset, update, new). Returns ``(output, h_n)``.

    >>> import jitgrad
    >>> gru = jitgrad.nn.GRU(3, 4)
    >>> out, h_n = gru(jitgrad.randn(5, 3))  # unbatched (L, H_in)
    >>> tuple(out.shape), tuple(h_n.shape)
    ((5, 4), (1, 4))
    """

    _gates = 3
    _name = "GRU"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, dtype)

    def _step(self):
        return _gru_step
