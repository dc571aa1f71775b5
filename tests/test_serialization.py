"""jitgrad.save / jitgrad.load: state dicts round-trip exactly, training resumes where it
stopped, and loading never runs code from the file."""

import collections
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


class Net(jg.nn.Module):
    """A model of one's own, as word_language_model's RNNModel: tied weights, an LSTM, a
    Transformer layer holding a function (its activation)."""

    def __init__(self):
        super().__init__()
        self.emb = jg.nn.Embedding(7, 4)
        self.rnn = jg.nn.LSTM(4, 4, 2)
        self.enc = jg.nn.TransformerEncoder(jg.nn.TransformerEncoderLayer(4, 2, 8, 0.0), 1,
                                            enable_nested_tensor=False)
        self.dec = jg.nn.Linear(4, 7)
        self.dec.weight = self.emb.weight
        self.ntoken = 7

    def forward(self, x):
        out, _ = self.rnn(self.emb(x))
        return self.dec(self.enc(out))


class Created:
    """Counts its constructor's calls: loading must rebuild it without calling __init__."""
    calls = 0

    def __init__(self):
        Created.calls += 1
        self.x = jg.ones(2)


def _round_trip(obj, **load_kwargs):
    buf = io.BytesIO()
    jg.save(obj, buf)
    return jg.load(io.BytesIO(buf.getvalue()), **load_kwargs)


def test_a_class_is_refused_at_load_by_name_unless_allowed():
    jg.manual_seed(0)
    net = Net()
    buf = io.BytesIO()
    jg.save(net, buf)  # any object saves; what loads is the question
    name = f"{Net.__module__}.Net"
    with pytest.raises(pickle.UnpicklingError, match=rf"{name}.*add_safe_globals.*weights_only"):
        jg.load(io.BytesIO(buf.getvalue()))
    with jg.serialization.safe_globals([Net]):
        assert type(jg.load(io.BytesIO(buf.getvalue()))) is Net
        assert Net in jg.serialization.get_safe_globals()
    assert Net not in jg.serialization.get_safe_globals()  # only inside the block
    jg.serialization.add_safe_globals([Net])
    try:
        assert type(jg.load(io.BytesIO(buf.getvalue()))) is Net
    finally:
        jg.serialization.clear_safe_globals()
    assert type(jg.load(io.BytesIO(buf.getvalue()), weights_only=False)) is Net
    # jitgrad's own layers are plain data: allowed without asking
    assert type(_round_trip(_model())) is jg.nn.Sequential
    with pytest.raises(TypeError, match=r"obj\['f'\] is .*<lambda>.*top level"):
        jg.save({"f": lambda: 0}, io.BytesIO())


def test_a_whole_model_round_trips_tied_and_computing_the_same():
    jg.manual_seed(0)
    net = Net().eval()
    with jg.serialization.safe_globals([Net]):
        back = _round_trip(net)
    assert back.dec.weight is back.emb.weight  # tied weights stay one Parameter
    assert isinstance(back.dec.weight, jg.nn.Parameter) and back.dec.weight.requires_grad
    assert not back.training and back.ntoken == 7
    assert back.enc.layers[0].activation is net.enc.layers[0].activation
    for (n, p), (m, q) in zip(net.named_parameters(), back.named_parameters()):
        assert n == m and type(p) is type(q)
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=n)
    x = jg.tensor([[1, 2], [3, 4], [0, 6]])
    np.testing.assert_array_equal(back(x).detach().numpy(), net(x).detach().numpy())
    back(x).sum().backward()  # and trains
    assert back.emb.weight.grad is not None


def test_loading_rebuilds_without_init_and_keeps_sharing():
    Created.calls = 0
    obj = Created()
    shared = [1, 2]
    data = {"obj": obj, "again": obj, "l1": shared, "l2": shared, "size": jg.ones(2, 3).shape,
            "set": {1, 2}, "bytes": b"xy", "dev": jg.device("cpu"), "cx": 1 + 2j,
            "np_bool": np.bool_(True)}
    data["self"] = data  # a cycle closes
    with jg.serialization.safe_globals([Created]):
        got = _round_trip(data)
    assert Created.calls == 1 and type(got["obj"]) is Created and got["again"] is got["obj"]
    np.testing.assert_array_equal(got["obj"].x.numpy(), [1.0, 1.0])
    assert got["l1"] is got["l2"] and got["self"] is got
    assert type(got["size"]) is jg.Size and got["size"] == (2, 3)
    assert (got["set"], got["bytes"], got["dev"], got["cx"]) == ({1, 2}, b"xy", jg.device("cpu"),
                                                                 1 + 2j)
    assert got["np_bool"] is True


