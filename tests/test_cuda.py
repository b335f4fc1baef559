"""GPU checks (marked `cuda`, skipped without a CUDA GPU): every smoke notebook on `device: cuda`, and units
that return CPU payloads recording their device. Run them with `bash benchmarks/gpu_check.sh`.

On a GPU the batch order and augmentation are drawn by CUDA generators and kernels differ, so accuracies
differ from the CPU run; what must match is everything that does not depend on floating-point training:
the claims judged, the metrics recorded, and every pruning level (weight counts are exact).
"""
import json
import time
from pathlib import Path

import pytest
import torch
import yaml

from ticketlib.runner import run
from ticketlib.infra.cache import Cache
from ticketlib.core.experiment import Experiment
from ticketlib.core.train import TrainConfig

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU: the cuda tests run on a GPU machine")]
NOTEBOOKS = sorted(p.stem for p in Path("params/smoke").glob("*.yaml"))


def _levels(metrics: dict) -> list:
    """Every (seed, kind, round, % remaining) row a record lists: pruning levels, exact on any device."""
    rows = metrics.get("runs") or []
    return sorted((r.get("seed"), str(r.get("kind")), r.get("round"), round(r["percent_remaining"], 9))
                  for r in rows if "percent_remaining" in r)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_smoke_notebook_on_cuda_matches_the_cpu_record(notebook, tmp_path) -> None:
    records = {}
    for device in ("cpu", "cuda"):
        params = yaml.safe_load(Path(f"params/smoke/{notebook}.yaml").read_text()) or {}
        if "device" in run.resolve(f"params/smoke/{notebook}.yaml")[1]:
            params["device"] = device
        folder = tmp_path / "params" / f"smoke_{device}"
        folder.mkdir(parents=True)
        (folder / f"{notebook}.yaml").write_text(yaml.safe_dump(params))
        start = time.perf_counter()
        path = run.execute(folder / f"{notebook}.yaml", out_root=tmp_path / "runs")
        print(f"{notebook} on {device}: {time.perf_counter() - start:.1f} s")
        records[device] = json.loads(Path(path).read_text())
    cpu, gpu = records["cpu"], records["cuda"]
    assert [c["id"] for c in gpu["claims"]] == [c["id"] for c in cpu["claims"]]
    assert set(gpu["metrics"]) == set(cpu["metrics"])
    assert _levels(gpu["metrics"]) == _levels(cpu["metrics"])
    assert gpu["provenance"]["policy"]["tf32_matmul"] is False and gpu["provenance"]["policy"]["cudnn_deterministic"]


def test_units_on_cuda_return_cpu_payloads_and_record_the_device(tmp_path) -> None:
    from ticketlib.core import data as data_lib
    from ticketlib.studies.imp import study as imp

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(300, 1, 8, 8, generator=g), torch.randint(0, 3, (300,), generator=g)
    split = lambda a, b: data_lib.Split(x[a:b].cuda(), y[a:b].cuda())  # noqa: E731
    data = data_lib.Dataset("toy", split(0, 200), split(200, 250), split(250, 300), 3, (1, 8, 8))
    exp = Experiment(model="lenet_300_100", dataset="toy", device="cuda",
                     train=TrainConfig(batch_size=50, duration="8it", eval_every="4it", augment=False))
    cache = Cache(tmp_path)
    ticket = imp.find_ticket(exp, imp.IMPConfig(rounds=1, rewind="2it"), data, seed=0, cache=cache, progress=False)
    tensors = [*ticket.init_state.values(), *ticket.rewind_state.values(),
               *(t for r in ticket.rounds for t in [*r.mask.values(), *r.final_state.values()])]
    assert all(t.device.type == "cpu" for t in tensors)
    assert ticket.rounds[0].result["device"].startswith("cuda")
    metas = [json.loads((d / "meta.json").read_text())["meta"] for d in tmp_path.iterdir()]
    assert all(m["device"].startswith("cuda") and m["policy"]["tf32_matmul"] is False for m in metas)
    again = imp.find_ticket(exp, imp.IMPConfig(rounds=1, rewind="2it"), data, seed=0, cache=Cache(tmp_path),
                            progress=False)  # cached payloads look exactly like fresh ones
    assert all(torch.equal(a, b) for a, b in zip(again.rounds[1].final_state.values(),
                                                 ticket.rounds[1].final_state.values()))
