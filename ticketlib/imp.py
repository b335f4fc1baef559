"""Iterative magnitude pruning: train -> prune -> rewind -> repeat, one cached unit per round.

`Experiment` says what is trained on what (its dict is part of every cache key);
`IMPConfig` says how to prune and where to rewind. `find_ticket` runs or resumes
the rounds; `train_control` trains the classic controls of a round's mask (random
re-initialisation, random mask with the same per-layer densities).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from . import data as data_lib
from . import execute, models, pruning, rewind, scores
from .cache import Cache, unit_key
from .device import describe
from .masks import Mask
from .experiment import RANDOM_MASK_SEED_OFFSET, REINIT_SEED_OFFSET, Experiment
from .train import train

CONTROLS = ("reinit", "random_mask")
FRACTION_OF = ("remaining", "original")


@dataclass
class IMPConfig:
    """How IMP prunes and rewinds.

    fraction_of="remaining": each round prunes `fraction` of the weights still kept (Frankle & Carbin);
    "original": each round removes another `fraction` of the original count (Chen et al.'s BERT tickets).
    `overrides` maps layer names to their own rate; the key "output" stands for the output layer.
    """

    rounds: int
    fraction: float = 0.2
    scope: str = "layerwise"
    overrides: dict[str, float] = field(default_factory=dict)
    rewind: str = "0it"
    fraction_of: str = "remaining"

    def __post_init__(self):
        rewind.Step(self.rewind)
        if self.fraction_of not in FRACTION_OF:
            raise ValueError(f"fraction_of must be one of {FRACTION_OF}, got {self.fraction_of!r}")
        if self.scope not in pruning.SCOPES:
            raise ValueError(f"scope must be one of {pruning.SCOPES}, got {self.scope!r}")
        for name, rate in [("fraction", self.fraction), *self.overrides.items()]:
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"pruning rate {name!r} must be in [0, 1], got {rate}")

    def key(self) -> dict:
        """What identifies a round: not `rounds`, so going from 18 to 20 rounds reuses rounds 0-18."""
        key = asdict(self)
        key.pop("rounds")
        return key


@dataclass
class Round:
    """One IMP round: the mask it trained and what the training measured."""

    round: int
    mask: Mask
    result: dict
    history: list[dict]
    final_state: dict | None = None  # the trained weights (rounds and controls alike)

    @property
    def density(self) -> float:
        return self.mask.density()


@dataclass
class Ticket:
    """A finished (or resumed) IMP run."""

    rounds: list[Round]
    init_state: dict
    rewind_state: dict
    rewind_iteration: int


def resolve_overrides(model: nn.Module, overrides: dict[str, float]) -> dict[str, float]:
    """Expand the aliases "conv" (every conv weight) and "output" (the output layer's weight).

    Explicit layer names win over "conv", and "output" wins over both.
    """
    conv = [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    resolved = {name: overrides["conv"] for name in conv} if "conv" in overrides else {}
    resolved.update({n: r for n, r in overrides.items() if n not in ("conv", "output")})
    if "output" in overrides:
        resolved[models.output_layer_name(model)] = overrides["output"]
    return resolved


def _payload(model: nn.Module, mask: Mask, result, extra: dict | None = None) -> dict:
    return {"mask": dict(mask), "result": result.summary(), "history": result.history,
            "final_state": rewind.capture(model), **(extra or {})}


def next_mask(imp: IMPConfig, model: nn.Module, trained_state: dict, mask: Mask, round_index: int) -> Mask:
    """The mask of round `round_index` from the previous round's trained weights."""
    model.load_state_dict(trained_state)
    magnitudes = scores.magnitude(model, mask)
    if imp.fraction_of == "original":
        density = max(0.0, 1.0 - imp.fraction * round_index)
        return pruning.prune_to_density(magnitudes, mask, density, scope=imp.scope)
    return pruning.prune(magnitudes, mask, imp.fraction, scope=imp.scope,
                         overrides=resolve_overrides(model, imp.overrides))


def find_ticket(exp: Experiment, imp: IMPConfig, data: data_lib.Dataset, seed: int,
                cache: Cache | None = None, progress: bool = True, names: list[str] | None = None) -> Ticket:
    """Run (or resume from the cache) `imp.rounds + 1` trainings: the dense one, then one per pruning round."""
    cache = cache or Cache(None)
    model = exp.build_model(data, seed)
    init_state = rewind.capture(model)
    mask = Mask.ones_like(model, names)
    ipe = exp.train.iterations_per_epoch(len(data.train))
    rewind_iteration = rewind.Step(imp.rewind).iteration(ipe)
    total = exp.train.iterations(len(data.train))
    if rewind_iteration >= total:
        raise ValueError(f"rewind step {imp.rewind!r} (iteration {rewind_iteration}) is not inside training "
                         f"({exp.train.duration!r} = {total} iterations)")
    base = unit_key("imp_round", experiment=exp, imp=imp, seed=seed, names=names)
    where = describe(exp.device)

    def dense() -> dict:
        rewind.restore(model, init_state)
        result = train(model, data, exp.train, mask=mask, seed=seed,
                       capture_at=rewind_iteration or None, progress=progress)
        state = result.captured_state if rewind_iteration else init_state
        return _payload(model, mask, result, {"rewind_state": state})

    first = cache.cached({**base, "round": 0}, dense, where)
    rounds = [Round(0, Mask(first["mask"]), first["result"], first["history"], first["final_state"])]
    rewind_state, previous = first["rewind_state"], first
    for r in range(1, imp.rounds + 1):
        def compute(r=r, previous=previous) -> dict:
            round_mask = next_mask(imp, model, previous["final_state"], Mask(previous["mask"]), r)
            rewind.restore(model, rewind_state, round_mask)
            result = train(model, data, exp.train, mask=round_mask, seed=seed,
                           start_iteration=rewind_iteration, progress=progress)
            return _payload(model, round_mask, result)

        previous = cache.cached({**base, "round": r}, compute, where)
        rounds.append(Round(r, Mask(previous["mask"]), previous["result"], previous["history"],
                            previous["final_state"]))
    return Ticket(rounds, init_state, rewind_state, rewind_iteration)


def train_control(exp: Experiment, imp: IMPConfig, data: data_lib.Dataset, ticket: Ticket, round_index: int,
                  kind: str, seed: int, cache: Cache | None = None, progress: bool = True) -> Round:
    """Train a control of round `round_index`'s ticket.

    "reinit": the same mask on fresh weights from another seed, trained from iteration 0.
    "random_mask": a random mask with the ticket's per-layer counts on the ticket's rewound weights.
    """
    if kind not in CONTROLS:
        raise ValueError(f"control must be one of {CONTROLS}, got {kind!r}")
    cache = cache or Cache(None)
    ticket_mask = ticket.rounds[round_index].mask
    key = unit_key("imp_control", experiment=exp, imp=imp, seed=seed, round=round_index, control=kind,
                   mask_density=ticket_mask.density())

    def compute() -> dict:
        model = exp.build_model(data, seed)
        if kind == "reinit":
            mask, start = ticket_mask, 0
            model = exp.build_model(data, seed + REINIT_SEED_OFFSET)
            mask.apply(model)
        else:
            mask = pruning.random_mask_like(ticket_mask, torch.Generator().manual_seed(seed + RANDOM_MASK_SEED_OFFSET))
            start = ticket.rewind_iteration
            rewind.restore(model, ticket.rewind_state, mask)
        result = train(model, data, exp.train, mask=mask, seed=seed, start_iteration=start, progress=progress)
        return _payload(model, mask, result)

    payload = cache.cached(key, compute, describe(exp.device))
    return Round(round_index, Mask(payload["mask"]), payload["result"], payload["history"], payload["final_state"])


def nearest_round(rounds: list[Round], percent: float) -> Round:
    """The round whose % of weights remaining is closest to `percent` (on a log scale)."""
    import math

    return min(rounds, key=lambda r: abs(math.log(max(r.density, 1e-12) * 100 / percent)))


def round_row(round_: Round, seed: int, kind: str) -> dict:
    """One tidy row for tables and figures."""
    return {"seed": seed, "kind": kind, "round": round_.round, "percent_remaining": 100 * round_.density,
            "test_accuracy": 100 * round_.result["test_accuracy"],
            "early_stop_iteration": round_.result["early_stop_iteration"],
            "final_test_accuracy": 100 * round_.result["final_test_accuracy"],
            "seconds": round_.result["seconds"]}


def seed_study(exp: Experiment, data: data_lib.Dataset, imp: IMPConfig, seed: int, control_levels: list[float],
               controls: tuple[str, ...] = CONTROLS, cache: Cache | None = None,
               progress: bool = True) -> tuple[Ticket, list[dict]]:
    """IMP for one seed and its controls at the rounds nearest `control_levels`: one unit of `imp_study`."""
    ticket = find_ticket(exp, imp, data, seed, cache=cache, progress=progress)
    rows = [round_row(r, seed, "ticket") for r in ticket.rounds]
    for index in sorted({nearest_round(ticket.rounds, level).round for level in control_levels}):
        for kind in controls:
            control = train_control(exp, imp, data, ticket, index, kind, seed, cache, progress)
            rows.append(round_row(control, seed, kind))
    return ticket, rows


def imp_study(exp: Experiment, imp: IMPConfig, data: data_lib.Dataset | None, seeds: list[int],
              control_levels: list[float], controls: tuple[str, ...] = CONTROLS, cache: Cache | None = None,
              progress: bool = True, workers: int = 1, data_root: str = "data",
              download: bool = False, executor: str | None = None) -> tuple[dict[int, Ticket], list[dict]]:
    """IMP for every seed plus the controls at the rounds nearest `control_levels` (% remaining).

    Returns the tickets and tidy rows (kind = "ticket" or a control name) for tables and claims.
    Seeds are independent units run through `execute.map_units` on the `executor` backend: `workers`
    > 1 runs them in parallel with cores/workers threads each (small networks like LeNet use two
    cores better as two single-threaded trainings than as one two-threaded one: 1.6x here).
    """
    jobs = [{"imp": imp, "seed": s, "control_levels": list(control_levels), "controls": tuple(controls)}
            for s in seeds]
    outcomes = execute.map_units(seed_study, exp, jobs, data=data, cache=cache, workers=workers,
                                 backend=executor, progress=progress, data_root=data_root, download=download)
    tickets = {seed: ticket for seed, (ticket, _) in zip(seeds, outcomes)}
    rows = [row for _, seed_rows in outcomes for row in seed_rows]
    return tickets, rows
