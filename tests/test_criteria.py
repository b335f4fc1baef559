"""Zhou et al.'s criteria and actions on hand-made tensors: orderings, exact counts, signs, zeros, freezing."""

import pytest
import torch
from torch import nn

from ticketlib.studies.anatomy import study as criteria
from ticketlib.studies.imp import study as imp
from ticketlib.studies.imp.rows import RunRow
from ticketlib.infra.cache import Cache
from ticketlib.core.masks import Mask
from ticketlib.core.train import TrainConfig, evaluate, train

# one layer of four weights: initial and final values chosen so every criterion orders them differently
WI = torch.tensor([[0.4, -0.3], [0.2, -0.1]])
WF = torch.tensor([[0.1, 0.8], [0.5, -0.05]])
INIT, FINAL = {"w": WI}, {"w": WF}
DENSE = Mask({"w": torch.ones(2, 2, dtype=torch.bool)})


def kept_positions(criterion: str, count: int) -> set[int]:
    mask = criteria.criterion_mask(criterion, INIT, FINAL, DENSE, count / 4)
    return set(mask["w"].flatten().nonzero().flatten().tolist())


@pytest.mark.parametrize("criterion, top2", [
    ("large_final", {1, 2}),              # |wf| = .1 .8 .5 .05
    ("small_final", {0, 3}),
    ("large_init", {0, 1}),               # |wi| = .4 .3 .2 .1
    ("magnitude_increase", {1, 2}),       # |wf|-|wi| = -.3 .5 .3 -.05
    ("movement", {1, 2}),                 # |wf-wi| = .3 1.1 .3 .05: ties broken towards the higher index
    ("large_final_same_sign", {2, 0}),    # same sign: 0 (+,+), 2 (+,+), 3 (-,-); 1 flipped
])
def test_criteria_keep_the_expected_weights(criterion, top2) -> None:
    assert kept_positions(criterion, 2) == top2


def test_large_init_large_final_is_the_intersection_of_both_tops() -> None:
    wi = torch.tensor([4.0, 3.0, 2.0, 1.0])
    wf = torch.tensor([1.0, 4.0, 3.0, 2.0])
    scores = criteria.large_init_large_final(wi, wf)
    # ranks of |wi|: 1, 2/3, 1/3, 0; of |wf|: 0, 1, 2/3, 1/3 -> min: 0, 2/3, 1/3, 0
    assert torch.allclose(scores, torch.tensor([0.0, 2 / 3, 1 / 3, 0.0], dtype=scores.dtype))
    assert criteria.large_init_large_final(wi, wf).argmax() == 1


def test_same_sign_prefers_every_same_sign_weight_then_flipped_by_magnitude() -> None:
    wi = torch.tensor([1.0, 1.0, -1.0, 1.0, -1.0])
    wf = torch.tensor([0.1, -5.0, -0.2, 3.0, 0.3])  # flipped: 1 (|5|), 4 (|.3|)
    scores = criteria.large_final_same_sign(wi, wf)
    order = torch.argsort(scores, descending=True).tolist()
    assert order == [3, 2, 0, 1, 4]
    mask = criteria.select({"w": scores}, Mask({"w": torch.ones(5, dtype=torch.bool)}), 0.6)
    kept = mask["w"]
    assert int(kept.sum()) == 3 and torch.all((wi * wf)[kept] > 0)


def test_random_criterion_is_seeded_and_exact() -> None:
    shape = {"a": (30, 20), "b": (10, 7)}
    dense = Mask({n: torch.ones(s, dtype=torch.bool) for n, s in shape.items()})
    zeros = {n: torch.zeros(s) for n, s in shape.items()}

    def draw(seed):
        return criteria.criterion_mask("random", zeros, zeros, dense, 0.25, torch.Generator().manual_seed(seed))

    assert draw(1) == draw(1) and draw(1) != draw(2)
    assert {n: int(t.sum()) for n, t in draw(1).items()} == {"a": 150, "b": 18}  # round half up of 17.5
    with pytest.raises(ValueError, match="generator"):
        criteria.criterion_scores("random", zeros, zeros, dense)
    with pytest.raises(ValueError, match="criterion must be one of"):
        criteria.criterion_scores("largest", zeros, zeros, dense)


