"""A torch twin of scratch.CharLM (same layers, same sizes) and weight copying NumPy -> torch, for the speed
benchmark and the equivalence tests. The project's PyTorch model proper lives in model.py.

Weight layout: NumPy computes x @ W with W (in, out); torch stores weight (out, in), so every matrix is transposed.
NumPy keeps one bias per recurrent layer; it goes into torch's bias_ih and bias_hh is set to zero.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class TorchCharLM(nn.Module):
    """nn.Embedding (or one-hot when embed_dim is None) + nn.LSTM / nn.RNN(tanh) + nn.Linear, batch first."""

    def __init__(self, vocab_size, hidden_size, cell="lstm", num_layers=1, embed_dim=None, dropout=0.0):
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, embed_dim) if embed_dim else None
        rnn = nn.LSTM if cell == "lstm" else nn.RNN
        kwargs = {} if cell == "lstm" else {"nonlinearity": "tanh"}
        self.rnn = rnn(
            embed_dim or vocab_size, hidden_size, num_layers, batch_first=True, dropout=dropout, **kwargs
        )
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, x, state=None):
        """x (B, T) long -> (logits (B, T, V), final state)."""
        inp = (
            self.embed(x)
            if self.embed is not None
            else F.one_hot(x, self.vocab_size).to(self.head.weight.dtype)
        )
        out, state = self.rnn(inp, state)
        return self.head(out), state


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
    """Make a TorchCharLM compute exactly what a scratch.CharLM computes (dtype follows torch_model)."""
    with torch.no_grad():
        if np_model.embed is not None:
            torch_model.embed.weight.copy_(torch.from_numpy(np_model.embed.params["W"]))
        for k, cell in enumerate(np_model.cells):
            copy_cell_to_torch(cell, torch_model.rnn, k)
        torch_model.head.weight.copy_(torch.from_numpy(np.ascontiguousarray(np_model.head.params["W"].T)))
        torch_model.head.bias.copy_(torch.from_numpy(np_model.head.params["b"]))
    return torch_model
