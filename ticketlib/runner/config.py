"""Parameter files: find a run's notebook, read its parameters cell, validate a YAML against it.

The notebook's `parameters` cell is the schema. Each line `name = default  # help [choices: a|b] [min: 0] [max: 1] [type: int|null]`
declares a parameter: its type comes from the default (or `[type: ...]`), its allowed
values from the bracketed tags. A YAML that names an unknown key, gives a wrong type or
an out-of-range value is refused with one line naming the key, before anything runs.
"""
from __future__ import annotations
from ticketlib import studies

import ast
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import yaml

pass  # (import moved)

RUNNER_KEYS = ("profile", "run_name", "record_path")  # injected by the runner, never set in YAML
_TAG = re.compile(r"\[(choices|min|max|type):\s*([^\]]*)\]")
_RUN_NAME = re.compile(r"^(\d\d_[a-z0-9_]+)(?:-[A-Za-z0-9_.]+)?$")
_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict, "null": type(None)}


class ParamError(ValueError):
    """A parameter file is wrong; the message is one line naming the file and the key."""


@dataclass
class Param:
    name: str
    default: Any
    help: str = ""
    types: tuple[type, ...] = ()
    choices: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    element_type: type | None = field(default=None)

    def type_names(self) -> str:
        return "|".join(t.__name__ if t is not type(None) else "null" for t in self.types)


def notebook_for(params_path: str | Path, notebooks: str | Path = "notebooks") -> Path:
    """params/<profile>/<NN_name>[-variant].yaml runs notebooks/<NN_name>.ipynb."""
    stem = Path(params_path).stem
    match = _RUN_NAME.match(stem)
    if not match:
        raise ParamError(f"{params_path}: file name must look like 01_imp.yaml or 01_imp-variant.yaml")
    return Path(notebooks) / f"{match.group(1)}.ipynb"


def _parse_tags(help_text: str, default: Any) -> dict:
    tags = dict(_TAG.findall(help_text))
    spec: dict[str, Any] = {"help": _TAG.sub("", help_text).strip()}
    if "type" in tags:
        spec["types"] = tuple(_TYPES[t.strip()] for t in tags["type"].split("|"))
    elif default is None:
        spec["types"] = (object,)
    else:
        spec["types"] = (float, int) if isinstance(default, float) else (type(default),)
    if "choices" in tags:
        spec["choices"] = [yaml.safe_load(c.strip()) for c in tags["choices"].split("|")]
    if "min" in tags:
        spec["minimum"] = float(tags["min"])
    if "max" in tags:
        spec["maximum"] = float(tags["max"])
    if isinstance(default, list) and default and len({type(v) for v in default}) == 1:
        spec["element_type"] = type(default[0])
    return spec


def notebook_parameters(notebook: str | Path) -> dict[str, Param]:
    """The parameters declared in the notebook's cell tagged `parameters`."""
    nb = nbformat.read(str(notebook), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParamError(f"{notebook}: needs exactly one cell tagged 'parameters', found {len(cells)}")
    # ast, not papermill.inspect_notebook: its line regex drops lines with two '=' (04's early_fraction help has one)
    source = cells[0].source
    lines = source.splitlines()
    params = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        default = ast.literal_eval(node.value)
        tail = lines[node.end_lineno - 1][node.end_col_offset:]
        comment = tail.split("#", 1)[1] if "#" in tail else ""
        params[name] = Param(name=name, default=default, **_parse_tags(comment, default))
    return params


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    if object in types:
        return True
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def check_value(param: Param, value: Any, where: str) -> None:
    """Raise ParamError if `value` does not fit `param`."""
    if not _type_ok(value, param.types):
        raise ParamError(f"{where}: parameter '{param.name}' must be {param.type_names()}, "
                         f"got {type(value).__name__} {value!r}")
    if param.element_type is not None and isinstance(value, list):
        for item in value:
            if not _type_ok(item, (float, int) if param.element_type is float else (param.element_type,)):
                raise ParamError(f"{where}: parameter '{param.name}' must be a list of "
                                 f"{param.element_type.__name__}, got item {item!r}")
    if param.choices is not None and value not in param.choices:
        raise ParamError(f"{where}: parameter '{param.name}' = {value!r} is not one of {param.choices}")
    numbers = value if isinstance(value, list) else [value]
    for number in numbers:
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            if param.minimum is not None and number < param.minimum:
                raise ParamError(f"{where}: parameter '{param.name}' = {number!r} is below its minimum {param.minimum:g}")
            if param.maximum is not None and number > param.maximum:
                raise ParamError(f"{where}: parameter '{param.name}' = {number!r} is above its maximum {param.maximum:g}")


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
    """Validate a params file against its notebook: (notebook path, full resolved parameters)."""
    notebook = notebook_for(params_path, notebooks)
    if not notebook.exists():
        raise ParamError(f"{params_path}: its notebook {notebook} does not exist")
    spec = notebook_parameters(notebook)
    values = load_params(params_path)
    for key, value in values.items():
        if key in RUNNER_KEYS:
            raise ParamError(f"{params_path}: '{key}' is set by the runner, not by parameter files")
        if key not in spec:
            close = difflib.get_close_matches(key, [k for k in spec if k not in RUNNER_KEYS], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ParamError(f"{params_path}: unknown parameter '{key}'{hint}; "
                             f"{notebook.name} takes: {', '.join(k for k in spec if k not in RUNNER_KEYS)}")
        check_value(spec[key], value, str(params_path))
    resolved = {name: param.default for name, param in spec.items() if name not in RUNNER_KEYS}
    resolved.update(values)
    problems = studies.check_params(notebook.stem, resolved)
    if problems:
        raise ParamError(f"{params_path}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    return notebook, _truncated(notebook, spec, resolved, f"{params_path} (truncated)")


def _truncated(notebook: Path, spec: dict[str, Param], resolved: dict, where: str) -> dict:
    """`resolved` with the truncation in force overlaid (`truncate`), each replaced value checked like a YAML's."""
    from ticketlib.runner import truncate

    out = truncate.apply(notebook.stem, resolved)
    for key in out:
        if out[key] is not resolved[key]:
            check_value(spec[key], out[key], where)
    return out
