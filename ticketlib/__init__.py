"""ticketlib: find and study lottery tickets (masks, pruning, rewinding, masked training, IMP)."""

__version__ = "0.1.0"
