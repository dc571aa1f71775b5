"""jitgrad.save / jitgrad.load: state dicts round-trip exactly, training resumes where it
stopped, and loading never runs code from the file."""

import io
import os
import pickle

import numpy as np
import pytest

import jitgrad as jg


def _model():
    jg.manual_seed(0)
    return jg.nn.Sequential(jg.nn.Linear(3, 5), jg.nn.Tanh(), jg.nn.Linear(5, 2))


def _step(model, opt, x, t):
    opt.zero_grad()
    jg.nn.functional.cross_entropy(model(x), t).backward()
    opt.step()


def test_resuming_from_a_checkpoint_equals_training_straight_through(tmp_path):
    x, t = jg.randn(8, 3), jg.tensor([0, 1, 1, 0, 1, 0, 0, 1])
    a = _model()
    oa = jg.optim.Adam(a.parameters(), lr=0.05)
    for _ in range(3):
        _step(a, oa, x, t)
    path = tmp_path / "ckpt.pt"
    jg.save({"model": a.state_dict(), "opt": oa.state_dict(), "epoch": 3}, path)
    for _ in range(3):
        _step(a, oa, x, t)
    ck = jg.load(path)
    b = _model()
    b.load_state_dict(ck["model"])
    ob = jg.optim.Adam(b.parameters(), lr=0.05)
    ob.load_state_dict(ck["opt"])
    assert ck["epoch"] == 3
    for _ in range(3):
        _step(b, ob, x, t)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=n)


def test_values_dtypes_and_containers_round_trip():
    obj = {"f32": jg.tensor([1.5, -2.0]), "f64": jg.tensor([1.0], dtype=jg.float64),
           "i": jg.tensor([3, 4]), "b": jg.tensor([True, False]), "scalar": jg.tensor(2.5),
           "rg": jg.ones(2, requires_grad=True), "nums": [1, 2.5, True, None, "s"],
           "tup": (1, (2, 3)), 7: "int key", "arr": np.arange(3), "dt": jg.float64,
           "nan": float("nan")}
    buf = io.BytesIO()
    jg.save(obj, buf)
    buf.seek(0)
    got = jg.load(buf, map_location="cpu", weights_only=True)
    for k in ("f32", "f64", "i", "b", "scalar"):
        assert got[k].dtype is obj[k].dtype
        np.testing.assert_array_equal(got[k].numpy(), obj[k].numpy())
    assert got["rg"].requires_grad and not got["f32"].requires_grad
    assert got["nums"] == [1, 2.5, True, None, "s"] and type(got["nums"][2]) is bool
    assert got["tup"] == (1, (2, 3)) and got[7] == "int key" and got["dt"] is jg.float64
    np.testing.assert_array_equal(got["arr"], np.arange(3))
    assert got["nan"] != got["nan"]
    sd = _model().state_dict()
    buf = io.BytesIO()
    jg.save(sd, buf)
    buf.seek(0)
    assert list(jg.load(buf)) == list(sd)


def test_what_a_safe_file_cannot_hold_is_refused_by_name():
    with pytest.raises(TypeError, match="Sequential.*state_dict"):
        jg.save(_model(), io.BytesIO())
    with pytest.raises(TypeError, match=r"obj\['f'\] is a function"):
        jg.save({"f": lambda: 0}, io.BytesIO())


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch BOOM_FILE",))


def test_loading_never_runs_code(tmp_path):
    marker = tmp_path / "BOOM_FILE"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(_Boom()))  # what a torch.save file is: a pickle
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(RuntimeError, match="never loads"):
            jg.load(evil)
        # An archive with an object array (a pickle inside) is refused too.
        np.savez(tmp_path / "obj.npz", __structure__=np.frombuffer(b"{}", np.uint8),
                 a0=np.array([_Boom()], dtype=object))
        with pytest.raises(RuntimeError):
            jg.load(tmp_path / "obj.npz")
    finally:
        os.chdir(cwd)
    assert not marker.exists()
