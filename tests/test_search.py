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
