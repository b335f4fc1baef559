"""The repository's own contracts: clean notebooks, agreeing pins, every notebook runnable and tested."""

import ast
import re
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)$")


def pins(requirements: list[str]) -> dict[str, str]:
    """name (normalised) -> version for every `name==version` requirement."""
    found = {}
    for req in requirements:
        match = PIN.match(req.strip())
        if match:
            found[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(3)
    return found


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS and (ROOT / "notebooks" / "01_imp.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: a cell has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_parameters_cell(path: Path) -> None:
    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{path.name}: {len(cells)} parameters cells"
    body = ast.parse(cells[0].source).body
    assert all(isinstance(node, ast.Assign) for node in body), "the parameters cell only assigns"
    names = [node.targets[0].id for node in body]
    assert names[-3:] == ["profile", "run_name", "record_path"]
    values = {node.targets[0].id: ast.literal_eval(node.value) for node in body}
    assert values["run_name"] == path.stem and values["record_path"] == "" and values["profile"] == "cpu"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_shows_the_study_params(path: Path) -> None:
    # The study's Params is the schema; the cell shows the same names, order, defaults (value and type) and help
    from ticketlib import studies

    cls = studies.params_class(path.stem)
    assert cls is not None, f"{path.stem} is not registered in ticketlib.studies.STUDIES"
    nb = nbformat.read(str(path), as_version=4)
    source = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])).source
    lines = source.splitlines()
    cell = {}
    for node in ast.parse(source).body:
        tail = lines[node.end_lineno - 1][node.end_col_offset:]
        cell[node.targets[0].id] = (ast.literal_eval(node.value), tail.split("#", 1)[1].strip() if "#" in tail else "")
    specs = cls.specs()
    assert [n for n in cell if n not in cls.RUNNER_KEYS] == list(specs)
    for name, spec in specs.items():
        default, comment = cell[name]
        assert default == spec.default and type(default) is type(spec.default), f"{name}: {default!r} vs {spec.default!r}"
        assert comment == spec.comment(), f"{name}: the cell says {comment!r}, {cls.__name__} {spec.comment()!r}"
        spec.check(spec.default, f"{cls.__name__}.{name}")  # every default fits its own schema


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_sees_every_parameter(path: Path) -> None:
    # papermill skips a line with two "=" (a ">=" in a comment): it then warns "unknown parameter" on every run
    import papermill

    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    names = [node.targets[0].id for node in ast.parse(cell.source).body]
    assert sorted(papermill.inspect_notebook(str(path))) == sorted(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_smoke_params_and_a_test(path: Path) -> None:
    # A notebook joins the cpu profile (make reproduce) once its full run has been validated;
    # every notebook, finished or not, is smoke-tested.
    assert (ROOT / "params" / "smoke" / f"{path.stem}.yaml").is_file()
    assert (ROOT / "tests" / f"test_notebook_{path.stem}.py").is_file()


def test_params_files_name_existing_notebooks() -> None:
    stems = {p.stem for p in NOTEBOOKS}
    for params in ROOT.glob("params/*/*.yaml"):
        assert params.stem.split("-")[0] in stems, f"{params.relative_to(ROOT)} has no notebook"


def constraints() -> dict[str, str]:
    """The exact pins of constraints.txt: name (normalised) -> version."""
    lines = [line.split("#")[0].strip() for line in (ROOT / "constraints.txt").read_text().splitlines()]
    return pins([line for line in lines if line])


def test_pyproject_declares_ranges_that_admit_the_pins() -> None:
    """`pip install ticketlib` must not fight the user's torch: no exact pins in pyproject.toml, and every
    declared requirement (core and extras) is pinned in constraints.txt at a version its range admits."""
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    assert {"notebooks", "text", "sweep", "dev"} <= set(extras)
    declared = [Requirement(r) for r in [*project["dependencies"], *[r for e in extras.values() for r in e]]]
    pinned = constraints()
    names = {re.sub(r"[-_.]+", "-", r.name).lower(): r for r in declared}
    assert sorted(names) == sorted(pinned), f"declared but unpinned or pinned but undeclared: {set(names) ^ set(pinned)}"
    for name, requirement in names.items():
        assert "==" not in str(requirement.specifier), f"pyproject.toml pins {requirement} exactly: use a range"
        assert requirement.specifier.contains(pinned[name]), f"{requirement} does not admit the pinned {pinned[name]}"
    core = {re.sub(r"[-_.]+", "-", Requirement(r).name).lower() for r in project["dependencies"]}
    assert {"torch", "numpy", "safetensors"} <= core and not core & {"pandas", "seaborn", "papermill", "jupyter"}
    assert (pinned["torch"], pinned["torchvision"]) == ("2.14.1", "0.29.1")


def test_environment_yml_and_make_setup_use_the_constraints() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    from_constraints, from_env = constraints(), pins(pip_section)
    assert from_env == from_constraints, (
        f"only in constraints.txt: {sorted(set(from_constraints.items()) - set(from_env.items()))}; "
        f"only in environment.yml: {sorted(set(from_env.items()) - set(from_constraints.items()))}")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python"))
    minimum = project["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, python.split("=")[-1].split("."))) >= tuple(map(int, minimum.split(".")))
    installs = [line for line in (ROOT / "Makefile").read_text().splitlines() if "pip install" in line
                and "--no-deps" not in line and "--upgrade pip" not in line]
    assert installs and all("-c constraints.txt" in line for line in installs), installs
    assert any('".[notebooks,' in line for line in installs)


def test_no_deps_pins_agree_everywhere() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    no_deps = project["tool"]["ticketlib"]["no-deps"]
    makefile = (ROOT / "Makefile").read_text()
    make_line = next(line for line in makefile.splitlines() if line.startswith("NO_DEPS"))
    assert sorted(make_line.split(":=", 1)[1].split()) == sorted(no_deps)
    env_text = (ROOT / "environment.yml").read_text()
    assert all(pin in env_text for pin in no_deps)


PACKAGES = ("infra", "core", "verdicts", "studies", "runner")  # the layers, lowest first (ARCHITECTURE.md)


def _modules() -> dict[str, Path]:
    """dotted name under ticketlib (e.g. "core.masks", "studies.imp.study") -> file, package inits left out."""
    lib = ROOT / "ticketlib"
    return {".".join(p.relative_to(lib).with_suffix("").parts): p for p in lib.rglob("*.py")
            if p.name != "__init__.py" and len(p.relative_to(lib).parts) > 1}


def _library_imports(path: Path, modules: set[str]) -> set[str]:
    """The ticketlib modules a module imports, at any depth of the file (lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ticketlib."):
            base = node.module.removeprefix("ticketlib.")
            found |= {base} & modules | {f"{base}.{a.name}" for a in node.names} & modules
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; the library imports ticketlib.<package> absolutely")
    return found


def _architecture_modules() -> set[str]:
    """The modules of ARCHITECTURE.md's module table (`package` | `module`)."""
    rows = re.findall(r"^\| `(\w+)` \| `([\w.]+)` \|", (ROOT / "ARCHITECTURE.md").read_text(), re.M)
    return {f"{package}.{module}" for package, module in rows}


def test_architecture_lists_every_module_and_imports_go_one_way() -> None:
    modules = _modules()
    listed = _architecture_modules()
    assert listed == set(modules), f"ARCHITECTURE.md lists {sorted(listed ^ set(modules))} wrongly"
    layer = {m: PACKAGES.index(m.split(".")[0]) for m in modules}
    graph = {m: _library_imports(path, set(modules)) for m, path in modules.items()}
    upward = [f"{m} imports {d}" for m, deps in sorted(graph.items()) for d in sorted(deps) if layer[d] > layer[m]]
    assert not upward, "imports against the layering of ARCHITECTURE.md: " + "; ".join(upward)
    circles = [m for m in graph if _reaches(graph, m, m)]
    assert not circles, f"import circles through {circles}"


def _reaches(graph: dict[str, set[str]], start: str, target: str) -> bool:
    """Whether `target` is reachable from `start`'s imports (a circle when target is start)."""
    seen, todo = set(), list(graph[start])
    while todo:
        m = todo.pop()
        if m == target:
            return True
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return False


def test_import_layer_check_catches_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from ticketlib.runner import report\nfrom ticketlib.core.masks import Mask\n")
    assert _library_imports(module, {"runner.report", "core.masks"}) == {"runner.report", "core.masks"}
    assert _reaches({"a": {"b"}, "b": {"a"}}, "a", "a") and not _reaches({"a": {"b"}, "b": set()}, "a", "a")


def test_code_cites_the_architecture_in_the_repository() -> None:
    cited = [p.name for p in (ROOT / "ticketlib").rglob("*.py") if "DESIGN.md" in p.read_text()]
    assert not cited, f"{cited} cite a design document outside the repository; cite ARCHITECTURE.md"
    sections = set(re.findall(r"^## (.+)$", (ROOT / "ARCHITECTURE.md").read_text(), re.M))
    for path in (ROOT / "ticketlib").rglob("*.py"):
        for section in re.findall(r'ARCHITECTURE\.md, "([^"]+)"', path.read_text()):
            assert any(section in s for s in sections), f"{path.name} cites a missing section {section!r}"


def test_docs_name_only_library_files_that_exist() -> None:
    """Every `ticketlib/....py` the README and ARCHITECTURE.md point a reader to is a file of the library."""
    for doc in ("README.md", "ARCHITECTURE.md"):
        named = set(re.findall(r"ticketlib/[A-Za-z0-9_/]+\.py", (ROOT / doc).read_text()))
        assert named or doc != "README.md", "the README names no library file: the pattern is wrong"
        missing = sorted(p for p in named if not (ROOT / p).is_file())
        assert not missing, f"{doc} names files that do not exist: {missing}"


def test_smoke_tests_fail_not_skip_on_a_missing_data_package_under_make_test(monkeypatch) -> None:
    from conftest import REQUIRE, require

    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(ImportError, match="no_such_data_package is missing"):
        require("no_such_data_package")
    monkeypatch.delenv(REQUIRE)
    with pytest.raises(pytest.skip.Exception):
        require("no_such_data_package")
    assert f"{REQUIRE}=1" in (ROOT / "Makefile").read_text().split("\ntest:", 1)[1].split("\n\n", 1)[0]
    smoke = sorted((ROOT / "tests").glob("test_notebook_*.py"))
    assert smoke and all("importorskip" not in p.read_text() and 'require("papermill")' in p.read_text() for p in smoke)
