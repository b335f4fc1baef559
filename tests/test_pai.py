"""Pruning at init and layer collapse: schedules land exactly, nothing revives, collapse is detected,
the critical-compression search brackets, SynFlow reaches the maximal compression where magnitude collapses."""

import math

import pytest
import torch
from torch import nn

from ticketlib.core import collapse
from ticketlib.studies.conservation import study as pai
from ticketlib.core import pruning
from ticketlib.core.data import Dataset, Split, pad_images
from ticketlib.core.experiment import Experiment
from ticketlib.core.masks import Mask
from ticketlib.core.train import TrainConfig


def shapes_mask(shapes: dict) -> Mask:
    return Mask({n: torch.ones(s, dtype=torch.bool) for n, s in shapes.items()})


SHAPES = {"a": (30, 20), "b": (10, 30), "c": (3, 10)}


def reviving_scorer(seed: int):
    """Random scores, with the *highest* scores on weights already pruned: a scorer that would revive them."""
    gen = torch.Generator().manual_seed(seed)

    def score(mask: Mask) -> dict:
        return {n: torch.where(k, torch.rand(k.shape, generator=gen), torch.full(k.shape, 10.0))
                for n, k in mask.items()}

    return score


@pytest.mark.parametrize("kind", ["exponential", "linear"])
def test_schedule_is_monotone_and_ends_exactly_on_target(kind: str) -> None:
    steps = pai.schedule(0.001, 100, kind)
    assert len(steps) == 100 and steps[-1] == 0.001
    assert all(a > b for a, b in zip([1.0] + steps, steps))
    if kind == "exponential":  # a constant fraction per step
        ratios = [b / a for a, b in zip(steps, steps[1:])]
        assert max(ratios) - min(ratios) < 1e-9 and ratios[0] == pytest.approx(0.001 ** 0.01)
    assert pai.schedule(0.3, 1) == [0.3]


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_iterative_pruning_lands_on_exact_counts_and_never_revives(scope: str) -> None:
    dense = shapes_mask(SHAPES)
    masks = []
    scorer = reviving_scorer(0)

    def tracking(mask: Mask) -> dict:
        masks.append(mask)
        return scorer(mask)

    final = pai.prune_iteratively(tracking, dense, 0.05, iterations=7, scope=scope)
    masks.append(final)
    for before, after in zip(masks, masks[1:]):
        assert all(not bool((after[n] & ~before[n]).any()) for n in SHAPES)  # kept ⊆ previously kept
    total = sum(math.prod(s) for s in SHAPES.values())
    if scope == "global":
        assert final.num_kept() == pruning.round_count(0.05 * total)
    else:
        assert {n: int(k.sum()) for n, k in final.items()} == {
            n: pruning.round_count(0.05 * math.prod(s)) for n, s in SHAPES.items()}
    assert len(masks) == 8  # 7 scorer calls + the result


def test_stop_ends_the_schedule_early() -> None:
    calls = []
    mask = pai.prune_iteratively(lambda m: calls.append(1) or reviving_scorer(1)(m), shapes_mask(SHAPES), 1e-3,
                                 iterations=50, stop=lambda m: m.density() < 0.5)
    assert 0.3 < mask.density() < 0.5 and len(calls) < 50


def test_selection_thresholding_matches_a_stable_sort_with_ties() -> None:
    gen = torch.Generator().manual_seed(0)
    for trial in range(20):
        keep = torch.rand(500, generator=gen) > 0.3
        scores = torch.randint(0, 6, (500,), generator=gen).float()  # many ties
        count = int(torch.randint(0, int(keep.sum()) + 2, (1,), generator=gen))
        alive = keep.nonzero().squeeze(1)
        expected = keep.clone()
        expected[alive[torch.argsort(scores[alive].double(), stable=True)[:count]]] = False
        assert torch.equal(pruning._prune_lowest([keep], [scores], count)[0], expected), trial
        # the same vector cut into layers of different shapes gives the same selection
        shapes, cuts = [(10, 20), (7,), (293,)], [200, 7, 293]
        layers = pruning._prune_lowest([k.reshape(s) for k, s in zip(keep.split(cuts), shapes)],
                                       [v.reshape(s) for v, s in zip(scores.split(cuts), shapes)], count)
        assert [tuple(k.shape) for k in layers] == shapes
        assert torch.equal(torch.cat([k.flatten() for k in layers]), expected), trial


def bottleneck_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 2), nn.ReLU(), nn.Linear(2, 30), nn.ReLU(),
                         nn.Linear(30, 5))


