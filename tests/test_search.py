"""The model-agnostic ticket search: the built-in image IMP on it keeps its cache keys and its rounds,
a user's own loop gets masks held, θ_k captured and restored, and a Ticket that saves and loads."""

import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ticketlib.studies.imp import study as imp
from ticketlib.core import search
from ticketlib.infra.cache import Cache
from ticketlib.core.checks import check_ticket
from ticketlib.core.train import TrainConfig

PINNED_KEYS = [  # computed by the IMP loop before it moved onto search.find_ticket (commit 4923932)
    (imp.IMPConfig(rounds=2, fraction=0.5, overrides={"output": 0.25}, rewind="5it"),
     ["36dc6f90227d783d", "95cce39e283b54e7", "c4d6fccffc31cf8c"]),
    (imp.IMPConfig(rounds=2, fraction=0.3, scope="global", rewind="0it"),
     ["1d0d35a7c4c85a01", "9d0ec0b88b806167", "b938013a6537e140"]),
    (imp.IMPConfig(rounds=2, fraction=0.2, scope="global", fraction_of="original", rewind="1ep"),
     ["1d793fc2bda4cb09", "c03031d42c50095a", "d425ec87577dc04c"]),
]


def _experiment() -> imp.Experiment:
    return imp.Experiment(model="lenet_300_100", dataset="synthetic", device="cpu",
                          train=TrainConfig(lr=1e-2, batch_size=20, duration="20it", eval_every="10it"))


@pytest.mark.parametrize("cfg,folders", PINNED_KEYS, ids=["layerwise-5it", "global-0it", "original-1ep"])
def test_builtin_imp_unit_keys_are_pinned(tiny_data, tmp_path, cfg, folders) -> None:
    """Existing caches stay valid: the image IMP's one unit per round keeps its key (folder name)."""
    ticket = imp.find_ticket(_experiment(), cfg, tiny_data, seed=3, cache=Cache(tmp_path), progress=False)
    assert sorted(os.listdir(tmp_path)) == folders
    check_ticket(ticket, cfg, imp.resolve_overrides(_experiment().build_model(tiny_data, 3), cfg.overrides))


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(16, 32), nn.Linear(32, 4)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def make_train_fn(data, steps: int = 12, log: list | None = None):
    def train_fn(model, mask, optimizer_factory):
        opt = optimizer_factory(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3))
        gen = torch.Generator().manual_seed(0)
        for _ in range(steps):
            idx = torch.randint(0, len(data.train), (20,), generator=gen)
            opt.zero_grad()
            F.cross_entropy(model(data.train.x[idx]), data.train.y[idx]).backward()
            opt.step()
            if log is not None:
                log.append({n: p.detach().clone() for n, p in model.named_parameters()})
        with torch.no_grad():
            accuracy = float((model(data.test.x).argmax(1) == data.test.y).float().mean())
        return {"test_accuracy": accuracy}
    return train_fn


def test_own_loop_holds_masks_and_rewinds_to_theta_k(tiny_data) -> None:
    log: list = []
    torch.manual_seed(0)
    cfg = search.IMPConfig(rounds=2, fraction=0.5, scope="global", rewind="3it")
    ticket = search.find_ticket(TinyNet, make_train_fn(tiny_data, log=log), cfg, check=True)
    assert [r.mask.num_kept() for r in ticket.rounds] == [640, 320, 160]  # (512 + 128) * 0.5^r, exactly
    assert ticket.rewind_iteration == 3
    for name, value in ticket.rewind_state.items():  # θ_k is the state after the dense round's 3rd step
        if name in log[2]:
            assert torch.equal(value, log[2][name])
    for r in ticket.rounds[1:]:
        pruned = {n: ~k for n, k in r.mask.items()}
        assert all(not r.final_state[n][pruned[n]].any() for n in pruned)  # zero through momentum + decay
    assert [m["round"] for m in ticket.metrics()] == [0, 1, 2]


def test_rewind_never_reached_is_refused(tiny_data) -> None:
    cfg = search.IMPConfig(rounds=1, rewind="100it")
    with pytest.raises(RuntimeError, match="never reached the rewind step"):
        search.find_ticket(TinyNet(), make_train_fn(tiny_data, steps=5), cfg)


def test_ticket_saves_and_loads(tiny_data, tmp_path) -> None:
    torch.manual_seed(0)
    ticket = search.find_ticket(TinyNet(), make_train_fn(tiny_data), search.IMPConfig(rounds=1, fraction=0.3))
    ticket.save(tmp_path / "t.pt")
    loaded = search.Ticket.load(tmp_path / "t.pt")
    assert [r.mask for r in loaded.rounds] == [r.mask for r in ticket.rounds]
    assert loaded.metrics() == ticket.metrics() and loaded.rewind_iteration == ticket.rewind_iteration
    assert all(torch.equal(loaded.rewind_state[k], v) for k, v in ticket.rewind_state.items())
    (tmp_path / "bad.pt").write_bytes(b"x")
    with pytest.raises(Exception):
        search.Ticket.load(tmp_path / "bad.pt")


