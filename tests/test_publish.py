"""Provenance in run records and `make publish`: complete, successful, current runs only."""

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from test_report import fake_record
from ticketlib.runner import publish
from ticketlib.runner import report
from ticketlib.runner import run
from ticketlib.runner.publish import PublishError

ROOT = Path(__file__).resolve().parents[1]
RUNS = ["01_imp", "02_conservation"]
README = "# x\n\n## Scorecard\n\n<!-- scorecard:start -->\nold\n<!-- scorecard:end -->\n\n## After\n"


def png_bytes() -> bytes:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3, 2))
    figure.subplots().plot([0, 1, 2], [2, 0, 1])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def executed_notebook(path: Path) -> None:
    """An executed notebook with a text output and a PNG figure."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("# Executed"))
    cell = nbformat.v4.new_code_cell("plot()", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", text="accuracy 98.1%\n"),
                    nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(png_bytes()).decode(),
                                                                 "text/plain": "<Figure>"})]
    nb.cells.append(cell)
    nbformat.write(nb, str(path))


@pytest.fixture(scope="module")
def base_provenance(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("prov")
    (folder / "p.yaml").write_text("seeds: [0]\n")
    (folder / "n.ipynb").write_text("{}")
    return run.provenance(folder / "p.yaml", folder / "n.ipynb", ROOT / "ticketlib")


@pytest.fixture
def layout(tmp_path, base_provenance) -> Path:
    """A fake repository: params/cpu, notebooks, ticketlib, README, and a finished run of every params file."""
    (tmp_path / "ticketlib").mkdir()
    (tmp_path / "ticketlib" / "lib.py").write_text("VERSION = 1\n")
    for folder in ("params/cpu", "notebooks", "runs/cpu"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "README.md").write_text(README)
    for name in RUNS:
        params, notebook = tmp_path / f"params/cpu/{name}.yaml", tmp_path / f"notebooks/{name}.ipynb"
        params.write_text(f"seeds: [0, 1]  # {name}\n")
        nbformat.write(nbformat.v4.new_notebook(), str(notebook))
        found = {**base_provenance, "params_sha256": run.sha256_file(params),
                 "notebook_sha256": run.sha256_file(notebook), "library_sha256": run.library_sha256(tmp_path / "ticketlib")}
        report.write_json(tmp_path / f"runs/cpu/{name}.json", fake_record(name, ["holds", "inconclusive"], 30.0, found))
        executed_notebook(tmp_path / f"runs/cpu/{name}.ipynb")
    return tmp_path


def do_publish(root: Path) -> Path:
    return publish.publish("cpu", runs=root / "runs", results=root / "results", root=root, readme=root / "README.md")


def readme_rows(readme: Path) -> list[tuple[str, str, str]]:
    """(run, claim, verdict) of each row of the README's generated table."""
    text = readme.read_text()
    block = text[text.index(publish.START):text.index(publish.END)]
    return [(re.match(r"\[(.+?)\]", cells[0]).group(1), cells[1], cells[2])
            for cells in (line.strip("| ").split(" | ") for line in block.splitlines() if line.startswith("| ["))]


def test_provenance_hashes_cpu_and_versions(tmp_path) -> None:
    params, notebook = tmp_path / "a.yaml", tmp_path / "a.ipynb"
    params.write_text("lr: 0.1\n")
    notebook.write_text('{"cells": []}')
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "m.py").write_text("x = 1\n")
    found = run.provenance(params, notebook, tmp_path / "lib")
    assert found["params_sha256"] == hashlib.sha256(b"lr: 0.1\n").hexdigest()
    assert found["notebook_sha256"] == hashlib.sha256(b'{"cells": []}').hexdigest()
    assert found["library_sha256"] == run.library_sha256(tmp_path / "lib") != run.library_sha256(ROOT / "ticketlib")
    assert found["commit"] is None and found["dirty"] is None  # outside git
    assert {"python", "torch", "ticketlib"} <= set(found["versions"]) and found["threads"] >= 1
    cpu = found["cpu"]
    assert set(cpu) == {"model", "capability", "onednn_max_isa", "aten_cpu_capability_env", "cores_available",
                        "bf16_native"}
    assert cpu["capability"] and cpu["cores_available"] >= 1 and cpu["bf16_native"] in (True, False, None)
    commit, dirty = run.git_state(ROOT)
    if commit is not None:  # this checkout is a git repository
        assert re.fullmatch(r"[0-9a-f]{40}", commit) and isinstance(dirty, bool)


