"""Whether a run record still matches the files it came from: the params file, the notebook and the library.

Its own module so that the scorecard (`report`), `publish` and the runner (`run`) all ask the same question without
importing each other in a circle.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[1]  # the ticketlib package


def sha256_file(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def library_sha256(library: str | Path = LIBRARY) -> str:
    """sha256 over the sorted paths and contents of the library's `*.py` files, subpackages included (staleness of
    every run)."""
    digest = hashlib.sha256()
    library = Path(library)
    for path in sorted(library.rglob("*.py")):
        digest.update(path.relative_to(library).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def stale_reasons(record: dict, root: str | Path = ".") -> list[str]:
    """Why a record no longer matches the files under `root` it came from ([] when it is current):
    its params file (params/<profile>/<run>.yaml), its notebook (notebooks/<name>) or the library changed."""
    root, found = Path(root), record.get("provenance") or {}
    if not found.get("params_sha256"):
        return ["no provenance recorded"]
    files = {"params": root / "params" / record["profile"] / f"{record['run']}.yaml",
             "notebook": root / "notebooks" / Path(record["notebook"]).name}
    reasons = [f"{what} {'changed' if path.exists() else 'file gone'}" for what, path in files.items()
               if not path.exists() or sha256_file(path) != found[f"{what}_sha256"]]
    if library_sha256(root / "ticketlib") != found.get("library_sha256"):
        reasons.append("library changed")
    return reasons
