"""Iterative magnitude pruning: train -> prune -> rewind -> repeat, one cached unit per round.

`Experiment` says what is trained on what (its dict is part of every cache key);
`IMPConfig` says how to prune and where to rewind. `find_ticket` runs or resumes
the rounds; `train_control` trains the classic controls of a round's mask (random
re-initialisation, random mask with the same per-layer densities). `imp_study` can add
early-stop seeds: their rounds only down to the learns-faster level, no controls.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ticketlib.core.levels import nearest
from ticketlib.studies.imp.claims import learns_faster_level
from ticketlib.studies.imp.rows import EARLY_STOP_KIND, RunRow
from ticketlib.core import data as data_lib
from ticketlib.infra import execute
from ticketlib.core import pruning
from ticketlib.core import rewind
from ticketlib.core import scores
from ticketlib.core import search
from ticketlib.infra.cache import Cache, unit_key
from ticketlib.infra.device import describe
from ticketlib.core.masks import Mask
from ticketlib.core.experiment import RANDOM_MASK_SEED_OFFSET, REINIT_SEED_OFFSET, Experiment, from_params
from ticketlib.core.pruning import resolve_overrides
from ticketlib.core.search import FRACTION_OF, IMPConfig, Round, Ticket
from ticketlib.core.train import train

CONTROLS = ("reinit", "random_mask")
__all__ = ["CONTROLS", "FRACTION_OF", "IMPConfig", "Round", "Ticket", "find_ticket", "imp_study", "nearest_round",
           "next_mask", "resolve_overrides", "round_row", "seed_study", "train_control"]


def imp_setup(p: Mapping) -> tuple[Experiment, IMPConfig]:
    """The `Experiment` and `IMPConfig` of a resolved 01_imp params mapping: 01 builds its run with it, and 05, 06
    and 07 build 01's from 01's params file with it, so their calls make 01's unit keys and the cache returns 01's
    rounds."""
    cfg = IMPConfig(rounds=p["rounds"], fraction=p["prune_fraction"], scope=p["scope"],
                    overrides=dict(p["layer_fractions"]), rewind=p["rewind"])
    return from_params(p), cfg


def _payload(model: nn.Module, mask: Mask, result, extra: dict | None = None) -> dict:
    return {"mask": dict(mask), "result": result.summary(), "history": result.history,
            "final_state": rewind.capture(model), **(extra or {})}


def next_mask(imp: IMPConfig, model: nn.Module, trained_state: dict, mask: Mask, round_index: int) -> Mask:
    """The mask of round `round_index` from the previous round's trained weights."""
    model.load_state_dict(trained_state)
    return search.prune_step(imp, scores.magnitude(model, mask), mask, round_index, model)


def find_ticket(exp: Experiment, imp: IMPConfig, data: data_lib.Dataset, seed: int,
                cache: Cache | None = None, progress: bool = True, names: list[str] | None = None,
                until_density: float | None = None) -> Ticket:
    """Run (or resume from the cache) `imp.rounds + 1` trainings: the dense one, then one per pruning round.

    `search.find_ticket` with `train.train` as the loop (which fast-forwards the schedule and data order
    of a rewound round) and one cached unit per round, keyed by (experiment, imp, seed, names, round).
    `until_density` (a fraction kept) stops after the first round at or below it; it is in no key, so a
    truncated run's units are the full run's first rounds.
    """
    model = exp.build_model(data, seed)
    ipe = exp.train.iterations_per_epoch(len(data.train))
    rewind_iteration = rewind.Step(imp.rewind).iteration(ipe)
    total = exp.train.iterations(len(data.train))
    if rewind_iteration >= total:
        raise ValueError(f"rewind step {imp.rewind!r} (iteration {rewind_iteration}) is not inside training "
                         f"({exp.train.duration!r} = {total} iterations)")
    base = unit_key("imp_round", experiment=exp, imp=imp, seed=seed, names=names)

    def train_fn(model: nn.Module, mask: Mask, context: search.RoundContext):
        result = train(model, data, exp.train, mask=mask, seed=seed, start_iteration=context.start_iteration,
                       capture_at=context.capture_at, progress=progress)
        if context.capture_at is not None:
            context.rewind_point(result.captured_state)
        return result

    rounds = search.CacheRounds(cache or Cache(None), base, describe(exp.device))
    return search.find_ticket(model, train_fn, imp, cache=rounds, names=names, iterations_per_epoch=ipe,
                              until_density=until_density)


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
        return _payload(model, mask, result)  # its final_state is 07's first copy of the random-mask control

    payload = cache.cached(key, compute, describe(exp.device))
    return Round(round_index, Mask(payload["mask"]), payload["result"], payload["history"], payload["final_state"])


