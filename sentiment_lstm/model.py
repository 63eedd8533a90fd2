"""The PyTorch sentiment classifiers: the LSTM classifier of scratch.py written with torch.nn, and a bidirectional
LSTM, the project's PyTorch model.

    model = LSTMClassifier(vocab_size=20000, embed_dim=96, hidden_size=128, pool="mean")
    model = BiLSTMClassifier(vocab_size=20000, embed_dim=96, hidden_size=128, pool="meanmax", dropout=0.5)
    logits = model(ids, lengths)          # ids (B, T) long, right-padded with 0; lengths (B,) -> logits (B, 2)

Both take a right-padded batch with its lengths and pool over the valid steps t < length only:
    mean: the mean of h_t over t < length;  last: h_t at t = length - 1;  max: the elementwise maximum over
    t < length;  meanmax: mean and max side by side (BiLSTM only).

LSTMClassifier runs nn.LSTM over all T steps of the padded batch, as the NumPy model does, and masks afterwards
(the LSTM is causal, so steps t < length never see the padding). Its initialisation and its one recurrent bias
follow the NumPy model (bias_hh kept at zero and frozen: the parameter count is the NumPy model's), so that
weights copy either way. In BiLSTMClassifier each direction reads exactly the `length` real tokens of its row,
the backward direction starting from the last real token rather than from the padding, so its output for a
review does not depend on the padding of its batch: with nn.utils.rnn.pack_padded_sequence (packed=True), or
with the same weights on the padded batch, each row's real tokens reversed in place for the backward direction
(packed=False, ~6x faster on a CPU; tested equal).
"""

import math

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = ["LSTMClassifier", "BiLSTMClassifier", "masked_pool", "reverse_valid"]


def masked_pool(out, lengths, kind):
    """out (B, T, F) outputs of a right-padded batch, lengths (B,) -> pooled (B, F) over the steps t < length
    (F doubles for "meanmax")."""
    B, T, _ = out.shape
    lengths = lengths.to(out.device)
    mask = (torch.arange(T, device=out.device)[None, :] < lengths[:, None]).unsqueeze(2)  # (B, T, 1)
    if kind == "last":
        return out[torch.arange(B, device=out.device), lengths - 1]
    mean = (out * mask).sum(1) / lengths[:, None].to(out.dtype)
    if kind == "mean":
        return mean
    top = out.masked_fill(~mask, float("-inf")).amax(1)
    return top if kind == "max" else torch.cat([mean, top], dim=1)


