"""On-disk stand-ins of the paper profile's data and weights, in their real formats, for truncated runs.

`build(root)` writes, under `root`:
- ``data/cifar-10-batches-py`` and ``data/cifar-100-python``: torchvision's python-pickle archives
  (uint8 ``data`` rows, ``labels`` / ``fine_labels``, the meta files) with random pixels and cyclic labels;
- ``glue/``: a local copy of the hub dataset ``nyu-mll/glue`` (a README whose ``configs`` name parquet
  files per task and split, GLUE's own column names), read by ``datasets.load_dataset`` as the hub one is;
- ``bert-base-uncased/``: a seeded random ``BertForPreTraining`` (encoder, pooler and the MLM head
  ``cls.predictions``) and a WordPiece tokenizer over the fixture's words, written with
  ``save_pretrained`` and loaded with ``from_pretrained`` like the hub model;
- ``TICKETLIB_FIXTURE``: the marker that tells `data` to skip torchvision's md5 checks (the pixels are not the
  official ones). A run that reads fixtures is truncated and never publishable (`truncate`).
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np

from ticketlib.core.data import FIXTURE_MARKER as MARKER

WORDS = ("the a film movie good bad great awful plot actor story boring fun sad happy long short dog cat "
         "runs sits is was not very really quite man woman city river music play question answer why how "
         "what who said says true false red blue green small big old new").split()
GLUE_TASKS = {"sst2": ("sentence", None), "cola": ("sentence", None), "mrpc": ("sentence1", "sentence2"),
              "rte": ("sentence1", "sentence2"), "qnli": ("question", "sentence")}
BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
BERT_NARROW = {"hidden_size": 96, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 384}


def _pickle(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(value, handle)


def cifar(root: str | Path, classes: int = 10, train: int = 600, test: int = 100, seed: int = 0) -> Path:
    """torchvision's CIFAR-10 (5 train batches) or CIFAR-100 (train/test) pickles, random pixels, labels i % classes."""
    rng = np.random.default_rng(seed + classes)
    folder = Path(root) / ("cifar-10-batches-py" if classes == 10 else "cifar-100-python")
    key = "labels" if classes == 10 else "fine_labels"

    def batch(n: int, offset: int) -> dict:
        labels = [(offset + i) % classes for i in range(n)]
        entry = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), key: labels}
        if classes == 100:
            entry["coarse_labels"] = [y // 5 for y in labels]
        return entry

    if classes == 10:
        per = train // 5
        for i in range(5):
            _pickle(folder / f"data_batch_{i + 1}", batch(per, i * per))
        _pickle(folder / "test_batch", batch(test, 0))
        _pickle(folder / "batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    else:
        _pickle(folder / "train", batch(train, 0))
        _pickle(folder / "test", batch(test, 0))
        _pickle(folder / "meta", {"fine_label_names": [f"class{i}" for i in range(100)],
                                  "coarse_label_names": [f"super{i}" for i in range(20)]})
    (Path(root) / MARKER).write_text("fixture data: random pixels, not CIFAR\n")
    return folder


def _sentence(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(3, 9))))


def glue(root: str | Path, sizes: tuple[int, int, int] = (60, 20, 20), seed: int = 0) -> Path:
    """A local ``nyu-mll/glue``: parquet per task and split under its README's ``configs`` (the hub layout)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    folder = Path(root)
    configs = []
    for task, (first, second) in GLUE_TASKS.items():
        files = []
        for split, n in zip(("train", "validation", "test"), sizes):
            columns = {first: [_sentence(rng) for _ in range(n)]}
            if second:
                columns[second] = [_sentence(rng) for _ in range(n)]
            columns["label"] = [-1] * n if split == "test" else [int(i % 2) for i in range(n)]
            columns["idx"] = list(range(n))
            path = folder / task / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(columns).to_parquet(path, index=False)
            files.append(f"    - split: {split}\n      path: {task}/{split}-*")
        configs.append(f"- config_name: {task}\n  data_files:\n" + "\n".join(files))
    (folder / "README.md").write_text("---\nconfigs:\n" + "\n".join(configs) + "\n---\n# GLUE fixture\n")
    return folder


def bert(root: str | Path, shape: dict | None = None, seed: int = 0) -> Path:
    """A seeded random BertForPreTraining of `shape` (default `BERT_NARROW`: bert-base's 12 layers and 12 heads,
    narrow) and a WordPiece tokenizer over `WORDS`, saved like a hub checkpoint."""
    import torch
    from transformers import BertConfig, BertForPreTraining, BertTokenizerFast

    folder = Path(root)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab={word: i for i, word in enumerate(vocab)}, do_lower_case=True).save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), max_position_embeddings=512, **(shape or BERT_NARROW))
    BertForPreTraining(config).save_pretrained(folder)
    return folder


def build(root: str | Path, bert_shape: dict | None = None, with_glue: bool = True) -> Path:
    """Every fixture under `root` (see the module docstring); returns `root`."""
    root = Path(root)
    cifar(root / "data", 10)
    cifar(root / "data", 100)
    bert(root / "bert-base-uncased", bert_shape)
    if with_glue:
        glue(root / "glue")
    (root / "fixtures.json").write_text(json.dumps({"bert_shape": bert_shape or BERT_NARROW}))
    return root