def test_select_per_layer_densities_exact_and_never_revives() -> None:
    gen = torch.Generator().manual_seed(0)
    shape = {"a": (40, 25), "b": (10, 9)}
    scores = {n: torch.randn(s, generator=gen) for n, s in shape.items()}
    start = Mask({n: torch.rand(s, generator=gen) < 0.5 for n, s in shape.items()})
    target = {"a": 0.1, "b": 0.3}
    mask = criteria.select(scores, start, target)
    assert {n: int(t.sum()) for n, t in mask.items()} == {"a": 100, "b": 27}
    for name in shape:
        assert not torch.any(mask[name] & ~start[name])
        # exactly the highest-scoring survivors of the start mask
        alive = scores[name][start[name]]
        assert scores[name][mask[name]].min() >= alive.sort(descending=True).values[int(mask[name].sum()) - 1]
    # an IMP round's layer densities reproduce its per-layer counts
    assert criteria.select(scores, Mask({n: torch.ones(s, dtype=torch.bool) for n, s in shape.items()}),
                           mask.layer_densities()).table()["kept"].tolist() == mask.table()["kept"].tolist()


# --- actions ---------------------------------------------------------------------------------------
def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 4))


def half(model: nn.Module, seed: int = 1) -> Mask:
    gen = torch.Generator().manual_seed(seed)
    return Mask({n: torch.rand(p.shape, generator=gen) < 0.4 for n, p in model.named_parameters()
                 if n.endswith("weight")})


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_rewind_and_zero() -> None:
    model = mlp()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    mask = half(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # "trained"
    kwargs = criteria.prepare(model, mask, init, "rewind", "zero")
    assert set(kwargs) == {"mask"} and kwargs["mask"] is mask
    w = weights(model)
    for n, keep in mask.items():
        assert torch.equal(w[n][keep], init[n][keep]) and torch.all(w[n][~keep] == 0)
    assert torch.equal(w["1.bias"], init["1.bias"])


def test_reinit_takes_the_fresh_weights() -> None:
    model, fresh = mlp(0), mlp(5)
    init, other = model.state_dict(), {k: v.clone() for k, v in fresh.state_dict().items()}
    init = {k: v.clone() for k, v in init.items()}
    mask = half(model)
    criteria.prepare(model, mask, init, "reinit", "zero", reinit_state=other)
    for n, keep in mask.items():
        assert torch.equal(model.state_dict()[n][keep], other[n][keep])
        assert torch.all(model.state_dict()[n][~keep] == 0)
    with pytest.raises(ValueError, match="reinit_state"):
        criteria.prepare(model, mask, init, "reinit")


def test_reshuffle_permutes_kept_values_within_each_layer() -> None:
    model = mlp()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    mask = half(model)
    criteria.prepare(model, mask, init, "reshuffle", "zero", torch.Generator().manual_seed(0))
    for n, keep in mask.items():
        w = model.state_dict()[n]
        assert torch.equal(w[keep].sort().values, init[n][keep].sort().values)  # same multiset
        assert not torch.equal(w[keep], init[n][keep])  # but moved
        assert torch.all(w[~keep] == 0) and int((w != 0).sum()) == int(keep.sum())


def test_signed_constant_keeps_signs_and_one_magnitude() -> None:
    model = mlp()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    mask = half(model)
    criteria.prepare(model, mask, init, "signed_constant", "zero")
    for n, keep in mask.items():
        w = model.state_dict()[n]
        assert torch.equal(torch.sign(w[keep]), torch.sign(init[n][keep]))
        assert torch.allclose(w[keep].abs(), init[n].std().expand(int(keep.sum())))
        assert torch.all(w[~keep] == 0)


def test_random_sign_constant_draws_fair_signs() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 100))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    mask = Mask({"0.weight": torch.rand(100, 100) < 0.5})
    keep = mask["0.weight"]
    criteria.prepare(model, mask, init, "random_sign_constant", "zero", torch.Generator().manual_seed(3))
    w = model.state_dict()["0.weight"]
    assert torch.allclose(w[keep].abs(), init["0.weight"].std().expand(int(keep.sum())))
    assert torch.all(w[~keep] == 0)
    agree = float((torch.sign(w[keep]) == torch.sign(init["0.weight"][keep])).float().mean())
    assert 0.45 < agree < 0.55  # independent of θ0's signs
    positive = float((w[keep] > 0).float().mean())
    assert 0.45 < positive < 0.55


