"""The early-bird driver on a tiny synthetic problem: detection, both pipelines, cost accounting, caching."""
import pytest
import torch

from ticketlib.core import data as data_lib
from ticketlib.core import distance
from ticketlib.studies.early_tickets import study as earlybird
from ticketlib.core import slim
from ticketlib.infra.cache import Cache
from ticketlib.studies.imp.study import Experiment
from ticketlib.core.train import TrainConfig


def _data(n: int = 200) -> data_lib.Dataset:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (n + 100,), generator=g)
    x = torch.randn(n + 100, 1, 8, 8, generator=g) + y.view(-1, 1, 1, 1).float()
    split = lambda a, b: data_lib.Split(x[a:b], y[a:b])  # noqa: E731
    return data_lib.Dataset("toy", split(0, n), split(n, n + 50), split(n + 50, n + 100), 3, (1, 8, 8))


def _exp(epochs: int = 6, eval_every: str = "1ep") -> Experiment:
    cfg = TrainConfig(optimizer="sgd", lr=0.05, batch_size=50, duration=f"{epochs}ep", eval_every=eval_every,
                      milestones=["4ep"])
    return Experiment(model="vgg11", dataset="toy", train=cfg, model_kwargs={"width": 0.0625}, device="cpu")


def test_search_draws_one_mask_per_epoch_and_detects_like_the_detector(tmp_path):
    data, exp = _data(), _exp()
    eb = earlybird.EarlyBirdConfig(ratios=[0.3, 0.5], epsilon=0.2, window=3)
    cache = Cache(tmp_path)
    found = earlybird.search(exp, eb, data, seed=0, cache=cache, progress=False)
    assert found["epochs"] == list(range(7))
    assert len(found["seconds"]) == 7 and found["seconds"] == sorted(found["seconds"])
    for r in eb.ratios:
        assert len(found["masks"][r]) == 7
        replay = distance.EarlyBird(eb.epsilon, eb.window)
        fired = [e for e, m in zip(found["epochs"], found["masks"][r]) if replay.push(m) and e < 6]
        assert found["detected"][r] == (fired[0] if fired else None)
        assert found["distances"][r] == distance.consecutive_distances(found["masks"][r])
        assert earlybird.distance_matrices(found)[r].shape == (7, 7)
    # the final mask is drawn from the final weights
    model = exp.build_model(data, 0)
    model.load_state_dict(found["final_state"])
    assert slim.channel_mask(model, 0.5) == found["masks"][0.5][-1]
    again = earlybird.search(exp, eb, data, seed=0, cache=cache, progress=False)
    assert cache.hits == 1 and again["detected"] == found["detected"]


def test_search_requires_per_epoch_evaluation():
    with pytest.raises(ValueError, match="1ep"):
        earlybird.search(_exp(eval_every="2it"), earlybird.EarlyBirdConfig(), _data(), seed=0, progress=False)


def test_pipelines_and_their_cost_accounting():
    data, exp = _data(), _exp()
    eb = earlybird.EarlyBirdConfig(ratios=[0.5], epsilon=1.0, window=3)  # fires as soon as 3 masks are in
    retrain = TrainConfig(optimizer="sgd", lr=0.05, batch_size=50, duration="3ep", eval_every="1ep")
    found, early, standard, rows = earlybird.search_and_retrain(exp, eb, data, retrain, seed=0, progress=False)
    assert found["detected"][0.5] == 2
    ipe = exp.train.iterations_per_epoch(len(data.train))
    assert early[0.5]["result"]["iterations"] == (6 - 2) * ipe  # continued to the end of the schedule
    assert standard[0.5]["result"]["iterations"] == 3 * ipe
    row = rows[0]
    n, f_dense, f_small = len(data.train), found["flops"], early[0.5]["flops"]
    assert f_small < f_dense
    assert row["dense_flops"] == 3 * f_dense * n * 6
    assert row["early_flops"] == 3 * f_dense * n * 2 + 3 * f_small * n * 4
    assert row["standard_flops"] == 3 * f_dense * n * 6 + 3 * standard[0.5]["flops"] * n * 3
    assert row["early_seconds"] == pytest.approx(found["seconds"][2] + early[0.5]["result"]["seconds"])
    assert row["standard_seconds"] == pytest.approx(found["seconds"][-1] + standard[0.5]["result"]["seconds"])
    assert 0 <= row["early_accuracy"] <= 1 and 0 <= row["standard_accuracy"] <= 1


