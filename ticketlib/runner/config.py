"""Parameter files: find a run's notebook, validate a YAML against its study's typed Params.

A study's schema is its frozen `Params` dataclass (`ticketlib.studies.<finding>.params`, see `infra.schema`): types
from the type hints, choices and bounds from the field metadata, cross-field rules in `problems()`. The notebook's
`parameters` cell shows the same names, defaults and help (a test keeps them equal), so papermill can inject values.
A notebook that is not a study (your own, run by the same runner) is checked against its parameters cell, each
type taken from the default. A YAML that names an unknown key, gives a wrong type or an out-of-range value is
refused with one line naming the key, before anything runs.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import nbformat
import yaml

from ticketlib import studies
from ticketlib.infra.schema import ParamError, Spec, StudyParams, unknown_key

__all__ = ["ParamError", "RUNNER_KEYS", "notebook_for", "notebook_parameters", "schema_for", "load_params", "resolve",
           "reused_runs"]

RUNNER_KEYS = StudyParams.RUNNER_KEYS  # injected by the runner, never set in YAML
_RUN_NAME = re.compile(r"^(\d\d_[a-z0-9_]+)(?:-[A-Za-z0-9_.]+)?$")


def notebook_for(params_path: str | Path, notebooks: str | Path = "notebooks") -> Path:
    """params/<profile>/<NN_name>[-variant].yaml runs notebooks/<NN_name>.ipynb."""
    stem = Path(params_path).stem
    match = _RUN_NAME.match(stem)
    if not match:
        raise ParamError(f"{params_path}: file name must look like 01_imp.yaml or 01_imp-variant.yaml")
    return Path(notebooks) / f"{match.group(1)}.ipynb"


def _inferred(name: str, default: Any, help_text: str) -> Spec:
    """A parameter of a notebook that is not a study: its type is its default's (a float also takes ints)."""
    if default is None:
        accepted: tuple[type, ...] = (object,)
    else:
        accepted = (float, int) if isinstance(default, float) else (type(default),)
    element = type(default[0]) if isinstance(default, list) and default and len({type(v) for v in default}) == 1 else None
    return Spec(name=name, default=default, help=help_text.strip(), types=accepted, element_type=element)


def notebook_parameters(notebook: str | Path) -> dict[str, Spec]:
    """The parameters assigned in the notebook's cell tagged `parameters`: name -> Spec (type from the default)."""
    nb = nbformat.read(str(notebook), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParamError(f"{notebook}: needs exactly one cell tagged 'parameters', found {len(cells)}")
    source = cells[0].source
    lines = source.splitlines()
    params = {}
    for node in ast.parse(source).body:  # ast, not papermill's line regex, which drops a line with two '='
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        tail = lines[node.end_lineno - 1][node.end_col_offset:]
        name = node.targets[0].id
        params[name] = _inferred(name, ast.literal_eval(node.value), tail.split("#", 1)[1] if "#" in tail else "")
    return params


def schema_for(notebook: str | Path) -> dict[str, Spec]:
    """name -> Spec of the parameters a params file may set: the study's Params, else the notebook's cell."""
    cls = studies.params_class(Path(notebook).stem)
    if cls is not None:
        return cls.specs()
    return {name: spec for name, spec in notebook_parameters(notebook).items() if name not in RUNNER_KEYS}


def load_params(params_path: str | Path) -> dict:
    """The YAML mapping in a params file (an empty file is an empty mapping)."""
    path = Path(params_path)
    if not path.exists():
        raise ParamError(f"{path}: no such parameter file")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ParamError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise ParamError(f"{path}: must be a mapping of parameter: value, got {type(values).__name__}")
    return values


def resolve(params_path: str | Path, notebooks: str | Path = "notebooks") -> tuple[Path, dict]:
    """Validate a params file against its notebook's schema: (notebook path, full resolved parameters)."""
    notebook = notebook_for(params_path, notebooks)
    if not notebook.exists():
        raise ParamError(f"{params_path}: its notebook {notebook} does not exist")
    where = str(params_path)
    values = load_params(params_path)
    cls = studies.params_class(notebook.stem)
    if cls is None:
        return notebook, _truncated(notebook, _checked_against_cell(notebook, values, where), f"{where} (truncated)")
    study = cls.from_mapping(values, where, owner=notebook.name).validate(where)
    resolved = _truncated(notebook, study.as_dict(), f"{where} (truncated)")
    _check_reused(cls.from_mapping(resolved, where), where, notebooks)  # the runs as they will run, truncated or not
    return notebook, resolved


def reused_runs(run: str, params: dict, notebooks: str | Path = "notebooks") -> dict[str, dict]:
    """field -> resolved params of each run that notebook `run` declares it reuses (its Params' `REUSES`)."""
    cls = studies.params_class(run)
    return {} if cls is None else {key: resolve(params[key], notebooks)[1] for key in cls.REUSES}


def _check_reused(study: StudyParams, where: str, notebooks: str | Path) -> None:
    """The params files a study reuses resolve, and agree with it (`problems_with`), before anything runs."""
    reused = {}
    for key in study.REUSES:
        try:
            reused[key] = resolve(getattr(study, key), notebooks)[1]
        except ParamError as error:
            raise ParamError(f"{where}: '{key}' names a params file that does not resolve: {error}") from None
    found = study.problems_with(reused)
    if found:
        raise ParamError(f"{where}: {found[0]}" + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))


def _checked_against_cell(notebook: Path, values: dict, where: str) -> dict:
    """A non-study notebook's params: each key known to its parameters cell and of its default's type."""
    spec = schema_for(notebook)
    for key, value in values.items():
        if key in RUNNER_KEYS:
            raise ParamError(f"{where}: '{key}' is set by the runner, not by parameter files")
        if key not in spec:
            raise ParamError(unknown_key(where, key, list(spec), notebook.name))
        spec[key].check(value, where)
    return {**{name: s.default for name, s in spec.items()}, **values}


def _truncated(notebook: Path, resolved: dict, where: str) -> dict:
    """`resolved` with the truncation in force overlaid (`truncate`), each replaced value checked like a YAML's."""
    from ticketlib.runner import truncate

    spec = schema_for(notebook)
    out = truncate.apply(notebook.stem, resolved)
    for key in out:
        if out[key] is not resolved[key]:
            spec[key].check(out[key], where)
    return out
