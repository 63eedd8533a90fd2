"""Between the two implementations: the NumPy CharLM (scratch.py) and the torch CharRNN (model.py), weights
copied either way, and the torch twin the speed benchmark and the equivalence tests use. The only file that
imports both.

Weight layout: NumPy computes x @ W with W (in, out); torch stores weight (out, in), so every matrix is transposed.
NumPy keeps one bias per recurrent layer; it goes into torch's bias_ih and bias_hh is set to zero (torch -> NumPy:
bias_ih + bias_hh).
"""

import numpy as np
import torch

from char_rnn.model import CharRNN
from char_rnn.scratch import CharLM


class TorchCharLM(CharRNN):
    """model.CharRNN with both of torch's recurrent biases trainable, as plain nn.LSTM / nn.RNN have them:
    nn.Embedding (or one-hot when embed_dim is None) + nn.LSTM / nn.RNN(tanh) + nn.Linear, batch first."""

    def __init__(self, vocab_size, hidden_size, cell="lstm", num_layers=1, embed_dim=None, dropout=0.0):
        super().__init__(vocab_size, hidden_size, cell, num_layers, embed_dim, dropout, single_bias=False)


def copy_cell_to_torch(cell, rnn, layer=0):
    """Copy a scratch RNN/LSTM's (Wx, Wh, b) into layer `layer` of a torch nn.RNN / nn.LSTM."""
    p = cell.params
    with torch.no_grad():
        getattr(rnn, f"weight_ih_l{layer}").copy_(torch.from_numpy(np.ascontiguousarray(p["Wx"].T)))
        getattr(rnn, f"weight_hh_l{layer}").copy_(torch.from_numpy(np.ascontiguousarray(p["Wh"].T)))
        getattr(rnn, f"bias_ih_l{layer}").copy_(torch.from_numpy(p["b"]))
        getattr(rnn, f"bias_hh_l{layer}").zero_()


def cell_grads_from_torch(rnn, layer=0):
    """The torch layer's gradients in scratch's layout: {"Wx": (D, G*H), "Wh": (H, G*H), "b": (G*H,)}."""

    def g(name):
        return getattr(rnn, f"{name}_l{layer}").grad.detach().cpu().numpy()

    return {"Wx": g("weight_ih").T, "Wh": g("weight_hh").T, "b": g("bias_ih")}


def copy_numpy_to_torch(np_model, torch_model):
    """Make a CharRNN (or TorchCharLM) compute exactly what a scratch.CharLM computes (dtype follows
    torch_model); returns torch_model."""
    with torch.no_grad():
        if np_model.embed is not None:
            torch_model.embed.weight.copy_(torch.from_numpy(np_model.embed.params["W"]))
        for k, cell in enumerate(np_model.cells):
            copy_cell_to_torch(cell, torch_model.rnn, k)
        torch_model.head.weight.copy_(torch.from_numpy(np.ascontiguousarray(np_model.head.params["W"].T)))
        torch_model.head.bias.copy_(torch.from_numpy(np_model.head.params["b"]))
    return torch_model


def from_scratch(np_model):
    """A CharRNN with exactly the weights of a scratch.CharLM (float32)."""
    return copy_numpy_to_torch(np_model, CharRNN(**np_model.config))


def to_scratch(model, dtype=np.float32):
    """A scratch.CharLM with the weights of a CharRNN (bias_ih + bias_hh become scratch's single bias)."""
    c = model.config
    np_model = CharLM(**c, rng=np.random.default_rng(0), dtype=dtype)
    sd = {k: v.detach().cpu().double().numpy() for k, v in model.state_dict().items()}
    weights = {}
    if np_model.embed is not None:
        weights["embed.W"] = sd["embed.weight"]
    for k in range(c["num_layers"]):
        weights[f"cell{k}.Wx"] = sd[f"rnn.weight_ih_l{k}"].T
        weights[f"cell{k}.Wh"] = sd[f"rnn.weight_hh_l{k}"].T
        weights[f"cell{k}.b"] = sd[f"rnn.bias_ih_l{k}"] + sd[f"rnn.bias_hh_l{k}"]
    weights["head.W"] = sd["head.weight"].T
    weights["head.b"] = sd["head.bias"]
    np_model.load_state_dict({k: v.astype(dtype) for k, v in weights.items()})
    return np_model
