"""Mask distance, the early-bird detector, channel masks from BN scales, the L1 penalty."""
import pytest
import torch
from torch import nn

from ticketlib.core import distance
from ticketlib.core import slim
from ticketlib.core.masks import Mask


def _mask(**layers) -> Mask:
    return Mask({name: torch.tensor(bits, dtype=torch.bool) for name, bits in layers.items()})


def test_distance_zero_one_and_hand_counted_across_widths():
    a = _mask(x=[1, 0, 1, 1], y=[1, 1, 0, 0, 0, 0, 1, 1])
    complement = _mask(x=[0, 1, 0, 0], y=[0, 0, 1, 1, 1, 1, 0, 0])
    assert distance.distance(a, a) == 0.0
    assert distance.distance(a, complement) == 1.0
    # one channel differs in the 4-wide layer, none in the 8-wide one: 1 of 12 pooled
    # (a per-layer average would say (1/4 + 0/8) / 2 = 1/8)
    b = _mask(x=[1, 0, 0, 1], y=[1, 1, 0, 0, 0, 0, 1, 1])
    assert distance.distance(a, b) == pytest.approx(1 / 12)
    # 1 + 3 differing of 12
    c = _mask(x=[1, 0, 0, 1], y=[0, 0, 1, 0, 0, 0, 1, 1])
    assert distance.distance(a, c) == pytest.approx(4 / 12)


def test_distance_refuses_different_layers():
    with pytest.raises(ValueError):
        distance.distance(_mask(x=[1, 0]), _mask(x=[1, 0, 1]))


def test_distance_matrix_and_consecutive():
    m0 = _mask(x=[1, 1, 1, 1])
    m1 = _mask(x=[0, 1, 1, 1])
    m2 = _mask(x=[0, 0, 1, 1])
    matrix = distance.distance_matrix([m0, m1, m2])
    expected = torch.tensor([[0, 0.25, 0.5], [0.25, 0, 0.25], [0.5, 0.25, 0]], dtype=torch.float64)
    assert torch.equal(matrix, expected)
    assert distance.consecutive_distances([m0, m1, m2]) == [0.25, 0.25]
    assert distance.distance_matrix([]).shape == (0, 0)
    with pytest.raises(ValueError, match="different layers"):
        distance.distance_matrix([m0, _mask(y=[1, 1, 1, 1])])


def test_distance_matrix_is_exactly_the_pairwise_distance():
    gen = torch.Generator().manual_seed(0)
    masks = [Mask({"a": torch.rand(7, 5, generator=gen) < d, "b": torch.rand(13, generator=gen) < d})
             for d in (0.0, 0.1, 0.5, 0.5, 0.9, 1.0)]
    pairwise = torch.tensor([[distance.distance(a, b) for b in masks] for a in masks], dtype=torch.float64)
    assert torch.equal(distance.distance_matrix(masks), pairwise)  # bit for bit, not approximately


def _flips(k: int, n: int = 10) -> Mask:
    """A 10-channel mask whose first k channels are pruned: d(_flips(i), _flips(j)) = |i - j| / 10."""
    return Mask({"bn.weight": torch.arange(n) >= k})


def test_early_bird_needs_a_full_window():
    detector = distance.EarlyBird(epsilon=0.1, window=5)
    assert [detector.push(_flips(0)) for _ in range(4)] == [False] * 4  # identical, but only 4 masks
    assert detector.push(_flips(0)) is True
    assert detector.fired_at == 4


