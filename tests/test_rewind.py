"""Rewinding: Step, bit-exact capture/restore (BN buffers too), rewinding inside IMP, and the controls."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ticketlib.studies.imp import study as imp
from ticketlib.core import rewind
from ticketlib.core import train as train_mod
from ticketlib.core.masks import Mask
from ticketlib.core.rewind import Step, capture, restore
from ticketlib.core.train import TrainConfig, train


def states_equal(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_step_parsing_and_iterations() -> None:
    assert (Step("500it").count, Step("500it").unit) == (500, "it")
    assert Step(" 2 ep ").iteration(390) == 780 and Step("0it").iteration(390) == 0
    assert Step("500it").iteration(390) == 500 and str(Step("2ep")) == "2ep"
    for bad in ["500", "it", "-1it", "1.5ep", "2 epochs", ""]:
        with pytest.raises(ValueError):
            Step(bad)


def bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))


def sgd_steps(model: nn.Module, n: int) -> None:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(n)
    for _ in range(n):
        x, y = torch.randn(8, 1, 6, 6, generator=gen), torch.randint(0, 3, (8,), generator=gen)
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()


def test_capture_restore_bit_exact_with_bn_buffers() -> None:
    model = bn_net()
    sgd_steps(model, 3)
    saved = capture(model)
    assert {"1.running_mean", "1.running_var", "1.num_batches_tracked"} <= set(saved)
    assert int(saved["1.num_batches_tracked"]) == 3
    sgd_steps(model, 4)  # moves every parameter and buffer
    now = model.state_dict()
    assert all(not torch.equal(now[k], saved[k]) for k in saved)  # capture is a copy, not a view
    restore(model, saved)
    assert states_equal(model.state_dict(), saved)
    mask = Mask({"4.weight": torch.arange(192).reshape(3, 64) % 2 == 0})
    restore(model, saved, mask)
    assert torch.count_nonzero(model[4].weight[~mask["4.weight"]]) == 0
    assert torch.equal(model[4].weight[mask["4.weight"]], saved["4.weight"][mask["4.weight"]])
    assert torch.equal(model[1].running_var, saved["1.running_var"])
    with pytest.raises(RuntimeError):  # strict: a state of another model is refused
        restore(model, {"4.weight": saved["4.weight"]})


@pytest.fixture
def recorded(monkeypatch) -> list[dict]:
    """Every training imp runs: its mask, start iteration and the model's state before and after."""
    calls = []

    def recording_train(model, data, cfg, mask=None, start_iteration=0, **kwargs):
        before = capture(model)
        result = original(model, data, cfg, mask=mask, start_iteration=start_iteration, **kwargs)
        calls.append({"mask": mask, "start": start_iteration, "before": before, "after": capture(model),
                      "result": result})
        return result

    original = imp.train
    monkeypatch.setattr(imp, "train", recording_train)
    return calls


def experiment(**train_kwargs) -> imp.Experiment:
    cfg = dict(optimizer="sgd", lr=0.05, momentum=0.0, batch_size=20, duration="30it", eval_every="10it",
               milestones=["17it"], gamma=0.5)  # 12 iterations per epoch on 240 examples
    cfg.update(train_kwargs)
    return imp.Experiment(model="lenet_300_100", dataset="synthetic", device="cpu", train=TrainConfig(**cfg))


@pytest.mark.parametrize("augment", [False, True])
def test_rewind_to_iteration_k_is_bit_exact(tiny_data, recorded, augment) -> None:
    exp = experiment(augment=augment)
    # fraction 0 keeps every weight, and SGD without momentum has no state: round 1, rewound to
    # iteration 7, must then retrace the dense run exactly (same data order, same learning rates)
    ticket = imp.find_ticket(exp, imp.IMPConfig(rounds=1, fraction=0.0, rewind="7it"), tiny_data, seed=3,
                             progress=False)
    assert ticket.rewind_iteration == 7
    # the rewind state is what 7 iterations of training from the same init give
    short = exp.build_model(tiny_data, 3)
    assert states_equal(capture(short), ticket.init_state)
    train(short, tiny_data, TrainConfig(**{**exp.train.to_dict(), "duration": "7it"}), seed=3, progress=False)
    assert states_equal(capture(short), ticket.rewind_state)
    assert not states_equal(ticket.rewind_state, ticket.init_state)
    dense, round1 = recorded
    assert round1["start"] == 7 and states_equal(round1["before"], ticket.rewind_state)
    assert states_equal(round1["after"], dense["after"])
    later = {r["iteration"]: r["val_loss"] for r in dense["result"].history if r["iteration"] > 7}
    assert {r["iteration"]: r["val_loss"] for r in round1["result"].history if r["iteration"] > 7} == later


