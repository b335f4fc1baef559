"""Masked training: zeros stay zero (weights, gradients, optimizer state), determinism, freezing,
early stopping, NaN detection, the learning-rate schedule and the one evaluator (`evaluate_outputs`)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import synthetic_dataset
from ticketlib.studies.imp import study as imp
from ticketlib.core import train as train_mod
from ticketlib.core.data import Split
from ticketlib.core.masks import Mask, keep_pruned_at_zero, prunable_names, zero_update_keeps_zero
from ticketlib.core.train import TrainConfig, evaluate, train

STATE_KEYS = {"sgd": ["momentum_buffer"], "adam": ["exp_avg", "exp_avg_sq"], "adamw": ["exp_avg", "exp_avg_sq"],
              "adam_fused": ["exp_avg", "exp_avg_sq"], "adamw_fused": ["exp_avg", "exp_avg_sq"]}


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4))


def half_mask(model: nn.Module, seed: int = 0) -> Mask:
    gen = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    return Mask({n: torch.rand(params[n].shape, generator=gen) < 0.5 for n in prunable_names(model)})


def make_opt(kind: str, model: nn.Module) -> torch.optim.Optimizer:
    if kind == "sgd":
        return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    fused = {"fused": True} if kind.endswith("_fused") else {}  # what train.make_optimizer uses
    if kind.startswith("adamw"):
        return torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-1, **fused)
    return torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-2, **fused)


def assert_pruned_zero(model: nn.Module, mask: Mask, optimizer: torch.optim.Optimizer | None, kind: str,
                       grads: bool = True) -> None:
    params = dict(model.named_parameters())
    for name, keep in mask.items():
        p = params[name]
        assert torch.count_nonzero(p.detach()[~keep]) == 0, f"{name}: pruned weight moved"
        if grads and p.grad is not None:
            assert torch.count_nonzero(p.grad[~keep]) == 0, f"{name}: pruned gradient"
        if optimizer is not None:
            state = optimizer.state[p]
            for key in STATE_KEYS[kind]:
                assert key in state, f"{name}: no {key} in optimizer state"
                assert torch.count_nonzero(state[key][~keep]) == 0, f"{name}: {key} non-zero where pruned"
                assert torch.count_nonzero(state[key][keep]) > 0  # the state is real, not trivially zero


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw", "adam_fused", "adamw_fused"])
def test_keep_pruned_at_zero_weights_grads_and_state(kind: str) -> None:
    model = mlp()
    mask = half_mask(model)
    optimizer = make_opt(kind, model)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 1, 4, 4, generator=gen), torch.randint(0, 4, (32,), generator=gen)
    # two dense steps first: the optimizer state is non-zero everywhere when the mask arrives
    for _ in range(2):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    handle = keep_pruned_at_zero(mask, model, optimizer)
    assert not handle.post_step  # torch's own optimizers: zeroed gradients and state alone keep the zeros
    assert_pruned_zero(model, mask, optimizer, kind, grads=False)  # weights and state zeroed at attach time
    for _ in range(5):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        assert_pruned_zero(model, mask, optimizer, kind)
    params = dict(model.named_parameters())
    assert all(not torch.equal(params[n][mask[n]], before[n][mask[n]]) for n in mask)  # kept weights trained
    handle.remove()
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    assert any(torch.count_nonzero(params[n].detach()[~mask[n]]) > 0 for n in mask)  # removed: no more masking


class DriftingSGD(torch.optim.SGD):
    """An SGD whose step also moves every weight: a zero gradient no longer means no update."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(0.01)
        return loss


