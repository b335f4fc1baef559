"""The public API: `ticketlib.__all__` names what the README promises, every name resolves, every public
function documents Args, Returns and an Example, and the docstring examples that run do run."""

import doctest
import importlib
import inspect

import pytest
import torch
from torch import nn

import ticketlib
from ticketlib.core.masks import Mask

PROMISED = {"Mask", "prune", "scores", "Step", "capture", "restore", "keep_pruned_at_zero", "IMPConfig",
            "find_ticket", "Ticket", "prune_at_init", "mask_distance", "EarlyBird", "export_ticket",
            "load_ticket", "sparse_model", "check_ticket"}


def test_all_lists_the_promised_api_and_every_name_resolves() -> None:
    assert PROMISED <= set(ticketlib.__all__)
    for name in ticketlib.__all__:
        assert getattr(ticketlib, name) is not None
    with pytest.raises(AttributeError):
        ticketlib.no_such_name  # noqa: B018


@pytest.mark.parametrize("name", sorted(n for n in ticketlib.__all__ if n != "__version__"))
def test_public_docstrings_have_args_returns_and_an_example(name) -> None:
    value = getattr(ticketlib, name)
    doc = inspect.getdoc(value) or ""
    assert "Example" in doc, f"{name}: no example"
    if inspect.isfunction(value):
        assert "Args:" in doc and "Returns:" in doc, f"{name}: no Args/Returns"


@pytest.mark.parametrize("module", ["core.masks", "core.pruning", "core.rewind", "core.distance", "core.checks", "core.search",
                                    "studies.conservation.study", "core.scores"])
def test_docstring_examples_run(module) -> None:
    mod = importlib.import_module(f"ticketlib.{module}")
    result = doctest.testmod(mod, extraglobs={"torch": torch, "nn": nn, "Mask": Mask}, verbose=False)
    assert result.failed == 0
