"""The README's own-model examples run as written: a custom CNN with a DataLoader, a torchvision resnet18,
the offline Hugging Face encoder. Each block after `<!-- example: NAME -->` is executed in a fresh folder."""

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"<!-- example: (\w+) -->\n```python\n(.*?)```", re.S)


def examples() -> dict[str, str]:
    return dict(BLOCK.findall((ROOT / "README.md").read_text()))


def run_example(name: str, folder: Path, monkeypatch) -> tuple[dict, str]:
    monkeypatch.chdir(folder)
    namespace: dict = {"__name__": f"readme_{name}"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(examples()[name], f"README.md:{name}", "exec"), namespace)
    print(out.getvalue())
    return namespace, out.getvalue()


def test_the_readme_has_the_three_examples() -> None:
    assert sorted(examples()) == ["custom_cnn", "huggingface_encoder", "torchvision_resnet18"]


def test_custom_cnn_with_a_dataloader(tmp_path, monkeypatch) -> None:
    ns, out = run_example("custom_cnn", tmp_path, monkeypatch)
    ticket = ns["ticket"]
    # 72 + 1152 + 576 weights, half of what remains pruned each round (225 - round(112.5) = 112), exactly
    assert [r.mask.num_kept() for r in ticket.rounds] == [1800, 900, 450, 225, 112]
    assert ticket.rounds[0].result["test_accuracy"] > 0.5  # it learned (chance is 0.25)
    assert (tmp_path / "cnn_ticket.pt").is_file() and "round 4:   6.2% of weights" in out


def test_torchvision_resnet18(tmp_path, monkeypatch) -> None:
    pytest.importorskip("torchvision")
    ns, out = run_example("torchvision_resnet18", tmp_path, monkeypatch)
    assert "identical logits" in out and (tmp_path / "resnet18_ticket.safetensors").is_file()
    mask = ns["ticket"].mask
    assert abs(mask.layer_densities()["fc.weight"] - 0.8 ** 2) < 1e-3  # the output layer at its own rate


def test_huggingface_encoder_linear_weights_only(tmp_path, monkeypatch) -> None:
    pytest.importorskip("transformers")
    from ticketlib.core.bert import encoder_path

    try:
        encoder_path("minilm")
    except Exception as error:  # the offline package is missing
        pytest.skip(str(error))
    ns, out = run_example("huggingface_encoder", tmp_path, monkeypatch)
    ticket = ns["ticket"]
    assert all(name.startswith("encoder.encoder.layer.") for name in ticket.mask) and len(ticket.mask) == 6 * 6
    assert [round(r.density, 4) for r in ticket.rounds] == [1.0, 0.7, 0.4]