def test_optimizers_not_known_to_keep_zeros_get_the_post_step_multiply() -> None:
    params = [nn.Parameter(torch.zeros(3))]
    assert zero_update_keeps_zero(torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True))
    assert zero_update_keeps_zero(torch.optim.AdamW(params, lr=0.1, fused=True))
    assert not zero_update_keeps_zero(torch.optim.Adam(params, lr=0.1, eps=0.0))  # 0 / (0 + 0) is NaN
    assert not zero_update_keeps_zero(torch.optim.RMSprop(params, lr=0.1))  # not checked: multiply anyway
    assert not zero_update_keeps_zero(DriftingSGD(params, lr=0.1))  # a subclass may change step()

    model = mlp()
    mask = half_mask(model)
    optimizer = DriftingSGD(model.parameters(), lr=0.1)
    handle = keep_pruned_at_zero(mask, model, optimizer)
    assert handle.post_step
    x, y = torch.randn(8, 1, 4, 4), torch.randint(0, 4, (8,))
    for _ in range(3):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        assert_pruned_zero(model, mask, None, "sgd")
    handle.remove()
    optimizer.step()
    assert all(torch.count_nonzero(p.detach()[~mask[n]]) > 0 for n, p in model.named_parameters() if n in mask)


def same_history(a: list[dict], b: list[dict]) -> bool:
    """Equal histories (the first row's train_loss is NaN, which never equals itself)."""
    plain = lambda rows: [{k: (None if v != v else v) for k, v in row.items()} for row in rows]  # noqa: E731
    return plain(a) == plain(b)


@pytest.fixture
def capture_optimizer(monkeypatch):
    """Record every optimizer that train() creates."""
    made = []

    def make(model, cfg):
        optimizer = original(model, cfg)
        made.append(optimizer)
        return optimizer

    original = train_mod.make_optimizer
    monkeypatch.setattr(train_mod, "make_optimizer", make)
    return made


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_train_keeps_pruned_at_zero(kind: str, tiny_data, capture_optimizer) -> None:
    model = mlp()
    mask = half_mask(model)
    cfg = TrainConfig(optimizer=kind, lr=0.05 if kind == "sgd" else 1e-2, batch_size=20, duration="30it",
                      eval_every="10it", weight_decay=1e-2, momentum=0.9)
    seen = []
    result = train(model, tiny_data, cfg, mask=mask, seed=0, progress=False,
                   on_eval=lambda it, m: (seen.append(it), assert_pruned_zero(m, mask, None, kind)))
    assert seen == [0, 10, 20, 30] and result.iterations == 30
    assert_pruned_zero(model, mask, capture_optimizer[-1], kind)
    assert not capture_optimizer[-1]._optimizer_step_pre_hooks  # the masking hooks were removed


def test_same_seed_same_weights(tiny_data) -> None:
    cfg = TrainConfig(lr=1e-2, batch_size=20, duration="25it", eval_every="10it")

    def run(seed: int) -> tuple[nn.Module, train_mod.TrainResult]:
        model = mlp(seed)
        return model, train(model, tiny_data, cfg, mask=half_mask(model), seed=seed, progress=False)

    (a, ra), (b, rb), (c, _) = run(3), run(3), run(4)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert same_history(ra.history, rb.history)
    assert not all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), c.state_dict().values()))


def test_same_seed_same_imp_masks(tiny_data) -> None:
    exp = imp.Experiment(model="lenet_300_100", dataset="synthetic", device="cpu",
                         train=TrainConfig(lr=1e-2, batch_size=20, duration="20it", eval_every="10it"))
    cfg = imp.IMPConfig(rounds=2, fraction=0.5, overrides={"output": 0.25})
    one, two = (imp.find_ticket(exp, cfg, tiny_data, seed=1, progress=False) for _ in range(2))
    other = imp.find_ticket(exp, cfg, tiny_data, seed=2, progress=False)
    assert [r.mask for r in one.rounds] == [r.mask for r in two.rounds]
    assert all(same_history(a.history, b.history) for a, b in zip(one.rounds, two.rounds))
    assert one.rounds[2].mask != other.rounds[2].mask


def test_trainable_freezes_bit_exactly(tiny_data) -> None:
    model = mlp()
    frozen = half_mask(model, seed=5)  # True = trainable
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-2, batch_size=20,
                      duration="20it", eval_every="10it")
    train(model, tiny_data, cfg, trainable=frozen, progress=False)
    params = dict(model.named_parameters())
    for name, keep in frozen.items():
        assert torch.equal(params[name][~keep], before[name][~keep])
        assert (params[name][keep] != before[name][keep]).float().mean() > 0.9


