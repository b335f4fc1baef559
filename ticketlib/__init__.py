"""ticketlib: find and study lottery tickets (masks, pruning, rewinding, masked training, IMP).

The public API (`__all__`) works on any `nn.Module` with the user's own training loop:

    >>> from ticketlib import IMPConfig, find_ticket, scores
    >>> ticket = find_ticket(MyNet, my_train_fn, IMPConfig(rounds=5, fraction=0.2))  # doctest: +SKIP

Names are imported on first use, so `import ticketlib` stays light (no notebook stack, no pandas).
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {  # name -> (module, attribute); attribute None: the module itself
    "Mask": ("core.masks", "Mask"),
    "keep_pruned_at_zero": ("core.masks", "keep_pruned_at_zero"),
    "prune": ("core.pruning", "prune"),
    "scores": ("core.scores", None),
    "Step": ("core.rewind", "Step"),
    "capture": ("core.rewind", "capture"),
    "restore": ("core.rewind", "restore"),
    "IMPConfig": ("core.search", "IMPConfig"),
    "find_ticket": ("core.search", "find_ticket"),
    "Ticket": ("core.search", "Ticket"),
    "check_ticket": ("core.checks", "check_ticket"),
    "TicketCheckError": ("core.checks", "TicketCheckError"),
    "prune_at_init": ("studies.conservation.study", "prune_at_init"),
    "mask_distance": ("core.distance", "distance"),
    "EarlyBird": ("core.distance", "EarlyBird"),
    "export_ticket": ("core.ticketfile", "export_ticket"),
    "load_ticket": ("core.ticketfile", "load_ticket"),
    "sparse_model": ("core.sparse", "sparse_model"),
    "to_ao": ("core.ao_interop", "to_ao"),
    "from_ao": ("core.ao_interop", "from_ao"),
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'ticketlib' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = importlib.import_module(f".{module}", __name__)
    value = value if attribute is None else getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
