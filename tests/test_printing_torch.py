"""Tensors print as torch prints them: the same padding, line wrapping, summarizing and
suffixes, compared character for character with torch's own output (dtype names aside)."""

import numpy as np
import pytest

import jitgrad as jg

torch = pytest.importorskip("torch")

_RNG = np.random.default_rng(0)
_N = _RNG.standard_normal

CASES = {
    "bool_all_true": np.array([True, True]),
    "bool_with_false": np.array([True, False]),
    "bool_all_false": np.array([False, False]),
    "bool_2d_all_true": np.ones((2, 3), bool),
    "bool_2d_mixed": np.array([[True, False], [True, True]]),
    "bool_scalar": np.array(True),
    "float_1x8": _N((1, 8)).astype(np.float32),
    "float_1x8_wide": (_N((1, 8)) * 10).astype(np.float32),
    "float_3x12": _N((3, 12)).astype(np.float32),
    "float_2x2x3": _N((2, 2, 3)).astype(np.float32),
    "float_int_valued": np.array([1.0, -2.0, 300.0], np.float32),
    "float_sci_ratio": np.array([0.01, 100.0], np.float32),
    "float_sci_small": np.array([1e-5, 1.0], np.float32),
    "float_sci_int_valued": np.array([0.0, 1e9], np.float32),
    "float_nonfinite": np.array([np.nan, 1.5, np.inf], np.float32),
    "float_nonfinite_int": np.array([np.nan, 1.0, -np.inf], np.float32),
    "float_summarized": _N(2000).astype(np.float32),
    "float_summarized_2d": _N((40, 40)).astype(np.float32),
    "float64": np.array([1.5, -2.25]),
    "int_wide": np.arange(30),
    "int_summarized": np.arange(3000),
    "int32": np.array([1, -20], np.int32),
    "empty": np.zeros((0,), np.float32),
    "empty_bool_2d": np.zeros((3, 0), bool),
    "empty_int": np.zeros((2, 0), np.int64),
}


def _ours(text: str) -> str:
    return text.replace("torch.", "jitgrad.")  # dtype names: dtype=torch.float64


@pytest.mark.parametrize("name", CASES)
def test_repr_matches_torch(name):
    arr = CASES[name]
    assert repr(jg.tensor(arr)) == _ours(repr(torch.tensor(arr)))


@pytest.mark.parametrize("name", ["float_1x8", "float_3x12", "bool_all_true", "int32"])
def test_inside_a_dict_and_with_grad_suffixes(name):
    arr = CASES[name]
    assert str({"w": jg.tensor(arr)}) == _ours(str({"w": torch.tensor(arr)}))
    if arr.dtype.kind == "f":
        ours, theirs = jg.tensor(arr, requires_grad=True), torch.tensor(arr, requires_grad=True)
        assert repr(ours) == _ours(repr(theirs))  # a long last line moves the suffix down
        assert repr(ours * 2) == _ours(repr(theirs * 2))
        assert repr(jg.nn.Parameter(jg.tensor(arr))) == _ours(
            repr(torch.nn.Parameter(torch.tensor(arr))))


def test_a_state_dict_prints_as_torchs():
    jg.manual_seed(0)
    theirs = torch.nn.Linear(8, 1)
    ours = jg.nn.Linear(8, 1)
    ours.load_state_dict({k: jg.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    assert str(ours.state_dict()) == _ours(str(theirs.state_dict()))
