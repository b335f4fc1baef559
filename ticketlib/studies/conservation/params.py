"""02_conservation's parameters (a frozen Params, the schema of its notebook) and their cross-field checks."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ticketlib.infra.schema import StudyParams, param
from ticketlib.studies.checks import seed_problems


def check_conservation_params(p: Mapping) -> list[str]:
    errors = seed_problems(p, "the trained-accuracy claims need at least 2")
    if "synflow" not in p["methods"] or len(p["methods"]) < 2:
        errors.append(f"'methods' {p['methods']} must include synflow and at least one other method")
    missing = [m for m in p["control_methods"] if m not in p["methods"]]
    if missing or "shuffle" not in p["controls"]:
        errors.append(f"the shuffle claim needs 'shuffle' in controls and control_methods {p['control_methods']} "
                      f"among methods {p['methods']}")
    return errors


@dataclass(frozen=True)
class ConservationParams(StudyParams):
    """02_conservation's parameters: the schema its notebook's parameters cell shows (and a test keeps equal)."""

    dataset: str = param("mnist", 'real data for SNIP/GraSP and training',
                         choices=('mnist', 'fashion_mnist', 'cifar10', 'cifar100'))
    pad_to: int | None = param(32, 'pad images to this size, 28 to 32 gives the CIFAR-style VGG its 32x32 input')
    collapse_model: str = param("vgg16", 'network of the conservation and critical-compression sections',
                                choices=('vgg11', 'vgg16', 'resnet20', 'conv2', 'conv4', 'conv6', 'lenet_300_100'))
    collapse_model_kwargs: dict = param({}, 'extra arguments of the collapse network')
    per_class: int = param(10, 'SNIP/GraSP scoring batch, examples per class', minimum=1)
    synflow_iterations: int = param(100, "SynFlow's pruning iterations", minimum=1)
    search_tol: float = param(0.05, 'precision of the critical-compression search, in log10', minimum=0.001)
    bars_compression: float = param(3.5, 'log10 compression of the per-layer density bars', minimum=0)
    model: str = param("vgg16", 'network trained after pruning at init, and by IMP',
                       choices=('lenet_300_100', 'conv2', 'conv4', 'conv6', 'resnet20', 'vgg11', 'vgg16'))
    model_kwargs: dict = param({"width": 0.125}, 'extra model arguments, e.g. a narrow VGG')
    optimizer: str = param("sgd", choices=('adam', 'adamw', 'sgd'))
    lr: float = param(0.05, 'learning rate', minimum=0)
    batch_size: int = param(64, minimum=1)
    duration: str = param("300it", 'training length, "<n>it" or "<n>ep"')
    eval_every: str = param("150it", 'validation/test evaluation interval')
    momentum: float = param(0.9, 'SGD momentum', minimum=0, maximum=1)
    weight_decay: float = param(0.0, minimum=0)
    milestones: list[str] = param([], 'learning-rate drops, e.g. ["80ep", "120ep"]')
    gamma: float = param(0.1, 'learning-rate factor at each milestone', minimum=0, maximum=1)
    warmup: str = param("0it", 'linear learning-rate warmup')
    augment: bool = param(False, 'random crop + flip, for CIFAR')
    methods: list[str] = param(["random", "magnitude", "snip", "grasp", "synflow"], 'pruning-at-init methods trained')
    compressions: list[float] = param([0.5, 1.0, 1.5, 2.0, 2.5], 'log10 compressions trained', minimum=0)
    seeds: list[int] = param([0, 1], 'one initialisation and mask per seed')
    control_compression: float = param(1.0, 'log10 compression of the shuffle/re-init controls', minimum=0)
    control_methods: list[str] = param(["synflow", "snip"], 'methods whose masks get the controls')
    controls: list[str] = param(["shuffle", "reinit"], 'sanity controls')
    imp_rounds: int = param(14, 'IMP rounds after the dense run', minimum=0, maximum=100)
    imp_fraction: float = param(0.3, 'fraction of the remaining weights IMP prunes per round, globally', minimum=0,
                                maximum=1)
    imp_duration: str = param("400it", 'training length of each IMP round')
    val_size: int = param(1000, 'validation images held out of the training set', minimum=1)
    train_size: int | None = param(None, 'training subset size, None for all the rest')
    test_size: int | None = param(5000, 'test subset size, None for all')
    data_seed: int = param(0, 'seed of the train/validation split', minimum=0)
    data_root: str = param("data", 'where torchvision datasets live or are downloaded to')
    download: bool = param(False, 'allow downloading datasets that are not available offline')
    device: str = param("auto", choices=('auto', 'cpu', 'cuda'))
    workers: int = param(2, 'processes training the pruned networks, each with cores/workers threads', minimum=1)
    executor: str = param("auto",
                          'where independent units run: auto ($TICKETLIB_EXECUTOR, else local), local processes, a dask cluster or slurm',
                          choices=('auto', 'local', 'dask', 'slurm'))
    cache_dir: str = param("runs/cache", 'finished trainings are reused from here; "" disables the cache')
    progress: bool = param(True, 'tqdm progress bars')

    def problems(self) -> list[str]:
        return check_conservation_params(self.as_dict())
