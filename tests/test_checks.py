"""The guard rails catch the three bugs public IMP implementations shipped, each injected as a small fake:
a rewind that aliases the live tensors, an IMP whose reset is skipped, masks not re-applied after a step.
Without the fake, the same search passes every check."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ticketlib.core import checks
from ticketlib.core import search
from ticketlib.core.checks import TicketCheckError, check_density, check_ticket, target_kept
from ticketlib.core.masks import Mask


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def train_fn(model, mask, optimizer_factory):
    opt = optimizer_factory(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-2))
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        x = torch.randn(16, 8, generator=gen)
        opt.zero_grad()
        F.cross_entropy(model(x), x[:, :3].argmax(1)).backward()
        opt.step()
    return {"loss": 0.0}


CFG = search.IMPConfig(rounds=2, fraction=0.5, scope="layerwise", rewind="2it")


def run(check: bool = True) -> search.Ticket:
    torch.manual_seed(0)
    return search.find_ticket(Net, train_fn, CFG, check=check)


def test_a_correct_search_passes_every_check() -> None:
    ticket = run()
    check_ticket(ticket, CFG)
    assert [r.mask.num_kept() for r in ticket.rounds] == [176, 88, 44]


def test_rewind_aliasing_the_live_tensors_is_caught(monkeypatch) -> None:
    """BERT-Tickets #19 style: the 'saved' weights are the live tensors, so a rewind restores trained weights."""
    monkeypatch.setattr(search, "capture", lambda model: dict(model.state_dict()))  # no copy: aliases
    with pytest.raises(TicketCheckError, match="aliases the live tensor"):
        run()
    run(check=False)  # without the guard rail the bug passes silently


def test_skipped_reset_is_caught(monkeypatch) -> None:
    """Synaptic-Flow's README: IMP never reset. Here restore only masks, it loads nothing."""
    monkeypatch.setattr(search, "restore", lambda model, state, mask=None: mask.apply(model) if mask else model)
    with pytest.raises(TicketCheckError, match="not rewound to θ_k bit for bit"):
        run()
    run(check=False)


def test_masks_not_reapplied_after_a_step_are_caught(monkeypatch) -> None:
    """Lightning ModelPruning #13643: the optimizer step (momentum, weight decay) revives pruned weights."""
    class Nothing:
        def remove(self) -> None:
            pass

    monkeypatch.setattr(search, "keep_pruned_at_zero", lambda mask, model, optimizer: Nothing())
    with pytest.raises(TicketCheckError, match="round 1, after step 1: .* pruned weights of 'fc1.weight' are not zero"):
        run()
    ticket = run(check=False)  # silently wrong: the trained ticket is denser than its mask
    with pytest.raises(TicketCheckError, match="not zero"):
        check_ticket(ticket, CFG)


def test_a_wrong_density_is_caught() -> None:
    previous = Mask({"a": torch.ones(10, dtype=torch.bool), "b": torch.ones(5, dtype=torch.bool)})
    cfg = search.IMPConfig(rounds=1, fraction=0.2, scope="global")
    assert target_kept(0.2, "global", "remaining", previous, 1, {}) == 12      # 15 - round(3.0)
    assert target_kept(0.2, "layerwise", "remaining", previous, 1, {"b": 0.5}) == 8 + 2  # 10-2, 5-round(2.5)=2
    assert target_kept(0.3, "global", "original", previous, 2, {}) == 6      # round(0.4 * 15)
    one_too_many = Mask({"a": torch.ones(10, dtype=torch.bool), "b": torch.tensor([1, 1, 1, 0, 0])})
    with pytest.raises(TicketCheckError, match="keeps 13 weights, its target is 12"):
        check_density(cfg, previous, one_too_many, 1, {})
    right = Mask({"a": torch.ones(10, dtype=torch.bool), "b": torch.tensor([1, 1, 0, 0, 0])})
    check_density(cfg, previous, right, 1, {})
    revived = Mask({"a": torch.ones(10, dtype=torch.bool), "b": torch.tensor([0, 1, 0, 0, 0])})  # b[1] was pruned
    with pytest.raises(TicketCheckError, match="came back"):
        check_density(cfg, Mask({"a": torch.ones(10, dtype=torch.bool), "b": torch.tensor([1, 0, 1, 1, 1])}),
                      revived, 1, {})


def test_theta_k_changed_after_capture_is_caught() -> None:
    net = Net()
    theta = {k: v.clone() for k, v in net.state_dict().items()}
    digest = checks.state_digest(theta)
    theta["fc1.bias"][0] += 1
    with pytest.raises(TicketCheckError, match="changed after it was captured"):
        checks.check_rewound(net, theta, Mask.ones_like(net), digest)
