"""Run records and the scorecard."""

import json
import math

import numpy as np
import pytest
import torch

from ticketlib import report
from ticketlib.report import Record


def test_record_refuses_typed_in_or_non_bool_holds() -> None:
    record = Record()
    for bad in [1, "yes", None, 0.0, [True]]:
        with pytest.raises(TypeError, match="holds"):
            record.claim("c", "s", "p", "m", bad)
    assert record.claim("numpy", "s", "p", "m", np.float64(3.0) > 2) is True  # computed numpy bools are fine
    assert record.claim("torch", "s", "p", "m", torch.tensor(1.0) < 0) is False
    with pytest.raises(ValueError, match="twice"):
        record.claim("numpy", "s", "p", "m", True)
    assert [c["id"] for c in record.claims] == ["numpy", "torch"]


def test_record_saves_plain_json(tmp_path) -> None:
    record = Record(tmp_path / "r.json")
    record.metric("acc", np.float32(0.5))
    record.metric("curve", {1: torch.tensor([1.0, 2.0]), "nan": float("nan")})
    record.metric("pair", (1, np.int64(2)))
    record.claim("ok", "statement", "paper", "measured", True)
    record.save()
    body = json.loads((tmp_path / "r.json").read_text())
    assert body["metrics"] == {"acc": 0.5, "curve": {"1": [1.0, 2.0], "nan": None}, "pair": [1, 2]}
    assert body["claims"][0] == {"id": "ok", "statement": "statement", "paper": "paper", "measured": "measured",
                                 "holds": True}
    Record(None).save()  # no path: nothing written, no error


def fake_record(run: str, holds: list[bool], seconds: float = 12.0) -> dict:
    return {"run": run, "notebook": f"notebooks/{run}.ipynb", "profile": "cpu", "params": {}, "seconds": seconds,
            "device": "cpu (2 cores)", "versions": {}, "metrics": {},
            "claims": [{"id": f"{run}_claim{i}", "statement": f"statement {i} | piped", "paper": "paper <b>",
                        "measured": f"{i}%", "holds": h} for i, h in enumerate(holds)]}


def test_scorecard_markdown_and_html(tmp_path) -> None:
    report.write_json(tmp_path / "01_imp.json", fake_record("01_imp", [True, False, True]))
    report.write_json(tmp_path / "02_conservation.json", fake_record("02_conservation", [True]))
    (tmp_path / "01_imp.ipynb").write_text("{}")
    (tmp_path / "02_conservation.html").write_text("<html></html>")
    (tmp_path / "01_imp.partial.json").write_text(json.dumps({"metrics": {}, "claims": []}))  # not a record
    text = report.scorecard(tmp_path, html_pages=False)
    assert text == (tmp_path / "scorecard.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| 0")]
    assert len(rows) == 4 and sum("| **no** |" in r for r in rows) == 1
    assert "3 of 4 claims hold across 2 run(s)." in text
    assert "statement 0 / piped" in text  # a pipe cannot break the table
    assert "- `01_imp`: 12 s on cpu (2 cores)" in text
    page = (tmp_path / "index.html").read_text()
    assert page.count("<tr style=") == 4 and page.count("#fdd") == 1
    assert "href='01_imp.ipynb'" in page and "href='02_conservation.html'" in page  # links the executed notebooks
    assert "paper &lt;b&gt;" in page


def test_load_records_ignores_other_json(tmp_path) -> None:
    report.write_json(tmp_path / "a.json", fake_record("01_imp", [True]))
    (tmp_path / "b.json").write_text(json.dumps([1, 2]))
    assert [r["run"] for r in report.load_records(tmp_path)] == ["01_imp"]
    assert math.isfinite(report.load_records(tmp_path)[0]["seconds"])


def test_scorecard_survives_a_record_without_seconds(tmp_path) -> None:
    record = fake_record("01_imp", [True])
    record["seconds"] = None
    report.write_json(tmp_path / "01_imp.json", record)
    text = report.scorecard(tmp_path, html_pages=False)
    assert "- `01_imp`: time not recorded on cpu (2 cores)" in text
