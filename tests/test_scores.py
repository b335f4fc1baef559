"""Scorers: SynFlow's conservation law, SNIP and GraSP on hand-computed toys, purity (the model is left as found)."""

import math

import pytest
import torch
from torch import nn

from ticketlib.core import scores
from ticketlib.core.data import Split
from ticketlib.core.masks import Mask


def mlp(bias: bool, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 5, bias=bias), nn.ReLU(), nn.Linear(5, 3, bias=bias), nn.ReLU(),
                          nn.Linear(3, 2, bias=bias))
    if bias:
        with torch.no_grad():
            for layer in (model[0], model[2], model[4]):
                layer.bias.uniform_(-1, 1)  # nonzero, both signs: SynFlow must take |b|
    return model.double()


def convnet() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
    with torch.no_grad():  # non-trivial BN statistics and affine parameters, as after some training
        for bn in (model[1], model[5]):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(-2, 2)
            bn.bias.uniform_(-1, 1)
    return model


def relative_spread(values) -> float:
    values = list(values)
    return (max(values) - min(values)) / max(values)


def test_synflow_conserves_per_layer_totals_on_bias_free_mlp() -> None:
    model = mlp(bias=False)
    mask = Mask.ones_like(model)
    s = scores.synflow(model, mask, (4,), dtype=torch.float64)
    totals = scores.layer_totals(s)
    assert relative_spread(totals.values()) < 1e-12
    # each total is R itself: the output sum of the |θ| network on an all-ones input
    absolute = nn.Sequential(*[m for m in mlp(bias=False)])
    with torch.no_grad():
        for p in absolute.parameters():
            p.abs_()
        r = float(absolute(torch.ones(1, 4, dtype=torch.float64)).sum())
    assert totals["0.weight"] == pytest.approx(r, rel=1e-12)
    # and per neuron: what flows into a hidden unit flows out of it
    assert torch.allclose(s["0.weight"].sum(1), s["2.weight"].sum(0), rtol=1e-12)
    # magnitudes are not conserved on the same network
    assert relative_spread(scores.layer_totals(scores.magnitude(model, mask)).values()) > 0.1


def test_synflow_conservation_with_biases_needs_the_downstream_biases() -> None:
    model = mlp(bias=True)
    names = [n for n, _ in model.named_parameters()]
    s = scores.SynFlow(model, (4,), dtype=torch.float64).saliency(Mask.ones_like(model), names)
    weight_only = [float(s[f"{i}.weight"].sum()) for i in (0, 2, 4)]
    assert relative_spread(weight_only) > 1e-3  # biases carry part of the flow
    # the cut at layer l: its weights, its bias and every later bias; each carries all of R
    by_hand = [float(s[f"{i}.weight"].sum()) + sum(float(s[f"{j}.bias"].sum()) for j in (0, 2, 4) if j >= i)
               for i in (0, 2, 4)]
    assert relative_spread(by_hand) < 1e-12
    cuts = scores.cut_totals(s, ["0.weight", "2.weight", "4.weight"])
    assert list(cuts.values()) == pytest.approx(by_hand, rel=1e-12)


def test_synflow_ignores_signs_and_scores_pruned_weights_zero() -> None:
    model = mlp(bias=False)
    flipped = mlp(bias=False)
    with torch.no_grad():
        flipped[2].weight.neg_()
    keep = Mask.ones_like(model)
    keep = Mask({**keep, "2.weight": torch.rand(3, 5, generator=torch.Generator().manual_seed(1)) > 0.3})
    a = scores.synflow(model, keep, (4,), dtype=torch.float64)
    b = scores.synflow(flipped, keep, (4,), dtype=torch.float64)
    for name in a:
        assert torch.equal(a[name], b[name])
    assert torch.all(a["2.weight"][~keep["2.weight"]] == 0)


def test_synflow_float32_falls_back_to_float64_on_overflow() -> None:
    torch.manual_seed(0)
    deep = nn.Sequential(*[nn.Linear(64, 64, bias=False) for _ in range(40)])
    with torch.no_grad():
        for layer in deep:
            layer.weight.fill_(0.5)  # R = 32**40 * 64 ≈ 1e62: overflows float32, fine in float64
    mask = Mask.ones_like(deep)
    auto = scores.synflow(deep, mask, (64,))
    exact = scores.synflow(deep, mask, (64,), dtype=torch.float64)
    assert all(torch.isfinite(t).all() for t in auto.values())
    assert math.log10(scores.layer_totals(auto)["0.weight"]) == pytest.approx(math.log10(64 * 32.0**40), abs=1e-9)
    for name in auto:
        assert torch.equal(auto[name], exact[name])


def two_class_toy(a: float, b: float) -> nn.Linear:
    model = nn.Linear(1, 2, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[a], [b]], dtype=torch.float64))
    return model


def test_snip_equals_hand_computed_gradient_times_weight() -> None:
    a, b = 0.7, -0.4
    model = two_class_toy(a, b)
    x = torch.tensor([[1.0], [2.0]], dtype=torch.float64)
    y = torch.tensor([0, 0])
    # logits (a x, b x), label 0: dL/da = -p x, dL/db = p x with p = sigmoid((b - a) x); mean over the batch
    p = torch.sigmoid((b - a) * x[:, 0])
    grad_a, grad_b = float((-p * x[:, 0]).mean()), float((p * x[:, 0]).mean())
    s = scores.snip(model, Mask.ones_like(model), (x, y))["weight"].flatten()
    assert s.tolist() == pytest.approx([abs(a * grad_a), abs(b * grad_b)], rel=1e-6)
    # a pruned weight scores zero
    pruned = Mask({"weight": torch.tensor([[True], [False]])})
    assert scores.snip(model, pruned, (x, y))["weight"].flatten()[1] == 0


