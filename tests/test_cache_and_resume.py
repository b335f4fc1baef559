"""The cache: a pinned hash, round trips, corrupt entries recomputed, and an interrupted IMP run resumed."""

import json
import warnings

import pytest
import torch

from ticketlib.studies.imp import study as imp
from ticketlib.infra.cache import Cache, canonical, config_hash
from ticketlib.core.train import TrainConfig

CONFIG = {"unit": "imp_round", "seed": 0, "lr": 1.2e-3, "names": None, "steps": ["500it", "2ep"],
          "nested": {"b": 1, "a": (2, 3)}}


def test_config_hash_is_pinned() -> None:
    # If this changes, every cached result is silently orphaned: bump CACHE_VERSION on purpose instead.
    assert canonical(CONFIG) == ('{"lr":0.0012,"names":null,"nested":{"a":[2,3],"b":1},"seed":0,'
                                 '"steps":["500it","2ep"],"unit":"imp_round"}')
    assert config_hash(CONFIG) == "0c28c07877e45153"
    reordered = dict(reversed(list(CONFIG.items())))
    assert config_hash(reordered) == config_hash(CONFIG)
    assert config_hash({**CONFIG, "seed": 1}) != config_hash(CONFIG)


def test_put_get_round_trip(tmp_path) -> None:
    cache = Cache(tmp_path)
    payload = {"mask": {"w": torch.rand(3, 4) > 0.5}, "result": {"acc": 0.5}, "history": [{"iteration": 0}]}
    assert cache.get(CONFIG) is None
    cache.put(CONFIG, payload)
    folder = cache.path(CONFIG)
    assert folder.name == config_hash(CONFIG) and {p.name for p in folder.iterdir()} == {"payload.pt", "meta.json"}
    assert json.loads((folder / "meta.json").read_text())["config"] == json.loads(canonical(CONFIG))
    got = cache.get(CONFIG)
    assert torch.equal(got["mask"]["w"], payload["mask"]["w"]) and got["result"] == payload["result"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # no leftovers
    calls = []
    assert cache.cached(CONFIG, lambda: calls.append(1)) is not None and not calls
    assert (cache.hits, cache.misses) == (1, 0)
    off = Cache(None)
    assert off.cached(CONFIG, lambda: 7) == 7 and off.get(CONFIG) is None and off.misses == 1


@pytest.mark.parametrize("damage", ["flip_payload", "truncate_payload", "bad_meta", "other_config"])
def test_corrupt_entry_is_detected_removed_and_recomputed(tmp_path, damage) -> None:
    cache = Cache(tmp_path)
    cache.put(CONFIG, {"value": torch.arange(100)})
    folder = cache.path(CONFIG)
    payload, meta = folder / "payload.pt", folder / "meta.json"
    if damage == "flip_payload":
        raw = bytearray(payload.read_bytes())
        for i in range(len(raw) // 2, len(raw) // 2 + 8):
            raw[i] ^= 0xFF
        payload.write_bytes(bytes(raw))
    elif damage == "truncate_payload":
        payload.write_bytes(payload.read_bytes()[:50])
    elif damage == "bad_meta":
        meta.write_text("{not json")
    else:
        body = json.loads(meta.read_text())
        body["config"]["seed"] = 99
        meta.write_text(json.dumps(body))
    with pytest.warns(UserWarning, match="corrupt"):
        assert cache.get(CONFIG) is None
    assert not folder.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = cache.cached(CONFIG, lambda: {"value": torch.arange(5)})
    assert torch.equal(value["value"], torch.arange(5)) and cache.misses == 1
    assert torch.equal(cache.get(CONFIG)["value"], torch.arange(5))  # the recomputed entry is stored


def tiny_experiment() -> tuple[imp.Experiment, imp.IMPConfig]:
    exp = imp.Experiment(model="lenet_300_100", dataset="synthetic", device="cpu",
                         train=TrainConfig(lr=1e-2, batch_size=20, duration="20it", eval_every="10it"))
    return exp, imp.IMPConfig(rounds=2, fraction=0.5, overrides={"output": 0.25}, rewind="5it")


def comparable(ticket: imp.Ticket) -> list:
    rows = []
    for r in ticket.rounds:
        result = {k: v for k, v in r.result.items() if k != "seconds"}
        history = [{k: (None if v != v else v) for k, v in row.items()} for row in r.history]
        rows.append((r.round, {n: t.tolist() for n, t in r.mask.items()}, result, history))
    return rows


def test_interrupted_run_resumes_from_the_cache(tmp_path, tiny_data, monkeypatch) -> None:
    exp, imp_cfg = tiny_experiment()
    reference = imp.find_ticket(exp, imp_cfg, tiny_data, seed=0, progress=False)  # no cache, uninterrupted

    original, calls = imp.train, []

    def failing_train(*args, **kwargs):
        calls.append(kwargs.get("start_iteration", 0))
        if len(calls) == 3:  # the training of round 2
            raise KeyboardInterrupt("killed mid-run")
        return original(*args, **kwargs)

    monkeypatch.setattr(imp, "train", failing_train)
    first = Cache(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        imp.find_ticket(exp, imp_cfg, tiny_data, seed=0, cache=first, progress=False)
    assert (first.hits, first.misses) == (0, 3) and len(list(tmp_path.iterdir())) == 2  # rounds 0 and 1 stored

    monkeypatch.setattr(imp, "train", original)
    second = Cache(tmp_path)
    resumed = imp.find_ticket(exp, imp_cfg, tiny_data, seed=0, cache=second, progress=False)
    assert (second.hits, second.misses) == (2, 1)
    assert comparable(resumed) == comparable(reference)
    assert all(torch.equal(resumed.rewind_state[k], reference.rewind_state[k]) for k in reference.rewind_state)

    def never(*args, **kwargs):
        raise AssertionError("a finished unit was retrained")

    monkeypatch.setattr(imp, "train", never)
    third = Cache(tmp_path)
    again = imp.find_ticket(exp, imp_cfg, tiny_data, seed=0, cache=third, progress=False)
    assert (third.hits, third.misses) == (3, 0) and comparable(again) == comparable(reference)
    control = imp.train_control  # controls are cached units too
    monkeypatch.setattr(imp, "train", original)
    control(exp, imp_cfg, tiny_data, again, 2, "reinit", seed=0, cache=third, progress=False)
    monkeypatch.setattr(imp, "train", never)
    control(exp, imp_cfg, tiny_data, again, 2, "reinit", seed=0, cache=third, progress=False)
    assert third.hits == 4


def test_cache_key_separates_what_matters(tmp_path, tiny_data) -> None:
    exp, imp_cfg = tiny_experiment()
    cache = Cache(tmp_path)
    imp.find_ticket(exp, imp.IMPConfig(rounds=0), tiny_data, seed=0, cache=cache, progress=False)
    imp.find_ticket(exp, imp.IMPConfig(rounds=0), tiny_data, seed=1, cache=cache, progress=False)
    other = imp.Experiment(**{**exp.__dict__, "train": TrainConfig(lr=2e-2, batch_size=20, duration="20it",
                                                                   eval_every="10it")})
    imp.find_ticket(other, imp.IMPConfig(rounds=0), tiny_data, seed=0, cache=cache, progress=False)
    assert cache.misses == 3 and cache.hits == 0
    moved = imp.Experiment(**{**exp.__dict__, "device": "cuda"})  # where it runs is not what it is
    assert moved.key() == exp.key()
