"""Run records and the scorecard."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ticketlib.verdicts import engine
from ticketlib.verdicts import thresholds
from ticketlib.infra import cache
from ticketlib.runner import report
from ticketlib.runner.report import Record

VALUES = {"holds": {0: 2.0, 1: 2.2, 2: 1.9}, "fails": {0: -2.0, 1: -2.1, 2: -1.8}, "inconclusive": {0: 1.0, 1: -1.0}}


def verdict(claim_id: str, outcome: str, **kwargs) -> engine.Verdict:
    """A claim judged by ticketlib.verdicts whose verdict is `outcome` (per-seed values chosen for it)."""
    return engine.judge(claim_id, statement=f"statement of {claim_id} | piped", paper="paper <b>",
                        values=VALUES[outcome], threshold=thresholds.Threshold(0.0, "Someone 2020, Fig. 1"),
                        direction=">", measured="measured", **kwargs)


def fake_record(run: str, outcomes: list[str], seconds: float | None = 12.0, provenance: dict | None = None) -> dict:
    record = {"run": run, "notebook": f"notebooks/{run.split('-')[0]}.ipynb", "profile": "cpu", "params": {},
              "seconds": seconds, "device": "cpu (2 cores)", "versions": {}, "metrics": {},
              "claims": [report._plain(verdict(f"{run}_claim{i}", o).to_dict()) for i, o in enumerate(outcomes)]}
    if provenance is not None:
        record["provenance"] = provenance
    return record


def test_record_takes_only_judged_claims() -> None:
    record = Record()
    for bad in [True, np.float64(3.0) > 2, torch.tensor(1.0) < 0, {"id": "c", "holds": True}]:
        with pytest.raises(TypeError, match="Verdict"):
            record.claim(bad)
    assert record.claim(verdict("a", "holds")) is True
    assert record.claim(verdict("b", "inconclusive")) is False
    with pytest.raises(ValueError, match="twice"):
        record.claim(verdict("a", "fails"))
    assert [c["id"] for c in record.claims] == ["a", "b"]


def test_record_saves_plain_json(tmp_path) -> None:
    record = Record(tmp_path / "r.json")
    record.metric("acc", np.float32(0.5))
    record.metric("curve", {1: torch.tensor([1.0, 2.0]), "nan": float("nan")})
    record.metric("pair", (1, np.int64(2)))
    record.claim(verdict("ok", "holds"))
    record.claim(engine.judge("one_seed", statement="s", paper="p", values={0: 1.0},
                              threshold=thresholds.Threshold(0.0, "src"), direction=">", measured="m"))
    record.save()
    body = json.loads((tmp_path / "r.json").read_text())
    assert 0 <= body["metrics"].pop("notebook_seconds") < 60  # the wall time since the record was opened, last
    assert body["metrics"] == {"acc": 0.5, "curve": {"1": [1.0, 2.0], "nan": None}, "pair": [1, 2]}
    ok, one = body["claims"]
    assert set(ok) == {"id", "statement", "paper", "source", "direction", "threshold", "threshold_basis", "estimate",
                       "interval", "seeds", "verdict", "holds", "measured", "kind", "values", "parts"}
    assert (ok["verdict"], ok["holds"], ok["seeds"], ok["values"]) == ("holds", True, 3, {"0": 2.0, "1": 2.2, "2": 1.9})
    assert one["interval"] == [None, None] and one["verdict"] == "inconclusive"  # one noisy seed: no interval
    Record(None).save()  # no path: nothing written, no error


def test_display_strings() -> None:
    def as_dict(v: engine.Verdict) -> dict:
        return report._plain(v.to_dict())

    spread = as_dict(verdict("c", "holds"))
    assert report.estimate_text(spread).startswith("2.033 [") and report.threshold_text(spread) == "> 0 (paper)"
    exact = as_dict(engine.judge("d", statement="s", paper="p", values={0: 86.5},
                                 threshold=thresholds.Threshold(86.0, "Zhou"), direction=">", measured="m",
                                 deterministic=True))
    assert report.estimate_text(exact) == "86.5 (deterministic)" and report.threshold_text(exact) == "> 86 (paper)"
    one = engine.judge("e", statement="s", paper="p", values={0: 1.0}, threshold=thresholds.direction_only("x"),
                       direction="<", measured="m")
    assert report.estimate_text(as_dict(one)) == "1 (no interval: one seed)"
    old = {"id": "old", "statement": "s", "paper": "p", "measured": "m", "holds": False}
    assert report.verdict_of(old) == "fails" and report.estimate_text(old) == report.threshold_text(old) == ""
    assert report.counts([spread, exact, old]) == "2 hold, 1 fail, 0 inconclusive of 3 claims"


def test_scorecard_markdown_and_html(tmp_path) -> None:
    report.write_json(tmp_path / "01_imp.json", fake_record("01_imp", ["holds", "fails", "inconclusive"]))
    report.write_json(tmp_path / "02_conservation.json", fake_record("02_conservation", ["holds"]))
    old = {"run": "00_old", "notebook": "notebooks/00_old.ipynb", "profile": "cpu", "seconds": 3, "device": "cpu",
           "metrics": {}, "claims": [{"id": "legacy", "statement": "s", "paper": "p", "measured": "m", "holds": True}]}
    report.write_json(tmp_path / "00_old.json", old)
    (tmp_path / "01_imp.ipynb").write_text("{}")
    (tmp_path / "02_conservation.html").write_text("<html></html>")
    (tmp_path / "01_imp.partial.json").write_text(json.dumps({"metrics": {}, "claims": []}))  # not a record
    text = report.scorecard(tmp_path, html_pages=False, root=tmp_path)
    assert text == (tmp_path / "scorecard.md").read_text()
    lines = text.splitlines()
    assert "| run | claim | verdict | estimate [interval] | threshold (basis) | seeds | measured | paper | source |" \
        in lines
    rows = [line for line in lines if line.startswith("| 0")]
    assert len(rows) == 5 and sum("| **fails** |" in r for r in rows) == 1 and sum("*inconclusive*" in r for r in rows) == 1
    assert "**3 hold, 1 fail, 1 inconclusive of 5 claims** across 3 run(s)." in text
    assert f"Method: {engine.METHOD}." in text
    assert "- 01_imp: 12 s on cpu (2 cores); stale: no provenance recorded" in text
    page = (tmp_path / "index.html").read_text()
    assert [page.count(f'col0 {v}"') for v in ("holds", "fails", "inconclusive")] == [3, 1, 1]  # rows by verdict
    assert all(f"td.{v}{{background:{colour}}}" in page for v, colour in report.ROW_COLOURS.items())
    assert "href='01_imp.ipynb'" in page and "href='02_conservation.html'" in page  # links the executed notebooks
    assert "paper &lt;b&gt;" in page and "<b>" not in page.replace("<b>3 hold", "")  # cells are escaped
    assert "src='summary.png'" in page and (tmp_path / "summary.png").stat().st_size > 2000
    assert "statement of 01_imp_claim0" in page  # the statement as the claim's tooltip
    assert "| paper &lt;b> |" in text  # no raw tags in the markdown either


def test_stale_runs_and_mixed_cpu_capabilities_are_marked(tmp_path) -> None:
    from ticketlib.runner import run

    for rel in ("params/cpu/01_imp.yaml", "params/cpu/02_conservation.yaml", "notebooks/01_imp.ipynb",
                "notebooks/02_conservation.ipynb", "ticketlib/a.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    records = []
    for name, capability in [("01_imp", "AVX2"), ("02_conservation", "AVX512")]:
        found = {"params_sha256": run.sha256_file(tmp_path / f"params/cpu/{name}.yaml"),
                 "notebook_sha256": run.sha256_file(tmp_path / f"notebooks/{name}.ipynb"),
                 "library_sha256": run.library_sha256(tmp_path / "ticketlib"), "threads": 2,
                 "cpu": {"capability": capability, "onednn_max_isa": "default"}}
        records.append(fake_record(name, ["holds"], provenance=found))
    notes = report.run_notes(records, tmp_path)
    assert notes[0].endswith("; CPU AVX2, oneDNN ISA default, 2 threads; current")
    assert notes[-1].startswith("warning: the records come from different CPU capabilities (AVX2: 01_imp; AVX512:")
    (tmp_path / "params/cpu/01_imp.yaml").write_text("seeds: [0]")
    (tmp_path / "ticketlib/b.py").write_text("")
    assert report.run_notes(records, tmp_path)[0].endswith("; stale: params changed, library changed")
    (tmp_path / "notebooks/02_conservation.ipynb").unlink()
    assert "stale: notebook file gone, library changed" in report.run_notes(records, tmp_path)[1]


def test_summary_figure(tmp_path) -> None:
    from PIL import Image

    records = [fake_record("01_imp", ["holds", "fails", "inconclusive"]), fake_record("02_conservation", ["holds"])]
    path = report.summary_figure(records, tmp_path / "summary.png")
    image = Image.open(path)
    assert image.format == "PNG" and image.width > 400 and len(image.convert("RGB").getcolors(1 << 20)) > 20
    assert path.stat().st_size < 150_000
    old = {"run": "00_old", "claims": [{"id": "legacy", "holds": True}]}
    assert report.summary_figure([old], tmp_path / "none.png") is None and not (tmp_path / "none.png").exists()


def test_load_records_ignores_other_json(tmp_path) -> None:
    report.write_json(tmp_path / "a.json", fake_record("01_imp", ["holds"]))
    (tmp_path / "b.json").write_text(json.dumps([1, 2]))
    assert [r["run"] for r in report.load_records(tmp_path)] == ["01_imp"]
    assert math.isfinite(report.load_records(tmp_path)[0]["seconds"])


def test_scorecard_survives_a_record_without_seconds(tmp_path) -> None:
    report.write_json(tmp_path / "01_imp.json", fake_record("01_imp", ["holds"], seconds=None))
    text = report.scorecard(tmp_path, html_pages=False, root=tmp_path)
    assert "- 01_imp: time not recorded on cpu (2 cores); stale: no provenance recorded" in text


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path) -> None:
    target = tmp_path / "sub" / "r.json"
    report.write_json(target, {"a": 1})
    with pytest.raises(ZeroDivisionError):
        cache.atomic_write(target, lambda tmp: (tmp.write_text("half"), 1 / 0))
    assert json.loads(target.read_text()) == {"a": 1} and [p.name for p in target.parent.iterdir()] == ["r.json"]

    def folder(tmp: Path) -> None:  # a folder is replaced whole too (the cache's entries)
        tmp.mkdir()
        (tmp / "new").write_text("2")

    (tmp_path / "entry").mkdir()
    (tmp_path / "entry" / "old").write_text("1")
    assert cache.atomic_write(tmp_path / "entry", folder) is True
    assert [p.name for p in (tmp_path / "entry").iterdir()] == ["new"]
    (tmp_path / "entry" / "new").write_text("first")  # replace=False: the first writer's entry stays
    assert cache.atomic_write(tmp_path / "entry", folder, replace=False) is False
    assert cache.atomic_write(target, lambda tmp: tmp.write_text("second"), replace=False) is False
    assert (tmp_path / "entry" / "new").read_text() == "first" and json.loads(target.read_text()) == {"a": 1}
    assert cache.atomic_write(tmp_path / "other", folder, replace=False) is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry", "other", "sub"]  # no staging left behind
