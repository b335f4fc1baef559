"""07_stability's parameters (a frozen Params, the schema of its notebook) and their cross-field checks."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ticketlib.infra.schema import StudyParams, param
from ticketlib.studies.checks import near_level, seed_problems


def check_stability_params(p: Mapping) -> list[str]:
    """07_stability: seeds for intervals, the claim level among the analysed levels, k = 0 and a
    later rewind point (the CNN claim compares them)."""
    errors = seed_problems(p)
    if not near_level(p["claim_level"], p["lenet_levels"]):
        errors.append(f"'lenet_levels' {p['lenet_levels']} must include claim_level {p['claim_level']:g}")
    points = [str(k).strip() for k in p["rewind_points"]]
    if "0it" not in points or len(set(points)) < 2:
        errors.append(f"'rewind_points' {p['rewind_points']} must include 0it and a later point (the CNN claim compares them)")
    return errors


@dataclass(frozen=True)
class StabilityParams(StudyParams):
    """07_stability's parameters: the schema its notebook's parameters cell shows (and a test keeps equal)."""

    REUSES = {"imp_params": "01_imp"}

    imp_params: str = param("params/cpu/01_imp.yaml",
                            'the 01_imp run whose LeNet tickets and random-mask control are analysed (its cached rounds are the first copies)')
    lenet_levels: list[float] = param([21.1, 3.6],
                                      '% of weights remaining of the IMP tickets analysed (the nearest round of each seed)',
                                      minimum=0, maximum=100)
    claim_level: float = param(3.6, "the level claims 1-2 judge: one of lenet_levels and of 01's control_levels",
                               minimum=0, maximum=100)
    cnn_dataset: str = param("fashion_mnist", "the CNN's data",
                             choices=('mnist', 'fashion_mnist', 'cifar10', 'cifar100'))
    cnn_model: str = param("vgg11", 'the CNN', choices=('conv2', 'conv4', 'conv6', 'resnet20', 'vgg11', 'vgg16'))
    cnn_model_kwargs: dict = param({"width": 0.125}, 'extra model arguments, e.g. {"width": 0.125}')
    cnn_pad_to: int | None = param(32, 'pad images to this side (28 -> 32 for a CIFAR VGG); None keeps them')
    cnn_optimizer: str = param("sgd", choices=('adam', 'adamw', 'sgd'))
    cnn_lr: float = param(0.1, 'learning rate', minimum=0)
    cnn_batch_size: int = param(64, minimum=1)
    cnn_duration: str = param("500it", 'training length of every copy, "<n>it" or "<n>ep"')
    cnn_eval_every: str = param("500it", 'validation interval')
    cnn_momentum: float = param(0.9, 'SGD momentum', minimum=0, maximum=1)
    cnn_weight_decay: float = param(1e-4, minimum=0)
    cnn_milestones: list[str] = param(["250it", "380it"], 'learning-rate drops')
    cnn_gamma: float = param(0.1, 'learning-rate factor at each milestone', minimum=0, maximum=1)
    cnn_warmup: str = param("0it", 'linear learning-rate warmup')
    cnn_augment: bool = param(False, 'random crop + flip (CIFAR)')
    cnn_train_size: int | None = param(10000, 'training subset, None for all the rest')
    cnn_val_size: int = param(2000, 'validation images held out of the training set', minimum=1)
    cnn_test_size: int | None = param(2000, 'test images: the error barrier is measured on them')
    cnn_density: float = param(0.2,
                               "fraction of the CNN's prunable weights its subnetwork keeps (one-shot magnitude pruning of the seed's trained dense network)",
                               minimum=0, maximum=1)
    cnn_scope: str = param("global", choices=('layerwise', 'global'))
    rewind_points: list[str] = param(["0it", "25it", "200it"],
                                     "the CNN's rewind points k: both copies start from the dense run's state there")
    seeds: list[int] = param([0, 1, 2], "the CNN's seeds (the LeNet cases use 01's seeds)")
    points: int = param(11, 'evenly spaced α in [0, 1], both ends included', minimum=3, maximum=101)
    bn_stats: str = param("interpolate",
                          "BatchNorm statistics along the path: interpolated with the weights (the claims' setting) or recomputed on training batches at each α",
                          choices=('interpolate', 'recompute'))
    bn_batches: int = param(10, 'training batches that re-estimate BN statistics at each α (bn_stats: recompute)',
                            minimum=1)
    workers: int = param(2, 'units trained in parallel processes', minimum=1, maximum=64)
    executor: str = param("auto", 'where independent units run', choices=('auto', 'local', 'dask', 'slurm'))
    data_seed: int = param(0, "seed of the CNN's train/validation split", minimum=0)
    data_root: str = param("data", 'where torchvision datasets live or are downloaded to')
    download: bool = param(False, 'allow downloading datasets that are not available offline')
    device: str = param("auto", choices=('auto', 'cpu', 'cuda'))
    cache_dir: str = param("runs/cache",
                           'the CNN\'s units are reused from here ("": a temporary folder for this run only); the LeNet units use 01\'s cache_dir')
    progress: bool = param(False, 'tqdm progress bars')

    def problems(self) -> list[str]:
        return check_stability_params(self.as_dict())
