"""PyTorch's non-nn utilities that tutorials import, against torch: the torch.utils.data
submodules and samplers, torch.cuda seeding, torch.utils.benchmark, the on-request modules
(onnx, hub, backends flags), forward-mode AD, model ensembling with stack_module_state, and
loading files written by torch.save."""

import collections
import copy
import io
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import jitgrad as jg
import jitgrad.autograd.forward_ad as fwAD


# -- torch.utils.data submodules and samplers -------------------------------------------------
def test_data_submodule_paths_are_the_package_names():
    from jitgrad.utils.data import DataLoader as DL, TensorDataset as TD
    from jitgrad.utils.data.dataloader import DataLoader
    from jitgrad.utils.data.dataset import Dataset, TensorDataset
    from jitgrad.utils.data.sampler import BatchSampler, RandomSampler, SequentialSampler
    assert DataLoader is DL and TensorDataset is TD and issubclass(TensorDataset, Dataset)
    assert all(callable(c) for c in (BatchSampler, RandomSampler, SequentialSampler))


def test_sequential_and_batch_samplers_equal_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import sampler as ts

    from jitgrad.utils.data import sampler as js
    for bs, drop in [(1, False), (3, False), (3, True), (7, True), (10, False)]:
        ours = js.BatchSampler(js.SequentialSampler(range(7)), bs, drop)
        theirs = ts.BatchSampler(ts.SequentialSampler(range(7)), bs, drop)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
    with pytest.raises(ValueError, match="batch_size=0"):
        js.BatchSampler(range(3), 0, False)
    del torch


@pytest.mark.parametrize("replacement,num_samples", [(False, None), (True, 25), (False, 11),
                                                    (True, None), (False, 3)])
def test_random_sampler_draws_like_torch(replacement, num_samples):
    torch = pytest.importorskip("torch")
    n = 5
    ours = jg.utils.data.RandomSampler(range(n), replacement=replacement,
                                       num_samples=num_samples,
                                       generator=jg.Generator().manual_seed(3))
    theirs = torch.utils.data.RandomSampler(range(n), replacement=replacement,
                                            num_samples=num_samples,
                                            generator=torch.Generator().manual_seed(3))
    got, want = list(ours), list(theirs)
    assert len(got) == len(want) == len(ours) == len(theirs)
    assert all(0 <= i < n for i in got)
    if not replacement:  # whole permutations, then part of one, as torch draws them
        assert sorted(np.bincount(got, minlength=n)) == sorted(np.bincount(want, minlength=n))
        for start in range(0, len(got) - n + 1, n):
            assert sorted(got[start:start + n]) == list(range(n))
    # a seeded generator repeats the order
    again = jg.utils.data.RandomSampler(range(n), replacement=replacement,
                                        num_samples=num_samples,
                                        generator=jg.Generator().manual_seed(3))
    assert list(again) == got


def test_random_sampler_rejects_what_torch_rejects():
    from jitgrad.utils.data import RandomSampler
    with pytest.raises(ValueError, match="num_samples=0"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match="num_samples=0"):
        RandomSampler(range(0))
    with pytest.raises(TypeError, match="replacement=1"):
        RandomSampler(range(3), replacement=1)


def test_dataloader_with_sampler_objects_equals_torch():
    torch = pytest.importorskip("torch")
    x = np.arange(14.0).reshape(7, 2)
    ds_j, ds_t = jg.utils.data.TensorDataset(jg.tensor(x)), \
        torch.utils.data.TensorDataset(torch.tensor(x))
    order = [4, 0, 6, 2]
    ours = jg.utils.data.DataLoader(ds_j, batch_size=3,
                                    sampler=jg.utils.data.SubsetRandomSampler(order))
    assert sorted(v for (b,) in ours for v in b[:, 0].tolist()) == sorted(x[order, 0].tolist())
    bsamp_j = jg.utils.data.BatchSampler(jg.utils.data.SequentialSampler(ds_j), 2, True)
    bsamp_t = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(ds_t), 2, True)
    got = list(jg.utils.data.DataLoader(ds_j, batch_sampler=bsamp_j))
    want = list(torch.utils.data.DataLoader(ds_t, batch_sampler=bsamp_t))
    assert len(got) == len(want) == 3
    for (a,), (b,) in zip(got, want):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    loader = jg.utils.data.DataLoader(ds_j, batch_size=2, shuffle=True)
    assert isinstance(loader.sampler, jg.utils.data.RandomSampler)
    assert isinstance(loader.batch_sampler, jg.utils.data.BatchSampler) and len(loader) == 4


