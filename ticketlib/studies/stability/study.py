"""Instability analysis (Frankle, Dziugaite, Roy & Carbin 2020): why rewinding works.

Two copies of a network are trained from the same state at iteration k with different SGD noise (data order and
augmentation: the training seed), then evaluated along the straight line between the two results. The *error
barrier* is the highest test error on that path minus the mean error of its two ends; the network is *stable* at k
when the barrier is about zero (`STABLE_BELOW`, in `stability_claims`).

- `interpolate(state_a, state_b, alpha, mask)`: the state at α on the line, pruned entries kept at zero.
- `error_barrier(model, a, b, split, points)`: the error curve and its barrier. BatchNorm statistics along the
  path are interpolated with the weights (`bn="interpolate"`, the claims' setting) or recomputed on training
  batches at each α (`bn="recompute"`, the remedy for the statistics collapse of a path through BN networks).
- `instability(...)`: both copies, one cached unit per copy (`stability_copy`, keyed by the experiment, the mask's
  digest, the start state's digest, k and the order seed); a copy already trained with the same recipe (an IMP
  round of 01, whose state is exactly the first copy) is passed in and not retrained.
- `rewind_state`: the state at iteration k of the dense run of a seed, as a cached prefix of that run (the
  schedule and the data order depend on the iteration only, so a run stopped at k is the full run's state at k).
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import nn

from ticketlib.core import data as data_lib
from ticketlib.studies.imp import study as imp
from ticketlib.core import pruning
from ticketlib.core import rewind
from ticketlib.core import scores
from ticketlib.infra.cache import Cache, unit_key
from ticketlib.infra.device import describe
from ticketlib.core.experiment import Experiment, from_params, train_config
from ticketlib.core.masks import Mask
from ticketlib.core.train import evaluate, train

BN_MODES = ("interpolate", "recompute")
ORDER_SEED_OFFSET = 49979687  # the second copy's data order and augmentation: a seed no ticket uses (prime)
CNN_PREFIX = "cnn_"


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """16 hex digits of SHA-256 over a state dict's names, dtypes, shapes and bytes: names a start state in keys."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