def test_freeze_leaves_pruned_weights_at_init_through_training(tiny_data) -> None:
    model = mlp()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    mask = half(model)
    kwargs = criteria.prepare(model, mask, init, "signed_constant", "freeze")
    assert set(kwargs) == {"trainable"}
    start = weights(model)
    for n, keep in mask.items():  # pruned at θ0 (not zero), kept at the signed constant
        assert torch.equal(start[n][~keep], init[n][~keep])
    cfg = TrainConfig(optimizer="adam", lr=1e-2, weight_decay=1e-3, batch_size=20, duration="20it", eval_every="10it")
    train(model, tiny_data, cfg, progress=False, **kwargs)
    end = weights(model)
    for n, keep in mask.items():
        assert torch.equal(end[n][~keep], init[n][~keep])  # bit-exact: frozen weights do not move
        assert not torch.equal(end[n][keep], start[n][keep])  # kept ones trained


def test_zeroed_weights_stay_zero_through_training(tiny_data) -> None:
    model = mlp()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    mask = half(model)
    kwargs = criteria.prepare(model, mask, init, "rewind", "zero")
    cfg = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-2, batch_size=20,
                      duration="20it", eval_every="10it")
    train(model, tiny_data, cfg, progress=False, **kwargs)
    for n, keep in mask.items():
        w = model.state_dict()[n]
        assert torch.all(w[~keep] == 0) and torch.all(w[keep] != 0)


def test_unknown_actions_are_refused() -> None:
    model = mlp()
    init = model.state_dict()
    with pytest.raises(ValueError, match="mask-1"):
        criteria.prepare(model, half(model), init, "rescale")
    with pytest.raises(ValueError, match="mask-0"):
        criteria.prepare(model, half(model), init, "rewind", "keep")
    with pytest.raises(ValueError, match="generator"):
        criteria.prepare(model, half(model), init, "reshuffle")


def test_supermask_accuracy_is_the_masked_untrained_network(tiny_data) -> None:
    model = mlp()
    init = {k: v.clone() for k, v in model.state_dict().items()}
    mask = half(model)
    reference = mlp()
    mask.apply(reference)
    assert criteria.supermask_accuracy(model, mask, init, tiny_data.test) == evaluate(reference, tiny_data.test)
    loss, acc = criteria.supermask_accuracy(model, mask, init, tiny_data.test, "signed_constant")
    for n, keep in mask.items():  # the model is left in the evaluated state
        assert torch.equal(torch.sign(model.state_dict()[n][keep]), torch.sign(init[n][keep]))
    assert 0.0 <= acc <= 1.0 and loss > 0


def test_mask_digest_sees_one_bit() -> None:
    mask = half(mlp())
    flipped = {n: t.clone() for n, t in mask.items()}
    flipped["1.weight"][0, 0] = ~flipped["1.weight"][0, 0]
    assert mask.digest() == Mask(dict(mask)).digest()
    assert mask.digest() != Mask(flipped).digest()


def comparable(history: list[dict]) -> list[dict]:
    """The history with the NaN training loss of iteration 0 replaced (NaN != NaN)."""
    return [{k: (None if v != v else v) for k, v in row.items()} for row in history]


