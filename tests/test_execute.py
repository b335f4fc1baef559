"""The execution layer and the cache as a results store: backends agree bit for bit, a unit computed twice
lands once, keys leave out what does not change a result (IMP's rounds, the early-bird detector's ε)."""
import json
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
import torch

from ticketlib.studies.early_tickets import study as earlybird
from ticketlib.infra import execute
from ticketlib.studies.imp import study as imp
from ticketlib.runner import run
from ticketlib.infra.cache import Cache
from ticketlib.core.experiment import Experiment
from ticketlib.core.train import TrainConfig

from test_earlybird import _data as toy_images
from test_earlybird import _exp as toy_vgg

KEY = {"unit": "test_concurrent", "seed": 0}


def test_backend_comes_from_the_parameter_then_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(execute.ENV, raising=False)
    assert execute.backend_name("auto") == execute.backend_name(None) == "local"
    monkeypatch.setenv(execute.ENV, "dask")
    assert execute.backend_name("auto") == "dask" and execute.backend_name("slurm") == "slurm"
    with pytest.raises(ValueError, match="executor must be one of"):
        execute.backend_name("spark")


def _slow_unit(root: str, gate: str, worker: int) -> tuple[int, int]:
    """Compute KEY's unit in this process once both workers are ready (slowly, so they overlap); (hits, misses)."""
    Path(gate, str(worker)).touch()
    while len(list(Path(gate).iterdir())) < 2:  # a start barrier: neither looks in the cache before both are up
        time.sleep(0.01)
    cache = Cache(root)
    cache.cached(KEY, lambda: (time.sleep(1.0), {"values": torch.arange(1000)})[1])
    return cache.hits, cache.misses


def test_a_unit_computed_by_two_workers_lands_once_intact(tmp_path) -> None:
    gate = tmp_path.parent / f"{tmp_path.name}-gate"
    gate.mkdir()
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        outcomes = [f.result() for f in [pool.submit(_slow_unit, str(tmp_path), str(gate), w) for w in range(2)]]
    assert outcomes == [(0, 1), (0, 1)]  # both computed it (neither found it)...
    entries = list(tmp_path.iterdir())
    assert len(entries) == 1 and not entries[0].name.startswith(".tmp")  # ...and one entry landed, no leftovers
    meta = json.loads((entries[0] / "meta.json").read_text())
    assert meta["meta"]["device"] is None and meta["meta"]["seconds"] >= 1.0
    assert torch.equal(Cache(tmp_path).get(KEY)["values"], torch.arange(1000))  # its checksum verifies


def test_a_second_put_keeps_the_first_entry(tmp_path) -> None:
    cache = Cache(tmp_path)
    assert cache.put(KEY, {"values": torch.zeros(3)}) is True
    assert cache.put(KEY, {"values": torch.ones(3)}) is False
    assert torch.equal(cache.get(KEY)["values"], torch.zeros(3))


def _lenet() -> Experiment:
    return Experiment(model="lenet_300_100", dataset="synthetic", device="cpu",
                      train=TrainConfig(lr=1e-2, batch_size=20, duration="20it", eval_every="10it"))


def test_more_rounds_reuse_the_earlier_ones(tmp_path, tiny_data) -> None:
    exp, cache = _lenet(), Cache(tmp_path)
    short = imp.find_ticket(exp, imp.IMPConfig(rounds=2, fraction=0.5), tiny_data, seed=0, cache=cache, progress=False)
    assert (cache.hits, cache.misses) == (0, 3)
    longer = imp.find_ticket(exp, imp.IMPConfig(rounds=3, fraction=0.5), tiny_data, seed=0, cache=cache,
                             progress=False)
    assert (cache.hits, cache.misses) == (3, 4)  # rounds 0-2 reused, round 3 trained
    for a, b in zip(short.rounds, longer.rounds):
        assert all(torch.equal(a.mask[n], b.mask[n]) for n in a.mask) and a.result == b.result


def test_changing_epsilon_reuses_the_dense_run_and_finds_the_same_weights(tmp_path) -> None:
    data, exp, cache = toy_images(), toy_vgg(), Cache(tmp_path)
    first = earlybird.search(exp, earlybird.EarlyBirdConfig(ratios=[0.5], epsilon=0.0, window=3), data, seed=0,
                             cache=cache, progress=False)
    looser = earlybird.EarlyBirdConfig(ratios=[0.5], epsilon=1.0, window=3)  # fires at the third check
    reused = earlybird.search(exp, looser, data, seed=0, cache=cache, progress=False)
    assert cache.hits == 1 and first["detected"] != reused["detected"] and reused["detected"][0.5] == 2
    fresh = earlybird.search(exp, looser, data, seed=0, cache=None, progress=False)  # ran with ε = 1 from the start
    assert fresh["detected"] == reused["detected"]
    state, expected = reused["eb_state"][0.5], fresh["eb_state"][0.5]
    assert all(torch.equal(state[k], expected[k]) for k in expected)  # retrained to epoch 2, bit for bit


def _untimed(value):
    """A record's metrics without wall times (they differ between any two runs)."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if "seconds" not in k and "latency" not in k}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


@pytest.mark.parametrize("notebook", ["01_imp", "02_conservation"])
def test_smoke_runs_are_bit_identical_on_every_backend(notebook, tmp_path, monkeypatch) -> None:
    pytest.importorskip("distributed")
    pytest.importorskip("submitit")
    monkeypatch.setenv("TICKETLIB_CORES", "2")
    metrics = {}
    for backend in ("local", "dask", "slurm"):
        monkeypatch.setenv(execute.ENV, backend)
        monkeypatch.setenv("TICKETLIB_SLURM_CLUSTER", "local")  # submitit's local executor: same jobs, no Slurm
        monkeypatch.setenv("TICKETLIB_SLURM_FOLDER", str(tmp_path / "submitit"))
        record = run.execute(f"params/smoke/{notebook}.yaml", out_root=tmp_path / backend)
        metrics[backend] = _untimed(json.loads(Path(record).read_text())["metrics"])
    assert metrics["dask"] == metrics["local"]
    assert metrics["slurm"] == metrics["local"]