def test_early_stop_is_argmin_validation_loss(capture_optimizer) -> None:
    data = synthetic_dataset(n_train=60)  # a small training set: validation loss falls, then rises
    model = mlp()
    checks = []

    def on_eval(iteration, m):
        checks.append((iteration, *evaluate(m, data.val), evaluate(m, data.test)[1]))

    cfg = TrainConfig(lr=5e-3, batch_size=20, duration="150it", eval_every="10it")
    result = train(model, data, cfg, seed=0, progress=False, on_eval=on_eval)
    losses = [row["val_loss"] for row in result.history]
    best = min(range(len(losses)), key=lambda i: losses[i])
    assert result.early_stop_iteration == result.history[best]["iteration"] == checks[best][0]
    assert 0 < result.early_stop_iteration < 150  # the test would be vacuous at either end
    assert result.test_accuracy != result.final_test_accuracy
    assert result.min_val_loss == min(losses)
    assert result.test_accuracy == checks[best][3] and result.final_test_accuracy == checks[-1][3]
    assert [row["val_loss"] for row in result.history] == [c[1] for c in checks]


def test_nan_raises(tiny_data) -> None:
    cfg = TrainConfig(optimizer="sgd", lr=1e30, batch_size=20, duration="20it", eval_every="5it")
    with pytest.raises(FloatingPointError):
        train(mlp(), tiny_data, cfg, progress=False)
    cfg = TrainConfig(lr=1e-3, batch_size=20, duration="20it", eval_every="5it")
    with pytest.raises(FloatingPointError):
        train(mlp(), tiny_data, cfg, progress=False, extra_loss=lambda m: torch.tensor(float("nan")))


def test_schedule_milestones_and_warmup() -> None:
    cfg = TrainConfig(optimizer="sgd", lr=0.1, batch_size=10, milestones=["2ep", "45it"], gamma=0.5,
                      warmup="4it")
    lr = cfg.schedule(100)  # 10 iterations per epoch: drops at 20 and 45
    assert [lr(i) for i in range(5)] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])
    assert lr(19) == pytest.approx(0.1) and lr(20) == pytest.approx(0.05) and lr(44) == pytest.approx(0.05)
    assert lr(45) == pytest.approx(0.025) and cfg.lr_at(1000, 100) == pytest.approx(0.025)
    assert cfg.iterations_per_epoch(101) == 11 and TrainConfig(duration="3ep", batch_size=10).iterations(100) == 30


def test_train_applies_the_schedule_from_start_iteration(tiny_data, capture_optimizer) -> None:
    cfg = TrainConfig(optimizer="sgd", lr=0.1, batch_size=20, duration="40it", eval_every="1it",
                      milestones=["2ep"], warmup="3it", gamma=0.1)  # 12 iterations per epoch
    lrs = {}
    for start in (0, 23):
        seen = lrs.setdefault(start, {})
        train(mlp(), tiny_data, cfg, start_iteration=start, progress=False,
              on_eval=lambda it, m, seen=seen: seen.update({it: capture_optimizer[-1].param_groups[0]["lr"]}))
    expected = cfg.schedule(len(tiny_data.train))
    for start, seen in lrs.items():
        for done, value in seen.items():
            if done > start:
                assert value == pytest.approx(expected(done - 1)), (start, done)
    assert lrs[0][1] == pytest.approx(0.1 / 3) and lrs[0][24] == pytest.approx(0.1) and lrs[0][25] == pytest.approx(0.01)
    assert min(lrs[23]) == 23 and lrs[23][24] == pytest.approx(0.1) and lrs[23][25] == pytest.approx(0.01)


def test_train_config_errors() -> None:
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError):
        TrainConfig(duration="10 epochs")
    with pytest.raises(ValueError):
        TrainConfig(lr=0)


def test_find_ticket_rejects_a_rewind_step_outside_training(tiny_data) -> None:
    exp = imp.Experiment(model="lenet_300_100", dataset="synthetic", device="cpu",
                         train=TrainConfig(lr=1e-2, batch_size=20, duration="20it", eval_every="10it"))
    with pytest.raises(ValueError, match="rewind step '20it'.*not inside training"):
        imp.find_ticket(exp, imp.IMPConfig(rounds=1, rewind="20it"), tiny_data, seed=0, progress=False)