def test_train_action_matches_imp_round_and_reinit_control(tiny_data, tmp_path) -> None:
    exp = imp.Experiment(model="lenet_300_100", dataset="synthetic", device="cpu",
                         train=TrainConfig(lr=1e-2, batch_size=20, duration="20it", eval_every="10it"))
    cfg = imp.IMPConfig(rounds=1, fraction=0.5)
    ticket = imp.find_ticket(exp, cfg, tiny_data, seed=1, progress=False)
    assert ticket.rounds[1].final_state is not None
    mask = ticket.rounds[1].mask
    cache = Cache(tmp_path)
    rewound = criteria.train_action(exp, tiny_data, 1, mask, "rewind", "zero", cache, progress=False)
    assert comparable(rewound["history"]) == comparable(ticket.rounds[1].history)  # the IMP round is exactly a rewind+zero training
    reinit = criteria.train_action(exp, tiny_data, 1, mask, "reinit", "zero", cache, progress=False)
    control = imp.train_control(exp, cfg, tiny_data, ticket, 1, "reinit", seed=1, progress=False)
    assert comparable(reinit["history"]) == comparable(control.history)
    again = criteria.train_actions(exp, tiny_data, [{"seed": 1, "mask": mask, "mask1": "reinit"},
                                                    {"seed": 1, "mask": mask}], cache, progress=False)
    assert cache.hits == 2
    assert [comparable(a["history"]) for a in again] == [comparable(reinit["history"]), comparable(rewound["history"])]


def test_anatomy_grid_jobs_labels_and_rows(tiny_data) -> None:
    from ticketlib.studies.imp import study as imp
    from ticketlib.core.experiment import Experiment

    exp = Experiment(model="lenet_300_100", dataset="synthetic", device="cpu",
                     train=TrainConfig(lr=1e-2, batch_size=20, duration="10it", eval_every="10it"))
    tickets = {s: imp.find_ticket(exp, imp.IMPConfig(rounds=2, fraction=0.5), tiny_data, seed=s, progress=False)
               for s in (3, 4)}
    jobs, labels = criteria.anatomy_jobs(tickets, ["large_final", "random"], [1, 2], ["reshuffle"], [2])
    assert len(jobs) == len(labels) == 2 * (2 * 2 + 1 * 2)  # per seed: 2 criteria x 2 rounds, 2 actions at 1 round
    for job, label in zip(jobs, labels):
        ticket_mask = tickets[label["seed"]].rounds[label["round"]].mask
        assert job["seed"] == label["seed"]
        assert job["mask"].layer_densities() == ticket_mask.layer_densities()  # same per-layer counts
        if label["study"] != "criterion":
            assert all(torch.equal(job["mask"][n], ticket_mask[n]) for n in ticket_mask)  # the ticket's own mask
    assert [l["kind"] for l in labels if l["study"] != "criterion"] == ["reshuffle", "freeze"] * 2
    payloads = [{"mask": dict(j["mask"]), "result": {"test_accuracy": 0.5, "early_stop_iteration": 10}} for j in jobs]
    imp_rows = [RunRow(seed=3, round=2, kind="ticket", density=0.25, test_accuracy=90.0, early_stop_iteration=10,
                       final_test_accuracy=90.0),
                RunRow(seed=3, round=2, kind="reinit", density=0.25, test_accuracy=80.0, early_stop_iteration=10,
                       final_test_accuracy=80.0)]
    rows = criteria.anatomy_rows(labels, payloads, imp_rows)
    assert len(rows) == len(jobs) + 4 and all(r["test_accuracy"] == 50.0 for r in rows[:len(jobs)])
    assert [(r["study"], r["kind"]) for r in rows[len(jobs):]] == [
        ("mask1", "rewind"), ("mask0", "zero"), ("imp", "IMP ticket (iterative large_final)"), ("mask1", "reinit")]