def test_rewind_to_epoch_and_round_starts_masked(tiny_data, recorded) -> None:
    exp = experiment(optimizer="adam", lr=1e-2)
    ticket = imp.find_ticket(exp, imp.IMPConfig(rounds=2, fraction=0.5, rewind="1ep"), tiny_data, seed=0,
                             progress=False)
    assert ticket.rewind_iteration == 12
    assert states_equal(ticket.rewind_state, recorded[0]["result"].captured_state)
    for call, round_ in zip(recorded[1:], ticket.rounds[1:]):
        assert call["start"] == 12 and call["mask"] == round_.mask
        for name, keep in round_.mask.items():
            assert torch.equal(call["before"][name], ticket.rewind_state[name] * keep)  # θ_k ⊙ m
            assert torch.count_nonzero(call["after"][name][~keep]) == 0


def test_controls(tiny_data, recorded) -> None:
    exp = experiment(optimizer="adam", lr=1e-2)
    imp_cfg = imp.IMPConfig(rounds=1, fraction=0.6, overrides={"output": 0.3})
    ticket = imp.find_ticket(exp, imp_cfg, tiny_data, seed=0, progress=False)
    mask = ticket.rounds[1].mask
    reinit = imp.train_control(exp, imp_cfg, tiny_data, ticket, 1, "reinit", seed=0, progress=False)
    call = recorded[-1]
    assert reinit.mask == mask and call["mask"] == mask and call["start"] == 0
    for name, keep in mask.items():
        assert torch.count_nonzero(call["before"][name][~keep]) == 0
        assert not torch.equal(call["before"][name][keep], ticket.init_state[name][keep])  # other weights
    random_mask = imp.train_control(exp, imp_cfg, tiny_data, ticket, 1, "random_mask", seed=0, progress=False)
    call = recorded[-1]
    assert random_mask.mask != mask and call["mask"] == random_mask.mask
    assert {n: int(t.sum()) for n, t in random_mask.mask.items()} == {n: int(t.sum()) for n, t in mask.items()}
    for name, keep in random_mask.mask.items():  # the ticket's own rewound weights under the random mask
        assert torch.equal(call["before"][name], ticket.rewind_state[name] * keep)
    with pytest.raises(ValueError, match="control"):
        imp.train_control(exp, imp_cfg, tiny_data, ticket, 1, "shuffle", seed=0)


def test_other_controls() -> None:
    model = bn_net()
    mask = Mask({"4.weight": torch.arange(192).reshape(3, 64) % 3 == 0})
    init = capture(model)
    restore(model, init, mask)
    rewind.shuffle_kept_weights(model, mask, torch.Generator().manual_seed(0))
    w, keep = model[4].weight.detach(), mask["4.weight"]
    assert torch.count_nonzero(w[~keep]) == 0 and not torch.equal(w[keep], init["4.weight"][keep])
    assert torch.equal(w[keep].sort().values, init["4.weight"][keep].sort().values)  # the same values, moved
    rewind.signed_constant(model, mask, init)
    expected = torch.sign(init["4.weight"]) * init["4.weight"].std() * keep
    assert torch.equal(model[4].weight.detach(), expected)
    rewind.reinitialize(model, bn_net, seed=1, mask=mask)
    torch.manual_seed(1)
    assert torch.equal(model[4].weight.detach(), bn_net()[4].weight.detach() * keep)
    assert train_mod is not None