def test_grasp_sign_on_hand_computed_toy() -> None:
    # logits (a, b), label 0, T = 1: g = p(-1, 1), H = p(1-p)[[1, -1], [-1, 1]], Hg = 2p²(1-p)(-1, 1)
    a, b = 2.0, 1.0
    p = 1 / (1 + math.exp(a - b))
    c = 2 * p * p * (1 - p)
    model = two_class_toy(a, b)
    batch = (torch.ones(1, 1, dtype=torch.float64), torch.tensor([0]))
    s = scores.grasp(model, Mask.ones_like(model), batch, temperature=1.0)["weight"].flatten()
    assert s.tolist() == pytest.approx([-c * a, c * b], rel=1e-6)
    # thresholding keeps the highest θ⊙Hg, i.e. prunes the lowest (negative) one: weight a
    from ticketlib.core.pruning import prune_to_density

    kept = prune_to_density({"weight": s.view(2, 1)}, Mask.ones_like(model), 0.5)["weight"].flatten()
    assert kept.tolist() == [False, True]


def test_grasp_matches_a_full_hessian_reference_with_temperature_and_mask() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Tanh(), nn.Linear(4, 3, bias=False)).double()
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1, 2])
    mask = Mask({"0.weight": torch.rand(4, 3) > 0.3, "2.weight": torch.ones(3, 4, dtype=torch.bool)})
    temperature = 3.0
    w1 = model[0].weight.detach() * mask["0.weight"]
    w2 = model[2].weight.detach()
    flat = torch.cat([w1.flatten(), w2.flatten()])

    def loss(theta: torch.Tensor) -> torch.Tensor:
        a, b = theta[:12].view(4, 3) * mask["0.weight"], theta[12:].view(3, 4)
        return nn.functional.cross_entropy(torch.tanh(x @ a.T) @ b.T / temperature, y)

    g = torch.autograd.functional.jacobian(loss, flat)
    hessian = torch.autograd.functional.hessian(loss, flat)
    reference = flat * (hessian @ g)
    s = scores.grasp(model, mask, (x, y), temperature=temperature)
    got = torch.cat([s["0.weight"].flatten(), s["2.weight"].flatten()]).double()
    assert torch.allclose(got, reference, rtol=1e-4, atol=1e-9)


@pytest.mark.parametrize("method", ["synflow", "snip", "grasp", "snip_train", "magnitude"])
def test_scorers_leave_weights_mode_and_bn_statistics_as_found(method: str) -> None:
    model = convnet()
    model.train()
    model[5].eval()  # a mixed state must come back as it was
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    batch = (torch.randn(12, 1, 8, 8), torch.arange(12) % 3)
    mask = Mask.ones_like(model)
    if method == "synflow":
        out = scores.synflow(model, mask, (1, 8, 8))
    elif method == "magnitude":
        out = scores.magnitude(model, mask)
    elif method == "grasp":
        out = scores.grasp(model, mask, batch)
    else:
        out = scores.snip(model, mask, batch, train_mode=method == "snip_train")
    assert set(out) == set(mask)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert [m.training for m in model.modules()] == flags
    assert all(p.grad is None for p in model.parameters())


def test_snip_uses_eval_mode_batchnorm_by_default() -> None:
    model = convnet()
    batch = (torch.randn(12, 1, 8, 8), torch.arange(12) % 3)
    mask = Mask.ones_like(model)
    assert not torch.allclose(scores.snip(model, mask, batch)["0.weight"],
                              scores.snip(model, mask, batch, train_mode=True)["0.weight"])
    model.eval()
    assert torch.equal(scores.snip(model, mask, batch)["0.weight"],
                       scores.snip(convnet().eval(), mask, batch)["0.weight"])


def test_balanced_batch_has_exactly_k_per_class_and_is_deterministic() -> None:
    y = torch.arange(100) % 4
    split = Split(torch.arange(100).float().view(100, 1), y)
    x1, y1 = scores.balanced_batch(split, 5, seed=3)
    x2, _ = scores.balanced_batch(split, 5, seed=3)
    x3, _ = scores.balanced_batch(split, 5, seed=4)
    assert torch.bincount(y1).tolist() == [5, 5, 5, 5]
    assert torch.equal(x1, x2) and not torch.equal(x1, x3)
    assert torch.equal(split.y[x1[:, 0].long()], y1)
    with pytest.raises(ValueError, match="only"):
        scores.balanced_batch(split, 26)


def test_conservation_summary_of_a_chain_network_is_conserved() -> None:
    from ticketlib.core.masks import Mask

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4))
    batch = (torch.randn(8, 1, 4, 4), torch.randint(0, 4, (8,)))
    summary = scores.conservation_summary(net, Mask.ones_like(net), batch, (1, 4, 4))
    assert summary["spreads"]["SynFlow (cut)"] < 1e-9  # Tanaka et al.'s Theorem 2: every cut carries R
    assert summary["spreads"]["magnitude"] > 0.01 and summary["r_value"] > 0
    assert 0 <= summary["shift_share"] < 1 and summary["gamma_cut_spread"] == 0.0  # no BN here
    assert scores.spread([2.0, 1.0, 2.0]) == 0.5