def test_hooks_come_off_when_a_step_raises(tiny_data, monkeypatch) -> None:
    removed = []

    class Handle:
        def __init__(self, what: str) -> None:
            self.what = what

        def remove(self) -> None:
            removed.append(self.what)

    monkeypatch.setattr(train_mod, "keep_pruned_at_zero", lambda mask, model, optimizer: Handle("keeper"))
    monkeypatch.setattr(train_mod, "_Freezer", lambda trainable, model, optimizer: Handle("freezer"))
    model = mlp()
    cfg = TrainConfig(optimizer="sgd", lr=0.1, batch_size=20, duration="20it", eval_every="10it")

    def failing(m: nn.Module) -> torch.Tensor:
        raise RuntimeError("a step failed")

    with pytest.raises(RuntimeError, match="a step failed"):
        train(model, tiny_data, cfg, mask=half_mask(model), trainable=half_mask(model, 1), progress=False,
              extra_loss=failing)
    assert sorted(removed) == ["freezer", "keeper"]


# --- the one evaluator ------------------------------------------------------------------------------------
def test_evaluate_outputs_weights_batches_by_example_count() -> None:
    """Batch 1: one example, p(target) = 3/4, right; batch 2: three examples, p(target) = 1/4 each, wrong.
    Weighted by examples: loss (ln 4/3 + 3 ln 4) / 4 and accuracy 1/4 (not the mean of the batch means)."""
    ln3 = math.log(3.0)
    outputs = [(torch.tensor([[0.0, ln3]]), torch.tensor([1])),
               (torch.tensor([[ln3, 0.0]] * 3), torch.tensor([1, 1, 1]))]
    loss, accuracy = train_mod.evaluate_outputs(nn.Linear(2, 2), iter(outputs))
    assert loss == pytest.approx((math.log(4 / 3) + 3 * math.log(4)) / 4, rel=1e-6, abs=0)
    assert accuracy == 0.25


def test_evaluate_outputs_runs_in_eval_mode_without_grad_and_restores_each_modules_mode() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))
    model.train()
    model[2].eval()  # mixed: one submodule in eval mode, the others in train mode
    before = [m.training for m in model.modules()]
    seen = []

    def outputs():
        for _ in range(2):
            seen.append(([m.training for m in model.modules()], torch.is_grad_enabled()))
            yield model(torch.randn(3, 4)), torch.tensor([0, 1, 2])

    train_mod.evaluate_outputs(model, outputs())
    assert seen == [([False] * 4, False)] * 2
    assert [m.training for m in model.modules()] == before == [True, True, True, False]

    def failing():
        yield model(torch.randn(3, 4)), torch.tensor([0, 1, 2])
        raise RuntimeError("a batch failed")

    with pytest.raises(RuntimeError, match="a batch failed"):
        train_mod.evaluate_outputs(model, failing())
    assert [m.training for m in model.modules()] == before


def test_evaluate_outputs_refuses_an_empty_split() -> None:
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="no examples"):
        train_mod.evaluate_outputs(model, iter([]))
    with pytest.raises(ValueError, match="no examples"):
        train_mod.evaluate_outputs(model, iter([(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long))]))
    with pytest.raises(ValueError, match="no examples"):
        evaluate(nn.Sequential(nn.Flatten(), model), Split(torch.zeros(0, 1, 1, 2), torch.zeros(0, dtype=torch.long)))


def test_model_device_is_the_first_parameters_or_buffers_else_the_cpu() -> None:
    assert train_mod.model_device(nn.ReLU()) == torch.device("cpu")
    assert train_mod.model_device(nn.Linear(2, 2, device="meta")) == torch.device("meta")
    buffers_only = nn.Module()
    buffers_only.register_buffer("weight", torch.zeros(2, device="meta"))
    assert train_mod.model_device(buffers_only) == torch.device("meta")