def test_no_detection_gives_no_early_ticket():
    data, exp = _data(), _exp(epochs=2)
    # 3 checks (before epochs 0, 1, 2): the window of 3 is full only at the check after the last epoch,
    # which precedes no training and so is no detection
    eb = earlybird.EarlyBirdConfig(ratios=[0.5], epsilon=1.0, window=3)
    retrain = TrainConfig(optimizer="sgd", lr=0.05, batch_size=50, duration="1ep", eval_every="1ep")
    found, early, _, rows = earlybird.search_and_retrain(exp, eb, data, retrain, seed=0, progress=False)
    assert found["detected"][0.5] is None and early[0.5] is None
    assert rows[0]["early_accuracy"] != rows[0]["early_accuracy"]  # NaN


def test_preresnet_masks_cover_only_the_bottleneck_insides_and_both_pipelines_slim_it():
    data = _data()
    cfg = TrainConfig(optimizer="sgd", lr=0.05, batch_size=50, duration="3ep", eval_every="1ep")
    exp = Experiment(model="preresnet", dataset="toy", train=cfg, model_kwargs={"depth": 11, "width": 0.25},
                     device="cpu")
    eb = earlybird.EarlyBirdConfig(ratios=[0.5], epsilon=1.0, window=2)  # fires at the second check
    retrain = TrainConfig(optimizer="sgd", lr=0.05, batch_size=50, duration="1ep", eval_every="1ep")
    found, early, standard, _ = earlybird.search_and_retrain(exp, eb, data, retrain, seed=0, progress=False)
    model = exp.build_model(data, 0)
    names = slim.slimmable_bn_names(model)
    assert len(names) == 6 and all(n.endswith((".bn2.weight", ".bn3.weight")) for n in names)
    assert all(list(m) == names for m in found["masks"][0.5])
    model.load_state_dict(found["final_state"])
    assert earlybird.ticket_mask(model, 0.5) == found["masks"][0.5][-1]
    assert found["detected"][0.5] == 1
    kept = [int(k.sum()) for k in found["masks"][0.5][1].values()]
    assert early[0.5]["widths"] == kept and early[0.5]["flops"] < found["flops"]
    assert standard[0.5]["params"] < slim.num_params(model)


def test_examples_seen_counts_whole_epochs_then_batches():
    cfg = TrainConfig(batch_size=60)
    assert earlybird.examples_seen(0, cfg, 1000) == 0
    assert earlybird.examples_seen(17, cfg, 1000) == 1000  # 17 iterations per epoch (last batch 40)
    assert earlybird.examples_seen(19, cfg, 1000) == 1120


def test_imp_round_distances_hand_counted():
    from ticketlib.studies.imp.study import Round, Ticket
    from ticketlib.core.masks import Mask

    def t(*v):
        return torch.tensor(v, dtype=torch.float32)

    def m(w, v):
        return Mask({"w": torch.tensor(w, dtype=torch.bool), "v": torch.tensor(v, dtype=torch.bool)})

    rounds = [Round(0, m([1, 1, 1, 1], [1, 1, 1, 1]), {}, [], {"w": t(4, 3, 2, 1), "v": t(0.5, 5, -6, 0.1)}),
              Round(1, m([1, 1, 1, 0], [0, 1, 1, 0]), {}, [], {"w": t(1, -3, 2, 0), "v": t(0, 5, 0.2, 0)}),
              Round(2, m([1, 1, 0, 0], [0, 1, 0, 0]), {}, [], {"w": t(1, 3, 0, 0), "v": t(0, 5, 0, 0)})]
    rows = earlybird.imp_round_distances(Ticket(rounds, {}, {}, 0))
    assert [r["round"] for r in rows] == [0, 1, 2]
    assert [r["distance"] for r in rows[1:]] == [3 / 8, 2 / 8]  # the nested masks: what each round pruned
    # at density 3/8: F0 = w0, v1, v2; F1 = w1, w2, v1; F2 = w0, w1, v1
    assert [r["fixed_distance"] for r in rows[1:]] == [4 / 8, 2 / 8]
    assert [r["fixed_to_final"] for r in rows] == [2 / 8, 2 / 8, 0.0]
    assert rows[0]["distance"] != rows[0]["distance"]  # NaN: no previous round