def test_weighted_sampler_draws_only_weighted_indices():
    s = jg.utils.data.WeightedRandomSampler([0.0, 2.0, 0.0, 1.0], 50,
                                           generator=jg.Generator().manual_seed(0))
    got = list(s)
    assert len(got) == 50 and set(got) <= {1, 3}


def test_iterable_dataset_batches_equal_torch():
    torch = pytest.importorskip("torch")

    def make(base):
        class Stream(base):
            def __iter__(self):
                return iter([(float(i), i) for i in range(7)])
        return Stream()
    got = list(jg.utils.data.DataLoader(make(jg.utils.data.IterableDataset), batch_size=3))
    want = list(torch.utils.data.DataLoader(make(torch.utils.data.IterableDataset),
                                            batch_size=3))
    assert len(got) == len(want)
    for (a, b), (c, d) in zip(got, want):
        assert a.tolist() == c.tolist() and b.tolist() == d.tolist()
    with pytest.raises(ValueError, match="shuffle"):
        jg.utils.data.DataLoader(make(jg.utils.data.IterableDataset), shuffle=True)


# -- torch.cuda seeding -------------------------------------------------------------------------
def test_cuda_seeding_is_accepted_and_leaves_the_cpu_stream_alone():
    torch = pytest.importorskip("torch")
    assert torch.cuda.manual_seed_all(1) is None and jg.cuda.manual_seed_all(1) is None
    jg.manual_seed(0)
    a = jg.randn(4)
    jg.manual_seed(0)
    jg.cuda.manual_seed(123)
    jg.cuda.manual_seed_all(123)
    np.testing.assert_array_equal(jg.randn(4).numpy(), a.numpy())


# -- torch.utils.benchmark ----------------------------------------------------------------------
def _clocked(stmt_cost: float, **kw):
    """A Timer whose clock advances by ``stmt_cost`` per run of the statement: exact times."""
    from jitgrad.utils.benchmark import Timer
    clock = [0.0]
    return Timer("clock[0] += cost", globals={"clock": clock, "cost": stmt_cost},
                 timer=lambda: clock[0], **kw)


def test_timer_measures_what_the_clock_says():
    m = _clocked(2e-6).timeit(50)
    assert m.number_per_run == 50 and len(m.times) == 1
    assert m.mean == pytest.approx(2e-6) and m.median == pytest.approx(2e-6)
    b = _clocked(1e-3).blocked_autorange(min_run_time=0.05)
    assert sum(b.raw_times) >= 0.05 and b.median == pytest.approx(1e-3) and b.iqr < 1e-12
    a = _clocked(1e-3).adaptive_autorange(min_run_time=0.01)
    assert len(a.times) >= 4 and a.median == pytest.approx(1e-3)


def test_measurement_statistics_and_text_equal_torch():
    pytest.importorskip("torch")
    from torch.utils.benchmark import Measurement as TM, TaskSpec as TS

    from jitgrad.utils.benchmark import Measurement, TaskSpec
    cases = [([1.0e-3, 1.1e-3, 1.3e-3, 2.5e-3], 10), ([0.5], 1), ([12.3456, 12.4], 1),
             ([3.3e-6] * 3, 1000), ([4e-5, 4.1e-5, 4.05e-5, 4.02e-5, 4.3e-5], 7)]
    specs = [dict(stmt="x.sum()", setup="pass"), dict(stmt="f()", setup="x=1", label="L", sub_label="S",
                                         description="D", num_threads=4),
             dict(stmt="g()", setup="pass", description="only a description")]
    for raw, n in cases:
        for spec in specs:
            ours, theirs = Measurement(n, raw, TaskSpec(**spec)), TM(n, raw, TS(**spec))
            for attr in ("mean", "median", "iqr"):
                assert getattr(ours, attr) == pytest.approx(getattr(theirs, attr))
            assert ours.times == pytest.approx(theirs.times)
            assert repr(ours).split("\n", 1)[1] == repr(theirs).split("\n", 1)[1]
    with pytest.raises(ValueError, match="stmt must be a string"):
        jg.utils.benchmark.Timer(lambda: None)


