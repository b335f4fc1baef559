"""What a params file costs on a GPU: its training steps, read from its own params, times measured steps/s.

`work(run, params)` lists a run's training steps per kind of step (`StepKind`: a CNN at a batch size, or
an encoder at a batch size and sequence length), counted from the params as the notebook's units train
them: 01's rounds and controls (and its early-stop seeds' rounds down to the learns-faster level), 02's grid, controls and IMP, 03's IMP rounds, controls, transfer runs and
mask-fit run per task (GLUE's split sizes from `text.GLUE_LABELLED`), 04's dense search and both pipelines,
05's criteria and actions (its IMP rounds are 01's, reused), 06 none (it times on the CPU). Counts are
upper bounds where a unit trains less (rewound rounds, slimmed networks, dynamic padding).
`gpu_hours(work, steps_per_second)` turns them into hours; benchmarks/gpu_check.sh measures the steps/s.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ticketlib.core.levels import nearest
from ticketlib.core.rewind import Step

TRAIN_SET = {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000, "cifar100": 50_000}


@dataclass(frozen=True)
class StepKind:
    """One kind of training step: `model` on `dataset` at `batch` (CNNs), or an encoder with `tokens` (BERT)."""

    model: str
    dataset: str
    batch: int
    tokens: int = 0
    precision: str = "fp32"


def _steps(duration: str, examples: int, batch: int) -> int:
    return Step(duration).iteration(max(1, math.ceil(examples / batch)))


def _train_examples(p: Mapping, dataset: str | None = None, size_key: str = "train_size") -> int:
    dataset = dataset or p["dataset"]
    return p.get(size_key) or TRAIN_SET[dataset] - int(p.get("val_size", 5000))


def _levels_rounds(levels, rounds: int, fraction: float) -> int:
    """How many distinct IMP rounds the levels (% remaining) pick (the nearest on a log scale)."""
    percents = [100 * (1 - fraction) ** r for r in range(rounds + 1)]
    return len({nearest(range(rounds + 1), level, lambda r: percents[r]) for level in levels})


def _cnn(p: Mapping, trainings: int, duration: str | None = None, **where) -> tuple[StepKind, int]:
    dataset, batch = where.get("dataset", p["dataset"]), where.get("batch", p["batch_size"])
    kind = StepKind(where.get("model", p["model"]), dataset, batch)
    return kind, trainings * _steps(duration or p["duration"], where.get("examples") or _train_examples(p, dataset), batch)


def _rounds_until(level: float, rounds: int, fraction: float) -> int:
    """How many IMP rounds a run stopped at `level` (% remaining) trains: up to the first at or below it (by
    `fraction` alone, as `_levels_rounds`), `rounds` at most."""
    return next((r for r in range(rounds + 1) if 100 * (1 - fraction) ** r <= level), rounds)


def _imp_work(p: Mapping) -> list[tuple[StepKind, int]]:
    """Per full seed every round and 2 controls per distinct control round; per early-stop seed its rounds down to
    the learns-faster level (dense included), no controls."""
    from ticketlib.studies.imp.claims import learns_faster_level

    controls = 2 * _levels_rounds(p["control_levels"], p["rounds"], p["prune_fraction"])
    trainings = len(p["seeds"]) * (p["rounds"] + 1 + controls)
    early = list(p.get("early_stop_seeds") or [])
    if early:
        level = learns_faster_level(p["model"], p["dataset"])
        trainings += len(early) * (1 + _rounds_until(level, p["rounds"], p["prune_fraction"]))
    return [_cnn(p, trainings)]


def _conservation_work(p: Mapping) -> list[tuple[StepKind, int]]:
    grid = len(p["methods"]) * len(p["compressions"])
    grid += len(p["control_methods"]) * (len(p["controls"]) + (p["control_compression"] not in p["compressions"]))
    return [_cnn(p, len(p["seeds"]) * grid), _cnn(p, p["imp_rounds"] + 1, p["imp_duration"])]


def _bert_work(p: Mapping) -> list[tuple[StepKind, int]]:
    from ticketlib.core.text import GLUE_LABELLED, part_sizes

    kind = StepKind(p["encoder"], "glue", p["batch_size"], p["max_length"], p["precision"])
    tasks = list(p["tasks"])
    levels = len({*map(float, p["control_sparsities"]), float(p["claim_sparsity"])})
    steps = 0
    for name in tasks:
        n = p["train_size"] or part_sizes(GLUE_LABELLED[name.split("/", 1)[1]])["train"]
        runs = (p["rounds"] + 1) + len(p["controls"]) * levels + len(tasks) + 1  # IMP, controls, transfer in
        runs += 1 if name == tasks[0] else 0  # the mask-fit run on the sentiment task
        steps += runs * _steps(p["duration"], n, p["batch_size"])
    if p["mlm"]:
        steps += (p["rounds"] + 1) * _steps(p["duration"], p["mlm_train_size"], p["batch_size"])
    return [(kind, len(p["seeds"]) * steps)]


def _earlybird_work(p: Mapping) -> list[tuple[StepKind, int]]:
    examples = _train_examples(p)
    per_seed = _steps(p["duration"], examples, p["batch_size"])
    per_seed += 2 * len(p.get("pipeline_ratios") or p["ratios"]) * _steps(p["retrain_duration"], examples,
                                                                          p["batch_size"])
    kind = StepKind(p["model"], p["dataset"], p["batch_size"])
    imp = _cnn(p, p["imp_rounds"] + 1, p["imp_duration"], model=p.get("imp_model", "lenet_300_100"),
               dataset=p.get("imp_dataset", "mnist"), batch=60, examples=p.get("imp_train_size") or 55_000)
    return [(kind, len(p["seeds"]) * per_seed), imp]


def _anatomy_work(p: Mapping) -> list[tuple[StepKind, int]]:
    """05's criteria and actions, each a training of 01's recipe (its `imp_params`) for every one of 01's seeds."""
    from ticketlib.runner.config import resolve

    imp = resolve(p["imp_params"])[1]
    actions = 2 + len(p["mask1_actions"]) + 2  # rewind and reinit are IMP's; the mask-1 actions; zero, freeze
    trainings = len(p["criteria_trained"]) * len(p["criteria_levels"]) + actions * len(p["action_levels"])
    return [_cnn(imp, len(imp["seeds"]) * trainings)]


