"""Thresholding: exact counts per layer and globally, deterministic ties, no revival, errors."""

import pytest
import torch

from ticketlib.core import pruning
from ticketlib.core.masks import Mask
from ticketlib.core.pruning import prune, prune_to_density, round_count

LENET = {"fc1.weight": (300, 784), "fc2.weight": (100, 300), "fc3.weight": (10, 100)}


def dense(shapes: dict) -> Mask:
    return Mask({n: torch.ones(s, dtype=torch.bool) for n, s in shapes.items()})


def random_scores(shapes: dict, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {n: torch.randn(s, generator=gen) for n, s in shapes.items()}


def kept(mask: Mask) -> dict:
    return {n: int(t.sum()) for n, t in mask.items()}


def test_round_count_is_half_up() -> None:
    assert [round_count(x) for x in (0.49, 0.5, 1.5, 2.5, 2.4999)] == [0, 1, 2, 3, 2]


def test_layerwise_counts_every_round_with_output_override() -> None:
    mask = dense(LENET)
    for r in range(1, 19):
        before = kept(mask)
        mask = prune(random_scores(LENET, r), mask, 0.2, "layerwise", overrides={"fc3.weight": 0.1})
        after = kept(mask)
        for name in LENET:
            rate = 0.1 if name == "fc3.weight" else 0.2
            assert before[name] - after[name] == round_count(rate * before[name]), (r, name)
        if r == 1:
            assert after == {"fc1.weight": 188160, "fc2.weight": 24000, "fc3.weight": 900}
    # Frankle & Carbin's formula: (265200 * 0.8^k + 1000 * 0.9^k) / 266200, 1.9% at k = 18
    expected = pruning.expected_density(18, 0.2, {n: torch.Size(s).numel() for n, s in LENET.items()},
                                        {"fc3.weight": 0.1})
    assert expected == pytest.approx((265200 * 0.8 ** 18 + 1000 * 0.9 ** 18) / 266200)
    assert mask.density() == pytest.approx(expected, abs=2e-5)
    assert 100 * mask.density() == pytest.approx(1.9, abs=0.05)


def test_global_exact_count_and_lowest_scores_first() -> None:
    shapes = {"a": (10,), "b": (20,), "c": (5,)}
    mask = dense(shapes)
    scores = {"a": torch.arange(10.0), "b": torch.arange(20.0) - 5.5, "c": torch.full((5,), 100.0)}
    new = prune(scores, mask, 0.4, "global")  # round(0.4 * 35) = 14 lowest of all 35
    assert mask.num_kept() - new.num_kept() == 14
    flat = torch.cat([scores[n] for n in shapes])
    threshold = flat.sort().values[13]
    for name in shapes:
        assert torch.equal(new[name], scores[name] > threshold)
    # an override takes its layer out of the global pool and prunes it on its own
    new = prune(scores, mask, 0.4, "global", overrides={"c": 0.2})
    assert kept(new)["c"] == 4 and (30 - kept(new)["a"] - kept(new)["b"]) == 12


def test_ties_prune_lowest_flat_indices_first() -> None:
    shapes = {"a": (2, 3), "b": (4,)}
    mask = dense(shapes)
    equal = {n: torch.zeros(s) for n, s in shapes.items()}
    layerwise = prune(equal, mask, 0.5, "layerwise")
    assert layerwise["a"].flatten().tolist() == [False, False, False, True, True, True]
    assert layerwise["b"].tolist() == [False, False, True, True]
    glob = prune(equal, mask, 0.5, "global")  # 5 of 10, layers in mask order
    assert glob["a"].flatten().tolist() == [False] * 5 + [True] and glob["b"].all()
    again = prune(equal, glob, 0.5, "global")  # round(0.5 * 5) = 3 more: the lowest surviving indices
    assert again["a"].flatten().tolist() == [False] * 6
    assert again["b"].tolist() == [False, False, True, True]


def test_pruned_weights_are_never_revived() -> None:
    mask = Mask({"a": torch.tensor([False, False, True, True, True, True])})
    scores = {"a": torch.tensor([100.0, 99.0, 1.0, 2.0, 3.0, 4.0])}  # the pruned ones score highest
    for scope in pruning.SCOPES:
        new = prune(scores, mask, 0.5, scope)
        assert new["a"].tolist() == [False, False, False, False, True, True]
        to_density = prune_to_density(scores, mask, 0.5, scope)  # 3 of 6, but only 4 alive: drop the lowest
        assert to_density["a"].tolist() == [False, False, False, True, True, True]
    # a density above the current one cannot revive anything
    assert prune_to_density(scores, mask, 1.0) == mask


def test_prune_to_density_exact_both_scopes() -> None:
    mask = dense(LENET)
    scores = random_scores(LENET, 0)
    glob = prune_to_density(scores, mask, 0.1, "global")
    assert glob.num_kept() == round_count(0.1 * 266200)
    flat = torch.cat([scores[n].flatten() for n in LENET])
    kept_scores = torch.cat([scores[n][glob[n]] for n in LENET])
    assert kept_scores.min() >= flat.sort(descending=True).values[glob.num_kept() - 1]
    layer = prune_to_density(scores, mask, 0.1, "layerwise")
    assert kept(layer) == {n: round_count(0.1 * torch.Size(s).numel()) for n, s in LENET.items()}
    # from an already pruned mask, density stays of the original size
    again = prune_to_density(scores, glob, 0.05, "global")
    assert again.num_kept() == round_count(0.05 * 266200)
    assert all(not (again[n] & ~glob[n]).any() for n in LENET)


def test_ignore_leaves_layers_untouched() -> None:
    mask = dense(LENET)
    new = prune(random_scores(LENET, 1), mask, 0.5, "global", ignore=["fc1.weight"])
    assert kept(new)["fc1.weight"] == 235200
    assert 31000 - kept(new)["fc2.weight"] - kept(new)["fc3.weight"] == 15500


def test_errors() -> None:
    mask = dense({"a": (4,)})
    scores = {"a": torch.rand(4)}
    with pytest.raises(ValueError, match="scope"):
        prune(scores, mask, 0.2, "everywhere")
    with pytest.raises(ValueError, match="scope"):
        prune_to_density(scores, mask, 0.2, "everywhere")
    with pytest.raises(ValueError, match="rate"):
        prune(scores, mask, 1.2)
    with pytest.raises(ValueError, match="rate"):
        prune(scores, mask, 0.2, overrides={"a": -0.1})
    with pytest.raises(ValueError, match="density"):
        prune_to_density(scores, mask, 1.5)
    with pytest.raises(KeyError, match="b"):
        prune(scores, mask, 0.2, overrides={"b": 0.1})
    with pytest.raises(KeyError, match="no score"):
        prune({}, mask, 0.2)
    with pytest.raises(ValueError, match="shape"):
        prune({"a": torch.rand(5)}, mask, 0.2)
    with pytest.raises(ValueError, match="NaN"):
        prune({"a": torch.tensor([0.0, float("nan"), 1.0, 2.0])}, mask, 0.2)


def test_random_mask_like_keeps_per_layer_counts() -> None:
    mask = prune(random_scores(LENET, 3), dense(LENET), 0.7, "global")
    rand = pruning.random_mask_like(mask, torch.Generator().manual_seed(0))
    assert kept(rand) == kept(mask) and rand != mask
    assert rand == pruning.random_mask_like(mask, torch.Generator().manual_seed(0))


def test_output_rate_zero_leaves_vgg16s_output_layer_whole_under_global_pruning() -> None:
    """The paper profile's VGG-16 (`layer_fractions: {output: 0.0}`) prunes as open_lth does: fc.weight ignored."""
    from ticketlib.studies.imp import study as imp
    from ticketlib.core import masks
    from ticketlib.core import models

    model = models.build("vgg16", (3, 32, 32), 10, width=0.0625)
    mask = Mask({n: torch.ones_like(p, dtype=torch.bool) for n, p in model.named_parameters()
                 if n in masks.prunable_names(model)})
    config = imp.IMPConfig(rounds=2, fraction=0.2, scope="global", overrides={"output": 0.0})
    after = imp.next_mask(config, model, model.state_dict(), mask, 1)
    output = models.output_layer_name(model)
    assert bool(after[output].all())  # the output layer keeps every weight
    pooled = [n for n in mask if n != output]
    kept = sum(int(after[n].sum()) for n in pooled) / sum(mask[n].numel() for n in pooled)
    assert kept == pytest.approx(0.8, abs=1e-4)  # the other layers lose 20% together
    everything = imp.next_mask(imp.IMPConfig(rounds=2, fraction=0.2, scope="global"), model, model.state_dict(), mask, 1)
    assert not bool(everything[output].all())  # without the override the output layer is pruned too
