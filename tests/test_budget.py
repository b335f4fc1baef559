"""GPU-hours from a params file's own settings (`ticketlib.runner.budget`), with a fake steps/s."""
import math
from pathlib import Path

import pytest

from ticketlib.runner import budget
from ticketlib.runner import config


def test_vgg16_imp_steps_follow_its_params() -> None:
    notebook, p = config.resolve("params/paper/01_imp-vgg16.yaml")
    (kind, steps), = budget.work(notebook.stem, p)
    per_training = 160 * math.ceil((50_000 - 5000) / 128)  # 45k training images, batch 128, 160 epochs
    trainings = 21 + 2 * 6  # 20 rounds + dense; 2 controls at 6 distinct rounds (51.3 ... 1.5%)
    assert kind == budget.StepKind("vgg16", "cifar10", 128) and steps == 3 * trainings * per_training
    assert budget.gpu_hours([(kind, steps)], lambda k: 50.0) == pytest.approx(steps / 50 / 3600)


def test_earlybird_counts_batch_256_and_both_pipelines() -> None:
    notebook, p = config.resolve("params/paper/04_early_tickets-vgg16_cifar100.yaml")
    (kind, steps), _imp = budget.work(notebook.stem, p)
    assert kind.batch == 256 and kind.dataset == "cifar100"
    assert steps == 3 * (1 + 2 * 3) * 160 * math.ceil(45_000 / 256)


def test_bert_steps_use_glue_split_sizes_and_the_params_precision() -> None:
    notebook, p = config.resolve("params/paper/03_bert_transfer.yaml")
    (kind, steps), = budget.work(notebook.stem, p)
    assert (kind.tokens, kind.batch, kind.precision) == (128, 32, "auto") and steps > 0


@pytest.mark.parametrize("path", sorted(Path("params/paper").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_paper_file_has_a_cost(path: Path) -> None:
    notebook, p = config.resolve(path)
    hours = budget.gpu_hours(budget.work(notebook.stem, p), lambda kind: 100.0)
    assert hours >= 0 and (hours > 0) == (notebook.stem != "06_deployment")


def test_early_stop_seeds_count_their_rounds_down_to_the_learns_faster_level() -> None:
    notebook, p = config.resolve("params/cpu/01_imp.yaml")
    (kind, steps), = budget.work(notebook.stem, {**p, "early_stop_seeds": []})
    (_, more), = budget.work(notebook.stem, {**p, "early_stop_seeds": [4, 5]})
    per_training = 10_000  # "10000it"
    assert more - steps == 2 * 8 * per_training  # rounds 0-7 (0.8^7 = 21.0% <= 21.1%), no controls
    assert steps == 4 * (16 + 2) * per_training  # the full seeds unchanged: 15 rounds + dense, 2 controls at 3.6%
