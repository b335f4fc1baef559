"""Levels of sparsity, one convention: inside the library a density is a fraction in [0, 1] (kept / prunable);
percent remaining, sparsity and log10 compression are conversions for display and for the papers' own units.
`nearest` is the one "closest level" rule every study uses: on a log scale for % remaining (IMP's levels are
geometric), linearly where a paper states levels linearly (Chen et al.'s sparsities)."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def percent(density: float) -> float:
    """% of weights remaining."""
    return 100 * density


def sparsity(density: float) -> float:
    """Fraction of weights pruned."""
    return 1 - density


def log_compression(density: float) -> float:
    """log10 of the compression ratio 1 / density (Tanaka et al.'s axis)."""
    return -math.log10(density)


def nearest(items: Iterable[T], target: float, value: Callable[[T], float], log: bool = True) -> T:
    """The item whose `value` is closest to `target`: by |log(value / target)| (values floored at 1e-12) or, with
    `log=False`, by |value - target|. Ties go to the first item; no items is a ValueError."""
    if log:
        def distance(item: T) -> float:
            return abs(math.log(max(value(item), 1e-12) / target))
    else:
        def distance(item: T) -> float:
            return abs(value(item) - target)
    return min(items, key=distance)
