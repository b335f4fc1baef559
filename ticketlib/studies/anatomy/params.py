"""05_anatomy's parameters (a frozen Params, the schema of its notebook) and their cross-field checks."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ticketlib.infra.schema import StudyParams, param
from ticketlib.studies.checks import missing_names, near_level, seed_problems


def check_anatomy_params(p: Mapping) -> list[str]:
    errors = seed_problems(p) + missing_names(p, {"criteria_trained": ["large_final", "magnitude_increase", "random"],
                                       "mask1_actions": ["signed_constant", "random_sign_constant"],
                                       "supermask_criteria": ["large_final_same_sign"]})
    for key in ["criteria_levels", "action_levels"]:
        if not near_level(p["claim_level"], p[key]):
            errors.append(f"'{key}' {p[key]} must include claim_level {p['claim_level']:g}")
    return errors


@dataclass(frozen=True)
class AnatomyParams(StudyParams):
    """05_anatomy's parameters: the schema its notebook's parameters cell shows (and a test keeps equal)."""

    dataset: str = param("mnist", 'training data', choices=('mnist', 'fashion_mnist', 'cifar10', 'cifar100'))
    model: str = param("lenet_300_100", 'network',
                       choices=('lenet_300_100', 'conv2', 'conv4', 'conv6', 'resnet20', 'vgg11', 'vgg16'))
    model_kwargs: dict = param({}, 'extra model arguments, e.g. {"width": 0.5} for a VGG')
    optimizer: str = param("adam", choices=('adam', 'adamw', 'sgd'))
    lr: float = param(1.2e-3, 'learning rate', minimum=0)
    batch_size: int = param(60, minimum=1)
    duration: str = param("10000it", 'training length of every run, "<n>it" or "<n>ep"')
    eval_every: str = param("500it", 'validation/test evaluation interval')
    momentum: float = param(0.9, 'SGD momentum', minimum=0, maximum=1)
    weight_decay: float = param(0.0, minimum=0)
    milestones: list[str] = param([], 'learning-rate drops, e.g. ["80ep", "120ep"]')
    gamma: float = param(0.1, 'learning-rate factor at each milestone', minimum=0, maximum=1)
    warmup: str = param("0it", 'linear learning-rate warmup')
    augment: bool = param(False, 'random crop + flip for CIFAR')
    rounds: int = param(18, 'IMP pruning rounds after the dense run', minimum=1, maximum=100)
    prune_fraction: float = param(0.2, 'fraction of the remaining weights IMP prunes per round', minimum=0, maximum=1)
    layer_fractions: dict = param({"output": 0.1}, 'per-layer IMP rates; aliases "output" and "conv"')
    scope: str = param("layerwise", 'IMP pruning scope', choices=('layerwise', 'global'))
    seeds: list[int] = param([0], 'one IMP run and one set of experiments per seed')
    criteria_trained: list[str] = param(["large_final", "small_final", "large_init", "large_init_large_final", "magnitude_increase", "movement", "random"],
                                        'criteria whose one-shot masks are trained')
    criteria_levels: list[float] = param([21.1, 3.6], "% weights remaining where each criterion's mask is trained",
                                         minimum=0, maximum=100)
    action_levels: list[float] = param([21.1, 3.6, 1.9],
                                       "% remaining where the ticket's mask-1 and mask-0 actions are trained",
                                       minimum=0, maximum=100)
    mask1_actions: list[str] = param(["reshuffle", "signed_constant", "random_sign_constant"],
                                     'trained besides rewind and reinit')
    claim_level: float = param(3.6, '% remaining at which the criteria and signs claims are judged', minimum=0,
                               maximum=100)
    supermask_criteria: list[str] = param(["large_final", "large_final_same_sign", "magnitude_increase", "large_init_large_final", "movement", "random"],
                                          'criteria whose masks are evaluated untrained')
    val_size: int = param(5000, 'validation images held out of the training set', minimum=1)
    train_size: int | None = param(None, 'training subset size, None for all the rest')
    test_size: int | None = param(None, 'test subset size, None for all')
    data_seed: int = param(0, 'seed of the train/validation split', minimum=0)
    data_root: str = param("data", 'where torchvision datasets live or are downloaded to')
    download: bool = param(False, 'allow downloading datasets that are not available offline')
    device: str = param("auto", choices=('auto', 'cpu', 'cuda'))
    cache_dir: str = param("runs/cache", 'finished trainings are reused from here; "" disables the cache')
    workers: int = param(2, 'parallel single-threaded training processes', minimum=1, maximum=64)
    executor: str = param("auto",
                          'where independent units run: auto ($TICKETLIB_EXECUTOR, else local), local processes, a dask cluster or slurm',
                          choices=('auto', 'local', 'dask', 'slurm'))
    progress: bool = param(True, 'tqdm progress bars')

    def problems(self) -> list[str]:
        return check_anatomy_params(self.as_dict())