def test_pipelines_only_at_searched_ratios() -> None:
    eb = earlybird.EarlyBirdConfig(ratios=[0.3, 0.5])
    with pytest.raises(ValueError, match=r"pipeline ratios \[0.9\]"):
        earlybird.search_and_retrain(None, eb, None, None, seed=0, pipeline_ratios=[0.9])  # refused before training


def test_movement_by_phase_hand_computed_means() -> None:
    distances = {0.5: [0.5, 0.25, 0.125, 0.375, 0.0, 0.5], 0.3: [1.0, 0.0, 0.5, 0.25, 0.25, 1.0]}
    first_drop, phase = earlybird.movement_by_phase(distances, ["5ep", "3ep"], epochs=6)
    assert first_drop == 3  # the earliest milestone
    assert list(phase) == [0.5, 0.3]
    # before the drop: d into epochs 2..3 (indices 1, 2; the move 0 -> 1 left out); after: epochs 4..6
    assert phase[0.5] == {"high_lr": (0.25 + 0.125) / 2, "after_first_drop": (0.375 + 0.0 + 0.5) / 3}
    assert phase[0.3] == {"high_lr": 0.25, "after_first_drop": 0.5}
    first_drop, phase = earlybird.movement_by_phase(distances, [], epochs=6)  # no drop: all of it is high-LR
    assert first_drop == 6 and phase[0.5]["high_lr"] == (0.25 + 0.125 + 0.375 + 0.0 + 0.5) / 5
    assert phase[0.5]["after_first_drop"] != phase[0.5]["after_first_drop"]  # NaN: no epoch after
    first_drop, phase = earlybird.movement_by_phase(distances, ["1ep"], epochs=6)
    assert first_drop == 1 and phase[0.3]["high_lr"] != phase[0.3]["high_lr"]  # NaN: no epoch before
    assert phase[0.3]["after_first_drop"] == (0.0 + 0.5 + 0.25 + 0.25 + 1.0) / 5


def test_latency_networks_slim_by_the_detection_epochs_mask_else_the_final_one() -> None:
    from ticketlib.core.masks import Mask

    data, exp = _data(), _exp()
    trained = exp.build_model(data, 3)
    state = {k: v.clone() for k, v in trained.state_dict().items()}
    names = slim.slimmable_bn_names(trained)
    g = torch.Generator().manual_seed(1)
    for n in names:  # distinct |γ|, so the final mask is well defined
        state[n] = torch.rand(state[n].shape, generator=g) + 0.1
    one_each = Mask({n: torch.arange(len(state[n])) == 0 for n in names})  # one channel per layer
    everything = Mask({n: torch.ones(len(state[n]), dtype=torch.bool) for n in names})
    found = {"final_state": state, "epochs": [0, 1, 2], "detected": {0.5: 1, 0.3: None},
             "masks": {0.5: [everything, one_each, everything], 0.3: [everything] * 3}}
    dense, small = earlybird.latency_networks(exp, data, found, 0.5, seed=0)
    assert all(torch.equal(v, state[k]) for k, v in dense.state_dict().items())  # the fully trained network
    assert slim.width_plan(small) == [1] * len(names)  # the mask drawn at the detection epoch
    assert slim.width_plan(dense) == [len(state[n]) for n in names]  # the dense one is not narrowed
    for ratio in (0.3, 0.7):  # not detected, and not searched: the final network's own mask
        dense, small = earlybird.latency_networks(exp, data, found, ratio, seed=0)
        final = earlybird.ticket_mask(dense, ratio)
        assert slim.width_plan(small) == [int(k.sum()) for k in final.values()]
        assert slim.width_plan(small) != slim.width_plan(dense)


def test_size_table_counts_params_flops_and_median_latency() -> None:
    networks = {"dense": torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)),
                "pruned": torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))}
    samples = {"dense": [0.004, 0.001, 0.002], "pruned": [0.003, 0.001, 0.005, 0.002]}
    table = earlybird.size_table(networks, (1, 2, 2), samples, batch=64)
    assert list(table.index) == ["dense", "pruned"]
    assert list(table.columns) == ["parameters", "forward MFLOP / image", "latency ms / batch of 64"]
    assert table["parameters"].tolist() == [15, 10]
    assert table["forward MFLOP / image"].tolist() == [(2 * 4 * 3 + 3) / 1e6, (2 * 4 * 2 + 2) / 1e6]
    assert table["latency ms / batch of 64"].tolist() == pytest.approx([2.0, 2.5])  # medians, in ms