def nearest_round(rounds: list[Round], percent: float) -> Round:
    """The round whose % of weights remaining is closest to `percent` (on a log scale)."""
    return nearest(rounds, percent, lambda r: r.density * 100)


def round_row(round_: Round, seed: int, kind: str) -> RunRow:
    """The typed row of one trained network (accuracies in %), for claims, tables and figures."""
    return RunRow(seed=seed, kind=kind, round=round_.round, density=round_.density,
                  test_accuracy=100 * round_.result["test_accuracy"],
                  early_stop_iteration=round_.result["early_stop_iteration"],
                  final_test_accuracy=100 * round_.result["final_test_accuracy"], seconds=round_.result["seconds"])


def seed_study(exp: Experiment, data: data_lib.Dataset, imp: IMPConfig, seed: int, control_levels: list[float],
               controls: tuple[str, ...] = CONTROLS, cache: Cache | None = None, progress: bool = True,
               until_density: float | None = None, kind: str = "ticket") -> tuple[Ticket, list[RunRow]]:
    """IMP for one seed and its controls at the rounds nearest `control_levels`: one unit of `imp_study`.

    With `until_density` (a fraction kept) the rounds stop at the first one at or below it and no control is
    trained (the rounds nearest lower levels are missing); `kind` labels the ticket rows.
    """
    if until_density is not None and controls and control_levels:
        raise ValueError("a truncated seed (until_density) trains no controls: pass control_levels=[] or controls=()")
    ticket = find_ticket(exp, imp, data, seed, cache=cache, progress=progress, until_density=until_density)
    rows = [round_row(r, seed, kind) for r in ticket.rounds]
    for index in sorted({nearest_round(ticket.rounds, level).round for level in control_levels}):
        for kind in controls:
            control = train_control(exp, imp, data, ticket, index, kind, seed, cache, progress)
            rows.append(round_row(control, seed, kind))
    return ticket, rows


def imp_study(exp: Experiment, imp: IMPConfig, data: data_lib.Dataset | None, seeds: list[int],
              control_levels: list[float], controls: tuple[str, ...] = CONTROLS, cache: Cache | None = None,
              progress: bool = True, workers: int = 1, data_root: str = "data",
              download: bool = False, executor: str | None = None, early_stop_seeds: Sequence[int] = (),
              early_stop_level: float | None = None) -> tuple[dict[int, Ticket], list[RunRow]]:
    """IMP for every seed plus the controls at the rounds nearest `control_levels` (% remaining).

    Returns the tickets and typed rows (`RunRow`; kind = "ticket" or a control name) for tables and claims.
    Seeds are independent units run through `execute.map_units` on the `executor` backend: `workers`
    > 1 runs them in parallel with cores/workers threads each (small networks like LeNet use two
    cores better as two single-threaded trainings than as one two-threaded one: 1.6x here).

    `early_stop_seeds` are extra seeds for the learns-faster claim alone, run as units of the same map: their
    rounds only down to `early_stop_level` (% remaining; default `claims.learns_faster_level` of the
    experiment's model and dataset), no controls, rows of kind `EARLY_STOP_KIND`. Their units are the full
    run's first rounds; their truncated tickets are not returned (only their rows), so `tickets` holds full runs.
    """
    overlap = sorted(set(seeds) & set(early_stop_seeds))
    if overlap:
        raise ValueError(f"seeds {overlap} are both full seeds and early-stop seeds")
    if early_stop_level is None:
        early_stop_level = learns_faster_level(exp.model, exp.dataset)
    jobs = [{"imp": imp, "seed": s, "control_levels": list(control_levels), "controls": tuple(controls)}
            for s in seeds]
    jobs += [{"imp": imp, "seed": s, "control_levels": [], "controls": (), "until_density": early_stop_level / 100,
              "kind": EARLY_STOP_KIND} for s in early_stop_seeds]
    outcomes = execute.map_units(seed_study, exp, jobs, data=data, cache=cache, workers=workers,
                                 backend=executor, progress=progress, data_root=data_root, download=download)
    tickets = {seed: ticket for seed, (ticket, _) in zip(seeds, outcomes)}
    rows = [row for _, seed_rows in outcomes for row in seed_rows]
    return tickets, rows
