"""Re-judge published run records with the library's current claims: the verdict before → after, claim by claim.

Each record's own `metrics` (the per-seed rows its notebook recorded) go through the same `ticketlib.verdicts`
functions the notebook calls, with the record's params; nothing is trained. Claims that are new in the current code
are marked "(new)", claims that no longer exist "(gone)". Used for issue 21's audit table.

    PYTHONPATH=. .venv/bin/python benchmarks/rejudge.py results/cpu [--markdown]
"""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path

import yaml

pass  # (import moved)
from ticketlib.studies.anatomy import claims as anatomy_claims
from ticketlib.studies.bert_transfer import claims as bert_transfer_claims
from ticketlib.studies.conservation import claims as conservation_claims
from ticketlib.studies.deployment import claims as deployment_claims
from ticketlib.studies.early_tickets import claims as early_tickets_claims
from ticketlib.studies.imp import claims as imp_claims
from ticketlib.studies.imp.rows import RunRow
from ticketlib.studies.stability import claims as stability_claims
from ticketlib.verdicts.engine import Verdict

ROOT = Path(__file__).resolve().parents[1]


def _imp(record: dict) -> list[Verdict]:
    p, m = record["params"], record["metrics"]
    return imp_claims.imp_claims([RunRow.from_dict(r) for r in m["runs"]], p["model"], p["dataset"], m["judged_accuracy"], step_schedule=bool(p["milestones"]))


def _conservation(record: dict) -> list[Verdict]:
    p, m = record["params"], record["metrics"]
    accuracy = m["judged_accuracy"]
    return [conservation_claims.conservation_law(m["conservation_spread"], m["synflow_shift_share"], p["collapse_model"]),
            conservation_claims.synflow_max_critical_compression(m["critical_log10_compression"],
                                                    f"synflow ({p['synflow_iterations']} it.)",
                                                    ["random", "magnitude", "snip", "grasp"],
                                                    m["max_log10_compression"], p["collapse_model"], p["dataset"]),
            conservation_claims.iteration_avoids_collapse(m["imp_versus_one_shot"], m["one_shot_trained_critical_compression"],
                                             p["model"]),
            conservation_claims.synflow_wins_at_high_compression(m["runs"], max(p["compressions"]), m["chance_accuracy"], accuracy),
            conservation_claims.shuffle_does_not_hurt(m["runs"], p["control_compression"], list(p["control_methods"]), accuracy)]


def _bert(record: dict) -> list[Verdict]:
    p, m = record["params"], record["metrics"]
    targets = {r["target"] for r in m["transfer_runs"]}
    return bert_transfer_claims.bert_claims(m["runs"], m["transfer_runs"], p["tasks"][0], p["claim_sparsity"],
                              [t for t in p["tasks"] if t in targets])


def _earlybird(record: dict) -> list[Verdict]:
    p, m = record["params"], record["metrics"]
    judged = [r for r in m["pipelines"] if r["ratio"] == p["latency_ratio_p"]]
    return early_tickets_claims.earlybird_claims(m["detected_epoch"], m["epochs"], judged, m["latency_seconds"], p["early_fraction"],
                                   p["cost_ratio"], bool(p["milestones"]), p["latency_ratio_p"])


def _reused_imp_params(p: dict) -> dict:
    """The 01_imp params a record reuses (05, 06 and 07 name their file in `imp_params`); older 05 records kept
    01's fields in their own params."""
    return yaml.safe_load((ROOT / p["imp_params"]).read_text()) if "imp_params" in p else p


def _anatomy(record: dict) -> list[Verdict]:
    p, m = record["params"], record["metrics"]
    imp_params = _reused_imp_params(p)
    percents = {int(k): float(v) for k, v in m["percent_remaining"].items()}
    claim_round = min(percents, key=lambda r: abs(math.log(percents[r] / p["claim_level"])))
    return anatomy_claims.anatomy_claims(m["runs"], m["supermasks"], claim_round, percents[claim_round],
                                         imp_params["model"], imp_params["dataset"])


def _deployment(record: dict) -> list[Verdict]:
    p, m = record["params"], record["metrics"]
    imp_params = _reused_imp_params(p)  # 06 reuses the tickets of this 01 run
    return [deployment_claims.compact_ticket_claim(m["storage"], m["sparsest_matching_round"], imp_params["model"],
                                        imp_params["dataset"]),
            *deployment_claims.sparse_latency_claims(m["latency"], m["sparsest_round"], m["moderate_round"],
                                          max(p["batch_sizes"]), p["claim_threads"], m["crossover"]),
            deployment_claims.slim_latency_claim(m["latency"], p["slim_ratio"], sorted(p["batch_sizes"]), p["claim_threads"])]


def _stability(record: dict) -> list[Verdict]:
    p, m = record["params"], record["metrics"]
    judged = m["judged"]
    return stability_claims.stability_claims(m["cases"], judged["claim_level"], judged["latest_k"],
                                             m["accuracy"]["lenet"], m["accuracy"]["cnn"],
                                             cnn=f"{p['cnn_model']} on {p['cnn_dataset']}")


REJUDGE: dict[str, Callable[[dict], list[Verdict]]] = {
    "01_imp": _imp, "02_conservation": _conservation, "03_bert_transfer": _bert, "04_early_tickets": _earlybird,
    "05_anatomy": _anatomy, "06_deployment": _deployment, "07_stability": _stability}


def rejudge(record: dict) -> list[Verdict]:
    """The record's claims judged again by the current library from its own metrics and params."""
    notebook = record["run"].split("-")[0]
    if notebook not in REJUDGE:
        raise ValueError(f"no re-judging for run {record['run']!r}")
    return REJUDGE[notebook](record)


def compare(record: dict) -> list[dict]:
    """One row per claim: run, id, verdict before and after, and whether the threshold, statement or paper moved."""
    before = {c["id"]: c for c in record["claims"]}
    after = {v.id: v.to_dict() for v in rejudge(record)}
    rows = []
    for cid in [*before, *(k for k in after if k not in before)]:
        old, new = before.get(cid), after.get(cid)
        changed = [] if old is None or new is None else [
            k for k in ("threshold", "statement", "paper", "source") if str(old.get(k)) != str(new.get(k))]
        rows.append({"run": record["run"], "claim": cid, "before": old["verdict"] if old else "(new)",
                     "after": new["verdict"] if new else "(gone)", "changed": ", ".join(changed) or "-",
                     "threshold": f"{old['threshold'] if old else '-'} → {new['threshold'] if new else '-'}"})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    print("| run | claim | verdict before → after | threshold before → after | what moved |")
    print("|---|---|---|---|---|")
    for path in sorted(args.folder.glob("*.json")):
        for row in compare(json.loads(path.read_text())):
            print(f"| {row['run']} | {row['claim']} | {row['before']} → {row['after']} | {row['threshold']} | "
                  f"{row['changed']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
