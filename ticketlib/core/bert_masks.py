"""A BERT encoder's masks by matrix kind: percent kept per kind (query, key, value, attention output,
intermediate, output, pooler) and the pairwise overlaps of masks, for 03's transfer sources."""
from __future__ import annotations

from ticketlib.core.masks import Mask

MATRIX_KINDS = ("query", "key", "value", "attention.output", "intermediate", "output", "pooler")


def matrix_kind(name: str) -> str:
    """The kind of a prunable matrix, from its parameter name: the first of `MATRIX_KINDS` the name contains
    ("attention.output" before the feed-forward "output"); the name itself when none."""
    for key in MATRIX_KINDS:
        if key in name:
            return key
    return name


def density_by_matrix_kind(masks: dict[str, Mask]):
    """Percent of the weights kept, per matrix kind (rows, sorted) and mask (columns, in `masks`' order):
    kept over total of all matrices of that kind, so larger matrices weigh more. A pandas DataFrame."""
    import pandas as pd

    def by_kind(mask: Mask):
        table = mask.table().drop(index="total")
        sums = table.assign(kind=[matrix_kind(n) for n in table.index]).groupby("kind")[["kept", "total"]].sum()
        return 100 * sums["kept"] / sums["total"]

    return pd.DataFrame({name: by_kind(mask) for name, mask in masks.items()})


def mask_overlap(masks: dict[str, Mask]):
    """Pairwise difference of masks in percent: entry [b, a] is 100 × the normalised Hamming distance of
    masks a and b (the fraction of all masked weights kept by one and pruned by the other). A symmetric
    pandas DataFrame with zeros on the diagonal, rows and columns in `masks`' order."""
    import pandas as pd

    return pd.DataFrame({a: {b: 100 * ma.hamming(mb) for b, mb in masks.items()} for a, ma in masks.items()})
