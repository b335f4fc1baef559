"""One ticket search for any model: train -> prune -> rewind -> repeat, with the user's own training loop.

`find_ticket(model_or_factory, train_fn, IMPConfig(...))` runs iterative pruning on any `nn.Module`.
`train_fn(model, mask, optimizer_factory)` is the user's loop; `optimizer_factory` (a `RoundContext`)
wraps their optimizer so that pruned weights, gradients and optimizer state stay exactly zero, counts
its steps and captures the rewind point θ_k after step k of the dense round (or the loop calls
`rewind_point()` itself). `Ticket` holds the masks, the rewind state and per-round metrics, and saves
and loads. The built-in image IMP (`imp.find_ticket`) is one use of this search: its rounds go through
a round cache (`CacheRounds`: one `Cache.cached(unit_key(...))` unit per round, see ARCHITECTURE.md,
"Units and the cache"). `check=True` turns on the guard rails of `checks`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ticketlib.core import checks
from ticketlib.core import pruning
from ticketlib.core import rewind
from ticketlib.core import scores
from ticketlib.infra.cache import Cache, atomic_write
from ticketlib.core.masks import Mask, keep_pruned_at_zero
from ticketlib.core.pruning import resolve_overrides
from ticketlib.core.rewind import capture, restore

FRACTION_OF = ("remaining", "original")
TICKET_FORMAT = "ticketlib.ticket/1"


@dataclass
class IMPConfig:
    """How IMP prunes and rewinds.

    fraction_of="remaining": each round prunes `fraction` of the weights still kept (Frankle & Carbin);
    "original": each round removes another `fraction` of the original count (Chen et al.'s BERT tickets).
    `overrides` maps layer names to their own rate; the keys "output" (the last Linear's weight) and
    "conv" (every Conv2d weight) are aliases.

    Example:
        >>> IMPConfig(rounds=3, fraction=0.2, scope="global", rewind="0it").key()["fraction"]
        0.2
    """

    rounds: int
    fraction: float = 0.2
    scope: str = "layerwise"
    overrides: dict[str, float] = field(default_factory=dict)
    rewind: str = "0it"
    fraction_of: str = "remaining"

    def __post_init__(self):
        rewind.Step(self.rewind)
        if self.fraction_of not in FRACTION_OF:
            raise ValueError(f"fraction_of must be one of {FRACTION_OF}, got {self.fraction_of!r}")
        if self.scope not in pruning.SCOPES:
            raise ValueError(f"scope must be one of {pruning.SCOPES}, got {self.scope!r}")
        for name, rate in [("fraction", self.fraction), *self.overrides.items()]:
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"pruning rate {name!r} must be in [0, 1], got {rate}")

    def key(self) -> dict:
        """What identifies a round: not `rounds`, so going from 18 to 20 rounds reuses rounds 0-18."""
        key = asdict(self)
        key.pop("rounds")
        return key

    def density_at(self, round_index: int) -> float:
        """The target density of round `round_index` when `fraction_of="original"`."""
        return max(0.0, 1.0 - self.fraction * round_index)


@dataclass
class Round:
    """One IMP round: the mask it trained and what the training measured."""

    round: int
    mask: Mask
    result: dict
    history: list[dict]
    final_state: dict | None = None  # the trained weights (rounds and controls alike)

    @property
    def density(self) -> float:
        return self.mask.density()


@dataclass
class Ticket:
    """A finished (or resumed) ticket search: one `Round` per training, θ0 and the rewind state θ_k.

    Example:
        >>> ticket.rounds[-1].mask.density()          # doctest: +SKIP
        >>> ticket.save("ticket.pt"); Ticket.load("ticket.pt")  # doctest: +SKIP
    """

    rounds: list[Round]
    init_state: dict
    rewind_state: dict
    rewind_iteration: int

    @property
    def mask(self) -> Mask:
        """The last round's mask."""
        return self.rounds[-1].mask

    def metrics(self) -> list[dict]:
        """One row per round: round, density and the metrics its training returned."""
        return [{"round": r.round, "density": r.density, **r.result} for r in self.rounds]

    def save(self, path: str | Path, final_states: bool = False) -> None:
        """Write the ticket (masks, metrics, θ0, θ_k; trained weights with `final_states`) with torch.save.

        Args:
            path: the file to write (atomically).
            final_states: also store every round's trained weights.

        Example:
            >>> ticket.save("ticket.pt")  # doctest: +SKIP
        """
        rounds = [{"round": r.round, "mask": dict(r.mask), "result": r.result, "history": r.history,
                   "final_state": r.final_state if final_states else None} for r in self.rounds]
        payload = {"format": TICKET_FORMAT, "rounds": rounds, "init_state": self.init_state,
                   "rewind_state": self.rewind_state, "rewind_iteration": self.rewind_iteration}
        atomic_write(path, lambda tmp: torch.save(payload, tmp))

    @classmethod
    def load(cls, path: str | Path) -> "Ticket":
        """Read a file written by `save`.

        Args:
            path: a `ticketlib.ticket/1` file.

        Returns:
            The `Ticket`.

        Example:
            >>> Ticket.load("ticket.pt").mask.density()  # doctest: +SKIP
        """
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != TICKET_FORMAT:
            raise ValueError(f"{path} is not a ticketlib ticket file ({TICKET_FORMAT})")
        rounds = [Round(r["round"], Mask(r["mask"]), r["result"], r["history"], r["final_state"])
                  for r in payload["rounds"]]
        return cls(rounds, payload["init_state"], payload["rewind_state"], payload["rewind_iteration"])


class RoundCache(Protocol):
    """Where rounds are stored: `round(index, mask, compute)` returns the stored payload of the round that trains
    `mask`, or `compute()`'s: `{"mask", "result", "history", "final_state"}` (round 0 may add "rewind_state";
    "final_state" must hold at least the masked weights)."""

    def round(self, index: int, mask: Mask, compute: Callable[[], dict]) -> dict: ...


class NoCache:
    """Every round is computed."""

    def round(self, index: int, mask: Mask, compute: Callable[[], dict]) -> dict:
        return compute()


@dataclass
class CacheRounds:
    """A `Cache` as a round store: round r is the unit `{**key, "round": r}` (payloads on the CPU)."""

    cache: Cache
    key: dict
    device: str | None = None

    def round(self, index: int, mask: Mask, compute: Callable[[], dict]) -> dict:
        return self.cache.cached({**self.key, "round": index}, compute, self.device)


class RoundContext:
    """What `train_fn` gets as `optimizer_factory`: call it on an optimizer (or a `params -> optimizer`
    callable) to get it back wrapped: pruned weights, gradients and state stay zero, steps are counted,
    and in the dense round the state after step `rewind_iteration` is captured as θ_k.

    `round`, `start_iteration` (where a rewound round starts: 0 in round 0) tell a loop that
    fast-forwards its schedule where it is; `rewind_point(state=None)` captures θ_k explicitly.
    """

    def __init__(self, model: nn.Module, mask: Mask, round_index: int, rewind_iteration: int, check: bool):
        self.model, self.mask, self.round = model, mask, round_index
        self.rewind_iteration = rewind_iteration
        self.start_iteration = rewind_iteration if round_index else 0
        self.capture_at = rewind_iteration if (round_index == 0 and rewind_iteration) else None
        self.check, self.steps, self.captured = check, 0, None
        self._handles: list[Any] = []

    def __call__(self, optimizer: torch.optim.Optimizer | Callable) -> torch.optim.Optimizer:
        if not isinstance(optimizer, torch.optim.Optimizer):
            optimizer = optimizer([p for p in self.model.parameters() if p.requires_grad])
        self._handles.append(keep_pruned_at_zero(self.mask, self.model, optimizer))
        self._handles.append(optimizer.register_step_post_hook(self._after_step))
        return optimizer

    def _after_step(self, *_args) -> None:
        self.steps += 1
        if self.check:
            checks.check_pruned_zero(self.model, self.mask, f"round {self.round}, after step {self.steps}")
        if self.capture_at is not None and self.steps == self.capture_at and self.captured is None:
            self.rewind_point()

    def rewind_point(self, state: dict | None = None) -> None:
        """Record θ_k now (a CPU copy of the model's state), or `state` if given."""
        self.captured = capture(self.model) if state is None else state
        if self.check:
            checks.check_not_aliased(self.captured, self.model)

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def build_model(model_or_factory: nn.Module | Callable[[], nn.Module]) -> nn.Module:
    """The model itself, or the factory's product."""
    return model_or_factory if isinstance(model_or_factory, nn.Module) else model_or_factory()


def prune_step(imp: IMPConfig, scored: dict[str, torch.Tensor], mask: Mask, round_index: int,
               model: nn.Module) -> Mask:
    """Round `round_index`'s mask from the previous round's scores (pruned weights never come back)."""
    if imp.fraction_of == "original":
        return pruning.prune_to_density(scored, mask, imp.density_at(round_index), scope=imp.scope)
    return pruning.prune(scored, mask, imp.fraction, scope=imp.scope, overrides=resolve_overrides(model, imp.overrides))


def load_trained(model: nn.Module, state: dict, mask: Mask) -> None:
    """Load a round's trained weights: a full state dict, or (a round store that keeps only them) the masked ones."""
    missing = [n for n in mask if n not in state]
    if missing:
        raise KeyError(f"the stored round has no trained weights for {missing[:3]}")
    model.load_state_dict(state, strict=set(state) == set(model.state_dict()))


def _summary(out: Any) -> tuple[dict, list]:
    """(result, history) from what `train_fn` returned: a `TrainResult`-like object, a dict or None."""
    if hasattr(out, "summary") and callable(out.summary):
        return out.summary(), list(getattr(out, "history", []))
    return dict(out or {}), []


def _train_round(model: nn.Module, train_fn: Callable, mask: Mask, round_index: int, rewind_iteration: int,
                 check: bool) -> tuple[dict, list, dict | None]:
    context = RoundContext(model, mask, round_index, rewind_iteration, check)
    try:
        result, history = _summary(train_fn(model, mask, context))
    finally:
        context.close()
    if check:
        checks.check_pruned_zero(model, mask, f"round {round_index}, after training")
    return result, history, context.captured


def find_ticket(model_or_factory: nn.Module | Callable[[], nn.Module], train_fn: Callable, config: IMPConfig,
                scorer: Callable = scores.magnitude, cache: RoundCache | None = None, names: list[str] | None = None,
                iterations_per_epoch: int = 1, check: bool = False, until_density: float | None = None) -> Ticket:
    """Iterative pruning with rewinding on any model and training loop: `config.rounds + 1` trainings (fewer with
    `until_density`).

    Round 0 trains the dense model from θ0; every later round scores the previous round's trained weights
    (`scorer(model, mask)`), prunes by `config`, rewinds the kept weights to θ_k (θ0 for "0it") and trains again.

    Args:
        model_or_factory: an `nn.Module` (trained in place) or a function that builds one.
        train_fn: `train_fn(model, mask, optimizer_factory)`, the user's loop; it wraps its optimizer with
            `optimizer_factory(opt)` and may return a dict of metrics (or a `train.TrainResult`).
        config: rounds, rate, scope, overrides and the rewind `Step`.
        scorer: `scorer(model, mask) -> {name: score}`; magnitude by default.
        cache: a `RoundCache` (e.g. `CacheRounds(Cache("runs/cache"), key)`); None computes every round.
        names: the prunable parameters (default: every Linear/Conv weight).
        iterations_per_epoch: how many optimizer steps make an epoch, for rewind steps like "1ep".
        check: verify after every step and rewind (`checks`): pruned weights exactly zero, θ_k restored
            bit for bit, each round's density equal to its target to the weight.
        until_density: stop after the first round whose density (fraction of the prunable weights kept, in
            [0, 1]) is at or below it; None runs all `config.rounds`. It changes no round: a truncated search's
            rounds are the first rounds of the full one (and, with a cache, the same units).

    Returns:
        The `Ticket`: one `Round` per training (mask, metrics, trained weights), θ0 and θ_k.

    Example:
        >>> def train_fn(model, mask, optimizer_factory):
        ...     opt = optimizer_factory(torch.optim.SGD(model.parameters(), lr=0.1))
        ...     for x, y in loader:
        ...         opt.zero_grad(); F.cross_entropy(model(x), y).backward(); opt.step()
        ...     return {"accuracy": accuracy(model)}
        >>> ticket = find_ticket(MyNet(), train_fn, IMPConfig(rounds=3, fraction=0.5))  # doctest: +SKIP
    """
    if until_density is not None and not 0.0 <= until_density <= 1.0:
        raise ValueError(f"until_density is a fraction of the weights kept, in [0, 1], got {until_density}")
    cache = cache or NoCache()
    model = build_model(model_or_factory)
    init_state = capture(model)
    if check:
        checks.check_not_aliased(init_state, model)
    dense = Mask.ones_like(model, names)
    rewind_iteration = rewind.Step(config.rewind).iteration(iterations_per_epoch)

    def first() -> dict:
        restore(model, init_state)
        result, history, captured = _train_round(model, train_fn, dense, 0, rewind_iteration, check)
        if rewind_iteration and captured is None:
            raise RuntimeError(f"the dense round never reached the rewind step {config.rewind!r}: train at least "
                               f"{rewind_iteration} optimizer steps or call optimizer_factory.rewind_point()")
        return {"mask": dict(dense), "result": result, "history": history, "final_state": capture(model),
                "rewind_state": captured if rewind_iteration else init_state}

    payload = cache.round(0, dense, first)
    rounds = [Round(0, Mask(payload["mask"]), payload["result"], payload["history"], payload["final_state"])]
    if "rewind_state" not in payload and rewind_iteration:
        raise KeyError(f"the round store kept no rewind state for {config.rewind!r}")
    rewind_state = payload.get("rewind_state", init_state)
    if check:
        rewind_digest = checks.state_digest(rewind_state)
    for r in range(1, config.rounds + 1):
        previous = rounds[-1]
        if until_density is not None and previous.density <= until_density:
            break
        load_trained(model, previous.final_state, previous.mask)
        mask = prune_step(config, scorer(model, previous.mask), previous.mask, r, model)

        def compute(r: int = r, previous: Round = previous, mask: Mask = mask) -> dict:
            restore(model, rewind_state, mask)
            if check:
                checks.check_density(config, previous.mask, mask, r, resolve_overrides(model, config.overrides))
                checks.check_rewound(model, rewind_state, mask, rewind_digest, f"round {r}")
            result, history, _ = _train_round(model, train_fn, mask, r, rewind_iteration, check)
            return {"mask": dict(mask), "result": result, "history": history, "final_state": capture(model)}

        payload = cache.round(r, mask, compute)
        rounds.append(Round(r, Mask(payload["mask"]), payload["result"], payload["history"], payload["final_state"]))
    return Ticket(rounds, init_state, rewind_state, rewind_iteration)