def test_execute_writes_provenance(tmp_path, monkeypatch) -> None:
    import papermill

    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell('steps = 3  # [min: 1]\nprofile = "cpu"\nrun_name = "99_tiny"\n'
                                              'record_path = ""', metadata={"tags": ["parameters"]}))
    nbformat.write(nb, str(tmp_path / "notebooks" / "99_tiny.ipynb"))
    params = tmp_path / "params" / "smoke" / "99_tiny.yaml"
    params.parent.mkdir(parents=True)
    params.write_text("steps: 5\n")

    def fake_execute(source, target, parameters, **kwargs):  # what the notebook would do, without a kernel
        report.write_json(parameters["record_path"], {"metrics": {"steps": parameters["steps"]}, "claims": []})
        shutil.copyfile(source, target)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    record = json.loads(run.execute(params, out_root=tmp_path / "runs", notebooks=tmp_path / "notebooks").read_text())
    found = record["provenance"]
    assert found["params_sha256"] == hashlib.sha256(b"steps: 5\n").hexdigest()
    assert found["notebook_sha256"] == run.sha256_file(tmp_path / "notebooks" / "99_tiny.ipynb")
    assert found["library_sha256"] == run.library_sha256()
    assert set(found) >= {"commit", "dirty", "versions", "device", "threads", "cpu"}
    assert record["device"] == found["device"] and record["versions"] == found["versions"]
    assert record["seconds"] >= 0 and record["metrics"] == {"steps": 5}


def test_publish_copies_records_notebooks_html_and_scorecard(layout) -> None:
    out = do_publish(layout)
    assert out == layout / "results" / "cpu"
    expected = {f"{name}{ext}" for name in RUNS for ext in (".json", ".ipynb", ".html")}
    assert {p.name for p in out.iterdir()} == expected | {"scorecard.md", "index.html", "summary.png"}
    for name in RUNS:
        assert (out / f"{name}.json").read_bytes() == (layout / f"runs/cpu/{name}.json").read_bytes()
        executed = nbformat.read(str(out / f"{name}.ipynb"), as_version=4)
        assert executed.cells[1].outputs  # with its outputs
        page = (out / f"{name}.html").read_text()
        assert "data:image/png;base64," in page and "accuracy 98.1%" in page  # standalone: figures embedded
    index = (out / "index.html").read_text()
    assert "src='summary.png'" in index and all(f"href='{name}.html'" in index for name in RUNS)
    assert "2 hold, 0 fail, 2 inconclusive of 4 claims" in (out / "scorecard.md").read_text()
    assert "; current" in (out / "scorecard.md").read_text()
    readme = (layout / "README.md").read_text()
    assert readme.startswith("# x\n\n## Scorecard\n\n<!-- scorecard:start -->\n") and readme.endswith("\n## After\n")
    assert "![estimates against thresholds, by run](results/cpu/summary.png)" in readme
    assert "| [01_imp](results/cpu/01_imp.html) | 01_imp_claim0 | holds |" in readme
    do_publish(layout)  # publishing again replaces the folder
    assert {p.name for p in out.iterdir()} == expected | {"scorecard.md", "index.html", "summary.png"}
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_readme_table_is_idempotent_and_agrees_with_the_records(layout) -> None:
    out = do_publish(layout)
    readme = layout / "README.md"
    once = readme.read_text()
    records = report.load_records(out)
    assert publish.update_readme(readme, records) is False and readme.read_text() == once
    assert readme_rows(readme) == [(r["run"], c["id"], c["verdict"]) for r in records for c in r["claims"]]
    (layout / "other.md").write_text("no markers\n")
    with pytest.raises(PublishError, match="markers"):
        publish.update_readme(layout / "other.md", records)


def make_incomplete(root: Path) -> None:
    (root / "runs/cpu/02_conservation.json").unlink()


def make_failed(root: Path) -> None:
    partial = root / "runs/cpu/02_conservation.partial.ipynb"
    partial.write_text("{}")
    later = (root / "runs/cpu/02_conservation.json").stat().st_mtime + 60
    os.utime(partial, (later, later))


def make_notebookless(root: Path) -> None:
    (root / "runs/cpu/02_conservation.ipynb").unlink()


def make_params_stale(root: Path) -> None:
    (root / "params/cpu/02_conservation.yaml").write_text("seeds: [0, 1, 2]\n")


