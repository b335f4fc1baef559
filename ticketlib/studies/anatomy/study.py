"""The anatomy of a ticket (Zhou et al. 2019): mask criteria, mask-1 and mask-0 actions, supermasks.

A *criterion* scores every weight from its initial value wi and its final (trained) value wf;
higher = keep, and `pruning` does the thresholding. A *mask-1 action* says what the kept
weights start from (rewind to θ0, re-init, reshuffle, a signed constant, a constant with random
signs); a *mask-0 action* what the pruned ones do (set to zero, or frozen at their initial
value). A *supermask* is a mask evaluated on untrained weights, with no training at all.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from ticketlib.infra import execute
from ticketlib.core import pruning
from ticketlib.core import rewind
from ticketlib.infra.cache import Cache, unit_key
from ticketlib.infra.device import describe
from ticketlib.core.data import Dataset, Split
from ticketlib.core.experiment import ACTION_SEED_OFFSET, REINIT_SEED_OFFSET, Experiment
from ticketlib.studies.imp.rows import RunRow
from ticketlib.studies.imp.study import Ticket
from ticketlib.core.masks import Mask
from ticketlib.core.train import evaluate, train



def _percentile_rank(x: Tensor) -> Tensor:
    """Rank of each entry within its tensor, scaled to [0, 1] (stable: lower index ranks lower on ties)."""
    flat = x.flatten()
    ranks = torch.empty_like(flat, dtype=torch.float64)
    ranks[torch.argsort(flat.double(), stable=True)] = torch.arange(flat.numel(), dtype=torch.float64)
    return (ranks / max(flat.numel() - 1, 1)).reshape(x.shape)


def large_final(wi: Tensor, wf: Tensor) -> Tensor:
    """|wf|: the magnitude pruning of Frankle & Carbin."""
    return wf.abs()


def small_final(wi: Tensor, wf: Tensor) -> Tensor:
    """-|wf|: keep the smallest trained weights (the control that should fail)."""
    return -wf.abs()


def large_init(wi: Tensor, wf: Tensor) -> Tensor:
    """|wi|: keep the largest initial weights (training is ignored)."""
    return wi.abs()


def large_init_large_final(wi: Tensor, wf: Tensor) -> Tensor:
    """min(rank |wi|, rank |wf|) within the layer: a kept weight is in the top of both (their intersection)."""
    return torch.minimum(_percentile_rank(wi.abs()), _percentile_rank(wf.abs()))


def magnitude_increase(wi: Tensor, wf: Tensor) -> Tensor:
    """|wf| - |wi|: keep the weights whose magnitude grew most in training."""
    return wf.abs() - wi.abs()


def movement(wi: Tensor, wf: Tensor) -> Tensor:
    """|wf - wi|: keep the weights that moved most."""
    return (wf - wi).abs()


def large_final_same_sign(wi: Tensor, wf: Tensor) -> Tensor:
    """|wf| for weights whose sign did not change in training; every sign-flipped weight ranks below them.

    Zhou et al.'s sign-respecting criterion (their supermask): max(0, sign(wi)·wf), with the
    flipped ones ordered by |wf| among themselves instead of tied at zero.
    """
    magnitude = wf.abs()
    same = (wi * wf) > 0
    return torch.where(same, magnitude, magnitude - magnitude.max() - 1)


CRITERIA: dict[str, Callable[[Tensor, Tensor], Tensor] | None] = {
    "large_final": large_final,
    "small_final": small_final,
    "large_init": large_init,
    "large_init_large_final": large_init_large_final,
    "magnitude_increase": magnitude_increase,
    "movement": movement,
    "random": None,  # uniform scores from a generator
    "large_final_same_sign": large_final_same_sign,
}
MASK1 = ("rewind", "reinit", "reshuffle", "signed_constant", "random_sign_constant")
MASK0 = ("zero", "freeze")


def criterion_scores(criterion: str, init_state: Mapping[str, Tensor], final_state: Mapping[str, Tensor],
                     mask: Mask, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Scores of `criterion` for every layer of `mask` (CPU float tensors), higher = keep."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}, got {criterion!r}")
    if criterion == "random":
        if generator is None:
            raise ValueError("the random criterion needs a generator")
        return {n: torch.rand(mask[n].shape, generator=generator) for n in mask}
    score = CRITERIA[criterion]
    return {n: score(init_state[n].detach().float().cpu(), final_state[n].detach().float().cpu()) for n in mask}


def select(scores: Mapping[str, Tensor], mask: Mask, density: float | Mapping[str, float],
           scope: str = "layerwise") -> Mask:
    """Keep exactly round(density * size) weights by score, within `mask` (density of the original size).

    `density` is one number (per layer, or over all layers with scope="global") or one per layer,
    e.g. an IMP round's `mask.layer_densities()` to match its per-layer counts exactly.
    """
    if not isinstance(density, Mapping):
        return pruning.prune_to_density(scores, mask, float(density), scope=scope)
    kept = {}
    for name in mask:
        one = pruning.prune_to_density({name: scores[name]}, Mask({name: mask[name]}), density[name], "layerwise")
        kept[name] = one[name]
    return Mask(kept)


def criterion_mask(criterion: str, init_state: Mapping[str, Tensor], final_state: Mapping[str, Tensor],
                   mask: Mask, density: float | Mapping[str, float], generator: torch.Generator | None = None,
                   scope: str = "layerwise") -> Mask:
    """The mask `criterion` chooses within `mask` at `density` (see `select`)."""
    return select(criterion_scores(criterion, init_state, final_state, mask, generator), mask, density, scope)


@torch.no_grad()
def random_sign_constant(model: nn.Module, mask: Mask, init_state: Mapping[str, Tensor],
                         generator: torch.Generator) -> nn.Module:
    """Kept weights := ±std(layer's θ0) with fair random signs (the control for `rewind.signed_constant`)."""
    params = dict(model.named_parameters())
    for name, keep in mask.items():
        theta0 = init_state[name]
        signs = torch.randint(0, 2, theta0.shape, generator=generator).to(theta0.device, theta0.dtype) * 2 - 1
        value = signs * theta0.float().std().to(theta0.dtype) * keep.to(theta0.device, theta0.dtype)
        params[name].copy_(value.to(params[name].device))
    return model


@torch.no_grad()
def prepare(model: nn.Module, mask: Mask, init_state: Mapping[str, Tensor], mask1: str = "rewind",
            mask0: str = "zero", generator: torch.Generator | None = None,
            reinit_state: Mapping[str, Tensor] | None = None) -> dict[str, Mask]:
    """Set `model` to its starting point under `mask`; returns the keyword arguments for `train`.

    mask1 (kept weights): "rewind" θ0; "reinit" the weights of `reinit_state` (a fresh init);
    "reshuffle" θ0 permuted among the kept positions of each layer; "signed_constant" sign(θ0)·std;
    "random_sign_constant" ±std with random signs. mask0 (pruned weights): "zero" (kept at zero
    through training: `{"mask": mask}`) or "freeze" (left at θ0 and never trained: `{"trainable": mask}`).
    Every other parameter and buffer (biases) comes from θ0, or from `reinit_state` for "reinit".
    """
    if mask1 not in MASK1:
        raise ValueError(f"mask-1 action must be one of {MASK1}, got {mask1!r}")
    if mask0 not in MASK0:
        raise ValueError(f"mask-0 action must be one of {MASK0}, got {mask0!r}")
    if mask1 in ("reshuffle", "random_sign_constant") and generator is None:
        raise ValueError(f"mask-1 action {mask1!r} needs a generator")
    if mask1 == "reinit" and reinit_state is None:
        raise ValueError("mask-1 action 'reinit' needs reinit_state (a freshly initialised state dict)")
    rewind.restore(model, dict(reinit_state if mask1 == "reinit" else init_state))
    if mask1 == "reshuffle":
        rewind.shuffle_kept_weights(model, mask, generator)
    elif mask1 == "signed_constant":
        rewind.signed_constant(model, mask, init_state)
    elif mask1 == "random_sign_constant":
        random_sign_constant(model, mask, init_state, generator)
    if mask0 == "zero":
        mask.apply(model)
        return {"mask": mask}
    params = dict(model.named_parameters())
    for name, keep in mask.items():
        pruned = ~keep.to(params[name].device)
        params[name][pruned] = init_state[name].to(params[name].device)[pruned]
    return {"trainable": mask}


def supermask_accuracy(model: nn.Module, mask: Mask, init_state: Mapping[str, Tensor], split: Split,
                       weights: str = "rewind", generator: torch.Generator | None = None) -> tuple[float, float]:
    """(loss, accuracy) on `split` of the untrained network: `weights` (a mask-1 action) under `mask`, zeros elsewhere."""
    prepare(model, mask, init_state, weights, "zero", generator)
    return evaluate(model, split)


def action_key(exp: Experiment, seed: int, mask: Mask, mask1: str, mask0: str) -> dict:
    """The cache key of one `train_action` unit."""
    return unit_key("anatomy_train", experiment=exp, seed=seed, mask=mask.digest(), density=mask.density(),
                    mask1=mask1, mask0=mask0)


def train_action(exp: Experiment, data: Dataset, seed: int, mask: Mask, mask1: str = "rewind", mask0: str = "zero",
                 cache: Cache | None = None, progress: bool = True) -> dict:
    """Train `mask` from θ0 of `exp.build_model(data, seed)` under the two actions (one cached unit).

    Returns {"mask", "result" (TrainResult.summary()), "history"}. The key is the experiment, the seed,
    the mask's digest and the actions, so any mask (a criterion's, an IMP round's) is trained once.
    "reinit" draws the same fresh weights as `imp.train_control(..., "reinit")`.
    """
    cache = cache or Cache(None)
    key = action_key(exp, seed, mask, mask1, mask0)

    def compute() -> dict:
        reinit_state = None
        if mask1 == "reinit":
            reinit_state = rewind.capture(exp.build_model(data, seed + REINIT_SEED_OFFSET))
        model = exp.build_model(data, seed)
        init_state = rewind.capture(model)
        generator = torch.Generator().manual_seed(seed + ACTION_SEED_OFFSET)
        kwargs = prepare(model, mask, init_state, mask1, mask0, generator, reinit_state)
        result = train(model, data, exp.train, seed=seed, progress=progress, **kwargs)
        return {"mask": dict(mask), "result": result.summary(), "history": result.history}

    return cache.cached(key, compute, describe(exp.device))


def train_actions(exp: Experiment, data: Dataset | None, jobs: list[dict], cache: Cache | None = None,
                  progress: bool = True, workers: int = 1, data_root: str = "data",
                  download: bool = False, executor: str | None = None) -> list[dict]:
    """`train_action` for every job ({"seed", "mask", "mask1", "mask0"}), in order.

    The jobs not yet cached are units run through `execute.map_units` on the `executor` backend
    (`workers` > 1: that many single-threaded trainings at once, which small networks use best).
    """
    cache = cache or Cache(None)
    jobs = [{"mask1": "rewind", "mask0": "zero", **job} for job in jobs]
    done = [cache.get(action_key(exp, j["seed"], j["mask"], j["mask1"], j["mask0"])) for j in jobs]
    missing = [i for i, payload in enumerate(done) if payload is None]
    cache.hits += len(jobs) - len(missing)
    cache.misses += len(missing)
    fresh = Cache(cache.root)  # its own counters: the misses are counted above
    trained = execute.map_units(train_action, exp, [jobs[i] for i in missing], data=data, cache=fresh,
                                workers=workers, backend=executor, progress=progress, data_root=data_root,
                                download=download)
    for i, payload in zip(missing, trained):
        done[i] = payload
    return done


def supermask_sweep(model: nn.Module, init_state: Mapping[str, Tensor], final_state: Mapping[str, Tensor],
                    within: Mask, levels: Mapping[float, Mapping[str, float]], criteria: list[str], data: Dataset,
                    weights: tuple[str, ...] = ("rewind", "signed_constant"), seed: int = 0) -> list[dict]:
    """Untrained accuracy of every criterion's mask at every level, for each kind of starting weights.

    `levels` maps a label (% remaining) to per-layer densities; masks are chosen within `within`
    from θ0 = `init_state` and θf = `final_state`. One row per (criterion, level, weights) with the
    validation accuracy (to choose by) and the test accuracy (to report).
    """
    rows = []
    for criterion in criteria:
        generator = torch.Generator().manual_seed(seed + ACTION_SEED_OFFSET)
        scores = criterion_scores(criterion, init_state, final_state, within, generator)
        for label, densities in levels.items():
            mask = select(scores, within, densities)
            for kind in weights:
                _, val_acc = supermask_accuracy(model, mask, init_state, data.val, kind, generator)
                _, test_acc = evaluate(model, data.test)
                rows.append({"criterion": criterion, "percent_remaining": 100 * mask.density(), "level": label,
                             "weights": kind, "val_accuracy": 100 * val_acc, "test_accuracy": 100 * test_acc})
    return rows


def anatomy_jobs(tickets: Mapping[int, Ticket], criteria_trained: list[str], criteria_rounds: list[int],
                 mask1_actions: list[str], action_rounds: list[int]) -> tuple[list[dict], list[dict]]:
    """Zhou et al.'s grid as `train_actions` jobs, with a label per job (seed, study, kind, round).

    Per seed: every criterion's one-shot mask (within the dense mask, θ0 = init, θf = the dense run's
    final weights) at the per-layer densities of each of `criteria_rounds`; every mask-1 action and the
    freeze mask-0 action on the IMP ticket's own mask at each of `action_rounds`.
    """
    jobs, labels = [], []
    for seed, ticket in tickets.items():
        dense_round = ticket.rounds[0]
        for r in criteria_rounds:
            densities = ticket.rounds[r].mask.layer_densities()
            for name in criteria_trained:
                generator = torch.Generator().manual_seed(seed + ACTION_SEED_OFFSET)
                mask = criterion_mask(name, ticket.init_state, dense_round.final_state, dense_round.mask,
                                      densities, generator)
                jobs.append({"seed": seed, "mask": mask})
                labels.append({"seed": seed, "study": "criterion", "kind": name, "round": r})
        for r in action_rounds:
            mask = ticket.rounds[r].mask
            for action in mask1_actions:
                jobs.append({"seed": seed, "mask": mask, "mask1": action, "mask0": "zero"})
                labels.append({"seed": seed, "study": "mask1", "kind": action, "round": r})
            jobs.append({"seed": seed, "mask": mask, "mask1": "rewind", "mask0": "freeze"})
            labels.append({"seed": seed, "study": "mask0", "kind": "freeze", "round": r})
    return jobs, labels


def anatomy_rows(labels: list[dict], payloads: list[dict], imp_rows: Sequence[RunRow]) -> list[dict]:
    """One row per trained job (its label plus % remaining, test accuracy, early-stop iteration), then the IMP
    rows in the grid's terms: the ticket is mask-1 "rewind" and mask-0 "zero", its re-init control "reinit"."""
    rows = [{**label, "percent_remaining": 100 * Mask(payload["mask"]).density(),
             "test_accuracy": 100 * payload["result"]["test_accuracy"],
             "early_stop_iteration": payload["result"]["early_stop_iteration"]}
            for label, payload in zip(labels, payloads)]
    for row in imp_rows:
        base = {"seed": row.seed, "round": row.round, "percent_remaining": row.percent_remaining,
                "test_accuracy": row.test_accuracy, "early_stop_iteration": row.early_stop_iteration}
        rows.append({**base, "study": "mask1", "kind": {"ticket": "rewind", "reinit": "reinit"}[row.kind]})
        if row.kind == "ticket":
            rows.append({**base, "study": "mask0", "kind": "zero"})
            rows.append({**base, "study": "imp", "kind": "IMP ticket (iterative large_final)"})
    return rows


def supermask_study(exp: Experiment, data: Dataset, tickets: Mapping[int, Ticket],
                    supermask_criteria: list[str]) -> list[dict]:
    """Untrained accuracy of masks at every IMP round's per-layer densities, per seed: each criterion's one-shot
    mask from the dense run ("one shot"), and large_final(_same_sign) from the previous IMP round ("IMP")."""
    rows = []
    for seed, ticket in tickets.items():
        net = exp.build_model(data, seed)
        levels = {r.round: r.mask.layer_densities() for r in ticket.rounds[1:]}
        dense = ticket.rounds[0]
        one_shot = supermask_sweep(net, ticket.init_state, dense.final_state, dense.mask, levels,
                                   list(supermask_criteria), data, seed=seed)
        rows += [{**row, "seed": seed, "source": "one shot"} for row in one_shot]
        for r in ticket.rounds[1:]:
            previous = ticket.rounds[r.round - 1]
            from_imp = supermask_sweep(net, ticket.init_state, previous.final_state, previous.mask,
                                       {r.round: levels[r.round]}, ["large_final", "large_final_same_sign"],
                                       data, seed=seed)
            rows += [{**row, "seed": seed, "source": "IMP"} for row in from_imp]
    return rows
