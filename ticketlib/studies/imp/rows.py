"""The typed result of an IMP study: one `RunRow` per trained network (a round's ticket or a control), and the
selections its claims make (the run of a kind at the round nearest a level, per seed).

Inside the library a level is a density, a fraction in [0, 1]; `percent_remaining` is its display form, and
`as_dict` is the tidy row the notebooks show and the records store (a DataFrame is made only there, `frame`).
`from_dict` reads such a row back (a record's `runs`), so a record re-judges to the same verdicts.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ticketlib.core.levels import nearest
from ticketlib.verdicts.engine import pct

EARLY_STOP_KIND = "early_stop_ticket"  # imp_study's rows of an early-stop seed (rounds down to the learns-faster level)


@dataclass(frozen=True)
class RunRow:
    """One trained network of an IMP study. Accuracies are in % (as the claims' gaps are, in pp)."""

    seed: int
    kind: str  # "ticket", a control ("reinit", "random_mask") or EARLY_STOP_KIND
    round: int  # the IMP round whose mask it trained (0: dense)
    density: float  # the fraction of prunable weights kept
    test_accuracy: float  # % at the early-stop iteration
    early_stop_iteration: int
    final_test_accuracy: float  # % at the end of training
    seconds: float = 0.0

    @property
    def percent_remaining(self) -> float:
        return 100 * self.density

    def as_dict(self) -> dict:
        """The tidy row (percent for display), in the column order the records have always had."""
        return {"seed": self.seed, "kind": self.kind, "round": self.round, "percent_remaining": self.percent_remaining,
                "test_accuracy": self.test_accuracy, "early_stop_iteration": self.early_stop_iteration,
                "final_test_accuracy": self.final_test_accuracy, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, row: Mapping) -> RunRow:
        """A tidy row back (a record's `runs`; `seconds` may be left out)."""
        return cls(seed=row["seed"], kind=row["kind"], round=row["round"], density=row["percent_remaining"] / 100,
                   test_accuracy=row["test_accuracy"], early_stop_iteration=row["early_stop_iteration"],
                   final_test_accuracy=row["final_test_accuracy"], seconds=row.get("seconds", 0.0))

    def value(self, column: str) -> float:
        """A judged quantity by name ("test_accuracy", "final_test_accuracy", "early_stop_iteration", ...)."""
        if column not in _COLUMNS:
            raise KeyError(f"a run row has no {column!r}; it has {', '.join(_COLUMNS)}")
        return getattr(self, column)


_COLUMNS = ("test_accuracy", "final_test_accuracy", "early_stop_iteration", "percent_remaining", "density", "seconds")


def frame(rows: Iterable[RunRow]):
    """The rows as a DataFrame, for the notebook's tables and figures."""
    import pandas as pd

    return pd.DataFrame([r.as_dict() for r in rows])


def nearest_run(rows: Sequence[RunRow], seed: int, percent: float) -> RunRow:
    """The ticket row of `seed` whose % remaining is nearest `percent` (log scale)."""
    tickets = [r for r in rows if r.seed == seed and r.kind == "ticket"]
    if not tickets:
        raise ValueError(f"no IMP rounds for seed {seed}")
    return nearest(tickets, percent, lambda r: r.percent_remaining)


def at_level(rows: Sequence[RunRow], kind: str, percent: float, column: str) -> dict[int, float]:
    """Per seed, `column` of the `kind` run at the IMP round nearest `percent` % remaining; raises naming the kind
    and the level when a seed has no such run (a control not trained there)."""
    out = {}
    for seed in sorted({r.seed for r in rows if r.kind == "ticket"}):
        target = nearest_run(rows, seed, percent)
        match = [r for r in rows if r.seed == seed and r.kind == kind and r.round == target.round]
        if not match:
            raise ValueError(f"no '{kind}' run at round {target.round} ({target.percent_remaining:.2f}%, "
                             f"nearest {percent:g}%) for seed {seed}: train it at that level")
        out[seed] = match[0].value(column)
    return out


def level_text(rows: Sequence[RunRow], percent: float) -> str:
    """The % remaining of the (first seed's) ticket round nearest `percent`, as text."""
    return pct(next(iter(at_level(rows, "ticket", percent, "percent_remaining").values())))


def early_stop_pooled(rows: Sequence[RunRow]) -> list[RunRow]:
    """`rows` with the early-stop seeds' rows relabelled "ticket" (their round 0 is their dense run), for the one
    claim that pools them."""
    return [replace(r, kind="ticket") if r.kind == EARLY_STOP_KIND else r for r in rows]