def test_collapse_detects_an_empty_layer_and_a_cut_without_empty_layers() -> None:
    model = bottleneck_mlp()
    dense = Mask.ones_like(model)
    assert collapse.path_flow(model, dense, (20,)) > 0 and not collapse.collapsed(model, dense, (20,))
    empty = Mask({**dense, "2.weight": torch.zeros(2, 30, dtype=torch.bool)})
    assert collapse.empty_layers(empty) == ["2.weight"] and collapse.collapsed(model, empty, (20,))
    # the small layer keeps one weight, into bottleneck unit 0, but the next layer only reads unit 1
    into0 = torch.zeros(2, 30, dtype=torch.bool)
    into0[0, 3] = True
    from1 = torch.zeros(30, 2, dtype=torch.bool)
    from1[:, 1] = True
    cut = Mask({**dense, "2.weight": into0, "4.weight": from1})
    assert collapse.empty_layers(cut) == [] and collapse.path_flow(model, cut, (20,)) == 0.0
    assert collapse.collapsed(model, cut, (20,))
    from0 = torch.zeros(30, 2, dtype=torch.bool)
    from0[7, 0] = True
    single = Mask({**dense, "2.weight": into0, "4.weight": from0})
    assert not collapse.collapsed(model, single, (20,))
    # biases never count as a path, and the model is untouched
    assert torch.all(model[2].bias != 0)


def test_path_flow_treats_batchnorm_as_identity_and_restores_nothing_it_did_not_touch() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, bias=False), nn.BatchNorm2d(3), nn.ReLU(),
                          nn.Conv2d(3, 2, 3, padding=1, bias=False), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)).train()
    with torch.no_grad():
        model[1].running_mean.fill_(100.0)  # would kill every ReLU if taken literally
    before = {k: v.clone() for k, v in model.state_dict().items()}
    dense = Mask.ones_like(model)
    assert collapse.path_flow(model, dense, (1, 6, 6)) > 0
    reads_channel0 = torch.zeros(2, 3, 3, 3, dtype=torch.bool).index_fill_(1, torch.tensor([0]), True)
    feeds_channels12 = torch.zeros(3, 1, 3, 3, dtype=torch.bool).index_fill_(0, torch.tensor([1, 2]), True)
    only_channel0 = Mask({**dense, "3.weight": reads_channel0})
    no_channel0 = Mask({**dense, "0.weight": feeds_channels12})
    assert not collapse.collapsed(model, only_channel0, (1, 6, 6))
    both = Mask({**only_channel0, "0.weight": no_channel0["0.weight"]})
    assert collapse.collapsed(model, both, (1, 6, 6))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()) and model.training


def test_largest_intact_compression_search_brackets_a_threshold() -> None:
    calls = []
    found, tested = collapse.largest_intact_compression(lambda c: calls.append(c) or c > 2.37, hi=6.0, tol=0.01)
    assert 2.36 <= found <= 2.37 and not tested[found] and tested[6.0]
    assert len(calls) < 15
    found, tested = collapse.largest_intact_compression(lambda c: False, hi=6.0)
    assert found == 6.0 and list(tested) == [6.0]
    assert math.isnan(collapse.largest_intact_compression(lambda c: True, hi=6.0)[0])


def test_max_compression_keeps_one_weight_per_layer() -> None:
    mask = shapes_mask(SHAPES)
    top = collapse.max_compression(mask)
    assert pruning.round_count(collapse.density_of(top) * mask.num_total()) == len(SHAPES)


def test_synflow_reaches_maximal_compression_where_single_shot_magnitude_collapses() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64, bias=False), nn.ReLU(), nn.Linear(64, 64, bias=False), nn.ReLU(),
                          nn.Linear(64, 4, bias=False))
    with torch.no_grad():
        model[0].weight.mul_(0.1)  # a layer of small weights: magnitude pruning empties it first
    top = collapse.max_compression(Mask.ones_like(model))
    def search(method: str, iterations: int) -> float:
        scorer = pai.make_scorer(method, model, input_shape=(64,))
        return pai.critical_compression(model, scorer, (64,), iterations=iterations)[0]

    synflow, magnitude, single_synflow = search("synflow", 100), search("magnitude", 1), search("synflow", 1)
    assert synflow == top
    assert magnitude < top - 0.5 and single_synflow < synflow


def test_pad_images_centres_on_the_background() -> None:
    x = torch.randn(4, 1, 28, 28)
    split = Split(x, torch.zeros(4, dtype=torch.long))
    data = Dataset("mnist", split, split, split, 10, (1, 28, 28), (0.1307,), (0.3081,))
    padded = pad_images(data, 32)
    assert padded.input_shape == (1, 32, 32) and padded.train.x.shape == (4, 1, 32, 32)
    assert torch.equal(padded.train.x[:, :, 2:30, 2:30], x)
    assert torch.allclose(padded.train.x[:, :, 0], torch.tensor(-0.1307 / 0.3081))