def test_early_bird_fires_exactly_when_all_distances_to_newest_are_within_epsilon():
    detector = distance.EarlyBird(epsilon=0.1, window=5)
    # distances to the newest (k=5): 0.5, 0.3, 0.2, 0.1 -> no
    fired = [detector.push(_flips(k)) for k in [0, 2, 3, 4, 5]]
    assert fired == [False] * 5 and detector.last_distances == pytest.approx([0.5, 0.3, 0.2, 0.1])
    # window is now k = 3, 4, 5, 5, 5 -> distances 0.2, 0.1, 0, 0 -> no
    assert detector.push(_flips(5)) is False
    assert detector.push(_flips(5)) is False
    # k = 4, 5, 5, 5, 5 -> 0.1, 0, 0, 0 -> yes (the bound is inclusive)
    assert detector.push(_flips(5)) is True
    assert detector.fired_at == 7
    # a jump of 2 channels breaks it again; fired_at keeps the first firing
    assert detector.push(_flips(7)) is False
    assert detector.fired_at == 7


def test_early_bird_window_compares_to_newest_not_consecutive():
    # consecutive distances are all 0.1 but the oldest is 0.4 from the newest
    detector = distance.EarlyBird(epsilon=0.1, window=5)
    assert not any(detector.push(_flips(k)) for k in [0, 1, 2, 3, 4])


class _TwoBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 1)
        self.bn1 = nn.BatchNorm2d(4)
        self.bn2 = nn.BatchNorm2d(6)


def _with_gammas(g1, g2) -> _TwoBN:
    model = _TwoBN()
    with torch.no_grad():
        model.bn1.weight.copy_(torch.tensor(g1))
        model.bn2.weight.copy_(torch.tensor(g2))
    return model


def test_channel_mask_uses_one_global_threshold_on_abs_gamma():
    model = _with_gammas([0.9, -0.05, 0.5, 0.01], [0.3, -0.8, 0.02, 0.6, 0.04, 0.7])
    assert slim.bn_weight_names(model) == ["bn1.weight", "bn2.weight"]
    mask = slim.channel_mask(model, 0.5)  # prune 5 of 10: |γ| 0.01, 0.02, 0.04, 0.05, 0.3
    assert mask["bn1.weight"].tolist() == [True, False, True, False]
    assert mask["bn2.weight"].tolist() == [False, True, False, True, False, True]
    assert mask.num_kept() == 5
    assert slim.channel_mask(model, 0.0).num_kept() == 10
    assert slim.channel_mask(model, 0.3).num_kept() == 7


def test_channel_mask_keeps_a_channel_in_every_layer():
    model = _with_gammas([0.01, 0.02, 0.03, 0.04], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    mask = slim.channel_mask(model, 0.5)  # the global threshold would empty bn1
    assert mask["bn1.weight"].tolist() == [False, False, False, True]
    assert mask["bn2.weight"].tolist() == [False, True, True, True, True, True]
    assert slim.channel_mask(model, 0.5, min_per_layer=0)["bn1.weight"].sum() == 0


def test_channel_mask_names_restrict_the_ranking():
    model = _with_gammas([0.001, 0.002, 0.003, 0.004], [0.3, -0.8, 0.02, 0.6, 0.04, 0.7])
    mask = slim.channel_mask(model, 0.5, names=["bn2.weight"])  # bn1's tiny γ do not compete
    assert list(mask) == ["bn2.weight"]
    assert mask["bn2.weight"].tolist() == [False, True, False, True, False, True]
    both = slim.channel_mask(model, 0.5, names=slim.bn_weight_names(model))
    assert both == slim.channel_mask(model, 0.5)


def test_channel_mask_ties_are_deterministic():
    model = _TwoBN()  # every γ is 1: the lower indices go first
    mask = slim.channel_mask(model, 0.3)
    assert mask["bn1.weight"].tolist() == [False, False, False, True]
    assert mask == slim.channel_mask(_TwoBN(), 0.3)


def test_bn_l1_value_and_gradient():
    model = _with_gammas([0.5, -0.25, 0.0, 1.0], [-1.0, 2.0, 0.5, 0.5, -0.5, 0.1])
    penalty = slim.bn_l1(1e-4)(model)
    assert penalty.item() == pytest.approx(1e-4 * (1.75 + 4.6))
    penalty.backward()
    assert torch.allclose(model.bn2.weight.grad, 1e-4 * torch.sign(model.bn2.weight.detach()))
    assert model.conv.weight.grad is None
