"""Guard rails for a ticket search: the three bugs public IMP implementations shipped, caught when they happen.

- pruned weights must be exactly zero after every optimizer step (masks not re-applied: Lightning's
  ModelPruning #13643);
- a rewind must restore θ_k bit for bit, and θ_k must not change after it is captured (a "rewind" that
  aliases the live tensors; an IMP whose reset never ran: BERT-Tickets #19, Synaptic-Flow's README);
- each round's mask must keep exactly the number of weights its rate asks for, to the weight.

`search.find_ticket(..., check=True)` runs these after each step, rewind and pruning step;
`check_ticket` checks a finished ticket. Each failure raises `TicketCheckError` naming the problem.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ticketlib.core.masks import Mask
from ticketlib.core.pruning import round_count


class TicketCheckError(AssertionError):
    """A guard rail of the ticket search failed; the message names the problem and where.

    Example:
        >>> try:
        ...     check_pruned_zero({"w": torch.ones(2)}, Mask({"w": torch.tensor([1, 0])}), "after step 1")
        ... except TicketCheckError as error:
        ...     print(error)
        after step 1: 1 pruned weights of 'w' are not zero (the mask was not re-applied after the optimizer step)
    """


def _pruned_nonzero(tensor: torch.Tensor, keep: torch.Tensor) -> int:
    return int(((tensor.detach() != 0) & ~keep.to(tensor.device)).sum())


def check_pruned_zero(model: nn.Module | Mapping[str, torch.Tensor], mask: Mask, where: str = "") -> None:
    """Raise unless every weight `mask` prunes is exactly zero in `model` (or a state dict).

    Args:
        model: the model, or a state dict.
        mask: the mask that must hold.
        where: a label for the message (e.g. "round 2, after step 10").

    Returns:
        None; raises `TicketCheckError` naming the layer and the count of revived weights.

    Example:
        >>> check_pruned_zero(model, mask, "after step 1")  # doctest: +SKIP
    """
    tensors = dict(model.named_parameters()) if isinstance(model, nn.Module) else model
    for name, keep in mask.items():
        revived = _pruned_nonzero(tensors[name], keep)
        if revived:
            raise TicketCheckError(f"{where}: {revived} pruned weights of {name!r} are not zero "
                                   "(the mask was not re-applied after the optimizer step)")


def check_not_aliased(state: Mapping[str, torch.Tensor], model: nn.Module) -> None:
    """Raise if a tensor of a captured state shares memory with the model's live parameters or buffers.

    Args:
        state: a captured state (e.g. θ_k).
        model: the model it was captured from.

    Returns:
        None; raises `TicketCheckError` naming the aliased tensor.

    Example:
        >>> from ticketlib.core.rewind import capture
        >>> net = nn.Linear(2, 2); check_not_aliased(capture(net), net)
    """
    live = {t.data_ptr() for t in [*model.parameters(), *model.buffers()] if t.numel()}
    for name, tensor in state.items():
        if tensor.numel() and tensor.data_ptr() in live:
            raise TicketCheckError(f"the rewind state's {name!r} aliases the live tensor: training will "
                                   "overwrite θ_k (capture a copy, e.g. rewind.capture)")


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over the names and bytes of a state dict: tells whether θ_k changed since it was captured."""
    digest = hashlib.sha256()
    for name, tensor in state.items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                      if tensor.numel() else b"")
    return digest.hexdigest()


def check_rewound(model: nn.Module, state: Mapping[str, torch.Tensor], mask: Mask, digest: str | None = None,
                  where: str = "") -> None:
    """Raise unless `model` holds `state` bit for bit, with the weights `mask` prunes at zero.

    Args:
        model: the model just rewound.
        state: θ_k, the state it must hold.
        mask: the round's mask.
        digest: `state_digest(state)` taken when θ_k was captured; a mismatch means θ_k changed since.
        where: a label for the message.

    Returns:
        None; raises `TicketCheckError`.

    Example:
        >>> from ticketlib.core.rewind import capture, restore
        >>> net = nn.Linear(2, 2); theta_k = capture(net); mask = Mask.ones_like(net)
        >>> check_rewound(restore(net, theta_k, mask), theta_k, mask)
    """
    if digest is not None and state_digest(state) != digest:
        raise TicketCheckError(f"{where}: the rewind state θ_k changed after it was captured "
                               "(it aliases the live tensors, so the rewind restores trained weights)")
    for name, live in model.state_dict().items():
        expected = state[name]
        if name in mask:
            expected = expected * mask[name].to(expected.dtype)
        if not torch.equal(live.detach().cpu(), expected.cpu()):
            raise TicketCheckError(f"{where}: {name!r} was not rewound to θ_k bit for bit "
                                   "(the reset was skipped or restored something else)")


