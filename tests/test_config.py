"""Parameter files are validated before anything runs: against the study's Params, or a non-study notebook's cell."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from ticketlib.runner import config
from ticketlib.runner.config import ParamError, notebook_for, notebook_parameters, resolve

ROOT = Path(__file__).resolve().parents[1]

PARAMETERS = '''lr = 0.1  # learning rate [min: 0] [max: 1]
optimizer = "adam"  # [choices: adam|sgd]
steps = 10  # iterations [min: 1]
seeds = [0, 1]  # one run per seed [type: list]
levels = [21.1, 3.6]  # [type: list] [min: 0] [max: 100]
train_size = None  # subset size [type: int|null]
name = "x"
flag = False  # a switch
options = {"output": 0.1}  # [type: dict]
profile = "cpu"  # set by the runner
run_name = "99_tiny"  # set by the runner
record_path = ""  # set by the runner
'''


def write_notebook(folder: Path, parameters: str = PARAMETERS, tagged: int = 1) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("# tiny"))
    for _ in range(tagged):
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells.append(nbformat.v4.new_code_cell("open('ran', 'w').write('yes')"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "99_tiny.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.fixture
def layout(tmp_path) -> Path:
    write_notebook(tmp_path / "notebooks")
    (tmp_path / "params" / "smoke").mkdir(parents=True)
    return tmp_path


def check(layout: Path, text: str, name: str = "99_tiny.yaml") -> tuple[Path, dict]:
    path = layout / "params" / "smoke" / name
    path.write_text(text)
    return resolve(path, layout / "notebooks")


def test_a_non_study_notebook_takes_its_types_from_the_cell_defaults(layout) -> None:
    spec = notebook_parameters(layout / "notebooks" / "99_tiny.ipynb")
    assert list(spec) == ["lr", "optimizer", "steps", "seeds", "levels", "train_size", "name", "flag", "options",
                          "profile", "run_name", "record_path"]
    assert spec["lr"].types == (float, int) and spec["lr"].help == "learning rate [min: 0] [max: 1]"
    assert spec["steps"].types == (int,) and spec["seeds"].element_type is int
    assert spec["train_size"].types == (object,)  # None says nothing about the type
    assert spec["options"].default == {"output": 0.1} and spec["flag"].types == (bool,)


def test_help_may_contain_equals_signs(tmp_path) -> None:  # papermill's inference would drop this line
    spec = notebook_parameters(write_notebook(tmp_path, 'early = 0.4  # "early" = within this fraction\n'))
    assert list(spec) == ["early"] and spec["early"].default == 0.4
    assert spec["early"].help == '"early" = within this fraction'


def test_valid_file_resolves_with_defaults(layout) -> None:
    notebook, params = check(layout, "lr: 1\nsteps: 3\ntrain_size: 100\nseeds: [4]\nlevels: [50, 1.5]\n")
    assert notebook == layout / "notebooks" / "99_tiny.ipynb"
    assert params == {"lr": 1, "optimizer": "adam", "steps": 3, "seeds": [4], "levels": [50, 1.5],
                      "train_size": 100, "name": "x", "flag": False, "options": {"output": 0.1}}
    assert check(layout, "")[1]["steps"] == 10  # an empty file is all defaults
    assert check(layout, "train_size: null\n", "99_tiny-variant.yaml")[1]["train_size"] is None


@pytest.mark.parametrize("text, key, words", [
    ("optimzer: sgd\n", "optimzer", "did you mean 'optimizer'"),
    ("steps: ten\n", "steps", "must be int"),
    ("steps: true\n", "steps", "must be int"),
    ("flag: 1\n", "flag", "must be bool"),
    ("seeds: [0, 1.5]\n", "seeds", "list of int"),
    ("profile: paper\n", "profile", "set by the runner"),
    ("record_path: x.json\n", "record_path", "set by the runner"),
])
def test_errors_name_the_key_in_one_line(layout, text, key, words) -> None:
    with pytest.raises(ParamError) as error:
        check(layout, text)
    message = str(error.value)
    assert f"'{key}'" in message and words in message and "\n" not in message
    assert "99_tiny.yaml" in message


@pytest.mark.parametrize("text, key, words", [
    ("lr: -0.1\n", "lr", "below its minimum 0"),
    ("control_levels: [3.6, 101]\n", "control_levels", "above its maximum 100"),
    ("optimizer: rmsprop\n", "optimizer", "is not one of ['adam', 'adamw', 'sgd']"),
    ("train_size: 1.5\n", "train_size", "must be int|null"),
    ("milestones: [80]\n", "milestones", "list of str"),
    ("ronuds: 3\n", "ronuds", "did you mean 'rounds'"),
    ("rounds: 2\n", "rounds", "short of 3.6%"),
    ("seeds: [0, 1]\nearly_stop_seeds: [1, 4]\n", "early_stop_seeds", "[1] are also in 'seeds'"),
    ("early_stop_seeds: [4, 4]\n", "early_stop_seeds", "repeats [4]"),
    ("early_stop_seeds: [4]\nmilestones: [\"80ep\"]\n", "early_stop_seeds", "do not judge ticket_learns_faster"),
    ("early_stop_seeds: [4.5]\n", "early_stop_seeds", "list of int"),
])
def test_a_study_file_is_checked_against_its_params(tmp_path, text, key, words) -> None:
    (tmp_path / "params" / "smoke").mkdir(parents=True)
    path = tmp_path / "params" / "smoke" / "01_imp.yaml"
    path.write_text(text)
    with pytest.raises(ParamError) as error:
        resolve(path, ROOT / "notebooks")
    message = str(error.value)
    assert f"'{key}'" in message and words in message and "\n" not in message and "01_imp.yaml" in message


@pytest.mark.parametrize("text, words", [("lr: [1, 2\n", "not valid YAML"), ("- 1\n- 2\n", "must be a mapping")])
def test_file_level_errors(layout, text, words) -> None:
    with pytest.raises(ParamError, match=words) as error:
        check(layout, text)
    assert "\n" not in str(error.value)


def test_missing_files_and_bad_names(layout) -> None:
    with pytest.raises(ParamError, match="does not exist"):
        check(layout, "", "98_missing.yaml")
    with pytest.raises(ParamError, match="no such parameter file"):
        config.load_params(layout / "params" / "smoke" / "nothing.yaml")
    with pytest.raises(ParamError, match="file name"):
        notebook_for("params/smoke/imp.yaml")
    assert notebook_for("params/paper/01_imp-vgg16.yaml") == Path("notebooks/01_imp.ipynb")
    write_notebook(layout / "two", tagged=2)
    with pytest.raises(ParamError, match="exactly one cell"):
        notebook_parameters(layout / "two" / "99_tiny.ipynb")


def test_cli_refuses_bad_params_before_running(layout) -> None:
    good = layout / "params" / "smoke" / "99_tiny.yaml"
    bad = layout / "params" / "smoke" / "99_tiny-typo.yaml"
    good.write_text("steps: 3\n")
    bad.write_text("stpes: 3\n")
    env_python = sys.executable
    proc = subprocess.run([env_python, "-m", "ticketlib", "run", str(good.relative_to(layout)),
                           str(bad.relative_to(layout))], cwd=layout, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "'stpes'" in lines[0] and "did you mean 'steps'" in lines[0]
    assert not (layout / "runs").exists() and not (layout / "ran").exists()  # nothing executed, not even the good one
    ok = subprocess.run([env_python, "-m", "ticketlib", "validate", str(good.relative_to(layout))], cwd=layout,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "1 params file(s) valid" in ok.stdout


@pytest.mark.parametrize("params_path", sorted(p.relative_to(ROOT) for p in ROOT.glob("params/*/*.yaml")),
                         ids=str)
def test_every_shipped_params_file_validates(params_path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    notebook, params = resolve(params_path)
    assert notebook.exists() and not set(params) & set(config.RUNNER_KEYS)