# -- modules imported at the top, used on request ----------------------------------------------
def test_onnx_export_says_it_is_unsupported():
    import jitgrad.onnx
    with pytest.raises(NotImplementedError, match=r"exporting Linear to ONNX \('m.onnx'\)"):
        jitgrad.onnx.export(jg.nn.Linear(2, 1), (jg.zeros(1, 2),), "m.onnx")
    assert jitgrad.onnx.is_in_onnx_export() is False


def test_backend_flags_have_torchs_defaults():
    torch = pytest.importorskip("torch")
    import jitgrad.backends.cudnn
    import jitgrad.backends.mps  # noqa: F401
    # torch's documented defaults (a process's live flags are whatever its code set)
    defaults = {"enabled": True, "benchmark": False, "deterministic": False}
    for name, value in defaults.items():
        assert getattr(jg.backends.cudnn, name) is value
    assert jg.backends.cudnn.is_available() is False
    assert jg.backends.mps.is_available() is torch.backends.mps.is_available() is False
    assert jg.backends.cuda.matmul.allow_tf32 is False


def test_hub_dir_is_torchs_and_load_state_dict_from_url_reads_a_torch_file(tmp_path,
                                                                           monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    assert jg.hub.get_dir() == torch.hub.get_dir()
    lin = torch.nn.Linear(3, 2)
    src = tmp_path / "weights-abc.pth"
    torch.save(lin.state_dict(), src)
    sd = jg.hub.load_state_dict_from_url(src.as_uri(), model_dir=tmp_path / "cache")
    assert (tmp_path / "cache" / "weights-abc.pth").exists()  # downloaded once, then cached
    np.testing.assert_array_equal(sd["weight"].numpy(), lin.weight.detach().numpy())
    with pytest.raises(NotImplementedError, match="hubconf"):
        jg.hub.load("pytorch/vision", "resnet18")


# -- forward-mode AD ----------------------------------------------------------------------------
def _both(f, arrays, tangents):
    """f's value and tangent by jitgrad's forward_ad and by torch's."""
    torch = pytest.importorskip("torch")
    import torch.autograd.forward_ad as tfw
    res = []
    for lib, fw in ((jg, fwAD), (torch, tfw)):
        with fw.dual_level():
            duals = [fw.make_dual(lib.tensor(a), lib.tensor(t)) for a, t in zip(arrays, tangents)]
            p, t = fw.unpack_dual(f(lib, *duals))
            res.append((p.detach().numpy(), t.detach().numpy()))
    return res


@pytest.mark.parametrize("name", ["tanh_matmul", "softmax_chain", "scalar", "broadcast"])
def test_forward_ad_equals_torch(name):
    rng = np.random.default_rng(1)
    x, w, v = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    fns = {
        "tanh_matmul": (lambda lib, x, w: lib.tanh(x @ w), [x, w]),
        "softmax_chain": (lambda lib, x, w: lib.softmax(lib.tanh(x @ w) * 2, dim=-1)
                          .log().mean(0), [x, w]),
        "scalar": (lambda lib, x: (x.exp() * x.sin()).sum(), [x]),
        "broadcast": (lambda lib, x, v: (x[:, :3] * v).sigmoid() / (1 + v ** 2), [x, v]),
    }
    f, args = fns[name]
    tans = [rng.standard_normal(a.shape) for a in args]
    (p1, t1), (p2, t2) = _both(f, args, tans)
    np.testing.assert_allclose(p1, p2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t1, t2, rtol=1e-10, atol=1e-12)


def test_forward_ad_tutorial_example_and_lifetimes():
    primal, tangent = jg.randn(10, 10), jg.randn(10, 10)
    plain = jg.randn(10, 10)
    with fwAD.dual_level():
        dual_input = fwAD.make_dual(primal, tangent)
        assert fwAD.unpack_dual(dual_input).tangent is tangent
        dual_output = dual_input ** 2 + plain ** 2
        jvp = fwAD.unpack_dual(dual_output).tangent
        assert fwAD.unpack_dual(plain * 2).tangent is None
        assert fwAD.unpack_dual(dual_input.detach()).tangent is None
        assert fwAD.unpack_dual(dual_output).primal.requires_grad is False
    np.testing.assert_allclose(jvp.numpy(), 2 * primal.numpy() * tangent.numpy(), rtol=1e-6)
    assert fwAD.unpack_dual(dual_output).tangent is None


def test_forward_ad_through_modules_equals_torch():
    torch = pytest.importorskip("torch")
    import torch.autograd.forward_ad as tfw
    rng = np.random.default_rng(2)
    w, b = rng.standard_normal((4, 3)), rng.standard_normal(4)
    tw, tb, x = rng.standard_normal((4, 3)), rng.standard_normal(4), rng.standard_normal((6, 3))
    out = []
    for lib, fw, fcall in ((jg, fwAD, jg.func.functional_call),
                           (torch, tfw, torch.func.functional_call)):
        model = lib.nn.Linear(3, 4).double()
        with lib.no_grad():
            model.weight.copy_(lib.tensor(w))
            model.bias.copy_(lib.tensor(b))
        params = dict(model.named_parameters())
        tans = {"weight": lib.tensor(tw), "bias": lib.tensor(tb)}
        with fw.dual_level():  # as the tutorial: swap the parameters for dual tensors
            for name, p in params.items():
                delattr(model, name)
                setattr(model, name, fw.make_dual(p, tans[name]))
            t1 = fw.unpack_dual(model(lib.tensor(x))).tangent
        fresh = lib.nn.Linear(3, 4).double()
        with fw.dual_level():  # and through functional_call
            dual = {n: fw.make_dual(p, tans[n]) for n, p in params.items()}
            y = fcall(fresh, dual, (lib.tensor(x),))
            unpacked = fw.unpack_dual(y)
            t2 = unpacked.tangent
            assert unpacked.primal.requires_grad  # the parameters' graph is kept
        out.append((t1.detach().numpy(), t2.detach().numpy()))
    for a, b_ in zip(out[0], out[1]):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)


