"""04_early_tickets' parameters (a frozen Params, the schema of its notebook) and their cross-field checks."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ticketlib.infra.schema import StudyParams, param
from ticketlib.studies.checks import seed_problems


def check_earlybird_params(p: Mapping) -> list[str]:
    errors = seed_problems(p)
    missing = [r for r in p["pipeline_ratios"] if r not in p["ratios"]]
    if missing or not p["pipeline_ratios"]:
        errors.append(f"'pipeline_ratios' {p['pipeline_ratios']} must be a non-empty subset of 'ratios' {p['ratios']}")
    if p["latency_ratio_p"] not in p["pipeline_ratios"]:
        errors.append(f"'latency_ratio_p' {p['latency_ratio_p']} must be one of 'pipeline_ratios' "
                      f"{p['pipeline_ratios']}: the claims judge the pipelines and the latency at that p")
    if p["latency_repeats"] < 2:
        errors.append("'latency_repeats' must be at least 2 for an interval")
    return errors


@dataclass(frozen=True)
class EarlyTicketsParams(StudyParams):
    """04_early_tickets's parameters: the schema its notebook's parameters cell shows (and a test keeps equal)."""

    dataset: str = param("fashion_mnist", 'training data', choices=('mnist', 'fashion_mnist', 'cifar10', 'cifar100'))
    model: str = param("vgg11", 'a network slim can narrow: VGG with BatchNorm or the bottleneck PreResNet',
                       choices=('vgg11', 'vgg16', 'preresnet101'))
    model_kwargs: dict = param({"width": 0.125}, 'extra model arguments, e.g. the channel width multiplier')
    optimizer: str = param("sgd", choices=('adam', 'adamw', 'sgd'))
    lr: float = param(0.1, 'learning rate', minimum=0)
    batch_size: int = param(256, minimum=1)
    duration: str = param("40ep", 'dense training length, in epochs like "160ep"')
    milestones: list[str] = param(["20ep", "30ep"], 'learning-rate drops of the dense schedule')
    gamma: float = param(0.1, 'learning-rate factor at each milestone', minimum=0, maximum=1)
    momentum: float = param(0.9, 'SGD momentum', minimum=0, maximum=1)
    weight_decay: float = param(1e-4, minimum=0)
    augment: bool = param(False, 'random crop + flip (CIFAR)')
    ratios: list[float] = param([0.3, 0.5, 0.7], 'channel pruning ratios p searched (detection is free for every p)',
                                minimum=0, maximum=0.99)
    pipeline_ratios: list[float] = param([0.3, 0.5, 0.7],
                                         'ratios whose early-bird and standard pipelines are trained, per seed',
                                         minimum=0, maximum=0.99)
    l1: float = param(1e-4, "network slimming's L1 strength on BN scales", minimum=0)
    epsilon: float = param(0.1, 'early-bird threshold on the mask distance', minimum=0, maximum=1)
    window: int = param(5, 'masks kept by the detector', minimum=2)
    retrain_duration: str = param("40ep", 'standard pipeline: retraining of the pruned network')
    retrain_milestones: list[str] = param(["20ep", "30ep"], 'learning-rate drops of the retraining')
    retrain_lr: float = param(0.1, 'learning rate of the retraining', minimum=0)
    early_fraction: float = param(0.4,
                                  'ours: "early" means detected within this fraction of the epochs (the paper has no number for this setting)',
                                  minimum=0, maximum=1)
    cost_ratio: float = param(0.5, 'cost_saved holds if early-bird costs at most this fraction of standard',
                              minimum=0)
    latency_ratio_p: float = param(0.5,
                                   "the p the claims judge: its pipelines and its network's latency against the dense one",
                                   minimum=0, maximum=0.99)
    latency_batch: int = param(256, 'test images per timed forward pass', minimum=1)
    latency_repeats: int = param(30, 'timed passes per network', minimum=1)
    imp_dataset: str = param("mnist", 'unstructured part: IMP data', choices=('mnist', 'fashion_mnist'))
    imp_model: str = param("lenet_300_100", 'unstructured part: IMP network',
                           choices=('lenet_300_100', 'conv2', 'conv4'))
    imp_duration: str = param("2000it", 'training length of each IMP round')
    imp_rounds: int = param(8, 'IMP pruning rounds', minimum=1, maximum=30)
    imp_fraction: float = param(0.2, 'fraction of the remaining weights IMP prunes per round (Frankle & Carbin)',
                                minimum=0, maximum=1)
    imp_layer_fractions: dict = param({"output": 0.1}, 'per-layer IMP rates; the output layer at half rate')
    imp_train_size: int | None = param(None, 'IMP training subset, None for all')
    train_size: int | None = param(20000, 'training subset size, None for all the rest')
    val_size: int = param(5000, 'validation images held out of the training set', minimum=1)
    test_size: int | None = param(None, 'test subset size, None for all')
    seeds: list[int] = param([0, 1, 2],
                             'one dense training (and its pipelines) per seed: initialisation and data order')
    data_seed: int = param(0, 'seed of the train/validation split', minimum=0)
    data_root: str = param("data", 'where torchvision datasets live or are downloaded to')
    download: bool = param(False, 'allow downloading datasets that are not available offline')
    device: str = param("auto", choices=('auto', 'cpu', 'cuda'))
    cache_dir: str = param("runs/cache", 'finished trainings are reused from here; "" disables the cache')
    progress: bool = param(True, 'tqdm progress bars')

    def problems(self) -> list[str]:
        return check_earlybird_params(self.as_dict())
