"""jitgrad.distributed: 2 MPI ranks give the parameters of 1 rank, a failing rank ends the job,
and the sampler shards deterministically. The MPI runs skip where MPI is absent, except in CI."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jitgrad
from jitgrad.distributed import DistributedSampler

WORKER = Path(__file__).parent / "mpi" / "worker.py"


def _mpi_missing() -> str | None:
    if shutil.which("mpirun") is None:
        return "mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev)"
    try:
        from mpi4py import MPI  # noqa: F401
    except Exception as e:  # ImportError, or RuntimeError when libmpi is missing
        return f"mpi4py unusable: {e}"
    return None


_why = _mpi_missing()
needs_mpi = pytest.mark.skipif(_why is not None and os.environ.get("CI") != "true",
                               reason=_why or "")


def _env(tmp_path) -> dict:
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               JITGRAD_CACHE_DIR=os.environ.get("JITGRAD_CACHE_DIR", str(tmp_path / "cache")))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(jitgrad.__file__).parents[1]),
                                         env.get("PYTHONPATH", "")])
    return env


def _mpirun(n: int, args: list, tmp_path, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = ["mpirun", "-n", str(n), sys.executable, str(WORKER), *args]
    return subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mpi")
    out = {}
    for n in (1, 2):
        path = tmp / f"ranks{n}.npz"
        r = _mpirun(n, ["train", str(path)], tmp)
        assert r.returncode == 0, r.stdout + r.stderr
        out[n] = dict(np.load(path))
    return out


@needs_mpi
def test_two_ranks_match_one_rank(runs):
    one, two = runs[1], runs[2]
    assert int(one["world"]) == 1 and int(two["world"]) == 2
    names = [k for k in one if k != "world" and not k.endswith("/spread")]
    assert len(names) == 12  # 3 runs x 4 parameters
    for k in names:
        tol = 1e-6 if "f32" in k else 1e-12
        assert one[k].dtype == (np.float32 if "f32" in k else np.float64)
        np.testing.assert_allclose(two[k], one[k], rtol=tol, atol=tol, err_msg=k)


@needs_mpi
def test_ranks_hold_identical_parameters(runs):
    for k, v in runs[2].items():
        if k.endswith("/spread"):
            assert np.all(v == 0), k


@needs_mpi
def test_training_moved_the_parameters(runs, tmp_path):
    # The comparison above would pass vacuously if no step changed anything.
    import importlib.util
    spec = importlib.util.spec_from_file_location("worker", WORKER)
    w = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(w)
    init = dict(w.model(np.float64, seed=0).named_parameters())
    for pname, p in init.items():
        assert np.abs(runs[1][f"eager_f64_sgd/{pname}"] - p.detach().numpy()).max() > 1e-3


@needs_mpi
def test_a_failing_rank_ends_the_job(tmp_path):
    r = _mpirun(2, ["raise"], tmp_path, timeout=120)
    assert r.returncode != 0
    assert "rank 1 failed on purpose" in r.stderr + r.stdout


def test_sampler_shards_cover_the_epoch_once():
    shards = [DistributedSampler(10, num_replicas=3, rank=r, seed=4) for r in range(3)]
    for s in shards:
        s.set_epoch(2)
    got = [s.indices() for s in shards]
    assert all(len(g) == len(s) == 4 for g, s in zip(got, shards))  # 10 padded to 12
    flat = np.concatenate(got)
    assert set(flat.tolist()) == set(range(10))
    # Local batch i of the ranks together is global batch i of a one-rank run.
    one = DistributedSampler(10, num_replicas=1, rank=0, seed=4)
    one.set_epoch(2)
    whole = np.resize(one.indices(), 12)
    np.testing.assert_array_equal(np.stack(got, 1).reshape(-1), whole)


def test_sampler_is_deterministic_per_epoch():
    a = DistributedSampler(50, num_replicas=2, rank=0, seed=1)
    b = DistributedSampler(50, num_replicas=2, rank=0, seed=1)
    a.set_epoch(5)
    b.set_epoch(5)
    np.testing.assert_array_equal(a.indices(), b.indices())
    b.set_epoch(6)
    assert not np.array_equal(a.indices(), b.indices())
    c = DistributedSampler(50, num_replicas=2, rank=0, shuffle=False)
    np.testing.assert_array_equal(c.indices(), np.arange(0, 50, 2))


def test_sampler_drop_last_and_bad_arguments():
    s = DistributedSampler(10, num_replicas=4, rank=3, drop_last=True)
    assert len(s) == 2 and len(s.indices()) == 2
    with pytest.raises(ValueError, match="rank 2 is not in"):
        DistributedSampler(10, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="empty"):
        DistributedSampler(0, num_replicas=1, rank=0)


def test_uninitialized_use_is_a_clear_error():
    import jitgrad.distributed as dist
    if dist.is_initialized():
        pytest.skip("initialized by another test")
    with pytest.raises(RuntimeError, match="call jitgrad.distributed.init"):
        dist.rank()


@needs_mpi
def test_ddp_example_trains_on_two_ranks(tmp_path):
    pytest.importorskip("sklearn")
    script = Path(__file__).parents[1] / "examples" / "train_digits_ddp.py"
    r = subprocess.run(["mpirun", "-n", "2", sys.executable, str(script), "--epochs", "6"],
                       env=_env(tmp_path), capture_output=True, text=True, timeout=240,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "training on 2 rank(s)" in r.stdout
    found = re.search(r"test accuracy: ([0-9.]+)\n", r.stdout)
    assert found, r.stdout
    acc = float(found.group(1))
    assert acc >= 0.9, r.stdout


def test_all_reduce_rejects_an_unknown_op():
    import jitgrad.distributed as dist
    with pytest.raises(ValueError, match="op must be one of"):
        dist.all_reduce([np.ones(2)], op="avg")
