"""One convention for levels: densities are fractions; one nearest-level rule, log or linear."""
import pytest

from ticketlib.core.levels import log_compression, nearest, percent, sparsity


def test_conversions() -> None:
    assert percent(0.036) == pytest.approx(3.6) and sparsity(0.3) == pytest.approx(0.7)
    assert log_compression(0.001) == pytest.approx(3.0)


def test_nearest_on_a_log_scale_is_not_the_linear_nearest() -> None:
    levels = [100.0, 10.0, 1.0]
    assert nearest(levels, 2.0, float) == 1.0 and nearest(levels, 2.0, float, log=False) == 1.0
    assert nearest(levels, 4.0, float) == 10.0  # |log(10/4)| = 0.92 < |log(4/1)| = 1.39
    assert nearest(levels, 7.0, float, log=False) == 10.0 and nearest(levels, 5.0, float, log=False) == 1.0
    assert nearest(levels, 25.0, float) == 10.0 and nearest(levels, 25.0, float, log=False) == 10.0
    assert nearest(levels, 33.0, float) == 100.0 and nearest(levels, 33.0, float, log=False) == 10.0  # the scales differ


def test_nearest_keys_ties_and_empty() -> None:
    rounds = [{"round": r, "density": d} for r, d in enumerate([1.0, 0.5, 0.25, 0.0])]
    assert nearest(rounds, 50.0, lambda r: 100 * r["density"])["round"] == 1
    assert nearest(rounds, 0.3, lambda r: r["density"], log=False)["round"] == 2
    assert nearest(rounds, 1e-9, lambda r: 100 * r["density"])["round"] == 3  # a zero density is floored, not log(0)
    assert nearest([2.0, 8.0], 4.0, float) == 2.0  # a tie goes to the first
    with pytest.raises(ValueError):
        nearest([], 1.0, float)
