"""Early-bird tickets (You et al. 2020): find the channel ticket early, prune, and train only the small network.

One dense training with network slimming's L1 on BN scales serves every pruning ratio: before
each epoch (at each per-epoch evaluation of `train`) the channel masks of all ratios are drawn and
fed to one `EarlyBird` detector per ratio; the weights are captured where a detector first fires.
The channel masks cover the BN layers `slim` can narrow (`ticket_mask`: every BN of a VGG; bn2 and
bn3 inside each bottleneck of a PreResNet, whose residual stream is not pruned); the L1 penalty acts
on every BN, as in network slimming. From that one run come both pipelines compared by the paper:

- early-bird: the dense weights at the detection epoch, physically slimmed (`slim.slim`), trained
  on from that epoch to the end of the same schedule;
- standard: the fully trained dense weights, slimmed by the mask drawn at the end, retrained.

Their costs are measured (wall time) and counted (training FLOPs of the networks really trained).
Every unit is cached like an IMP round.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ticketlib.infra import contention
from ticketlib.core import data as data_lib
from ticketlib.infra.cache import Cache, unit_key
from ticketlib.infra.device import describe
from ticketlib.core.distance import EarlyBird, consecutive_distances, distance, distance_matrix
from ticketlib.core.experiment import Experiment
from ticketlib.studies.imp.study import Ticket
from ticketlib.core.masks import Mask
from ticketlib.core.pruning import prune_to_density
from ticketlib.core.rewind import Step, capture
from ticketlib.core.slim import bn_l1, channel_mask, flops, num_params, slim, slimmable_bn_names, training_flops, width_plan
from ticketlib.core.train import TrainConfig, train


@dataclass
class EarlyBirdConfig:
    """How masks are drawn and the ticket is declared (You et al.'s defaults)."""

    ratios: list[float] = field(default_factory=lambda: [0.3, 0.5, 0.7])
    l1: float = 1e-4
    epsilon: float = 0.1
    window: int = 5

    def __post_init__(self):
        if not self.ratios or any(not 0.0 <= r < 1.0 for r in self.ratios):
            raise ValueError(f"pruning ratios must be in [0, 1), got {self.ratios}")
        if self.l1 < 0:
            raise ValueError(f"l1 must be non-negative, got {self.l1}")

    def key(self) -> dict:
        """What identifies the dense run: not the detector's ε and window (detection is recomputed from
        the stored masks, so changing them reuses the dense training)."""
        return {"ratios": list(self.ratios), "l1": self.l1}


def examples_seen(iterations: int, cfg: TrainConfig, train_size: int) -> int:
    """Training examples processed in `iterations` steps (whole epochs of `train_size`, then full batches)."""
    ipe = cfg.iterations_per_epoch(train_size)
    full, rest = divmod(iterations, ipe)
    return full * train_size + rest * cfg.batch_size


def ticket_mask(model: torch.nn.Module, ratio: float) -> Mask:
    """The channel mask at pruning ratio `ratio`: one global |γ| threshold over the slimmable BN layers only."""
    return channel_mask(model, ratio, names=slimmable_bn_names(model))


def search(exp: Experiment, eb: EarlyBirdConfig, data: data_lib.Dataset, seed: int,
           cache: Cache | None = None, progress: bool = True) -> dict:
    """The dense training with L1 on γ, its channel masks before every epoch, and the early-bird detections.

    Returns a dict: `epochs` (checks 0..E), `seconds` (wall time from the start of training to each
    check), `masks` {ratio: [Mask per epoch]}, `detected` {ratio: epoch or None}, `distances` {ratio:
    [d(m_e-1, m_e)]}, `eb_state` {ratio: weights at detection}, `final_state`, `result` and `history` of
    the dense run, `flops` (forward FLOPs per example of the dense network). The dense run is one unit
    keyed without ε and window: detection is recomputed from its masks, and the weights at a detection
    epoch the run did not keep come from `dense_state_at`.
    """
    cache = cache or Cache(None)
    ipe = exp.train.iterations_per_epoch(len(data.train))
    if Step(exp.train.eval_every).iteration(ipe) != ipe:
        raise ValueError(f"early-bird search draws masks before each epoch: eval_every must be '1ep', "
                         f"got {exp.train.eval_every!r}")
    key = unit_key("earlybird_search", experiment=exp, earlybird=eb, seed=seed)

    def compute() -> dict:
        model = exp.build_model(data, seed)
        names = slimmable_bn_names(model)  # fails early on a model `slim` cannot narrow
        detectors = {r: EarlyBird(eb.epsilon, eb.window) for r in eb.ratios}
        epochs, seconds = [], []
        masks: dict[float, list[dict]] = {r: [] for r in eb.ratios}
        states: dict[int, dict] = {}
        last = exp.train.iterations(len(data.train))
        start = time.perf_counter()

        def on_eval(iteration: int, net: torch.nn.Module) -> None:
            if iteration % ipe:
                return
            epoch = iteration // ipe
            epochs.append(epoch)
            for r in eb.ratios:
                mask = channel_mask(net, r, names=names)
                masks[r].append(dict(mask))
                # the check after the last epoch precedes no epoch: it is drawn, not a detection
                if detectors[r].push(mask) and detectors[r].fired_at == len(epochs) - 1 and iteration < last:
                    states.setdefault(epoch, capture(net))
            seconds.append(time.perf_counter() - start)

        result = train(model, data, exp.train, seed=seed, extra_loss=bn_l1(eb.l1) if eb.l1 else None,
                       on_eval=on_eval, progress=progress)
        return {"epochs": epochs, "seconds": seconds, "masks": masks, "states": states,
                "final_state": capture(model), "result": result.summary(), "history": result.history,
                "flops": flops(model, tuple(data.input_shape))}

    payload, meta = cache.cached_meta(key, compute, describe(exp.device))
    payload["contention"] = meta.get("contention")  # how busy the machine was (metadata, not key)
    payload["masks"] = {r: [Mask(m) for m in ms] for r, ms in payload["masks"].items()}
    payload["distances"] = {r: consecutive_distances(ms) for r, ms in payload["masks"].items()}
    payload["detected"] = detect(payload["masks"], payload["epochs"], eb)
    payload["eb_state"] = {r: payload["states"][e] if e in payload["states"]
                           else dense_state_at(exp, eb, data, seed, e, cache, progress)
                           for r, e in payload["detected"].items() if e is not None}
    return payload


def detect(masks: dict[float, list[Mask]], epochs: list[int], eb: EarlyBirdConfig) -> dict[float, int | None]:
    """Per ratio, the first epoch at which `EarlyBird(eb.epsilon, eb.window)` fires on the masks drawn
    before each epoch (the check after the last epoch precedes no training and never counts)."""
    detected: dict[float, int | None] = {}
    for r in eb.ratios:
        detector = EarlyBird(eb.epsilon, eb.window)
        fired = [i for i, mask in enumerate(masks[r][:-1]) if detector.push(mask)]
        detected[r] = epochs[fired[0]] if fired else None
    return detected


def dense_state_at(exp: Experiment, eb: EarlyBirdConfig, data: data_lib.Dataset, seed: int, epoch: int,
                   cache: Cache | None = None, progress: bool = True) -> dict:
    """The dense run's weights after `epoch` epochs, trained again up to there (training is deterministic,
    so they equal the search's own): needed when ε or the window changed after the search ran."""
    cache = cache or Cache(None)
    key = unit_key("earlybird_state", experiment=exp, earlybird=eb, seed=seed, epoch=epoch)

    def compute() -> dict:
        model = exp.build_model(data, seed)
        train(model, data, replace(exp.train, duration=f"{epoch}ep"), seed=seed,
              extra_loss=bn_l1(eb.l1) if eb.l1 else None, progress=progress)
        return {"state": capture(model)}

    return cache.cached(key, compute, describe(exp.device))["state"]


def distance_matrices(found: dict) -> dict[float, torch.Tensor]:
    """Epoch × epoch mask-distance matrix per ratio, from a `search` result."""
    return {r: distance_matrix(ms) for r, ms in found["masks"].items()}


def train_slimmed(exp: Experiment, data: data_lib.Dataset, state: dict, mask: Mask, cfg: TrainConfig,
                  seed: int, start_iteration: int = 0, progress: bool = True) -> dict:
    """Slim the network holding `state` by the channel `mask` and train the small network under `cfg`."""
    model = exp.build_model(data, seed)
    model.load_state_dict(state)
    small = slim(model, mask)
    del model
    result = train(small, data, cfg, seed=seed, start_iteration=start_iteration, progress=progress)
    return {"result": result.summary(), "history": result.history,
            "flops": flops(small, tuple(data.input_shape)), "params": num_params(small),
            "widths": width_plan(small)}


def early_bird_ticket(exp: Experiment, eb: EarlyBirdConfig, data: data_lib.Dataset, found: dict, ratio: float,
                      seed: int, cache: Cache | None = None, progress: bool = True) -> dict | None:
    """Early-bird pipeline at `ratio`: slim at the detection epoch, continue the same schedule to its end.

    None when no ticket was detected at this ratio.
    """
    epoch = found["detected"][ratio]
    if epoch is None:
        return None
    cache = cache or Cache(None)
    ipe = exp.train.iterations_per_epoch(len(data.train))
    key = unit_key("earlybird_continue", experiment=exp, earlybird=eb, seed=seed, ratio=ratio, epoch=epoch)
    mask = found["masks"][ratio][found["epochs"].index(epoch)]
    return _with_contention(*cache.cached_meta(
        key, lambda: train_slimmed(exp, data, found["eb_state"][ratio], mask, exp.train, seed,
                                   start_iteration=epoch * ipe, progress=progress), describe(exp.device)))


def standard_ticket(exp: Experiment, eb: EarlyBirdConfig, data: data_lib.Dataset, found: dict, ratio: float,
                    retrain: TrainConfig, seed: int, cache: Cache | None = None, progress: bool = True) -> dict:
    """Standard pipeline at `ratio`: slim the fully trained network by its final mask, retrain under `retrain`."""
    cache = cache or Cache(None)
    key = unit_key("earlybird_standard", experiment=exp, earlybird=eb, seed=seed, ratio=ratio, retrain=retrain)
    mask = found["masks"][ratio][-1]
    return _with_contention(*cache.cached_meta(
        key, lambda: train_slimmed(exp, data, found["final_state"], mask, retrain, seed, progress=progress),
        describe(exp.device)))


def _with_contention(payload: dict, meta: dict) -> dict:
    """A unit's payload with how busy the machine was while it trained (its metadata's `contention`; None for
    entries stored before it was recorded)."""
    return {**payload, "contention": meta.get("contention")}


def pipeline_costs(exp: Experiment, data: data_lib.Dataset, found: dict, ratio: float, early: dict | None,
                   standard: dict, retrain: TrainConfig) -> dict:
    """Accuracy, wall time and training FLOPs of the dense run and of both pipelines at `ratio` (one row)."""
    n = len(data.train)
    dense_iterations = exp.train.iterations(n)
    dense_flops = training_flops(found["flops"], examples_seen(dense_iterations, exp.train, n))
    row = {"ratio": ratio, "detected_epoch": found["detected"][ratio], "epochs": found["epochs"][-1],
           "dense_accuracy": found["result"]["test_accuracy"], "dense_seconds": found["seconds"][-1],
           "dense_final_accuracy": found["result"]["final_test_accuracy"],
           "standard_final_accuracy": standard["result"]["final_test_accuracy"],
           "dense_flops": dense_flops,
           "standard_accuracy": standard["result"]["test_accuracy"],
           "standard_seconds": found["seconds"][-1] + standard["result"]["seconds"],
           "standard_flops": dense_flops + training_flops(
               standard["flops"], examples_seen(retrain.iterations(n), retrain, n)),
           "params_kept": standard["params"],
           "devices": sorted({u["result"].get("device", "") for u in (found, standard, early) if u is not None}),
           "contention": _units_contention([u for u in (found, standard, early) if u is not None])}
    if early is None:
        row.update(early_accuracy=float("nan"), early_final_accuracy=float("nan"), early_seconds=float("nan"),
                   early_flops=float("nan"))
        return row
    ipe = exp.train.iterations_per_epoch(n)
    searched = row["detected_epoch"] * ipe
    row.update(
        early_accuracy=early["result"]["test_accuracy"],
        early_final_accuracy=early["result"]["final_test_accuracy"],
        early_seconds=found["seconds"][found["epochs"].index(row["detected_epoch"])] + early["result"]["seconds"],
        early_flops=training_flops(found["flops"], examples_seen(searched, exp.train, n))
        + training_flops(early["flops"], examples_seen(dense_iterations - searched, exp.train, n)),
    )
    return row


def _units_contention(units: list[dict]) -> dict | None:
    """The training units' contention windows pooled (`contention.total`); None when any unit has none."""
    windows = [contention.from_record(u.get("contention")) for u in units]
    return None if any(w is None for w in windows) else contention.total(windows).to_dict()


def search_and_retrain(exp: Experiment, eb: EarlyBirdConfig, data: data_lib.Dataset, retrain: TrainConfig,
                       seed: int, cache: Cache | None = None, progress: bool = True,
                       pipeline_ratios: list[float] | None = None) -> tuple[dict, dict, dict, list[dict]]:
    """The search, both pipelines at each of `pipeline_ratios` (default: every ratio searched), and one cost
    row per such ratio: (found, early, standard, rows). Detection itself is free for every searched ratio."""
    pipeline_ratios = list(eb.ratios) if pipeline_ratios is None else list(pipeline_ratios)
    unknown = [r for r in pipeline_ratios if r not in eb.ratios]
    if unknown:
        raise ValueError(f"pipeline ratios {unknown} are not among the searched ratios {eb.ratios}")
    found = search(exp, eb, data, seed, cache, progress)
    early, standard, rows = {}, {}, []
    for r in pipeline_ratios:
        early[r] = early_bird_ticket(exp, eb, data, found, r, seed, cache, progress)
        standard[r] = standard_ticket(exp, eb, data, found, r, retrain, seed, cache, progress)
        rows.append(pipeline_costs(exp, data, found, r, early[r], standard[r], retrain))
    return found, early, standard, rows


def imp_round_distances(ticket: Ticket, density: float | None = None) -> list[dict]:
    """How IMP's unstructured masks move from round to round (one row per round; distances to the previous one).

    `distance`: d(m_r-1, m_r) of the rounds' own masks. They nest, so this is exactly the fraction of
    weights pruned in round r (it falls by construction). `fixed_distance`: d(F_r-1, F_r) where F_r keeps
    the `density` (default: the last round's) largest-magnitude weights of round r's *trained* network
    (one global threshold): whether the final ticket's connectivity is already visible early.
    `fixed_to_final`: d(F_r, F_last).
    """
    rounds = ticket.rounds
    if any(r.final_state is None for r in rounds):
        raise ValueError("the ticket's rounds carry no trained weights (final_state)")
    density = rounds[-1].density if density is None else density
    fixed = [prune_to_density({n: r.final_state[n].abs().cpu() for n in r.mask}, r.mask, density, scope="global")
             for r in rounds]
    rows = []
    for i, r in enumerate(rounds):
        row = {"round": r.round, "percent_remaining": 100 * r.density, "distance": float("nan"),
               "fixed_distance": float("nan"), "fixed_to_final": distance(fixed[i], fixed[-1])}
        if i:
            row.update(distance=distance(rounds[i - 1].mask, r.mask), fixed_distance=distance(fixed[i - 1], fixed[i]))
        rows.append(row)
    return rows


def latency_networks(exp: Experiment, data: data_lib.Dataset, found: dict, ratio: float,
                     seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(dense, slimmed): the fully trained dense network of a `search` result and a physically narrower copy
    with the early-bird ticket's architecture at `ratio` (the mask drawn at its detection epoch); when `ratio`
    was not detected, or not searched, the mask of the fully trained network (`ticket_mask`)."""
    dense = exp.build_model(data, seed)
    dense.load_state_dict(found["final_state"])
    if found["detected"].get(ratio) is not None:
        mask = found["masks"][ratio][found["epochs"].index(found["detected"][ratio])]
    else:
        mask = ticket_mask(dense, ratio)
    return dense, slim(dense, mask)


def size_table(networks: dict[str, torch.nn.Module], input_shape: tuple[int, ...],
               samples: dict[str, list[float]], batch: int):
    """Per network (rows, in `networks`' order): parameters, forward MFLOP per input of `input_shape`, and the
    median of its timed `samples` (seconds per pass, e.g. from `ticketlib.core.cost.latency_samples`) in ms per `batch`
    inputs. A pandas DataFrame."""
    import pandas as pd

    return pd.DataFrame({
        "parameters": {k: num_params(net) for k, net in networks.items()},
        "forward MFLOP / image": {k: flops(net, tuple(input_shape)) / 1e6 for k, net in networks.items()},
        f"latency ms / batch of {batch}": {k: 1e3 * float(np.median(v)) for k, v in samples.items()},
    })


def movement_by_phase(distances: dict[float, list[float]], milestones: list[str],
                      epochs: int) -> tuple[int, dict[float, dict[str, float]]]:
    """How far the masks move per epoch before and after the first learning-rate drop.

    `distances` {ratio: [d(m_e-1, m_e) for e = 1..epochs]} as `search` gives them; the first drop is the
    earliest of `milestones` (epochs, "20ep"), or `epochs` without one. Returns (first drop, {ratio: {"high_lr":
    the mean of d(m_e-1, m_e) for e = 2..first drop (the move 0 -> 1 left out), "after_first_drop": the mean
    for e = first drop + 1..epochs}}), in `distances`' order; a phase with no epoch is NaN.
    """
    first_drop = min((Step(m).count for m in milestones), default=epochs)
    phase = {r: {"high_lr": float(np.mean(d[1:first_drop])) if first_drop > 1 else float("nan"),
                 "after_first_drop": float(np.mean(d[first_drop:])) if first_drop < epochs else float("nan")}
             for r, d in distances.items()}
    return first_drop, phase
