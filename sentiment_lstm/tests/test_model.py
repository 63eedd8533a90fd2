"""The torch models: the twin equals the NumPy classifier on copied weights (logits, loss, every gradient; both
ways), and the BiLSTM's output for a review does not depend on the padding of its batch, packed or padded."""

import numpy as np
import pytest
import torch

from sentiment_lstm import twin
from sentiment_lstm.model import BiLSTMClassifier, LSTMClassifier, reverse_valid
from sentiment_lstm.scratch import LSTMClassifier as ScratchClassifier
from sentiment_lstm.tests.test_scratch import LENGTHS, V, padded_batch, tiny
from shared.nn import softmax_cross_entropy


@pytest.mark.parametrize("pool", ["mean", "last"])
def test_twin_equals_the_numpy_classifier_on_copied_weights(pool):
    """float64: logits, the mean cross-entropy and every gradient agree to round-off."""
    np_model = tiny(pool)
    ids, y = padded_batch(np.random.default_rng(1)), np.array([0, 1, 1, 0])
    loss, logits = np_model.loss_and_backward(ids, LENGTHS, y)
    torch_model = twin.copy_numpy_to_torch(np_model, LSTMClassifier(**np_model.config).double())
    assert torch_model.num_params() == np_model.num_params()
    t_logits = torch_model(torch.from_numpy(ids), torch.from_numpy(LENGTHS))
    t_loss = torch.nn.functional.cross_entropy(t_logits, torch.from_numpy(y))
    t_loss.backward()
    np.testing.assert_allclose(t_logits.detach().numpy(), logits, atol=1e-13)
    assert abs(t_loss.item() - loss) < 1e-13
    grads = twin.torch_grads_as_numpy(torch_model)
    for key, g in grads.items():
        layer, name = key.split(".")
        np.testing.assert_allclose(g, getattr(np_model, layer).grads[name], atol=1e-13, err_msg=key)
    back = twin.to_scratch(torch_model, dtype=np.float64)  # and the other way
    np.testing.assert_allclose(back.forward(ids, LENGTHS, False), logits, atol=1e-13)


def test_float32_twin_from_the_seeded_numpy_model():
    np_model = ScratchClassifier(50, 8, 6, rng=np.random.default_rng(0))
    torch_model = twin.from_scratch(np_model)
    assert not torch_model.lstm.bias_hh_l0.requires_grad  # one recurrent bias, as in NumPy
    ids = np.random.default_rng(1).integers(2, 50, size=(3, 9))
    lengths = np.array([9, 4, 2])
    expected = np_model.forward(ids, lengths, training=False)
    got = torch_model(torch.from_numpy(ids), torch.from_numpy(lengths)).detach().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert softmax_cross_entropy(expected, np.array([0, 1, 0]))[0] > 0


def test_reverse_valid_reverses_the_real_tokens_only():
    x = torch.arange(8.0).reshape(2, 4, 1)
    out = reverse_valid(x, torch.tensor([3, 4]))
    assert out[:, :, 0].tolist() == [[2, 1, 0, 3], [7, 6, 5, 4]]
    assert torch.equal(reverse_valid(out, torch.tensor([3, 4])), x)


@pytest.mark.parametrize("layers,pool", [(1, "meanmax"), (2, "last"), (2, "max"), (1, "mean")])
def test_packed_and_padded_bilstm_compute_the_same(layers, pool):
    torch.manual_seed(0)
    model = BiLSTMClassifier(V, 6, 5, layers, pool, dropout=0.0).double()
    ids, lengths = torch.from_numpy(padded_batch(np.random.default_rng(5))), torch.from_numpy(LENGTHS)
    results = []
    for packed in (True, False):
        model.packed = packed
        model.zero_grad()
        logits = model(ids, lengths)
        (logits**2).sum().backward()
        results.append((logits.detach(), {k: p.grad.clone() for k, p in model.named_parameters()}))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-13, rtol=0)
    for k, g in results[0][1].items():
        torch.testing.assert_close(g, results[1][1][k], atol=1e-13, rtol=0, msg=k)


@pytest.mark.parametrize("packed", [True, False])
def test_bilstm_output_does_not_depend_on_the_padding(packed):
    """A review alone, and the same review in a batch with a longer one (so padded), and in a batch padded
    further still: the same logits (evaluation mode, float64)."""
    torch.manual_seed(0)
    model = BiLSTMClassifier(V, 6, 5, 2, "meanmax", dropout=0.5, packed=packed).double().eval()
    rng = np.random.default_rng(6)
    review, other = torch.from_numpy(rng.integers(2, V, size=4)), torch.from_numpy(rng.integers(2, V, size=9))
    alone = model(review[None], torch.tensor([4]))
    batch = torch.zeros((2, 12), dtype=torch.long)
    batch[0, :9], batch[1, :4] = other, review
    in_batch = model(batch, torch.tensor([9, 4]))
    torch.testing.assert_close(in_batch[1:], alone, atol=1e-14, rtol=0)
    model.train()
    assert model.drop.p == 0.5  # dropout is there, for training


def test_twin_output_does_not_depend_on_the_padding():
    model = LSTMClassifier(V, 6, 5).double().eval()
    review = torch.from_numpy(np.random.default_rng(7).integers(2, V, size=5))
    alone = model(review[None], torch.tensor([5]))
    padded = torch.zeros((1, 11), dtype=torch.long)
    padded[0, :5] = review
    torch.testing.assert_close(model(padded, torch.tensor([5])), alone, atol=1e-14, rtol=0)