def test_forward_over_reverse_gives_torchs_hessian_vector_product():
    torch = pytest.importorskip("torch")
    import torch.autograd.forward_ad as tfw
    rng = np.random.default_rng(3)
    x0, v0 = rng.standard_normal(5), rng.standard_normal(5)
    res = []
    for lib, fw in ((jg, fwAD), (torch, tfw)):
        with fw.dual_level():
            x = fw.make_dual(lib.tensor(x0).requires_grad_(), lib.tensor(v0))
            (g,) = lib.autograd.grad((x.tanh() ** 3).sum(), x, create_graph=True)
            res.append(fw.unpack_dual(g).tangent.detach().numpy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-10, atol=1e-12)


def test_forward_ad_errors_name_the_problem():
    with pytest.raises(RuntimeError, match="no level exists"):
        fwAD.make_dual(jg.ones(2), jg.ones(2))
    with fwAD.dual_level():
        with pytest.raises(RuntimeError, match=r"size \[3\] while the given forward gradient "
                                               r"is of size \[4\]"):
            fwAD.make_dual(jg.ones(3), jg.ones(4))
        with pytest.raises(ValueError, match="primal to be floating point"):
            fwAD.make_dual(jg.arange(3), jg.ones(3))
        with pytest.raises(RuntimeError, match="Nested"):
            with fwAD.dual_level():
                pass
        with pytest.raises(TypeError, match="must be a Tensor"):
            fwAD.unpack_dual(3.0)


