"""Typed study parameters: one frozen dataclass per study is the schema of its notebook's parameters.

A field's type hint gives its type (`float` accepts ints, `int | None` accepts null, `list[str]` checks
every item); `param(...)` adds the help text, allowed choices and numeric bounds. `from_mapping` refuses an
unknown key (with a did-you-mean), a wrong type or an out-of-range value in one line naming the key, and
`validate` adds the study's cross-field `problems()`, all before anything runs. Values are kept exactly as
given (a YAML `lr: 1` stays an int), so a run resolved through a Params is the run resolved without one.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

P = TypeVar("P", bound="StudyParams")
_NAMES = {int: "int", float: "float", str: "str", bool: "bool", list: "list", dict: "dict", type(None): "null"}


class ParamError(ValueError):
    """A parameter file is wrong; the message is one line naming the file and the key."""


@dataclass(frozen=True)
class Spec:
    """One parameter: its default, help, accepted types (and list item types), choices and bounds."""

    name: str
    default: Any
    help: str = ""
    types: tuple[type, ...] = (object,)
    element_type: type | None = None
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None

    def type_names(self) -> str:
        return "|".join(_NAMES.get(t, t.__name__) for t in self.types)

    def comment(self) -> str:
        """The help as the notebook's parameters cell shows it: text, then [choices], [min] and [max]."""
        tags = []
        if self.choices is not None:
            tags.append("[choices: " + "|".join(str(c) for c in self.choices) + "]")
        if self.minimum is not None:
            tags.append(f"[min: {self.minimum:g}]")
        if self.maximum is not None:
            tags.append(f"[max: {self.maximum:g}]")
        return " ".join([self.help, *tags]).strip()

    def check(self, value: Any, where: str) -> None:
        """Raise ParamError if `value` does not fit this parameter."""
        if not _type_ok(value, self.types):
            raise ParamError(f"{where}: parameter '{self.name}' must be {self.type_names()}, "
                             f"got {type(value).__name__} {value!r}")
        if self.element_type is not None and isinstance(value, list):
            accepted = (float, int) if self.element_type is float else (self.element_type,)
            for item in value:
                if not _type_ok(item, accepted):
                    raise ParamError(f"{where}: parameter '{self.name}' must be a list of "
                                     f"{_NAMES.get(self.element_type, self.element_type.__name__)}, got item {item!r}")
        if self.choices is not None and value not in self.choices:
            raise ParamError(f"{where}: parameter '{self.name}' = {value!r} is not one of {list(self.choices)}")
        for number in value if isinstance(value, list) else [value]:
            if isinstance(number, (int, float)) and not isinstance(number, bool):
                if self.minimum is not None and number < self.minimum:
                    raise ParamError(f"{where}: parameter '{self.name}' = {number!r} is below its minimum {self.minimum:g}")
                if self.maximum is not None and number > self.maximum:
                    raise ParamError(f"{where}: parameter '{self.name}' = {number!r} is above its maximum {self.maximum:g}")


def param(default: Any, help: str = "", *, choices: tuple | list | None = None, minimum: float | None = None,
          maximum: float | None = None) -> Any:
    """A Params field: its default (lists and dicts copied per instance), help, choices and bounds."""
    meta = {"help": help, "choices": None if choices is None else tuple(choices), "minimum": minimum, "maximum": maximum}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _type_ok(value: Any, accepted: tuple[type, ...]) -> bool:
    if object in accepted:
        return True
    if isinstance(value, bool):
        return bool in accepted
    return isinstance(value, accepted)


def types_of(hint: Any) -> tuple[tuple[type, ...], type | None]:
    """(accepted types, list item type) for a type hint: float takes ints, `X | None` takes null."""
    if hint is Any or hint is object:
        return (object,), None
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        accepted, element = [], None
        for arm in typing.get_args(hint):
            arm_types, arm_element = types_of(arm)
            accepted += [t for t in arm_types if t not in accepted]
            element = element or arm_element
        return tuple(accepted), element
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint) or (None,)
        return (list,), item
    if origin is dict:
        return (dict,), None
    if hint is float:
        return (float, int), None
    if hint is None or hint is type(None):
        return (type(None),), None
    return (hint,), None


@dataclass(frozen=True)
class StudyParams:
    """Base of every study's Params: the schema, the checks and the conversion to and from a mapping."""

    RUNNER_KEYS: ClassVar[tuple[str, ...]] = ("profile", "run_name", "record_path")  # set by the runner, never in YAML
    # field -> the notebook whose params file it names and whose cached units this study reuses (e.g. 05 -> 01_imp)
    REUSES: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def specs(cls) -> dict[str, Spec]:
        """name -> Spec, in declaration order (the order of the notebook's parameters cell)."""
        hints = typing.get_type_hints(cls)
        out = {}
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            accepted, element = types_of(hints[f.name])
            out[f.name] = Spec(name=f.name, default=default, types=accepted, element_type=element, **f.metadata)
        return out

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {name: spec.default for name, spec in cls.specs().items()}

    @classmethod
    def from_mapping(cls: type[P], values: Mapping[str, Any], where: str = "params", owner: str | None = None) -> P:
        """Params from `values` (missing keys take their defaults); unknown or ill-typed keys raise ParamError."""
        specs = cls.specs()
        for key, value in values.items():
            if key in cls.RUNNER_KEYS:
                raise ParamError(f"{where}: '{key}' is set by the runner, not by parameter files")
            if key not in specs:
                raise ParamError(unknown_key(where, key, list(specs), owner or cls.__name__))
            specs[key].check(value, where)
        return cls(**values)

    @classmethod
    def from_namespace(cls: type[P], namespace: Mapping[str, Any]) -> P:
        """Params from a notebook's globals after its parameters cell: only this study's names are read."""
        return cls.from_mapping({name: namespace[name] for name in cls.specs() if name in namespace}, "notebook")

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def problems(self) -> list[str]:
        """Cross-field problems that would leave a claim unjudgeable; each study overrides this."""
        return []

    def problems_with(self, reused: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Problems between this study's params and those of the runs it reuses (field -> their resolved params)."""
        return []

    def reuse_problems(self) -> list[str]:
        """Each REUSES field must name a params file of its notebook: params/<profile>/<run>[-variant].yaml."""
        errors = []
        for key, run in self.REUSES.items():
            value = str(getattr(self, key))
            stem = value.rsplit("/", 1)[-1].removesuffix(".yaml")
            if not value.endswith(".yaml") or stem.split("-")[0] != run:
                errors.append(f"'{key}' = {value!r} must name a {run} params file (params/<profile>/{run}[-variant].yaml)")
        return errors

    def validate(self: P, where: str = "params") -> P:
        """self, or ParamError naming the first cross-field problem (and how many more)."""
        found = self.reuse_problems() + self.problems()
        if found:
            raise ParamError(f"{where}: {found[0]}" + (f" (and {len(found) - 1} more)" if len(found) > 1 else ""))
        return self


def unknown_key(where: str, key: str, known: list[str], owner: str) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{where}: unknown parameter '{key}'{hint}; {owner} takes: {', '.join(known)}"
