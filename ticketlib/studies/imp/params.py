"""01_imp's parameters (a frozen Params, the schema of its notebook) and their cross-field checks: the level the
claims judge must be among the controls and reachable; early-stop seeds must be new seeds of a run that judges
the learns-faster claim."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ticketlib.infra.schema import StudyParams, param
from ticketlib.studies.checks import near_level, seed_problems
from ticketlib.verdicts.thresholds import level_for


def check_imp_params(p: Mapping) -> list[str]:
    errors = seed_problems(p)
    level = level_for("ticket_matches_dense", p["model"], p["dataset"], 3.6)[0]  # imp_claims' default level
    if not near_level(level, p["control_levels"]):
        errors.append(f"'control_levels' {p['control_levels']} must include {level:g} "
                      f"(the level the claims judge for {p['model']}/{p['dataset']})")
    reached = 100 * (1 - p["prune_fraction"]) ** p["rounds"]
    if reached > 1.25 * level:
        errors.append(f"'rounds' = {p['rounds']} at 'prune_fraction' {p['prune_fraction']} stops at "
                      f"~{reached:.1f}%, short of {level:g}% where the claims judge")
    return errors + early_stop_problems(p)


def early_stop_problems(p: Mapping) -> list[str]:
    """`early_stop_seeds` are extra seeds of the learns-faster claim: distinct, not among `seeds`, and only where
    that claim is judged (not with `milestones`, whose step schedules drop it)."""
    extra = list(p.get("early_stop_seeds") or [])
    if not extra:
        return []
    errors = []
    repeated = sorted({s for s in extra if extra.count(s) > 1})
    if repeated:
        errors.append(f"'early_stop_seeds' repeats {repeated}: each extra seed is one run")
    both = sorted(set(extra) & set(p["seeds"]))
    if both:
        errors.append(f"'early_stop_seeds' {both} are also in 'seeds': an early-stop seed must be a new seed "
                      "(the full run already gives its learns-faster pair)")
    if p.get("milestones"):
        errors.append(f"'early_stop_seeds' is set with 'milestones' {list(p['milestones'])}: step-schedule runs do "
                      "not judge ticket_learns_faster, the only claim early-stop seeds serve")
    return errors


@dataclass(frozen=True)
class ImpParams(StudyParams):
    """01_imp's parameters: the schema its notebook's parameters cell shows (and a test keeps equal)."""

    dataset: str = param("mnist", 'training data', choices=('mnist', 'fashion_mnist', 'cifar10', 'cifar100'))
    model: str = param("lenet_300_100", 'network',
                       choices=('lenet_300_100', 'conv2', 'conv4', 'conv6', 'resnet20', 'vgg11', 'vgg16'))
    model_kwargs: dict = param({}, 'extra model arguments, e.g. {"width": 0.5} for a VGG')
    optimizer: str = param("adam", choices=('adam', 'adamw', 'sgd'))
    lr: float = param(1.2e-3, 'learning rate', minimum=0)
    batch_size: int = param(60, minimum=1)
    duration: str = param("10000it", 'training length per round, "<n>it" or "<n>ep"')
    eval_every: str = param("500it", 'validation/test evaluation interval')
    momentum: float = param(0.9, 'SGD momentum', minimum=0, maximum=1)
    weight_decay: float = param(0.0, minimum=0)
    milestones: list[str] = param([], 'learning-rate drops, e.g. ["80ep", "120ep"]')
    gamma: float = param(0.1, 'learning-rate factor at each milestone', minimum=0, maximum=1)
    warmup: str = param("0it", 'linear learning-rate warmup')
    augment: bool = param(False, 'random crop + flip (CIFAR)')
    rounds: int = param(18, 'pruning rounds after the dense run', minimum=0, maximum=100)
    prune_fraction: float = param(0.2, 'fraction of the remaining weights pruned per round', minimum=0, maximum=1)
    layer_fractions: dict = param({"output": 0.1}, 'per-layer rates; aliases "output" and "conv"')
    scope: str = param("layerwise", choices=('layerwise', 'global'))
    rewind: str = param("0it", 'rewinding point: "0it" is θ0, "500it" is Frankle et al. 2020\'s late rewinding')
    seeds: list[int] = param([0, 1], 'one IMP run per seed')
    early_stop_seeds: list[int] = param([], 'extra seeds for ticket_learns_faster only: rounds down to its level, '
                                            'no controls')
    workers: int = param(1, 'seeds trained in parallel processes, one core each is best for LeNet', minimum=1,
                         maximum=64)
    executor: str = param("auto",
                          'where independent units run: auto ($TICKETLIB_EXECUTOR, else local), local processes, a dask cluster or slurm',
                          choices=('auto', 'local', 'dask', 'slurm'))
    control_levels: list[float] = param([21.1, 7.0, 3.6, 1.9], '% weights remaining where the controls are trained',
                                        minimum=0, maximum=100)
    val_size: int = param(5000, 'validation images held out of the training set', minimum=1)
    train_size: int | None = param(None, 'training subset size, None for all the rest')
    test_size: int | None = param(None, 'test subset size, None for all')
    data_seed: int = param(0, 'seed of the train/validation split', minimum=0)
    data_root: str = param("data", 'where torchvision datasets live or are downloaded to')
    download: bool = param(False, 'allow downloading datasets that are not available offline')
    device: str = param("auto", choices=('auto', 'cpu', 'cuda'))
    cache_dir: str = param("runs/cache", 'finished rounds are reused from here; "" disables the cache')
    progress: bool = param(True, 'tqdm progress bars')

    def problems(self) -> list[str]:
        return check_imp_params(self.as_dict())
