"""torch.ao.pruning interop both ways: a ticket's mask as FakeSparsity parametrizations (identical logits to the
masked model), read back from them, squashed into plain weights, and read from a real torch.ao sparsifier."""

import torch
from torch import nn
from torch.ao.pruning import WeightNormSparsifier

from ticketlib import from_ao
from ticketlib import to_ao
from ticketlib.core.ao_interop import squash
from ticketlib.core.masks import Mask


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def test_to_ao_and_back_with_identical_logits() -> None:
    model = net()
    gen = torch.Generator().manual_seed(1)
    mask = Mask({n: torch.rand(p.shape, generator=gen) < 0.3 for n, p in model.named_parameters() if n.endswith("weight")})
    x = torch.randn(5, 8)
    reference = mask.apply(net())(x)
    parametrized = to_ao(mask, model)
    assert torch.equal(parametrized(x), reference)
    assert from_ao(parametrized) == mask
    plain = squash(parametrized)
    assert not any("parametrizations" in n for n, _ in plain.named_parameters())
    assert torch.equal(plain(x), reference) and int((plain[0].weight != 0).sum()) == int(mask["0.weight"].sum())


def test_from_a_torch_ao_sparsifier() -> None:
    model = net()
    sparsifier = WeightNormSparsifier(sparsity_level=0.5, sparse_block_shape=(1, 4), zeros_per_block=4)
    sparsifier.prepare(model, [{"tensor_fqn": "0.weight"}, {"tensor_fqn": "2.weight"}])
    sparsifier.step()
    mask = from_ao(model)
    assert list(mask) == ["0.weight", "2.weight"] and abs(mask.density() - 0.5) < 0.05
    x = torch.randn(3, 8)
    logits = model(x)
    sparsifier.squash_mask()
    assert torch.equal(model(x), logits)
    assert torch.equal(mask.apply(model)(x), logits)  # the mask read from torch.ao is the one it applied
