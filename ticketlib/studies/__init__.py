"""One study per finding: each package holds its units and drivers (`study`), its claims (`claims`) and the
checks that refuse params whose claims could not be judged (`params`). See ARCHITECTURE.md, "Modules"."""
from __future__ import annotations

import importlib
from collections.abc import Mapping

# notebook -> (study package, its params check)
STUDIES = {"01_imp": ("imp", "check_imp_params"), "02_conservation": ("conservation", "check_conservation_params"),
           "03_bert_transfer": ("bert_transfer", "check_bert_params"),
           "04_early_tickets": ("early_tickets", "check_earlybird_params"), "05_anatomy": ("anatomy", "check_anatomy_params"),
           "06_deployment": ("deployment", "check_deployment_params"), "07_stability": ("stability", "check_stability_params")}


def check_params(run: str, params: Mapping) -> list[str]:
    """Problems that would leave a claim of notebook `run` unjudgeable (empty when none)."""
    if run not in STUDIES:
        return []
    package, check = STUDIES[run]
    return getattr(importlib.import_module(f"ticketlib.studies.{package}.params"), check)(params)