# -- model ensembling ---------------------------------------------------------------------------
def test_model_ensembling_tutorial_equals_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    num_models, sizes = 3, [(12, 8), (8, 4)]
    weights = [[(rng.standard_normal((o, i)) * 0.3, rng.standard_normal(o) * 0.1)
                for i, o in sizes] for _ in range(num_models)]
    data = rng.standard_normal((num_models, 5, 12))

    def build(lib):
        class MLP(lib.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1, self.fc2 = lib.nn.Linear(12, 8), lib.nn.Linear(8, 4)

            def forward(self, x):
                return self.fc2(lib.nn.functional.relu(self.fc1(x)))
        models = []
        for ws in weights:
            m = MLP()
            with lib.no_grad():
                for layer, (w, b) in zip((m.fc1, m.fc2), ws):
                    layer.weight.copy_(lib.tensor(w, dtype=lib.float32))
                    layer.bias.copy_(lib.tensor(b, dtype=lib.float32))
            models.append(m)
        params, buffers = lib.func.stack_module_state(models)
        base = copy.deepcopy(models[0]).to("meta")

        def fmodel(params, buffers, x):
            return lib.func.functional_call(base, (params, buffers), (x,))
        xs = lib.tensor(data, dtype=lib.float32)
        p1 = lib.vmap(fmodel)(params, buffers, xs)
        p2 = lib.vmap(fmodel, in_dims=(0, 0, None))(params, buffers, xs[0])
        loop = lib.stack([m(x) for m, x in zip(models, xs)])
        return params, buffers, p1.detach().numpy(), p2.detach().numpy(), loop.detach().numpy()

    pj, bj, a1, a2, loop_j = build(jg)
    pt, bt, b1, b2, _ = build(torch)
    assert list(pj) == list(pt) and bj == {} and bt == {}
    for k in pt:
        assert tuple(pj[k].shape) == tuple(pt[k].shape)
        assert pj[k].is_leaf and pj[k].requires_grad
    np.testing.assert_allclose(a1, b1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a2, b2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a1, loop_j, rtol=1e-5, atol=1e-6)


def test_stack_module_state_errors_and_meta_keeps_the_module():
    with pytest.raises(RuntimeError, match="at least one model"):
        jg.func.stack_module_state([])
    a, b = jg.nn.Linear(2, 2), jg.nn.Linear(2, 2)
    b.eval()
    with pytest.raises(RuntimeError, match="training/eval mode"):
        jg.func.stack_module_state([a, b])
    with pytest.raises(RuntimeError, match="different shapes"):
        jg.func.stack_module_state([jg.nn.Linear(2, 2), jg.nn.Linear(3, 2)])
    w = a.weight.detach().clone()
    assert a.to("meta") is a and a.to(device="meta") is a
    np.testing.assert_array_equal(a.weight.detach().numpy(), w.numpy())
    with pytest.raises(ValueError, match="cuda"):
        a.to("cuda")


# -- torch.load of torch.save files -------------------------------------------------------------
def _torch_file(tmp_path, obj, name="f.pt"):
    torch = pytest.importorskip("torch")
    path = tmp_path / name
    torch.save(obj, path)
    return path


def _same(ours, theirs):
    torch = pytest.importorskip("torch")
    t = theirs.detach()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()  # jitgrad holds half precision as float32
    np.testing.assert_array_equal(ours.detach().numpy(), t.numpy())
    assert ours.dtype.name == str(t.dtype).replace("torch.", "")
    assert tuple(ours.shape) == tuple(t.shape)


def test_load_torch_state_dict_into_a_jitgrad_model(tmp_path):
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    sd = jg.load(_torch_file(tmp_path, net.state_dict()))
    assert isinstance(sd, OrderedDict) and list(sd) == list(net.state_dict())
    for k, v in net.state_dict().items():
        _same(sd[k], v)
    ours = jg.nn.Sequential(jg.nn.Linear(3, 4), jg.nn.ReLU(), jg.nn.Linear(4, 2))
    ours.load_state_dict(sd)
    x = np.random.default_rng(5).standard_normal((6, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(jg.tensor(x)).detach().numpy(),
                               net(torch.tensor(x)).detach().numpy(), rtol=1e-6, atol=1e-6)


def test_load_torch_tensors_of_each_dtype_views_and_containers(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    obj = {
        "f32": torch.randn(3, 2), "f64": torch.randn(2, dtype=torch.float64),
        "i64": torch.arange(5), "bool": torch.tensor([True, False, True]),
        "f16": torch.randn(4).half(), "bf16": torch.randn(3).bfloat16(),
        "i32": torch.arange(3, dtype=torch.int32), "u8": torch.arange(4, dtype=torch.uint8),
        "scalar": torch.tensor(2.5), "empty": torch.zeros(0, 3),
        "t": base.t(), "slice": base[1:, 2::3], "row": base[2], "expand": torch.ones(3, 1)
        .expand(3, 4), "grad": torch.ones(2, requires_grad=True),
        "param": torch.nn.Parameter(torch.randn(2, 2)),
        "list": [torch.ones(1), (torch.zeros(2), 3, "s", None, 1.5)],
    }
    got = jg.load(_torch_file(tmp_path, obj))
    assert set(got) == set(obj)
    for k, v in obj.items():
        if isinstance(v, torch.Tensor):
            _same(got[k], v)
    assert got["grad"].requires_grad and not got["f32"].requires_grad
    assert isinstance(got["param"], jg.nn.Parameter) and got["param"].requires_grad
    _same(got["list"][0], obj["list"][0])
    _same(got["list"][1][0], obj["list"][1][0])
    assert got["list"][1][1:] == (3, "s", None, 1.5)
    single = jg.load(_torch_file(tmp_path, base[:, 1], "single.pt"))
    _same(single, base[:, 1])
    buf = io.BytesIO()
    torch.save([base, base[1:]], buf)
    buf.seek(0)
    a, b = jg.load(buf)
    _same(a, base)
    _same(b, base[1:])


def test_load_a_torch_training_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    m = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(m.parameters())
    m(torch.ones(1, 2)).sum().backward()
    opt.step()
    ck = {"epoch": 3, "model": m.state_dict(), "opt": opt.state_dict(), "loss": 0.25,
          "device": torch.device("cpu"), "dtype": torch.float64, "bytes": b"xy", "set": {1, 2}}
    got = jg.load(_torch_file(tmp_path, ck), map_location="cpu", weights_only=True)
    want = opt.state_dict()
    assert got["opt"]["param_groups"] == want["param_groups"]
    for k in ("step", "exp_avg", "exp_avg_sq"):
        _same(got["opt"]["state"][1][k], want["state"][1][k])
    assert (got["epoch"], got["loss"], got["bytes"], got["set"]) == (3, 0.25, b"xy", {1, 2})
    assert got["device"] == jg.device("cpu") and got["dtype"] is jg.float64


def test_load_refuses_code_in_a_torch_file(tmp_path):
    torch = pytest.importorskip("torch")
    with pytest.raises(pickle.UnpicklingError, match="never runs code"):
        # an object torch pickles by calling its class (Counter's __reduce__): never called
        jg.load(_torch_file(tmp_path, collections.Counter(a=1)))

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as zf:  # torch's layout, with a hostile pickle
        zf.writestr("archive/data.pkl", pickle.dumps(Boom(), protocol=2))
        zf.writestr("archive/byteorder", "little")
    with pytest.raises(pickle.UnpicklingError, match=r"(posix|os|nt)\.system"):
        jg.load(path)
    assert not (tmp_path / "pwned").exists()
    torch.save(torch.ones(2), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(RuntimeError, match="legacy"):
        jg.load(tmp_path / "legacy.pt")


def test_jitgrad_own_format_still_round_trips(tmp_path):
    obj = {"w": jg.ones(2, 3), "n": 4, "seq": [jg.arange(3), (1.5, None)]}
    jg.save(obj, tmp_path / "own.pt")
    back = jg.load(tmp_path / "own.pt")
    np.testing.assert_array_equal(back["w"].numpy(), np.ones((2, 3), np.float32))
    assert back["n"] == 4 and back["seq"][0].tolist() == [0, 1, 2]
    assert back["seq"][1] == (1.5, None)