def _stability_work(p: Mapping) -> list[tuple[StepKind, int]]:
    """07's CNN: per seed one dense run, then two copies of the dense network and of its subnetwork from each k
    (counted as whole runs: an upper bound). LeNet's second copies follow 01's file and are not counted here
    (10k-50k LeNet iterations each: minutes on a GPU)."""
    examples = p["cnn_train_size"] or TRAIN_SET[p["cnn_dataset"]] - int(p.get("cnn_val_size") or 5000)
    trainings = len(p["seeds"]) * (1 + 4 * len(p["rewind_points"]))
    kind = StepKind(p["cnn_model"], p["cnn_dataset"], p["cnn_batch_size"])
    return [(kind, trainings * _steps(p["cnn_duration"], examples, p["cnn_batch_size"]))]


WORK: dict[str, Callable[[Mapping], list[tuple[StepKind, int]]]] = {
    "01_imp": _imp_work, "02_conservation": _conservation_work, "03_bert_transfer": _bert_work,
    "04_early_tickets": _earlybird_work, "05_anatomy": _anatomy_work, "06_deployment": lambda p: [],
    "07_stability": _stability_work}


def work(notebook: str, params: Mapping) -> list[tuple[StepKind, int]]:
    """(kind of step, number of steps) of a run of `notebook` (its stem) under resolved `params`."""
    return WORK[notebook](params)


def gpu_hours(steps: list[tuple[StepKind, int]], steps_per_second: Callable[[StepKind], float]) -> float:
    """Hours of one GPU for `steps`, at `steps_per_second(kind)` measured for each kind."""
    return sum(count / steps_per_second(kind) for kind, count in steps) / 3600
