"""03_bert_transfer's parameters (a frozen Params, the schema of its notebook) and their cross-field checks (GLUE's
split sizes are known before anything downloads)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ticketlib.infra.schema import StudyParams, param
from ticketlib.studies.checks import missing_names, seed_problems


def check_bert_params(p: Mapping) -> list[str]:
    errors = seed_problems(p)
    if not p["mlm"]:
        errors.append("'mlm' must be true: the transfer claim judges the MLM subnetwork")
    errors += missing_names(p, {"controls": ["random_pruning", "random_weights"]})
    if p["claim_sparsity"] not in p["control_sparsities"]:
        errors.append("'control_sparsities' must include 'claim_sparsity' (the claims compare IMP with its controls there)")
    if p["rounds"] * p["prune_fraction"] < p["claim_sparsity"] - 1e-9:
        errors.append(f"'rounds' x 'prune_fraction' = {p['rounds'] * p['prune_fraction']:g} stops short of "
                      f"claim_sparsity {p['claim_sparsity']:g}")
    from ticketlib.core.text import size_problems  # GLUE's split sizes are known before anything downloads

    if p.get("glue", "nyu-mll/glue") == "nyu-mll/glue" and "tasks" in p:
        errors += size_problems(p["tasks"], {part: p.get(f"{part}_size") for part in ("train", "val", "test")})
    return errors


@dataclass(frozen=True)
class BertTransferParams(StudyParams):
    """03_bert_transfer's parameters: the schema its notebook's parameters cell shows (and a test keeps equal)."""

    encoder: str = param("minilm",
                         'pre-trained encoder: minilm is offline, a hub name such as bert-base-uncased downloads')
    tasks: list[str] = param(["rotten_tomatoes", "health_tweets"],
                             "downstream tasks, the first is the claims' sentiment task")
    mlm: bool = param(True, 'add a masked-LM task on the pooled training texts as a mask source')
    encoder_config: dict = param({}, 'BertConfig overrides: a small random stand-in encoder, for smoke tests')
    pooling: str = param("mean", "classifier input: mean of last hidden states, or BERT's pooler, pruned too",
                         choices=('mean', 'pooler'))
    max_length: int = param(64, 'tokens per example after truncation', minimum=8, maximum=512)
    train_size: int | None = param(3000, 'training examples per task, None for the whole fixed train split',
                                   minimum=1)
    val_size: int | None = param(500, 'validation examples per task', minimum=1)
    test_size: int | None = param(2000, 'test examples per task', minimum=1)
    mlm_train_size: int | None = param(2000, 'pooled MLM training texts', minimum=1)
    mlm_val_size: int | None = param(500, minimum=1)
    mlm_test_size: int | None = param(1000, minimum=1)
    mlm_probability: float = param(0.15, 'fraction of tokens masked', minimum=0, maximum=1)
    optimizer: str = param("adamw", choices=('adam', 'adamw', 'sgd'))
    lr: float = param(5e-5, 'learning rate', minimum=0)
    batch_size: int = param(32, minimum=1)
    duration: str = param("1ep", 'fine-tuning length per run, "<n>it" or "<n>ep"')
    eval_every: str = param("1ep", 'validation interval; the early-stop point is chosen among these')
    warmup: str = param("0it", 'linear learning-rate warmup')
    weight_decay: float = param(0.0, 'AdamW weight decay', minimum=0)
    bucket_batches: int = param(50, 'sort runs of this many shuffled batches by length, 0 for plain batches',
                                minimum=0)
    precision: str = param("fp32",
                           'fp32 (portable); bf16 autocasts the forward pass (weights, optimizer, masks stay fp32), fast only with native bf16; auto picks bf16 only where torch reports native support',
                           choices=('fp32', 'bf16', 'auto'))
    rounds: int = param(5, 'IMP rounds after the full model', minimum=0, maximum=10)
    prune_fraction: float = param(0.1, 'fraction of the ORIGINAL prunable weights removed per round', minimum=0,
                                  maximum=1)
    claim_sparsity: float = param(0.5, 'sparsity of the claims: matching at or above it, controls at it', minimum=0,
                                  maximum=1)
    controls: list[str] = param(["one_shot", "random_pruning", "random_weights"],
                                'controls fine-tuned at each control sparsity')
    control_sparsities: list[float] = param([0.5], 'sparsities where every control runs on every task', minimum=0,
                                            maximum=1)
    transfer_sparsity: float = param(0.5, 'sparsity of the transfer matrix', minimum=0, maximum=1)
    seeds: list[int] = param([0, 1, 2],
                             'one full study per seed: the heads, the data order, dropout and the random controls')
    data_seed: int = param(0, 'seed of the fixed train/validation/test splits', minimum=0)
    glue: str = param("nyu-mll/glue",
                      'where glue/<task> tasks come from: the hub dataset, or a local copy of it (a folder)')
    download: bool = param(False,
                           'allow downloading the encoder and GLUE (else only local folders and the Hugging Face cache, as with HF_HUB_OFFLINE)')
    device: str = param("auto", choices=('auto', 'cpu', 'cuda'))
    cache_dir: str = param("runs/cache", 'finished fine-tuning runs are reused from here; "" uses a temporary folder')
    progress: bool = param(True, 'tqdm progress bars')

    def problems(self) -> list[str]:
        return check_bert_params(self.as_dict())
