"""Typed study parameters (infra.schema): types from hints, bounds and choices from metadata, one-line errors."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from ticketlib.infra.schema import ParamError, StudyParams, param, types_of


@dataclass(frozen=True)
class TinyParams(StudyParams):
    lr: float = param(0.1, "learning rate", minimum=0, maximum=1)
    optimizer: str = param("adam", choices=("adam", "sgd"))
    steps: int = param(10, "iterations", minimum=1)
    seeds: list[int] = param([0, 1], "one run per seed")
    levels: list[float] = param([21.1, 3.6], minimum=0, maximum=100)
    train_size: int | None = param(None, "subset size")
    flag: bool = param(False, "a switch")
    options: dict = param({"output": 0.1})

    def problems(self) -> list[str]:
        return [f"'steps' {self.steps} must exceed the {len(self.seeds)} seeds"] if self.steps <= len(self.seeds) else []


def test_types_come_from_the_hints() -> None:
    specs = TinyParams.specs()
    assert list(specs) == ["lr", "optimizer", "steps", "seeds", "levels", "train_size", "flag", "options"]
    assert specs["lr"].types == (float, int) and (specs["lr"].minimum, specs["lr"].maximum) == (0, 1)
    assert specs["train_size"].types == (int, type(None)) and specs["seeds"].element_type is int
    assert specs["optimizer"].choices == ("adam", "sgd") and specs["flag"].types == (bool,)
    assert types_of(list[str]) == ((list,), str) and types_of(dict) == ((dict,), None)
    assert specs["lr"].comment() == "learning rate [min: 0] [max: 1]"
    assert specs["optimizer"].comment() == "[choices: adam|sgd]"


def test_values_are_kept_exactly_as_given() -> None:
    p = TinyParams.from_mapping({"lr": 1, "steps": 3, "levels": [50, 1.5], "train_size": 100})
    assert p.lr == 1 and type(p.lr) is int  # not coerced: the resolved run is the YAML's run
    assert p.as_dict() == {"lr": 1, "optimizer": "adam", "steps": 3, "seeds": [0, 1], "levels": [50, 1.5],
                           "train_size": 100, "flag": False, "options": {"output": 0.1}}
    assert TinyParams().seeds is not TinyParams().seeds  # list defaults are copied per instance
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.lr = 0.5  # type: ignore[misc]


@pytest.mark.parametrize("values, key, words", [
    ({"optimzer": "sgd"}, "optimzer", "did you mean 'optimizer'"),
    ({"steps": "ten"}, "steps", "must be int"),
    ({"steps": True}, "steps", "must be int"),
    ({"flag": 1}, "flag", "must be bool"),
    ({"seeds": [0, 1.5]}, "seeds", "list of int"),
    ({"lr": 2}, "lr", "above its maximum 1"),
    ({"lr": -0.1}, "lr", "below its minimum 0"),
    ({"levels": [3.6, 101]}, "levels", "above its maximum 100"),
    ({"optimizer": "rmsprop"}, "optimizer", "is not one of ['adam', 'sgd']"),
    ({"train_size": 1.5}, "train_size", "must be int|null"),
    ({"options": [1]}, "options", "must be dict"),
    ({"profile": "paper"}, "profile", "set by the runner"),
])
def test_bad_values_are_refused_in_one_line_naming_the_key(values, key, words) -> None:
    with pytest.raises(ParamError) as error:
        TinyParams.from_mapping(values, "params/smoke/99_tiny.yaml")
    message = str(error.value)
    assert f"'{key}'" in message and words in message and "\n" not in message
    assert message.startswith("params/smoke/99_tiny.yaml: ")


def test_validate_raises_the_cross_field_problem() -> None:
    assert TinyParams.from_mapping({"steps": 3}).validate().steps == 3
    with pytest.raises(ParamError, match=r"^f.yaml: 'steps' 2 must exceed the 2 seeds$"):
        TinyParams.from_mapping({"steps": 2}).validate("f.yaml")


def test_from_namespace_reads_only_the_study_names() -> None:
    namespace = {"lr": 0.5, "steps": 4, "plt": object(), "profile": "cpu", "run_name": "99_tiny"}
    assert TinyParams.from_namespace(namespace) == TinyParams(lr=0.5, steps=4)
