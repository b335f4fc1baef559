"""Mask: counts, application, distance, persistence, torch.nn.utils.prune interop, validation."""

import pytest
import torch
from torch import nn

from ticketlib.core.masks import Mask, prunable_names


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 5), nn.ReLU(),
                         nn.Linear(5, 3))


def checker(shape: tuple, every: int = 3) -> torch.Tensor:
    """Keeps flat indices that are not multiples of `every` (known counts)."""
    return (torch.arange(torch.Size(shape).numel()) % every != 0).reshape(shape)


@pytest.fixture
def net_and_mask() -> tuple[nn.Module, Mask]:
    model = small_net()
    mask = Mask({n: checker(p.shape) for n, p in model.named_parameters() if n in prunable_names(model)})
    return model, mask


def test_prunable_names_are_conv_and_linear_weights() -> None:
    assert prunable_names(small_net()) == ["0.weight", "3.weight", "5.weight"]


def test_density_sparsity_and_table_exact_counts(net_and_mask) -> None:
    _, mask = net_and_mask
    # 0.weight: 18 entries, multiples of 3 at 0,3,...,15 -> 6 pruned; 3.weight: 160 -> 54 pruned; 5.weight: 15 -> 5
    assert [int(mask[n].sum()) for n in mask] == [12, 106, 10]
    assert mask.num_kept() == 128 and mask.num_total() == 193
    assert mask.density() == 128 / 193 and mask.sparsity() == pytest.approx(65 / 193)
    assert mask.layer_densities() == {"0.weight": 12 / 18, "3.weight": 106 / 160, "5.weight": 10 / 15}
    table = mask.table()
    assert table.loc["total", "kept"] == 128 and table.loc["3.weight", "total"] == 160
    dense = Mask.ones_like(small_net())
    assert dense.density() == 1.0 and dense.sparsity() == 0.0 and dense.num_total() == 193


def test_apply_zeroes_exactly_the_pruned_entries(net_and_mask) -> None:
    model, mask = net_and_mask
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.sign(p) * 0.1 + (p == 0) * 0.1)  # no weight is zero before
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    mask.apply(model)
    params = dict(model.named_parameters())
    for name, p in params.items():
        if name in mask:
            assert torch.equal(p[~mask[name]], torch.zeros(int((~mask[name]).sum())))
            assert torch.equal(p[mask[name]], before[name][mask[name]])
        else:  # biases untouched
            assert torch.equal(p, before[name])


def test_hamming_known_masks() -> None:
    a = Mask({"a": torch.ones(4, dtype=torch.bool), "b": torch.ones(2, 3, dtype=torch.bool)})
    assert a.hamming(a) == 0.0
    flipped = Mask({n: ~t for n, t in a.items()})
    assert a.hamming(flipped) == 1.0
    # 1 differing entry of 4 in "a", 2 of 6 in "b": 3 of 10 overall (not the mean of per-layer rates)
    b_a = torch.tensor([True, False, True, True])
    b_b = torch.tensor([[True, True, False], [True, False, True]])
    other = Mask({"a": b_a, "b": b_b})
    assert other.hamming(a) == pytest.approx(3 / 10)
    with pytest.raises(ValueError):
        a.hamming(Mask({"a": torch.ones(4, dtype=torch.bool)}))


def test_save_load_round_trip_and_refuse_other_files(tmp_path, net_and_mask) -> None:
    _, mask = net_and_mask
    mask.save(tmp_path / "sub" / "ticket.pt")
    loaded = Mask.load(tmp_path / "sub" / "ticket.pt")
    assert loaded == mask and list(loaded) == list(mask)
    assert all(loaded[n].dtype == torch.bool for n in loaded)
    assert not list((tmp_path / "sub").glob("*.tmp"))
    torch.save({"0.weight": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a ticketlib mask"):
        Mask.load(tmp_path / "other.pt")


def test_prune_buffers_round_trip(net_and_mask) -> None:
    model, mask = net_and_mask
    reference = small_net()
    mask.apply(reference)
    x = torch.randn(4, 1, 6, 6)
    mask.to_prune_buffers(model)
    for name in mask:
        module_name = name.rpartition(".")[0]
        module = dict(model.named_modules())[module_name]
        assert hasattr(module, "weight_orig") and hasattr(module, "weight_mask")
        assert torch.equal(module.weight_mask.bool(), mask[name])
    assert torch.equal(model(x), reference(x))  # the hooked forward is the masked model's
    assert Mask.from_prune_buffers(model) == mask
    with pytest.raises(ValueError, match="no torch.nn.utils.prune"):
        Mask.from_prune_buffers(small_net())


def test_validation_errors() -> None:
    model = small_net()
    with pytest.raises(KeyError, match="nope"):
        Mask({"nope.weight": torch.ones(3, dtype=torch.bool)}).validate(model)
    with pytest.raises(ValueError, match="shape"):
        Mask({"3.weight": torch.ones(5, 31, dtype=torch.bool)}).apply(model)
    with pytest.raises(ValueError, match="other than 0 and 1"):
        Mask({"a": torch.tensor([0.0, 0.5])})
    with pytest.raises(TypeError):
        Mask({"a": [1, 0]})
    with pytest.raises(KeyError):
        Mask.ones_like(model, ["missing.weight"])
    assert Mask({"a": torch.tensor([1.0, 0.0])})["a"].dtype == torch.bool


def test_shuffle_within_layers_keeps_counts_and_is_seeded(net_and_mask) -> None:
    _, mask = net_and_mask
    one = mask.shuffle_within_layers(torch.Generator().manual_seed(5))
    two = mask.shuffle_within_layers(torch.Generator().manual_seed(5))
    other = mask.shuffle_within_layers(torch.Generator().manual_seed(6))
    assert one == two and one != other and one != mask
    assert {n: int(t.sum()) for n, t in one.items()} == {n: int(t.sum()) for n, t in mask.items()}
    assert all(one[n].shape == mask[n].shape for n in mask)