def test_cache_rounds_resume(tiny_data, tmp_path) -> None:
    torch.manual_seed(0)
    model = TinyNet()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = search.IMPConfig(rounds=2, fraction=0.5)
    first = search.find_ticket(model, make_train_fn(tiny_data), cfg, cache=search.CacheRounds(Cache(tmp_path), {"u": 1}))
    model.load_state_dict(state)
    calls: list = []

    def counting(model, mask, factory):
        calls.append(1)
        return make_train_fn(tiny_data)(model, mask, factory)

    again = search.find_ticket(model, counting, cfg, cache=search.CacheRounds(Cache(tmp_path), {"u": 1}))
    assert calls == [] and [r.mask for r in again.rounds] == [r.mask for r in first.rounds]


# --- until_density: a search stopped at a level, and the early-stop seeds of imp_study ---------------------------
def _counting(data, calls: list):
    def train_fn(model, mask, factory):
        calls.append(mask.density())
        return make_train_fn(data)(model, mask, factory)
    return train_fn


@pytest.mark.parametrize("until, trained", [(0.3, 3), (0.25, 3), (1.0, 1), (0.01, 5), (None, 5)])
def test_until_density_stops_after_the_first_round_at_or_below_it(tiny_data, until, trained) -> None:
    """Global 50% rounds keep 1, 1/2, 1/4, 1/8, 1/16: the search trains exactly up to the first round <= until."""
    calls: list = []
    torch.manual_seed(0)
    cfg = search.IMPConfig(rounds=4, fraction=0.5, scope="global")
    ticket = search.find_ticket(TinyNet, _counting(tiny_data, calls), cfg, until_density=until)
    assert len(calls) == len(ticket.rounds) == trained
    assert [r.round for r in ticket.rounds] == list(range(trained))
    assert [r.density for r in ticket.rounds] == [0.5 ** r for r in range(trained)]


def test_until_density_none_and_truncation_change_no_round(tiny_data) -> None:
    cfg = search.IMPConfig(rounds=3, fraction=0.5, scope="global", rewind="2it")
    runs = []
    for until in ("default", None, 0.3):
        torch.manual_seed(0)
        kwargs = {} if until == "default" else {"until_density": until}
        runs.append(search.find_ticket(TinyNet, make_train_fn(tiny_data), cfg, **kwargs))
    full, none, short = runs
    assert none.metrics() == full.metrics() and [r.mask for r in none.rounds] == [r.mask for r in full.rounds]
    assert short.metrics() == full.metrics()[:3] and [r.mask for r in short.rounds] == [r.mask for r in full.rounds[:3]]
    with pytest.raises(ValueError, match="until_density"):
        search.find_ticket(TinyNet, make_train_fn(tiny_data), cfg, until_density=21.1)  # a percent, not a fraction


def test_a_truncated_image_run_is_the_full_runs_first_units(tiny_data, tmp_path) -> None:
    """until_density is in no cache key: a later full run reuses the truncated run's rounds as cache hits."""
    cfg = imp.IMPConfig(rounds=3, fraction=0.5, scope="global")
    first = Cache(tmp_path)
    short = imp.find_ticket(_experiment(), cfg, tiny_data, seed=3, cache=first, progress=False, until_density=0.3)
    assert len(short.rounds) == 3 and (first.hits, first.misses) == (0, 3)
    second = Cache(tmp_path)
    full = imp.find_ticket(_experiment(), cfg, tiny_data, seed=3, cache=second, progress=False)
    assert len(full.rounds) == 4 and (second.hits, second.misses) == (3, 1)
    assert [r.result for r in full.rounds[:3]] == [r.result for r in short.rounds]


def test_imp_study_runs_early_stop_seeds_down_to_the_level_without_controls(tiny_data, tmp_path,
                                                                           monkeypatch) -> None:
    from ticketlib.infra import execute
    from ticketlib.studies.imp.claims import EARLY_STOP_KIND

    seen: list = []
    real = execute.map_units
    monkeypatch.setattr(execute, "map_units", lambda unit, exp, jobs, **kw: seen.append(jobs) or real(unit, exp, jobs, **kw))
    cfg = imp.IMPConfig(rounds=3, fraction=0.5, scope="global")
    tickets, rows = imp.imp_study(_experiment(), cfg, tiny_data, seeds=[0], control_levels=[25.0],
                                  controls=("reinit",), cache=Cache(tmp_path), progress=False,
                                  early_stop_seeds=[7], early_stop_level=30.0)
    assert [j["seed"] for j in seen[0]] == [0, 7]  # one map over the full and the early-stop seeds
    assert list(tickets) == [0]  # only full runs are returned as tickets
    by_kind = {k: [(r.seed, r.round) for r in rows if r.kind == k] for k in {r.kind for r in rows}}
    assert by_kind == {"ticket": [(0, 0), (0, 1), (0, 2), (0, 3)], "reinit": [(0, 2)],
                       EARLY_STOP_KIND: [(7, 0), (7, 1), (7, 2)]}
    with pytest.raises(ValueError, match=r"seeds \[0\] are both"):
        imp.imp_study(_experiment(), cfg, tiny_data, seeds=[0], control_levels=[], early_stop_seeds=[0])
    with pytest.raises(ValueError, match="no controls"):
        imp.seed_study(_experiment(), tiny_data, cfg, 0, [25.0], until_density=0.3)