def target_kept(fraction: float, scope: str, fraction_of: str, previous: Mask, round_index: int,
                overrides: Mapping[str, float]) -> int:
    """How many weights round `round_index` must keep, from the previous mask's counts alone (no scores).

    Args:
        fraction: the per-round rate.
        scope: "layerwise" or "global".
        fraction_of: "remaining" (of the weights kept) or "original" (of the dense count).
        previous: the previous round's mask.
        round_index: the round being pruned.
        overrides: per-layer rates (resolved names), applied layerwise.

    Returns:
        The exact number of kept weights.

    Example:
        >>> target_kept(0.5, "global", "remaining", Mask({"w": torch.ones(10, dtype=torch.bool)}), 1, {})
        5
    """
    kept = {n: int(k.sum()) for n, k in previous.items()}
    if fraction_of == "original":
        density = max(0.0, 1.0 - fraction * round_index)
        if scope == "layerwise":
            return sum(min(kept[n], round_count(density * k.numel())) for n, k in previous.items())
        return min(previous.num_kept(), round_count(density * previous.num_total()))
    own = {n: overrides.get(n, fraction) for n in kept if n in overrides or scope == "layerwise"}
    total = sum(k - min(k, round_count(own[n] * k)) for n, k in kept.items() if n in own)
    pooled = sum(k for n, k in kept.items() if n not in own)
    return total + pooled - min(pooled, round_count(fraction * pooled))


def check_density(config: Any, previous: Mask, mask: Mask, round_index: int, overrides: Mapping[str, float]) -> None:
    """Raise unless `mask` keeps exactly `target_kept(...)` weights and none the previous mask pruned.

    Args:
        config: an `IMPConfig` (fraction, scope, fraction_of).
        previous: the previous round's mask.
        mask: this round's mask.
        round_index: this round.
        overrides: the resolved per-layer rates.

    Returns:
        None; raises `TicketCheckError` with the target and realised counts.

    Example:
        >>> check_density(IMPConfig(rounds=1), previous, mask, 1, {})  # doctest: +SKIP
    """
    target = target_kept(config.fraction, config.scope, config.fraction_of, previous, round_index, overrides)
    if mask.num_kept() != target:
        raise TicketCheckError(f"round {round_index}: the mask keeps {mask.num_kept()} weights, its target is "
                               f"{target} ({target / max(mask.num_total(), 1):.6f} of {mask.num_total()})")
    revived = sum(int((mask[n] & ~previous[n]).sum()) for n in mask)
    if revived:
        raise TicketCheckError(f"round {round_index}: {revived} weights pruned earlier came back")


def check_ticket(ticket: Any, config: Any, overrides: Mapping[str, float] | None = None) -> None:
    """Check a finished ticket: every round's density equals its target to the weight, no weight revives,
    and each round's trained weights (where stored) are exactly zero where its mask prunes.

    Args:
        ticket: a `search.Ticket`.
        config: the `IMPConfig` it was found with.
        overrides: the resolved per-layer rates (`pruning.resolve_overrides(model, config.overrides)`).

    Returns:
        None; raises `TicketCheckError`.

    Example:
        >>> check_ticket(ticket, IMPConfig(rounds=3, fraction=0.5))  # doctest: +SKIP
    """
    rounds = ticket.rounds
    for previous, current in zip(rounds, rounds[1:]):
        check_density(config, previous.mask, current.mask, current.round, overrides or {})
    for round_ in rounds:
        if round_.final_state is not None:
            check_pruned_zero(round_.final_state, round_.mask, f"round {round_.round}, trained weights")
