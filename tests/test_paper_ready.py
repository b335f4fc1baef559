"""What would stop or falsify the paper profile's first GPU run, checked on the CPU (issue 22)."""
import fcntl
import sys
import types

import pytest
import torch
import yaml

from ticketlib.studies.bert_transfer import study as bert_tickets
from ticketlib.infra import cache
from ticketlib.runner import config
from ticketlib.core import data
from ticketlib.infra import device
from ticketlib.infra import execute
from ticketlib.studies.imp import study as imp
from ticketlib.runner import run
from ticketlib.core import text
from ticketlib.runner import truncate
from ticketlib.infra.cache import Cache
from ticketlib.core.masks import Mask, full_weights, kept_values
from ticketlib.core.train import TrainConfig

from test_bert import TINY, task  # noqa: F401  (the tiny text task fixture)


# --- 1: GLUE split sizes, known before anything downloads -------------------------------------------
def test_glue_fixed_validation_parts_have_the_sizes_of_glue_dev_sets() -> None:
    sizes = {t: text.part_sizes(text.GLUE_LABELLED[t])["val"] for t in ("cola", "mrpc", "rte")}
    assert sizes == {"cola": 959, "mrpc": 408, "rte": 277}


def test_a_val_size_larger_than_a_glue_split_is_refused_at_validation(tmp_path) -> None:
    params = config.load_params("params/paper/03_bert_transfer.yaml")
    path = tmp_path / "03_bert_transfer.yaml"
    path.write_text(yaml.safe_dump({**params, "val_size": 2000}))
    with pytest.raises(config.ParamError, match=r"val_size' = 2000 is more than glue/cola's 959"):
        config.resolve(path)
    config.resolve("params/paper/03_bert_transfer.yaml")  # the fixed paper file passes


def test_glue_loads_from_the_hub_id_only_with_download_or_offline(monkeypatch) -> None:
    assert text.GLUE_ID == "nyu-mll/glue"
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=None))
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ValueError, match="download: true"):
        text.load_glue("rte", None, download=False)


# --- 2, 13: what each unit kind stores ---------------------------------------------------------
def _bytes(payload) -> int:
    tensors = [v for v in cache.to_cpu(payload).values() if isinstance(v, dict)]
    return sum(t.numel() * t.element_size() for d in tensors for t in d.values() if isinstance(t, torch.Tensor))


def test_bert_units_store_trained_weights_only_for_imp_rounds_and_only_the_kept_ones(task, tmp_path) -> None:  # noqa: F811
    setup = bert_tickets.BertSetup(TrainConfig(optimizer="adamw", lr=1e-3, batch_size=16, duration="1ep",
                                               eval_every="1ep"), config=TINY, device="cpu")
    store = Cache(tmp_path)
    mask = bert_tickets.one_shot_mask(setup, task, 0.25)
    plain = bert_tickets.finetune(setup, task, mask, seed=0, cache=store, progress=False)
    entry = torch.load(store.path(_key(setup, task, mask)) / "payload.pt", weights_only=False)
    assert "trained" not in entry and plain.trained == {}
    kept = bert_tickets.finetune(setup, task, mask, seed=0, cache=store, progress=False, keep_trained=True)
    entry = torch.load(store.path(_key(setup, task, mask)) / "payload.pt", weights_only=False)
    stored = sum(t.numel() for t in entry["trained"].values())
    same = {k: v for k, v in kept.result.items() if k != "seconds"} == {k: v for k, v in plain.result.items() if k != "seconds"}
    assert stored == mask.num_kept() and same  # retrained, bit-identical
    for name, weights in kept.trained.items():
        assert weights.shape == mask[name].shape and bool((weights[~mask[name]] == 0).all())


def _key(setup, task, mask) -> dict:  # noqa: F811
    return cache.unit_key("bert_finetune", setup=setup, task=task.key, mask=mask.digest(), density=mask.density(),
                          weights="pretrained", seed=0)


def test_kept_values_round_trip_and_dense_payloads_still_read() -> None:
    mask = Mask({"w": torch.tensor([[True, False], [False, True]])})
    trained = {"w": torch.tensor([[1.5, 0.0], [0.0, -2.0]])}
    assert torch.equal(full_weights(kept_values(trained, mask), mask)["w"], trained["w"])
    assert full_weights(trained, mask)["w"] is trained["w"]


