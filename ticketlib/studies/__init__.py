"""One study per finding: each package holds its units and drivers (`study`), its claims (`claims`) and its typed
parameters with the checks that refuse params whose claims could not be judged (`params`). See ARCHITECTURE.md."""
from __future__ import annotations

import importlib
from collections.abc import Mapping

from ticketlib.infra.schema import StudyParams

# notebook -> (study package, its Params class in `<package>.params`)
STUDIES = {"01_imp": ("imp", "ImpParams"), "02_conservation": ("conservation", "ConservationParams"),
           "03_bert_transfer": ("bert_transfer", "BertTransferParams"),
           "04_early_tickets": ("early_tickets", "EarlyTicketsParams"), "05_anatomy": ("anatomy", "AnatomyParams"),
           "06_deployment": ("deployment", "DeploymentParams"), "07_stability": ("stability", "StabilityParams")}


def params_class(run: str) -> type[StudyParams] | None:
    """The Params dataclass of notebook `run` (e.g. "01_imp"), or None for a notebook that is not a study."""
    if run not in STUDIES:
        return None
    package, name = STUDIES[run]
    return getattr(importlib.import_module(f"ticketlib.studies.{package}.params"), name)


def check_params(run: str, params: Mapping) -> list[str]:
    """Problems that would leave a claim of notebook `run` unjudgeable (empty when none)."""
    cls = params_class(run)
    if cls is None:
        return []
    study = cls.from_mapping(params, run)
    return study.reuse_problems() + study.problems()