class LSTMClassifier(nn.Module):
    """scratch.LSTMClassifier in torch: nn.Embedding -> nn.LSTM (one layer, batch first, over the padded batch)
    -> masked pooling (mean | last) -> dropout -> nn.Linear. Dropout (training only) on the embedded inputs and
    on the pooled vector, as in the NumPy model."""

    def __init__(self, vocab_size, embed_dim, hidden_size, pool="mean", dropout=0.0, num_classes=2,
                 single_bias=True):  # fmt: skip
        super().__init__()
        if pool not in ("mean", "last"):
            raise ValueError(f"pool must be mean or last, got {pool!r}")
        self.config = dict(
            vocab_size=int(vocab_size), embed_dim=int(embed_dim), hidden_size=int(hidden_size), pool=pool,
            dropout=float(dropout), num_classes=int(num_classes),
        )  # fmt: skip
        self.pool, self.hidden_size, self.single_bias = pool, int(hidden_size), bool(single_bias)
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_classes)
        self.reset_parameters()

    def reset_parameters(self):
        """The NumPy model's scheme: U(+-1/sqrt(H)) weights and head bias, zero LSTM bias but the forget gate's 1."""
        H = self.hidden_size
        bound = 1.0 / math.sqrt(H)
        with torch.no_grad():
            for name, p in self.lstm.named_parameters():
                if name.startswith("weight"):
                    p.uniform_(-bound, bound)
                else:
                    p.zero_()
                    if name.startswith("bias_ih"):
                        p[H : 2 * H] = 1.0  # gates in torch's order (i, f, g, o)
                if name.startswith("bias_hh"):
                    p.requires_grad_(not self.single_bias)
            self.head.weight.uniform_(-bound, bound)
            self.head.bias.uniform_(-bound, bound)
            self.embed.weight.normal_()

    def num_params(self):
        """Trainable parameters (equal to scratch.LSTMClassifier.num_params() with single_bias)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, ids, lengths):
        """ids (B, T) long, lengths (B,) -> logits (B, classes)."""
        out, _ = self.lstm(self.drop(self.embed(ids)))  # (B, T, H), the padding read too
        return self.head(self.drop(masked_pool(out, lengths, self.pool)))


def reverse_valid(x, lengths):
    """x (B, T, F) right-padded -> the same with each row's first lengths[b] steps in reverse order (the padding
    stays where it is). Its own inverse."""
    t = torch.arange(x.shape[1], device=x.device)[None, :]
    L = lengths.to(x.device)[:, None]
    idx = torch.where(t < L, L - 1 - t, t)  # (B, T)
    return x.gather(1, idx.unsqueeze(2).expand_as(x))


class BiLSTMClassifier(nn.Module):
    """nn.Embedding (padding_idx 0) -> dropout -> bidirectional nn.LSTM (num_layers, dropout between layers)
    -> masked pooling of both directions' outputs (mean | max | meanmax | last) -> dropout -> nn.Linear.
    "last" is each direction's final state: the forward one at t = length - 1, the backward one at t = 0.

    packed=True runs the LSTM on nn.utils.rnn.pack_padded_sequence. packed=False computes the same function with
    the same weights on the padded batch: the forward direction over the padded rows (it is causal, so t < length
    never sees the padding), the backward direction over each row with its real tokens reversed in place
    (reverse_valid), and its outputs reversed back. On a CPU torch runs a padded batch through oneDNN's fused
    LSTM but a packed one step by step, ~6x slower (measured, one thread, 32 x 240 tokens, 128 units)."""

    def __init__(self, vocab_size, embed_dim, hidden_size, num_layers=1, pool="max", dropout=0.5,
                 num_classes=2, packed=False):  # fmt: skip
        super().__init__()
        if pool not in ("mean", "max", "meanmax", "last"):
            raise ValueError(f"pool must be mean, max, meanmax or last, got {pool!r}")
        self.config = dict(
            vocab_size=int(vocab_size), embed_dim=int(embed_dim), hidden_size=int(hidden_size),
            num_layers=int(num_layers), pool=pool, dropout=float(dropout), num_classes=int(num_classes),
        )  # fmt: skip
        self.pool, self.packed, self.num_layers, self.H = (
            pool,
            bool(packed),
            int(num_layers),
            int(hidden_size),
        )
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.between = dropout if num_layers > 1 else 0.0
        self.lstm = nn.LSTM(
            embed_dim, hidden_size, num_layers, batch_first=True, bidirectional=True, dropout=self.between
        )
        self.drop = nn.Dropout(dropout)
        features = 2 * hidden_size * (2 if pool == "meanmax" else 1)
        self.head = nn.Linear(features, num_classes)
        with torch.no_grad():  # the forget gates start open (Jozefowicz et al. 2015), as in the NumPy model
            for name, p in self.lstm.named_parameters():
                if name.startswith("bias_ih"):
                    p[hidden_size : 2 * hidden_size] = 1.0
                elif name.startswith("bias_hh"):
                    p.zero_()
        # one-direction LSTMs that only lend their forward code to self.lstm's weights (functional_call); kept
        # out of the module's parameters
        sizes = [embed_dim] + [2 * hidden_size] * (num_layers - 1)
        self._one_way = tuple(nn.LSTM(size, hidden_size, batch_first=True) for size in sizes)

    def num_params(self):
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def _direction(self, x, layer, suffix):
        """One direction of layer `layer` of self.lstm (suffix "" forward, "_reverse" backward) run forward
        over x (B, T, F) -> (B, T, H)."""
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        weights = {f"{n}_l0": getattr(self.lstm, f"{n}_l{layer}{suffix}") for n in names}
        return torch.func.functional_call(self._one_way[layer], weights, (x,))[0]

    def _padded(self, x, lengths):
        """Both directions of every layer on the padded batch x (B, T, E) -> (B, T, 2H)."""
        for k in range(self.num_layers):
            if k:
                x = nn.functional.dropout(x, self.between, self.training)
            forward = self._direction(x, k, "")
            backward = reverse_valid(self._direction(reverse_valid(x, lengths), k, "_reverse"), lengths)
            x = torch.cat([forward, backward], dim=2)
        return x

    def forward(self, ids, lengths):
        """ids (B, T) long, right-padded; lengths (B,) (any order) -> logits (B, classes)."""
        x = self.drop(self.embed(ids))  # (B, T, E)
        T = ids.shape[1]
        if self.packed:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=T)  # (B, T, 2H)
        else:
            out = self._padded(x, lengths)
        if self.pool == "last":  # the forward direction's state at length - 1, the backward one's at t = 0
            rows = torch.arange(len(ids), device=out.device)
            pooled = torch.cat([out[rows, lengths.to(out.device) - 1, : self.H], out[:, 0, self.H :]], dim=1)
        else:
            pooled = masked_pool(out, lengths, self.pool)
        return self.head(self.drop(pooled))
