"""predict.py: the committed models get an obviously positive and an obviously negative review right; every
kind of weights file predicts a label and its probability; an empty text, an unknown model name or a missing
weights file is one line."""

import pytest

from sentiment_lstm import predict
from shared.cli import run_main

POSITIVE = (
    "One of the best films I have ever seen. The acting is superb, the story is moving and beautifully told, "
    "and the music is wonderful. A brilliant, touching masterpiece: I loved every minute and highly recommend it."
)
NEGATIVE = (
    "One of the worst films I have ever seen. The acting is terrible, the plot is boring and makes no sense, "
    "and the dialogue is awful. A complete waste of time and money: avoid this dull, stupid mess."
)


def one_line(capsys):
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    label, p = out.split()
    return label, float(p)


@pytest.mark.parametrize("name", list(predict.MODELS))
def test_committed_models_get_the_obvious_reviews_right(name, capsys):
    """Each committed model of `--model` (MODELS) on one obviously positive and one obviously negative review.
    Skipped only while that model's weights file is not in sentiment_lstm/checkpoints/ yet (a fresh checkout
    before `make sentiment_lstm` / `make study-sentiment_lstm`; the weights are committed with their records);
    minilm also when transformers / peft / the MiniLM package are not installed."""
    path = predict.CHECKPOINTS / predict.MODELS[name]
    if not path.exists():
        pytest.skip(f"{path.name} is not committed yet")
    if name == "minilm":
        pytest.importorskip("transformers")
        pytest.importorskip("peft")
    for text, expected in ((POSITIVE, "positive"), (NEGATIVE, "negative")):
        label, p = run_main(predict.main, ["--model", name, text])
        assert predict.LABELS[label] == expected and 0.5 < p <= 1, (name, expected, p)
        assert one_line(capsys) == (expected, pytest.approx(p, abs=1e-4))


def test_every_kind_of_weights_file_predicts(fast_models, capsys):
    """The quick-look NBSVM, NumPy LSTM and BiLSTM through --checkpoint: a label, P in [0.5, 1], one line."""
    for name in ("fast-nbsvm-bi.npz", "fast-numpy-lstm.npz", "fast-bilstm.pt"):
        path = fast_models / "checkpoints" / name
        label, p = run_main(predict.main, [f"--checkpoint={path}", "What a film!"])
        assert one_line(capsys) == (predict.LABELS[label], pytest.approx(p, abs=1e-4)) and 0.5 <= p <= 1
        model, meta = predict.load_model(path)
        probs = predict.probabilities(model, meta, NEGATIVE)
        assert probs.shape == (2,) and probs.sum() == pytest.approx(1)


def test_model_flag_with_a_space_or_an_equals_sign():
    assert predict.parse(["--model", "nbsvm", "good"]) == ("nbsvm", None, ["good"])
    assert predict.parse(["--model=bilstm", "bad"]) == ("bilstm", None, ["bad"])
    assert predict.parse(["fine", "--checkpoint", "x.pt"]) == ("numpy-lstm", "x.pt", ["fine"])


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--model", "nbsvm", "   <br />  "], "the text is empty"),
        (["--model=minilm", ""], "the text is empty"),
        (["--model=gpt", "fine"], "--model=gpt: choose one of nbsvm, numpy-lstm, bilstm, minilm"),
        (["--model", "lstm", "fine"], "--model=lstm: choose one of"),
        (["--model"], "--model needs a value"),
        (["--checkpoint=/nowhere/x.npz", "fine"], "checkpoint /nowhere/x.npz not found"),
        (["--checkpoint=/nowhere/x.txt", "fine"], "expected a .npz (NBSVM, NumPy LSTM) or .pt"),
        (["--model=bilstm", "two", "reviews"], "give the review as one argument"),
        (["--temperature=1", "fine"], "unknown flag --temperature"),
    ],
)
def test_bad_input_is_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        run_main(predict.main, argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize("name", list(predict.MODELS))
def test_a_missing_weights_file_is_one_line(name, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(predict, "CHECKPOINTS", tmp_path / "sentiment_lstm" / "checkpoints")
    with pytest.raises(SystemExit) as e:
        run_main(predict.main, ["--model", name, "A fine film."])
    err = capsys.readouterr().err
    target = "make study-sentiment_lstm" if name == "minilm" else "make sentiment_lstm"
    assert e.value.code == 2 and err.count("\n") == 1 and "are not there" in err and target in err, err
    assert f"sentiment_lstm/checkpoints/{predict.MODELS[name]}" in err
