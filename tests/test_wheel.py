"""The installable package: build the wheel, install it into a fresh venv that already has the pinned torch,
import ticketlib from there and run the README's own-model example (the custom CNN with a DataLoader).

The fresh venv sees the running interpreter's packages (torch, numpy, safetensors, ...) through a `.pth` line
naming their folder (no links, so removing the temporary folder can never reach them; that folder's own `.pth`
hooks, such as an editable ticketlib, stay inactive), so pip resolves the wheel's dependency ranges against the
installed versions, offline (`--no-index`), and downloads nothing. pip never uninstalls outside the fresh venv."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(command: list[str], cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    log = f"$ {' '.join(map(str, command))}\n{done.stdout}{done.stderr}"
    assert done.returncode == 0, log
    return log


def test_wheel_installs_into_a_fresh_venv_and_runs_the_own_model_example(tmp_path) -> None:
    source = tmp_path / "source"  # build from a copy: no build/ or egg-info in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "ticketlib", source / "ticketlib", ignore=shutil.ignore_patterns("__pycache__"))
    logs = [_run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                  str(tmp_path / "dist"), str(source)], tmp_path)]
    wheel = next((tmp_path / "dist").glob("ticketlib-*.whl"))

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "installed-torch.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    logs.append(_run([*pip, "install", "--no-index", str(wheel)], tmp_path, env))  # dependency ranges checked
    assert re.search(r"Successfully installed ticketlib-\S+", logs[-1])
    assert "Successfully uninstalled" not in logs[-1], "pip removed something"
    check = subprocess.run([*pip, "check"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "ticketlib" not in check.stdout, check.stdout  # (the offline data packages, installed --no-deps, complain)

    example = re.search(r"<!-- example: custom_cnn -->\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    work = tmp_path / "work"
    work.mkdir()
    (work / "example.py").write_text(
        "import ticketlib, torch\n"
        "print('ticketlib', ticketlib.__version__, 'from', ticketlib.__file__, '| torch', torch.__version__)\n"
        + example.group(1))
    logs.append(_run([python, "example.py"], work, env))
    print("\n".join(logs))
    assert f"from {site}/ticketlib/__init__.py" in logs[-1]
    assert "round 4:   6.2% of weights" in logs[-1] and (work / "cnn_ticket.pt").is_file()