@torch.no_grad()
def interpolate(state_a: Mapping[str, torch.Tensor], state_b: Mapping[str, torch.Tensor], alpha: float,
                mask: Mask | None = None) -> dict[str, torch.Tensor]:
    """(1 − α)·a + α·b for every floating tensor (α = 0 and 1 give a and b exactly: `torch.lerp`); integer
    buffers (BN's batch counter) come from a; entries `mask` prunes are exactly zero all along the path."""
    if set(state_a) != set(state_b):
        raise ValueError(f"the two states differ in names: {sorted(set(state_a) ^ set(state_b))}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = {}
    for name, a in state_a.items():
        b = state_b[name]
        out[name] = torch.lerp(a, b.to(a.dtype), float(alpha)) if a.is_floating_point() else a.clone()
        if mask is not None and name in mask:
            out[name] = out[name] * mask[name].to(out[name].device, out[name].dtype)
    return out


@torch.no_grad()
def recompute_bn(model: nn.Module, x: torch.Tensor, batch_size: int, batches: int) -> nn.Module:
    """Reset every BatchNorm's running statistics and re-estimate them (cumulative average) from `batches`
    batches of `x` in train mode, without gradients; the model is left in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    device = next(model.parameters()).device
    for start in range(0, min(len(x), batch_size * batches), batch_size):
        model(x[start:start + batch_size].to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return model.eval()


@dataclass
class BarrierCurve:
    """Test error (%) at evenly spaced α from copy a (α = 0) to copy b (α = 1), and the barrier in points."""

    alphas: list[float]
    errors: list[float]
    barrier: float
    bn: str = "interpolate"


def barrier_of(errors: list[float]) -> float:
    """The highest error on the path minus the mean of its two ends' errors (Frankle et al. 2020, Sec. 2)."""
    if len(errors) < 2:
        raise ValueError("a path needs at least its two ends")
    return max(errors) - (errors[0] + errors[-1]) / 2


def error_barrier(model: nn.Module, state_a: Mapping[str, torch.Tensor], state_b: Mapping[str, torch.Tensor],
                  split: data_lib.Split, points: int = 11, mask: Mask | None = None, bn: str = "interpolate",
                  bn_data: torch.Tensor | None = None, bn_batch_size: int = 128, bn_batches: int = 10) -> BarrierCurve:
    """The error curve along the line from `state_a` to `state_b` on `split` at `points` evenly spaced α (both
    ends included) and its barrier. `bn="recompute"` re-estimates BN statistics on `bn_data` at each α (the ends
    too, so the curve is one network family); "interpolate" takes them along the line with the weights."""
    if bn not in BN_MODES:
        raise ValueError(f"bn must be one of {BN_MODES}, got {bn!r}")
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    if bn == "recompute" and bn_data is None:
        raise ValueError("bn='recompute' needs training images (bn_data) to re-estimate the statistics")
    alphas = [i / (points - 1) for i in range(points)]
    errors = []
    for alpha in alphas:
        rewind.restore(model, interpolate(state_a, state_b, alpha, mask))
        if bn == "recompute":
            recompute_bn(model, bn_data, bn_batch_size, bn_batches)
        errors.append(100.0 * (1.0 - evaluate(model, split)[1]))
    return BarrierCurve(alphas, errors, barrier_of(errors), bn)


@dataclass
class Copy:
    """One trained copy: its final state, what its training measured, and the order seed it trained under."""

    state: dict
    result: dict
    history: list[dict]
    order_seed: int


@dataclass
class Instability:
    """Both copies from one start state and the error curve between them."""

    curve: BarrierCurve
    copies: tuple[Copy, Copy]
    rewind_iteration: int

    @property
    def barrier(self) -> float:
        return self.curve.barrier


def train_copy(exp: Experiment, data: data_lib.Dataset, mask: Mask, start_state: dict, start_iteration: int,
               order_seed: int, cache: Cache | None = None, progress: bool = False) -> Copy:
    """Train `start_state` under `mask` from `start_iteration` to the end with data order `order_seed`: one
    cached unit. A fresh optimizer, the schedule fast-forwarded, as IMP's rounds train (`imp.find_ticket`)."""
    cache = cache or Cache(None)
    key = unit_key("stability_copy", experiment=exp, mask=mask.digest(), start=state_digest(start_state),
                   start_iteration=start_iteration, order_seed=order_seed)

    def compute() -> dict:
        model = exp.build_model(data, order_seed)
        rewind.restore(model, start_state, mask)
        result = train(model, data, exp.train, mask=mask, seed=order_seed, start_iteration=start_iteration,
                       progress=progress)
        return {"state": rewind.capture(model), "result": result.summary(), "history": result.history}

    payload = cache.cached(key, compute, describe(exp.device))
    return Copy(payload["state"], payload["result"], payload["history"], order_seed)


def instability(exp: Experiment, data: data_lib.Dataset, mask: Mask, start_state: dict, start_iteration: int,
                seed: int, cache: Cache | None = None, points: int = 11, bn: str = "interpolate",
                bn_batches: int = 10, first: Copy | None = None, progress: bool = False) -> Instability:
    """Train two copies of `start_state` (the state at iteration `start_iteration`, pruned by `mask`) with data
    orders `seed` and `seed + ORDER_SEED_OFFSET`, then the error curve between them on the test split.

    `first`: the copy with order `seed` when a unit of the same recipe already holds it (not retrained)."""
    a = first or train_copy(exp, data, mask, start_state, start_iteration, seed, cache, progress)
    b = train_copy(exp, data, mask, start_state, start_iteration, seed + ORDER_SEED_OFFSET, cache, progress)
    model = exp.build_model(data, seed)
    curve = error_barrier(model, a.state, b.state, data.test, points, mask, bn, data.train.x,
                          exp.train.batch_size, bn_batches)
    return Instability(curve, (a, b), start_iteration)


def rewind_state(exp: Experiment, data: data_lib.Dataset, seed: int, iteration: int, cache: Cache | None = None,
                 progress: bool = False) -> dict:
    """The dense run's state at `iteration` for `seed` (θ0 at 0): the run trained to `iteration` and stopped,
    one cached unit. Bit-equal to the full run's state there (`train(capture_at=...)`): a test checks."""
    model = exp.build_model(data, seed)
    if iteration == 0:
        return rewind.capture(model)
    prefix = replace(exp, train=train_config(asdict(exp.train), duration=f"{iteration}it",
                                             eval_every=f"{iteration}it"))
    key = unit_key("stability_rewind", experiment=exp, seed=seed, iteration=iteration)

    def compute() -> dict:
        train(model, data, prefix.train, mask=None, seed=seed, progress=progress)
        return {"state": rewind.capture(model)}

    return (cache or Cache(None)).cached(key, compute, describe(exp.device))["state"]


# --- the cases 07 analyses: 01's LeNet tickets and a CNN rewound to several k ---------------------------
@dataclass
class Case:
    """One analysed (network, subnetwork, k, seed): the barrier, its curve and the copies' accuracies (%)."""

    network: str  # "lenet" or "cnn"
    kind: str  # dense, ticket, random_mask, subnetwork
    percent: float  # % of prunable weights remaining
    k: int  # rewind iteration both copies start from
    seed: int
    barrier: float
    alphas: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    test_accuracy: float = 0.0  # copy a at its early-stop iteration (01's judged accuracy for Adam)
    final_test_accuracy: float = 0.0  # copy a at the end of training (judged for step schedules)
    test_accuracy_b: float = 0.0
    final_test_accuracy_b: float = 0.0

    def row(self) -> dict:
        return asdict(self)


def _case(network: str, kind: str, k: int, seed: int, mask: Mask, result: Instability) -> Case:
    a, b = (c.result for c in result.copies)
    return Case(network, kind, 100 * mask.density(), k, seed, result.barrier, result.curve.alphas,
                result.curve.errors, 100 * a["test_accuracy"], 100 * a["final_test_accuracy"],
                100 * b["test_accuracy"], 100 * b["final_test_accuracy"])


def lenet_case(exp: Experiment, data: data_lib.Dataset, cache: Cache | None, progress: bool, imp_cfg: imp.IMPConfig,
               seed: int, kind: str, level: float, points: int = 11, bn: str = "interpolate",
               bn_batches: int = 10) -> dict:
    """An IMP ticket of 01 (dense at level 100, or the round nearest `level`) or 01's random-mask control there,
    rewound as 01 rewinds: 01's trained round is the first copy (cache hit), only the second is trained."""
    ticket = imp.find_ticket(exp, imp_cfg, data, seed, cache=cache, progress=progress)
    round_ = imp.nearest_round(ticket.rounds, level)
    if kind == "random_mask":
        round_ = imp.train_control(exp, imp_cfg, data, ticket, round_.round, "random_mask", seed, cache, progress)
    elif kind not in ("dense", "ticket"):
        raise ValueError(f"kind must be dense, ticket or random_mask, got {kind!r}")
    dense = round_.round == 0 and kind != "random_mask"  # round 0 trains from θ0 whatever IMP rewinds to
    start, k = (ticket.init_state, 0) if dense else (ticket.rewind_state, ticket.rewind_iteration)
    first = Copy(round_.final_state, round_.result, round_.history, seed)
    result = instability(exp, data, round_.mask, start, k, seed, cache, points, bn, bn_batches, first=first,
                         progress=progress)
    return _case("lenet", "dense" if dense else kind, k, seed, round_.mask, result).row()


def cnn_experiment(params: Mapping) -> Experiment:
    """The CNN's `Experiment` from 07's parameters: every `cnn_<name>` key read as `<name>`."""
    values = {k[len(CNN_PREFIX):]: v for k, v in params.items() if k.startswith(CNN_PREFIX)}
    values.update({k: params[k] for k in ("device", "data_seed") if k in params})
    return from_params(values)


def one_shot_mask(exp: Experiment, data: data_lib.Dataset, trained: dict, density: float, scope: str) -> Mask:
    """Magnitude pruning of a trained dense state to `density` of its prunable weights in one round."""
    model = exp.build_model(data, 0)
    model.load_state_dict(trained)
    ones = Mask.ones_like(model)
    return pruning.prune(scores.magnitude(model, ones), ones, 1.0 - density, scope=scope)


def cnn_case(exp: Experiment, data: data_lib.Dataset, cache: Cache | None, progress: bool, seed: int, k: int,
             kind: str, density: float, scope: str = "global", points: int = 11, bn: str = "interpolate",
             bn_batches: int = 10) -> dict:
    """The dense CNN, or its one-shot magnitude subnetwork (`density`, from the seed's trained dense network),
    rewound to iteration `k` of the seed's dense run; the dense run itself is the first copy at k = 0."""
    if kind not in ("dense", "subnetwork"):
        raise ValueError(f"kind must be dense or subnetwork, got {kind!r}")
    init = exp.build_model(data, seed)
    ones = Mask.ones_like(init)
    base = train_copy(exp, data, ones, rewind.capture(init), 0, seed, cache, progress)
    mask = ones if kind == "dense" else one_shot_mask(exp, data, base.state, density, scope)
    start = rewind_state(exp, data, seed, k, cache, progress)
    result = instability(exp, data, mask, start, k, seed, cache, points, bn, bn_batches,
                         first=base if kind == "dense" and k == 0 else None, progress=progress)
    return _case("cnn", kind, k, seed, mask, result).row()


def cnn_base(exp: Experiment, data: data_lib.Dataset, cache: Cache | None, progress: bool, seed: int,
             ks: list[int], dense: bool = True) -> None:
    """The seed's dense run (`dense`) and its states at `ks`, into the cache, so that the cases of a seed find
    them (`cnn_base_jobs` splits them into one job each: they are independent)."""
    init = exp.build_model(data, seed)
    if dense:
        train_copy(exp, data, Mask.ones_like(init), rewind.capture(init), 0, seed, cache, progress)
    for k in ks:
        rewind_state(exp, data, seed, k, cache, progress)


def cnn_base_jobs(seeds: list[int], ks: list[int]) -> list[dict]:
    """One `cnn_base` job per dense run and per rewind state k > 0 (k = 0 is θ0: nothing to train)."""
    return ([{"seed": s, "ks": []} for s in seeds]
            + [{"seed": s, "ks": [k], "dense": False} for s in seeds for k in sorted(ks, reverse=True) if k > 0])


def check_rewind_points(exp: Experiment, ks: list[int], train_size: int) -> None:
    """Every k strictly inside the CNN's training."""
    total = exp.train.iterations(train_size)
    outside = [k for k in ks if not 0 <= k < total]
    if outside:
        raise ValueError(f"rewind points {outside} are not inside training ({exp.train.duration} = {total} iterations)")



def lenet_jobs(imp_p: Mapping, levels: list[float], claim_level: float, **options) -> list[dict]:
    """The `lenet_case` jobs over 01's seeds: dense, the tickets nearest `levels`, the random mask at
    `claim_level`. Refuses a claim level that is not one of 01's control levels (its random-mask control would
    be trained anew instead of read from 01's cache)."""
    controls = [float(c) for c in imp_p["control_levels"]]
    if not any(abs(c - claim_level) < 1e-9 for c in controls):
        raise ValueError(f"claim_level {claim_level:g} is not one of 01's control_levels {controls}: its "
                         "random-mask control would not come from 01's cache")
    _, cfg = imp.imp_setup(imp_p)
    cases = [("dense", 100.0)] + [("ticket", float(v)) for v in levels] + [("random_mask", float(claim_level))]
    return [{"imp_cfg": cfg, "seed": s, "kind": kind, "level": level, **options}
            for s in imp_p["seeds"] for kind, level in cases]


def cnn_jobs(seeds: list[int], ks: list[int], density: float, scope: str, **options) -> list[dict]:
    """The `cnn_case` jobs: the dense CNN and its subnetwork at every k, for every seed (longest first)."""
    return [{"seed": s, "k": k, "kind": kind, "density": density, "scope": scope, **options}
            for k in sorted(ks) for s in seeds for kind in ("subnetwork", "dense")]
