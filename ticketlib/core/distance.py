"""Mask distance and the early-bird detector (You et al. 2020).

Any two masks over the same layers have a normalised Hamming distance (`Mask.hamming`): the fraction of
*all* masked entries whose state differs, pooled over layers of different widths as one global mask
(ARCHITECTURE.md, "Masks"). For a channel mask (`slim.channel_mask`, one bool per BatchNorm channel) that
is the fraction of channels, exactly as for unstructured masks over weights.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import torch

from ticketlib.core.masks import Mask


def distance(a: Mask, b: Mask) -> float:
    """Normalised Hamming distance between two masks over the same layers (0 = equal, 1 = complements).

    Public as `ticketlib.mask_distance`.

    Args:
        a: a mask.
        b: a mask over the same layers and shapes.

    Returns:
        The fraction of all masked weights kept by one and pruned by the other.

    Example:
        >>> distance(Mask({"w": torch.tensor([1, 1, 0, 0])}), Mask({"w": torch.tensor([1, 0, 1, 0])}))
        0.5
    """
    return a.hamming(b)


def distance_matrix(masks: Sequence[Mask]) -> torch.Tensor:
    """The symmetric (n, n) matrix of pairwise `distance`s, float64, zero diagonal, from one product: the flattened
    masks x, y differ in |x| + |y| - 2 x·y entries (integers, exact in float64)."""
    layout = [[(n, t.shape) for n, t in m.items()] for m in masks]
    if any(found != layout[0] for found in layout):
        raise ValueError("masks cover different layers or shapes")
    rows = [torch.cat([t.flatten() for t in m.values()]) for m in masks]
    x = (torch.stack(rows) if rows else torch.zeros(0, 0)).double()
    kept = x.sum(1)
    return (kept[:, None] + kept[None, :] - 2 * (x @ x.T)) / max(x.shape[1], 1)


def consecutive_distances(masks: Sequence[Mask]) -> list[float]:
    """[d(m0, m1), d(m1, m2), ...]: how much each mask moved since the previous one."""
    return [distance(a, b) for a, b in zip(masks[:-1], masks[1:])]


class EarlyBird:
    """You et al.'s detector: keep the last `window` masks; fire when every one is within `epsilon` of the newest.

    Call `push(mask)` once per check (before each epoch); it returns True while the window
    condition holds: the queue is full and max_i d(m_i, m_newest) <= epsilon over the
    `window - 1` older masks. `fired_at` is the index (0-based count of pushes) of the first firing.

    Example:
        >>> eb = EarlyBird(epsilon=0.1, window=2); m = Mask({"w": torch.ones(3)})
        >>> eb.push(m), eb.push(m)
        (False, True)
    """

    def __init__(self, epsilon: float = 0.1, window: int = 5):
        if window < 2:
            raise ValueError(f"window must be at least 2, got {window}")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.epsilon, self.window = epsilon, window
        self.masks: deque[Mask] = deque(maxlen=window)
        self.pushes = 0
        self.fired_at: int | None = None
        self.last_distances: list[float] = []

    def push(self, mask: Mask) -> bool:
        """Add the newest mask; True when the ticket is declared (the window condition holds now)."""
        self.masks.append(mask)
        self.pushes += 1
        self.last_distances = [distance(old, mask) for old in list(self.masks)[:-1]]
        fired = len(self.masks) == self.window and max(self.last_distances) <= self.epsilon
        if fired and self.fired_at is None:
            self.fired_at = self.pushes - 1
        return fired