def test_imp_controls_store_their_final_state_for_07(tiny_data, tmp_path) -> None:
    """Issue 22 (item 13) would drop a control's final_state; 07_stability reads it (the random-mask control's
    trained weights are its first copy), so it stays, and the round trip gives it back."""
    from ticketlib.core.experiment import Experiment

    exp = Experiment("lenet_300_100", "synthetic", TrainConfig(batch_size=32, duration="4it", eval_every="2it"),
                     device="cpu")
    cfg = imp.IMPConfig(rounds=1, fraction=0.5)
    store = Cache(tmp_path)
    ticket = imp.find_ticket(exp, cfg, tiny_data, seed=0, cache=store, progress=False)
    control = imp.train_control(exp, cfg, tiny_data, ticket, 1, "reinit", 0, store, progress=False)
    payloads = [torch.load(p, weights_only=False) for p in tmp_path.glob("*/payload.pt")]
    assert len(payloads) == 3 and all("final_state" in p for p in payloads)  # the two rounds and the control
    again = imp.train_control(exp, cfg, tiny_data, ticket, 1, "reinit", 0, store, progress=False)  # a cache hit
    assert all(torch.equal(again.final_state[k], control.final_state[k]) for k in control.final_state)


# --- 3: a sweep submitted from a login node without a GPU -------------------------------------
def test_a_sweep_submits_from_a_host_without_cuda(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv(device.SUBMIT_ONLY, raising=False)
    monkeypatch.delenv("TICKETLIB_SLURM_CLUSTER", raising=False)
    params = {"device": "cuda", "executor": "slurm"}
    run.check_environment(params, "01_imp")  # units go to the cluster: no GPU needed here
    assert device.resolve_device("cuda").type == "cpu"  # the notebook's own data stays on this host's CPU
    with pytest.raises(RuntimeError, match="trains in the notebook's own process"):
        run.check_environment(params, "03_bert_transfer")
    monkeypatch.delenv(device.SUBMIT_ONLY)
    monkeypatch.setenv("TICKETLIB_SLURM_CLUSTER", "local")  # local processes: this host trains
    with pytest.raises(device.DeviceError):
        run.check_environment(params, "01_imp")


# --- 4: one download at a time into one data folder ----------------------------------------------
def test_torchvision_downloads_run_under_an_exclusive_lock(tmp_path, monkeypatch) -> None:
    import torchvision.datasets as tvd

    seen = []

    class Fake:
        def __init__(self, root, train, download):
            with open(tmp_path / ".download.lock", "a") as other:
                try:
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    seen.append("free")
                except BlockingIOError:
                    seen.append("locked")
            self.data, self.targets = [[0]], [0]

    monkeypatch.setattr(tvd, "FakeSet", Fake, raising=False)
    data._torchvision("FakeSet", str(tmp_path), download=True)
    data._torchvision("FakeSet", str(tmp_path), download=False)
    assert seen == ["locked", "locked", "free", "free"]


# --- 5, 8: determinism and bf16 on CUDA (mocked: the CPU path must not change) -------------------
def test_set_policy_makes_cuda_deterministic_and_leaves_the_cpu_alone(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(device, "cuda_determinism", lambda on=True: calls.append(on))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    device.set_policy()
    assert calls == [] and not torch.are_deterministic_algorithms_enabled()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    device.set_policy()
    assert calls == [True]


def test_cuda_determinism_sets_the_flags_and_the_math_attention(monkeypatch) -> None:
    seen = {}
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda on: seen.__setitem__("algorithms", on))
    for name in ("enable_flash_sdp", "enable_mem_efficient_sdp", "enable_cudnn_sdp"):
        monkeypatch.setattr(torch.backends.cuda, name, lambda on, name=name: seen.__setitem__(name, on))
    device.cuda_determinism(True)
    assert seen == {"algorithms": True, "enable_flash_sdp": False, "enable_mem_efficient_sdp": False,
                    "enable_cudnn_sdp": False}


def test_auto_precision_refuses_emulated_cuda_bf16(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device, "cuda_determinism", lambda on=True: None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert device.resolve_precision("auto", "cuda")[0] == "fp32"  # a V100/T4: only emulation


# --- 6: the MLM source starts from the checkpoint's pre-trained head -----------------------------
def test_mlm_head_is_the_checkpoints_cls_predictions(tmp_path) -> None:
    from safetensors.torch import load_file

    from ticketlib.core import bert
    from ticketlib.runner import fixtures

    folder = fixtures.bert(tmp_path / "bert", {**fixtures.BERT_NARROW, "num_hidden_layers": 2})
    setup = bert_tickets.BertSetup(TrainConfig(), encoder=str(folder), device="cpu")
    tokenizer = bert.load_tokenizer(str(folder))
    corpus = text.Corpus("toy", ["the film was good"] * 10, [0, 1] * 5, ["0", "1"])
    mlm = text.mlm_task([text.task_from_corpus(corpus, tokenizer, 16)], tokenizer, seed=0)
    model = setup.build_model(mlm, seed=0)
    saved = load_file(folder / "model.safetensors")
    assert torch.equal(model.transform[0].weight, saved["cls.predictions.transform.dense.weight"])
    assert torch.equal(model.transform[2].weight, saved["cls.predictions.transform.LayerNorm.weight"])
    assert torch.equal(model.bias, saved["cls.predictions.bias"])
    assert bert.pretrained_mlm_head("minilm") is None  # no head in the offline sentence encoder: a fresh one


# --- 9, 10: a GPU per worker; Slurm tasks sized for a unit, not the submitting host ---------------
def test_each_process_pins_a_gpu_of_its_own(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    held = len(device._HELD)
    try:
        picked = []
        for _ in range(3):
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
            picked.append(device.pin_gpu(str(tmp_path)))
        assert picked == [0, 1, None]  # the third process shares
        assert device.pin_gpu(str(tmp_path)) is None  # CUDA_VISIBLE_DEVICES already set: left alone
    finally:
        for handle in device._HELD[held:]:
            handle.close()
        del device._HELD[held:]


@pytest.mark.parametrize("path", ["params/paper/01_imp.yaml", "params/paper/05_anatomy.yaml"])
def test_paper_lenet_trains_its_seeds_at_once_on_one_gpu(path) -> None:
    """Item 12: LeNet is launch-bound on a GPU, so the paper LeNet files run all five seeds' trainings at once."""
    _, resolved = config.resolve(path)
    seeds = config.load_params("params/paper/01_imp.yaml")["seeds"]
    assert resolved["workers"] == len(seeds) == 5


def test_slurm_tasks_get_their_own_core_count_and_a_long_limit(monkeypatch) -> None:
    options = {}

    class Executor:
        def __init__(self, folder, cluster):
            pass

        def update_parameters(self, **kwargs):
            options.update(kwargs)

        def map_array(self, fn, groups):
            return [types.SimpleNamespace(result=lambda g=g: [(c[6],) for c in g]) for g in groups]

    monkeypatch.setitem(sys.modules, "submitit", types.SimpleNamespace(AutoExecutor=Executor))
    monkeypatch.delenv("TICKETLIB_SLURM_CLUSTER", raising=False)
    outcomes = execute._slurm([(None,) * 6 + (64,)], workers=1, threads=64)
    assert options["cpus_per_task"] == execute.SLURM_CPUS and outcomes == [(execute.SLURM_CPUS,)]
    assert options["timeout_min"] >= 24 * 60


# --- truncation: an overlay of the paper files, never publishable ---------------------------------
def test_truncation_keeps_models_and_shrinks_the_rest(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(truncate.ENV, str(tmp_path))
    _, params = config.resolve("params/paper/01_imp-vgg16.yaml")
    assert params["model"] == "vgg16" and params["dataset"] == "cifar10" and params["optimizer"] == "sgd"
    assert params["seeds"] == [0, 1] and params["rounds"] == 1 and params["device"] == "auto"
    assert params["data_root"] == str(tmp_path / "data") and not params["download"]
    monkeypatch.delenv(truncate.ENV)
    assert config.resolve("params/paper/01_imp-vgg16.yaml")[1]["rounds"] == 20


# --- 7: a unit timed on a shared GPU is described as shared, so cost_saved will not compare it ---------
def test_a_shared_gpu_gets_its_own_description(monkeypatch) -> None:
    import os

    listing = f"GPU:0\nprocess        123 uses     10.000 MB GPU memory\nprocess {os.getpid():>10d} uses 5.000 MB GPU memory"
    monkeypatch.setattr(torch.cuda, "list_gpu_processes", lambda device=None: listing)
    assert device.gpu_neighbours(torch.device("cuda")) == 1
    monkeypatch.setattr(torch.cuda, "list_gpu_processes", lambda device=None: "pynvml module not found")
    assert device.gpu_neighbours(torch.device("cuda")) == 0


@pytest.mark.parametrize("path", sorted(__import__("pathlib").Path("params/paper").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_paper_file_resolves_truncated(path, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(truncate.ENV, str(tmp_path))
    full = config.load_params(path)
    _, params = config.resolve(path)  # every overlaid value is checked against the notebook's parameters cell
    assert params.get("device", "auto") == "auto" and len(params.get("seeds", [0])) <= 2
    assert all(params[k] == full[k] for k in ("model", "dataset", "optimizer", "lr") if k in full)  # the paper's


def test_resolve_device_changes_nothing_and_units_compute_under_the_policy(monkeypatch, tmp_path) -> None:
    from ticketlib.infra.cache import Cache

    calls = []
    monkeypatch.setattr(device, "set_policy", lambda deterministic=True: calls.append("policy"))
    before = device.policy()
    assert device.resolve_device("cpu").type == "cpu" and device.resolve_device("auto").type in ("cpu", "cuda")
    assert calls == [] and device.policy() == before  # asking where to compute sets nothing
    cache = Cache(tmp_path)
    assert cache.cached({"unit": "x"}, lambda: calls.append("compute") or torch.ones(1)).item() == 1.0
    assert calls == ["policy", "compute"]  # the policy is in force before a unit computes
    cache.cached({"unit": "x"}, lambda: calls.append("again"))
    assert calls == ["policy", "compute"]  # a cache hit computes nothing