def test_a_file_naming_a_function_it_may_not_hold_is_refused():
    import json
    arrays = {"__structure__": np.frombuffer(json.dumps(
        {"format": "jitgrad-save-2", "obj": {"global": "os:system"}}).encode(), np.uint8)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with pytest.raises(pickle.UnpicklingError, match=r"os\.system"):
        jg.load(io.BytesIO(buf.getvalue()))


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


# -- whole objects saved by PyTorch ------------------------------------------------------------
try:
    import torch
except ImportError:
    torch = None

if torch is not None:
    class TorchNet(torch.nn.Module):
        """Net, written for torch: torch.save records it as this module's TorchNet."""

        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(7, 4)
            self.rnn = torch.nn.LSTM(4, 4, 2)
            self.enc = torch.nn.TransformerEncoder(
                torch.nn.TransformerEncoderLayer(4, 2, 8, 0.0), 1, enable_nested_tensor=False)
            self.dec = torch.nn.Linear(4, 7)
            self.dec.weight = self.emb.weight
            self.ntoken = 7

        def forward(self, x):
            out, _ = self.rnn(self.emb(x))
            return self.dec(self.enc(out))

    class TorchCreated:
        def __reduce__(self):  # asks the loader to call the class: a constructor is code
            return (Created, ())


needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


@needs_torch
def test_a_whole_model_saved_by_torch_loads_as_jitgrads_equivalent():
    torch.manual_seed(0)
    theirs = TorchNet().eval()
    buf = io.BytesIO()
    torch.save(theirs, buf)
    name = f"{TorchNet.__module__}.TorchNet"
    with pytest.raises(pickle.UnpicklingError, match=name):
        jg.load(io.BytesIO(buf.getvalue()))
    # The file names torch's classes: jitgrad's Net stands for TorchNet, its layers for torch's
    with jg.serialization.safe_globals([(Net, name)]):
        ours = jg.load(io.BytesIO(buf.getvalue()))
    assert type(ours) is Net and type(ours.rnn) is jg.nn.LSTM and not ours.training
    assert ours.dec.weight is ours.emb.weight and isinstance(ours.emb.weight, jg.nn.Parameter)
    assert ours.emb.weight.requires_grad
    assert ours.enc.layers[0].activation is jg.nn.functional.relu
    for n, p in theirs.named_parameters():
        q = dict(ours.named_parameters())[n]
        np.testing.assert_array_equal(q.detach().numpy(), p.detach().numpy(), err_msg=n)
    x = np.array([[1, 2], [3, 4], [0, 6]])
    np.testing.assert_allclose(ours(jg.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-5)
    # and the same model saved again by jitgrad comes back the same
    with jg.serialization.safe_globals([(Net, name)]):
        again = _round_trip(ours)
    np.testing.assert_array_equal(again(jg.tensor(x)).detach().numpy(),
                                  ours(jg.tensor(x)).detach().numpy())


@needs_torch
def test_a_torch_file_never_calls_an_allowed_class():
    buf = io.BytesIO()
    torch.save(TorchCreated(), buf)
    Created.calls = 0
    with jg.serialization.safe_globals([Created]):
        with pytest.raises(pickle.UnpicklingError, match="never runs code"):
            jg.load(io.BytesIO(buf.getvalue()))
    assert Created.calls == 0


# -- review fixes ------------------------------------------------------------------------------
class _Plain:
    pass


class _Slotted:
    __slots__ = ("a", "__b")


class _SlottedWithDict(_Slotted):
    pass


class _OwnState:
    def __getstate__(self):
        return {"only": 1}


def test_state_of_gives_pythons_default_state_without_object_getstate():
    # Python 3.10 has no object.__getstate__: the fallback is called directly, so that it is
    # exercised on any version, and compared with 3.11's default where that exists
    from jitgrad.serialization._format import _default_state, _state_of
    plain, empty, slotted, both = _Plain(), _Plain(), _Slotted(), _SlottedWithDict()
    plain.x = 1
    slotted.a, slotted._Slotted__b = 1, 2
    both.a, both.y = 3, 4
    assert _default_state(empty) is None and _default_state(_Slotted()) is None
    assert _default_state(plain) == {"x": 1} and _state_of(plain) == {"x": 1}
    assert _default_state(slotted) == (None, {"a": 1, "_Slotted__b": 2})
    assert _default_state(both) == ({"y": 4}, {"a": 3})
    own = _OwnState()
    own.z = 5
    assert _state_of(own) == {"only": 1} and _default_state(own) == {"z": 5}
    if hasattr(object, "__getstate__"):
        for obj in (plain, empty, slotted, both, _Slotted()):
            assert _default_state(obj) == object.__getstate__(obj)
    with jg.serialization.safe_globals([_Slotted]):  # and a slotted instance round-trips
        back = _round_trip(slotted)
    assert (back.a, back._Slotted__b) == (1, 2)


def _forged(obj_record) -> io.BytesIO:
    import json
    buf = io.BytesIO()
    np.savez(buf, __structure__=np.frombuffer(json.dumps(
        {"format": "jitgrad-save-2", "obj": obj_record}).encode(), np.uint8))
    return io.BytesIO(buf.getvalue())


class Color(__import__("enum").Enum):
    RED = 1


def test_an_enum_record_naming_a_class_that_is_no_enum_is_refused(monkeypatch):
    calls = []
    monkeypatch.setattr(jg.nn.ReLU, "__init__", lambda self, *a: calls.append(a))
    rec = {"enum": "jitgrad.nn.modules.activation:ReLU", "value": True}
    with pytest.raises(pickle.UnpicklingError, match="ReLU"):
        jg.load(_forged(rec))
    assert calls == []  # loading never runs __init__
    with jg.serialization.safe_globals([Color]):
        assert _round_trip([Color.RED]) == [Color.RED]


class Name(str):
    pass


class Count(int):
    pass


class Ratio(float):
    pass


class Blob(bytes):
    pass


class Phase(complex):
    pass


def test_subclasses_of_str_int_float_bytes_complex_keep_their_value():
    name = Name("hello")
    name.lang = "en"
    values = [name, Count(7), Ratio(2.5), Blob(b"\x00ab"), Phase(1 - 2j)]
    with jg.serialization.safe_globals([Name, Count, Ratio, Blob, Phase]):
        back = _round_trip(values)
        for got, want in zip(back, values):
            assert type(got) is type(want) and got == want
        assert back[0].lang == "en"
        # a file that gives such a class a value of another type is refused
        with pytest.raises(pickle.UnpicklingError, match="Name"):
            jg.load(_forged({"object": f"{__name__}:Name", "value": {"int": 3}}))


def test_each_name_in_a_file_is_resolved_once(monkeypatch):
    from jitgrad.serialization import _allow, _torch_zip
    seen = []
    real = _allow.resolve

    def counting(module, qualname, weights_only):
        seen.append((module, qualname))
        return real(module, qualname, weights_only)

    monkeypatch.setattr(_allow, "resolve", counting)
    layers = [jg.nn.Linear(2, 2) for _ in range(4)]
    assert len(_round_trip(layers)) == 4
    assert seen and len(seen) == len(set(seen))
    seen.clear()
    unpickler = _torch_zip._TorchUnpickler(io.BytesIO(), None, "", "little", True)
    for _ in range(3):
        assert unpickler.find_class("torch.nn.modules.linear", "Linear") is jg.nn.Linear
    assert seen == [("torch.nn.modules.linear", "Linear")]


if torch is not None:
    class TorchMasked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(2, 2)
            self.register_buffer("mask", torch.ones(2), persistent=False)
            self.register_buffer("scale", torch.full((2,), 3.0))


class Masked(jg.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = jg.nn.Linear(2, 2)
        self.register_buffer("mask", jg.ones(2), persistent=False)
        self.register_buffer("scale", jg.full((2,), 3.0))


@needs_torch
def test_a_torch_models_non_persistent_buffers_stay_out_of_its_state_dict():
    theirs = TorchMasked()
    buf = io.BytesIO()
    torch.save(theirs, buf)
    with jg.serialization.safe_globals([(Masked, f"{TorchMasked.__module__}.TorchMasked")]):
        ours = jg.load(io.BytesIO(buf.getvalue()))
    assert type(ours) is Masked
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["scale", "fc.weight",
                                                                     "fc.bias"]
    np.testing.assert_array_equal(ours.mask.numpy(), [1.0, 1.0])
    assert list(Masked().state_dict()) == list(ours.state_dict())


class _Tags(set):
    pass


class _Queue(collections.deque):
    pass


@pytest.mark.parametrize("obj", [_Tags({1, 2}), _Queue([1, 2])], ids=["set", "deque"])
def test_a_subclass_of_a_container_whose_items_a_record_cannot_hold_is_refused(obj):
    # (a record holds an instance's class and __dict__: its items would load as nothing)
    with pytest.raises(TypeError, match="contents a file cannot hold"):
        jg.save(obj, io.BytesIO())
