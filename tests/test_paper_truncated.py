"""Every paper params file, truncated, end to end on the CPU: the paper's models, recipes and notebook cells on
on-disk fixtures in the real formats (`ticketlib.runner.truncate`, `ticketlib.runner.fixtures`). From here a paper run can fail
only on what needs CUDA. About 17 minutes in all on an idle 2-core machine (about 56 s a file): marked
`paper_truncated`; `make test` runs them with every other test, `make test-paper` runs them alone."""
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from ticketlib.runner import fixtures
from ticketlib.runner import run
from ticketlib.runner import truncate

PAPER = sorted(Path("params/paper").glob("*.yaml"))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The fixtures (a bert-base-shaped narrow encoder; GLUE only where `datasets` can read it) and the outputs."""
    folder = tmp_path_factory.mktemp("paper-truncated")
    fixtures.build(folder / "fixtures", with_glue=importlib.util.find_spec("datasets") is not None)
    return folder


@pytest.mark.paper_truncated
@pytest.mark.parametrize("params", PAPER, ids=[p.stem for p in PAPER])
def test_paper_file_runs_truncated(params: Path, root: Path, monkeypatch) -> None:
    if params.stem.startswith("03_") and importlib.util.find_spec("datasets") is None:
        pytest.skip("GLUE needs the datasets package (the paper extra): 03 cannot run truncated without it")
    monkeypatch.setenv(truncate.ENV, "")  # restored after the test: run.main sets it for its notebooks
    assert run.main(["run", "--truncate", str(root / "fixtures"), "--out", str(root / "runs"), str(params)]) == 0
    record = json.loads((root / "runs" / "paper-truncated" / f"{params.stem}.json").read_text())
    assert record["profile"] == "paper-truncated"
    if "seeds" in yaml.safe_load(params.read_text()):  # 06 has none: it reads 01's and 04's runs
        assert record["truncated"]["overlay"]["seeds"] == [0, 1]
    assert record["claims"], "a truncated run still judges (meaninglessly) every claim"
