"""Instability analysis: the path between two states, the error barrier, the copies as cached units, reuse of
01's IMP rounds as first copies, the prefix rewind state, and 07's claims and params checks."""

import pytest
import torch
from torch import nn

from ticketlib import studies
from ticketlib.runner import config
from ticketlib.core import experiment
from ticketlib.studies.imp import study as imp
from ticketlib.studies.stability import study as stability
from ticketlib.studies.stability import claims as sc
from ticketlib.infra.cache import Cache, unit_key
from ticketlib.core.data import Split
from ticketlib.core.masks import Mask
from ticketlib.core.train import TrainConfig, train


def bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))


def perturbed(model: nn.Module, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {k: (v + torch.randn(v.shape, generator=gen) if v.is_floating_point() else v + seed)
            for k, v in model.state_dict().items()}


def test_alpha_zero_and_one_reproduce_the_endpoints_exactly() -> None:
    net = bn_net()
    a, b = perturbed(net, 1), perturbed(net, 2)
    for alpha, end in [(0.0, a), (1.0, b)]:
        path = stability.interpolate(a, b, alpha)
        assert all(torch.equal(path[k], end[k]) for k in a if a[k].is_floating_point())
    assert torch.equal(stability.interpolate(a, b, 1.0)["1.num_batches_tracked"], a["1.num_batches_tracked"])
    middle = stability.interpolate(a, b, 0.5)
    assert torch.allclose(middle["0.weight"], (a["0.weight"] + b["0.weight"]) / 2)
    with pytest.raises(ValueError):
        stability.interpolate(a, b, 1.5)


def test_masked_entries_stay_zero_along_the_path() -> None:
    net = bn_net()
    mask = Mask({"0.weight": torch.rand(4, 1, 3, 3, generator=torch.Generator().manual_seed(0)) > 0.5,
                 "4.weight": torch.rand(3, 64, generator=torch.Generator().manual_seed(1)) > 0.5})
    a, b = perturbed(net, 1), perturbed(net, 2)  # non-zero where the mask prunes: the path must zero them
    for alpha in [0.0, 0.25, 0.5, 1.0]:
        path = stability.interpolate(a, b, alpha, mask)
        for name, keep in mask.items():
            assert torch.all(path[name][~keep] == 0) and torch.all(path[name][keep] != 0)


def test_two_identical_copies_have_zero_barrier(tiny_data) -> None:
    model = experiment.Experiment("lenet_300_100", "synthetic", TrainConfig()).build_model(tiny_data, 0)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    curve = stability.error_barrier(model, state, state, tiny_data.test, points=7)
    assert curve.barrier == 0.0 and len(set(curve.errors)) == 1 and curve.alphas[0] == 0 and curve.alphas[-1] == 1


def permuted_pair() -> tuple[nn.Module, dict, dict, Split]:
    """Two ReLU nets computing the same correct function with their two hidden units swapped: every point of
    the path is correct except α = 1/2, where both hidden units vanish and every input is called class 0."""
    net = nn.Sequential(nn.Linear(1, 2, bias=False), nn.ReLU(), nn.Linear(2, 2, bias=False))
    a = {"0.weight": torch.tensor([[1.0], [-1.0]]), "2.weight": torch.eye(2)}
    b = {"0.weight": torch.tensor([[-1.0], [1.0]]), "2.weight": torch.tensor([[0.0, 1.0], [1.0, 0.0]])}
    return net, a, b, Split(torch.tensor([[-2.0], [-1.0], [1.0], [2.0]]), torch.tensor([1, 1, 0, 0]))


def test_a_hand_built_pair_with_a_known_bump_has_a_known_barrier() -> None:
    net, a, b, split = permuted_pair()
    assert stability.error_barrier(net, a, b, split, points=5).errors == [0.0, 0.0, 50.0, 0.0, 0.0]
    assert stability.error_barrier(net, a, b, split, points=3).barrier == 50.0
    assert stability.error_barrier(net, a, b, split, points=4).barrier == 0.0  # the bump lies between the points
    assert stability.barrier_of([2.0, 5.0, 4.0]) == 2.0  # highest minus the ends' mean
    assert stability.barrier_of([1.0, 0.5, 3.0]) == 1.0  # the highest may be an end


def test_recomputed_bn_statistics_are_the_data_s() -> None:
    net = bn_net()
    x = torch.randn(32, 1, 6, 6, generator=torch.Generator().manual_seed(3))
    stability.recompute_bn(net, x, batch_size=32, batches=1)
    features = net[0](x)
    assert torch.allclose(net[1].running_mean, features.mean((0, 2, 3)), atol=1e-6)
    assert net[1].momentum == 0.1 and not net.training
    a = perturbed(net, 1)
    split = Split(x, torch.zeros(32, dtype=torch.long))
    with pytest.raises(ValueError, match="bn_data"):
        stability.error_barrier(net, a, a, split, bn="recompute")
    curve = stability.error_barrier(net, a, a, split, points=3, bn="recompute", bn_data=x, bn_batch_size=16)
    assert curve.bn == "recompute" and curve.barrier == 0.0


def tiny_experiment(duration: str = "40it") -> experiment.Experiment:
    return experiment.Experiment("lenet_300_100", "synthetic", TrainConfig(batch_size=20, duration=duration,
                                                                         eval_every="20it"))


def test_instability_trains_two_cached_copies_with_different_orders(tiny_data, tmp_path) -> None:
    exp, cache = tiny_experiment(), Cache(tmp_path)
    model = exp.build_model(tiny_data, 0)
    mask, start = Mask.ones_like(model), {k: v.clone() for k, v in model.state_dict().items()}
    first = stability.instability(exp, tiny_data, mask, start, 0, seed=0, cache=cache, points=5)
    assert (cache.misses, cache.hits) == (2, 0)
    a, b = first.copies
    assert (a.order_seed, b.order_seed) == (0, stability.ORDER_SEED_OFFSET)
    assert not torch.equal(a.state["fc1.weight"], b.state["fc1.weight"])  # different SGD noise
    again = stability.instability(exp, tiny_data, mask, start, 0, seed=0, cache=cache, points=5)
    assert cache.hits == 2 and again.curve == first.curve and first.barrier >= 0


def test_the_prefix_rewind_state_is_the_full_run_s_state_there(tiny_data) -> None:
    exp = tiny_experiment("60it")
    model = exp.build_model(tiny_data, 3)
    full = train(model, tiny_data, exp.train, seed=3, capture_at=25, progress=False)
    prefix = stability.rewind_state(exp, tiny_data, 3, 25)
    assert all(torch.equal(prefix[k], full.captured_state[k]) for k in prefix)
    init = stability.rewind_state(exp, tiny_data, 3, 0)
    assert torch.equal(init["fc1.weight"], exp.build_model(tiny_data, 3).state_dict()["fc1.weight"])


def test_lenet_cases_reuse_01_s_rounds_as_first_copies(tiny_data, tmp_path) -> None:
    exp, cache = tiny_experiment(), Cache(tmp_path)
    imp_cfg = imp.IMPConfig(rounds=2, fraction=0.5, overrides={"output": 0.25})
    tickets, _ = imp.imp_study(exp, imp_cfg, tiny_data, seeds=[0], control_levels=[25.0], controls=("random_mask",),
                               cache=cache, progress=False)
    trained = cache.misses
    for kind, level in [("dense", 100.0), ("ticket", 25.0), ("random_mask", 25.0)]:
        before = (cache.hits, cache.misses)
        row = stability.lenet_case(exp, tiny_data, cache, False, imp_cfg, 0, kind, level, points=3)
        assert cache.misses - before[1] == 1, f"{kind}: only the second copy trains"
        assert row["kind"] == kind and row["k"] == 0 and len(row["errors"]) == 3
    assert cache.misses == trained + 3
    # 01's round is exactly the first copy 07 would train: same start, mask, order and recipe
    round_ = tickets[0].rounds[2]
    own = stability.train_copy(exp, tiny_data, round_.mask, tickets[0].rewind_state, 0, 0, Cache(None))
    assert all(torch.equal(own.state[k], round_.final_state[k]) for k in own.state)


def test_07_builds_01_s_cpu_unit_keys() -> None:
    _, p = config.resolve("params/cpu/01_imp.yaml")
    exp, cfg = imp.imp_setup(p)
    # as notebooks/01_imp.ipynb builds them from its parameters cell
    exp01 = experiment.from_params(p)
    cfg01 = imp.IMPConfig(rounds=p["rounds"], fraction=p["prune_fraction"], scope=p["scope"],
                          overrides=dict(p["layer_fractions"]), rewind=p["rewind"])
    for seed in p["seeds"]:
        assert unit_key("imp_round", experiment=exp, imp=cfg, seed=seed, names=None) == \
            unit_key("imp_round", experiment=exp01, imp=cfg01, seed=seed, names=None)
    assert exp.train.duration == "10000it" and cfg.overrides == {"output": 0.1}


def test_cnn_experiment_reads_the_cnn_keys() -> None:
    exp = stability.cnn_experiment({"cnn_model": "vgg11", "cnn_dataset": "mnist", "cnn_model_kwargs": {"width": 0.1},
                                    "cnn_optimizer": "sgd", "cnn_lr": 0.1, "cnn_duration": "50it", "cnn_pad_to": 32,
                                    "cnn_milestones": ["20it"], "device": "cpu", "model": "lenet_300_100"})
    assert (exp.model, exp.dataset, exp.pad_to, exp.device) == ("vgg11", "mnist", 32, "cpu")
    assert (exp.train.optimizer, exp.train.duration, exp.train.milestones) == ("sgd", "50it", ["20it"])


def rows(lenet_barriers: dict, cnn_barriers: dict, seeds=(0, 1, 2)) -> list[dict]:
    """Synthetic Case rows: {kind or (kind, k): barrier}; accuracies: dense 98 ± seed noise, stable cases match."""
    out = []
    for network, table in [("lenet", lenet_barriers), ("cnn", cnn_barriers)]:
        for key, barrier in table.items():
            kind, k = key if isinstance(key, tuple) else (key, 0)
            for s in seeds:
                acc = 98.0 + 0.1 * s - (0 if barrier < 2 or kind == "dense" else 3.0)
                out.append({"network": network, "kind": kind, "k": k, "seed": s, "barrier": barrier + 0.01 * s,
                            "percent": {"dense": 100.0, "ticket": 3.5, "random_mask": 3.5, "subnetwork": 20.0}[kind],
                            "test_accuracy": acc, "final_test_accuracy": acc})
    return out


def test_stability_claims_hold_and_fail_as_the_barriers_say() -> None:
    good = rows({"dense": 0.5, "ticket": 0.8, "random_mask": 9.0},
                {("dense", 0): 12.0, ("dense", 200): 0.5, ("subnetwork", 0): 15.0, ("subnetwork", 200): 0.7})
    verdicts = {v.id: v for v in sc.stability_claims(good, 3.6, 200)}
    assert list(verdicts) == ["lenet_stable_at_init", "ticket_stable_random_not", "cnn_unstable_at_init",
                              "stability_tracks_matching"]
    assert all(v.verdict == "holds" for v in verdicts.values()), {k: v.measured for k, v in verdicts.items()}
    assert verdicts["lenet_stable_at_init"].threshold == 2.0 and len(verdicts["stability_tracks_matching"].parts) == 2
    bad = rows({"dense": 5.0, "ticket": 6.0, "random_mask": 1.0},
               {("dense", 0): 0.5, ("dense", 200): 3.0, ("subnetwork", 0): 0.5, ("subnetwork", 200): 0.6})
    for v in bad[:]:  # unstable but matching: stability no longer tracks matching
        if v["network"] == "lenet" and v["kind"] != "dense":
            v["test_accuracy"] = 98.0 + 0.1 * v["seed"]
    verdicts = {v.id: v for v in sc.stability_claims(bad, 3.6, 200)}
    assert all(v.verdict == "fails" for v in verdicts.values()), {k: v.measured for k, v in verdicts.items()}


def test_agreement_counts_cases_per_seed() -> None:
    data = rows({"dense": 0.5, "ticket": 0.5, "random_mask": 9.0}, {("dense", 0): 1.0, ("subnetwork", 0): 1.0})
    data[-1]["barrier"] = 5.0  # cnn seed 2's stable, matching subnetwork now reads unstable
    values, counts = sc.agreement(data, "cnn", "final_test_accuracy")
    assert values == {0: 1.0, 1: 1.0, 2: 0.0} and counts == {"stable": 2, "matching": 3, "agree": 2, "cases": 3}
    with pytest.raises(ValueError, match="no cnn subnetwork"):
        sc.agreement([r for r in data if r["kind"] == "dense"], "cnn", "final_test_accuracy")


def test_stability_params_that_cannot_be_judged_are_refused() -> None:
    _, good = config.resolve("params/smoke/07_stability.yaml")
    assert studies.check_params("07_stability", good) == []
    bad = dict(good, seeds=[0], rewind_points=["50it"], claim_level=7.0, imp_params="params/smoke/04_x.yaml")
    errors = studies.check_params("07_stability", bad)
    assert len(errors) == 4 and "'seeds'" in " ".join(errors) and "'imp_params'" in " ".join(errors)