def make_notebook_stale(root: Path) -> None:
    nbformat.write(nbformat.v4.new_notebook(metadata={"edited": True}), str(root / "notebooks/02_conservation.ipynb"))


def make_library_stale(root: Path) -> None:
    (root / "ticketlib" / "new.py").write_text("")


def make_truncated(root: Path) -> None:
    path = root / "runs/cpu/02_conservation.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "truncated": {"fixtures": "/tmp/x"}}))


def make_orphan(root: Path) -> None:
    (root / "params/cpu/02_conservation.yaml").rename(root / "params/cpu/02_conservation-x.yaml")


@pytest.mark.parametrize("breaks, reason", [
    (make_incomplete, "02_conservation: incomplete (no record"),
    (make_failed, "02_conservation: failed (its last run left"),
    (make_notebookless, "02_conservation: failed (record without its executed notebook"),
    (make_params_stale, "02_conservation: stale (params changed)"),
    (make_notebook_stale, "02_conservation: stale (notebook changed)"),
    (make_library_stale, "01_imp: stale (library changed)"),
    (make_orphan, "02_conservation: stale (params file gone)"),
    (make_truncated, "02_conservation: truncated (a check of the code paths"),
], ids=lambda v: getattr(v, "__name__", "")[5:])
def test_publish_refuses_incomplete_failed_or_stale_runs(layout, breaks, reason) -> None:
    breaks(layout)
    with pytest.raises(PublishError) as error:
        do_publish(layout)
    assert reason in str(error.value) and "\n" not in str(error.value)
    assert not (layout / "results").exists() and (layout / "README.md").read_text() == README  # nothing copied


def test_cli_publish_exit_codes(layout, monkeypatch, capsys) -> None:
    monkeypatch.chdir(layout)
    make_params_stale(layout)
    assert run.main(["publish", "--profile", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: cannot publish runs/cpu: 02_conservation: stale")
    (layout / "params/cpu/02_conservation.yaml").write_text("seeds: [0, 1]  # 02_conservation\n")
    assert run.main(["publish", "--profile", "cpu"]) == 0
    assert (layout / "results/cpu/index.html").exists() and "results/cpu/01_imp.html" in (layout / "README.md").read_text()


PUBLISHED = sorted(ROOT.glob("results/*/*.json"))


@pytest.mark.skipif(not PUBLISHED, reason="nothing published yet under results/")
@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: str(p.relative_to(ROOT)))
def test_published_records_have_full_provenance(path: Path) -> None:
    found = json.loads(path.read_text())["provenance"]
    for key in ("params_sha256", "notebook_sha256", "library_sha256"):
        assert re.fullmatch(r"[0-9a-f]{64}", found[key]), key
    assert {"commit", "dirty", "versions", "device", "threads"} <= set(found)
    assert {"model", "capability", "onednn_max_isa", "cores_available", "bf16_native"} <= set(found["cpu"])


def test_readme_scorecard_agrees_with_results() -> None:
    """README's table is generated from results/cpu/ and its other CPU paths (a placeholder until something is
    published)."""
    from ticketlib.runner.paths import other_paths

    records = report.load_records(ROOT / "results" / "cpu")
    text = (ROOT / "README.md").read_text()
    block = text[text.index(publish.START) + len(publish.START):text.index(publish.END)].strip()
    others = other_paths(ROOT / "results" / "cpu")
    assert block == publish.readme_block(records, "cpu", others), "README's scorecard is stale: run `make publish`"


@pytest.mark.skipif(not shutil.which("chromium"), reason="chromium not installed")
def test_published_pages_render_in_chromium(layout, tmp_path) -> None:
    from PIL import Image

    out = ROOT / "results" / "cpu"
    if not (out / "index.html").exists():
        out = do_publish(layout)
    page = next(p for p in sorted(out.glob("*.html")) if p.name != "index.html")
    for html_page in (out / "index.html", page):
        shot = tmp_path / f"{html_page.stem}.png"
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--screenshot={shot}", "--window-size=1400,2000", html_page.resolve().as_uri()],
                       capture_output=True, timeout=180)
        assert shot.exists() and shot.stat().st_size > 10_000, html_page
        colours = Image.open(shot).convert("RGB").getcolors(1 << 20)
        assert len(colours) > 50, f"{html_page.name} rendered (nearly) blank"