def test_experiment_keys_differ_by_padding() -> None:
    base = dict(model="vgg11", dataset="mnist", train=TrainConfig())
    assert Experiment(**base, pad_to=32).key() != Experiment(**base).key()
    assert Experiment(**base, pad_to=32).key()["pad_to"] == 32 and "pad_to" not in Experiment(**base).key()


def test_config_rejects_unknown_methods_and_controls() -> None:
    with pytest.raises(ValueError, match="method"):
        pai.PAIConfig("obd", 1.0)
    with pytest.raises(ValueError, match="control"):
        pai.PAIConfig("snip", 1.0, control="flip")
    with pytest.raises(ValueError, match="batch"):
        pai.make_scorer("snip", bottleneck_mlp())


def test_imp_reach_check_refuses_rounds_short_of_one_shot_collapse() -> None:
    from ticketlib.core import models

    torch.manual_seed(0)
    net = models.build("vgg11", (1, 32, 32), 10, width=0.0625)
    reach, one_shot = pai.check_imp_reaches_collapse(net, (1, 32, 32), rounds=40, fraction=0.3, tol=0.1)
    assert reach == pytest.approx(40 * math.log10(1 / 0.7)) and 0 < one_shot < reach
    with pytest.raises(ValueError, match=r"imp_rounds = 2 .* use imp_rounds >= \d+"):
        pai.check_imp_reaches_collapse(net, (1, 32, 32), rounds=2, fraction=0.2, tol=0.1)


@pytest.mark.parametrize("profile", ["cpu", "paper"])
def test_every_conservation_params_file_can_judge_iteration_avoids_collapse(profile) -> None:
    """Data-free and cheap: one-shot magnitude at init of each params file's IMP network must collapse
    before IMP's last round, or the notebook refuses the file before training."""
    from pathlib import Path

    from ticketlib.runner import config
    from ticketlib.core import models

    for path in sorted(Path(__file__).resolve().parents[1].glob(f"params/{profile}/02_conservation*.yaml")):
        _, p = config.resolve(path)
        cifar = p["dataset"].startswith("cifar")
        channels, size = (3, 32) if cifar else (1, 28)
        classes = 100 if p["dataset"] == "cifar100" else 10
        shape = (channels, p["pad_to"] or size, p["pad_to"] or size)
        torch.manual_seed(0)
        net = models.build(p["model"], shape, classes, **p["model_kwargs"])
        pai.check_imp_reaches_collapse(net, shape, p["imp_rounds"], p["imp_fraction"], p["search_tol"])


def test_study_configs_grid_then_controls_without_repeating_the_plain_run() -> None:
    grid = pai.study_configs(["random", "synflow"], [1.0, 2.0], ["synflow"], ["shuffle", "reinit"], 1.0,
                             synflow_iterations=7, per_class=3)
    keys = [(c.method, c.log_compression, c.control) for c in grid]
    assert keys == [("random", 1.0, None), ("synflow", 1.0, None), ("random", 2.0, None), ("synflow", 2.0, None),
                    ("synflow", 1.0, "shuffle"), ("synflow", 1.0, "reinit")]
    assert [c.iterations for c in grid] == [1, 7, 1, 7, 7, 7] and all(c.per_class == 3 for c in grid)


def test_critical_compressions_and_masks_at_density_follow_each_run() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64, bias=False), nn.ReLU(), nn.Linear(64, 64, bias=False), nn.ReLU(),
                          nn.Linear(64, 4, bias=False))
    with torch.no_grad():
        model[0].weight.mul_(0.1)
    dense = Mask.ones_like(model)
    scorers = {m: pai.make_scorer(m, model, input_shape=(64,)) for m in ("magnitude", "synflow")}
    one_shot = {m: pai.fixed_scorer(s(dense)) for m, s in scorers.items()}
    runs = [("magnitude", 1), ("synflow", 1), ("synflow", 20)]
    rows = pai.critical_compressions(model, runs, scorers, one_shot, (64,))
    assert [r["label"] for r in rows] == ["magnitude", "synflow (1 it.)", "synflow (20 it.)"]
    for (method, iterations), row in zip(runs, rows):  # the same number as the one-run search
        critical, tried = pai.critical_compression(model, scorers[method], (64,), iterations=iterations)
        assert row["critical"] == critical and row["tried"] == len(tried) and row["seconds"] >= 0
    masks = pai.masks_at_density([("magnitude", 1), ("synflow", 20)], scorers, one_shot, dense, 0.01)
    assert list(masks) == ["magnitude", "synflow"]
    assert all(m.num_kept() == pruning.round_count(0.01 * dense.num_total()) for m in masks.values())
    assert masks["synflow"] == pai.prune_iteratively(scorers["synflow"], dense, 0.01, 20)
    assert masks["magnitude"] == pai.prune_iteratively(one_shot["magnitude"], dense, 0.01, 1)
