"""The PyTorch character-level language model: (one-hot or nn.Embedding) -> nn.RNN(tanh) | nn.LSTM (stacked,
dropout between layers) -> nn.Linear, batch first. The same network as scratch.CharLM, written with torch.nn.

    model = CharRNN(vocab_size=65, hidden_size=384, cell="lstm", num_layers=2, dropout=0.3)
    logits, state = model(x)                      # x (B, T) long -> logits (B, T, V), final (h, c)
    logits, state = model(x_next, detach(state))  # truncated BPTT: carry the state, cut the graph
    loss, state = model.loss(x, y, state)         # mean cross-entropy in nats/char
    ids = model.sample([lookup[c] for c in "ROMEO:"], 500, temperature=0.8, top_k=None, rng=np.random.default_rng(0))

Initialisation and biases follow scratch.CharLM, so that the two implementations can start from the same weights
(twin.py converts them): weights U(-1/sqrt(H), 1/sqrt(H)) (torch's default bound), one bias per recurrent layer
(torch's bias_hh is kept at zero and frozen when `single_bias=True`, the default), the LSTM forget-gate bias at 1.
The parameter count is then exactly scratch.CharLM's.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from shared.sampling import pick_next, sampling_inputs

__all__ = ["CharRNN", "detach"]


def detach(state):
    """Cut the autograd graph behind a carried state (h or (h, c)); None stays None."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def _like(state, dtype):
    """The state in the parameters' dtype: under bf16 autocast nn.LSTM returns bf16 states, and the carried
    cell state should keep fp32's precision from chunk to chunk."""
    if isinstance(state, tuple):
        return tuple(s.to(dtype) for s in state)
    return state.to(dtype)


class CharRNN(nn.Module):
    """Character-level RNN/LSTM language model.

    vocab_size: characters; hidden_size: H; cell: "lstm" | "rnn"; num_layers: stacked recurrent layers;
    embed_dim: size of a learned nn.Embedding, or None/0 for one-hot input (the first layer's input weights
    then play the embedding); dropout: between stacked layers, training only (nn.LSTM's `dropout`);
    forget_bias: initial LSTM forget-gate bias; single_bias: freeze torch's redundant bias_hh at zero.

    forward(x (B, T) long, state=None) -> (logits (B, T, V), state), state h or (h, c), each (L, B, H).
    """

    def __init__(
        self,
        vocab_size,
        hidden_size,
        cell="lstm",
        num_layers=1,
        embed_dim=None,
        dropout=0.0,
        forget_bias=1.0,
        single_bias=True,
    ):
        super().__init__()
        if cell not in ("lstm", "rnn"):
            raise ValueError(f"cell must be 'lstm' or 'rnn', got {cell!r}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        embed_dim = int(embed_dim) if embed_dim else None
        self.config = dict(
            vocab_size=int(vocab_size),
            hidden_size=int(hidden_size),
            cell=cell,
            num_layers=int(num_layers),
            embed_dim=embed_dim,
            dropout=float(dropout),
        )
        self.vocab_size, self.hidden_size, self.num_layers = (
            int(vocab_size),
            int(hidden_size),
            int(num_layers),
        )
        self.cell, self.forget_bias, self.single_bias = cell, float(forget_bias), bool(single_bias)

        self.embed = nn.Embedding(vocab_size, embed_dim) if embed_dim else None
        recurrent = nn.LSTM if cell == "lstm" else nn.RNN
        kwargs = {} if cell == "lstm" else {"nonlinearity": "tanh"}
        # dropout acts between stacked layers: with one layer there is nothing to drop (and torch would warn)
        between = dropout if num_layers > 1 else 0.0
        self.rnn = recurrent(
            embed_dim or vocab_size, hidden_size, num_layers, batch_first=True, dropout=between, **kwargs
        )
        self.head = nn.Linear(hidden_size, vocab_size)
        self.reset_parameters()

    def reset_parameters(self):
        """scratch.CharLM's scheme: U(+-1/sqrt(H)) weights and head bias, zero recurrent biases, forget bias."""
        H = self.hidden_size
        bound = 1.0 / math.sqrt(H)
        with torch.no_grad():
            for name, p in self.rnn.named_parameters():
                if name.startswith("weight"):
                    p.uniform_(-bound, bound)
                else:
                    p.zero_()
                    if self.cell == "lstm" and name.startswith("bias_ih"):
                        p[H : 2 * H] = self.forget_bias  # gates in torch's order (i, f, g, o)
                if name.startswith("bias_hh"):
                    p.requires_grad_(not self.single_bias)
            self.head.weight.uniform_(-bound, bound)
            self.head.bias.uniform_(-bound, bound)
            if self.embed is not None:
                self.embed.weight.normal_()

    def forward(self, x, state=None):
        """x (B, T) long -> (logits (B, T, V), final state)."""
        if self.embed is not None:
            inputs = self.embed(x)  # (B, T, E)
        else:
            inputs = F.one_hot(x, self.vocab_size).to(self.head.weight.dtype)  # (B, T, V)
        out, state = self.rnn(inputs, state)  # (B, T, H)
        return self.head(out), state

    def num_params(self):
        """Trainable parameters (equal to scratch.CharLM.num_params() with single_bias)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def init_state(self, batch, device=None):
        """Zero state for `batch` streams: h or (h, c), each (num_layers, batch, H)."""
        device = device or self.head.weight.device
        shape = (self.num_layers, batch, self.hidden_size)
        zeros = [torch.zeros(shape, device=device, dtype=self.head.weight.dtype) for _ in range(2)]
        return tuple(zeros) if self.cell == "lstm" else zeros[0]

    def loss(self, x, y, state=None):
        """Mean cross-entropy (nats/char) of x (B, T) against y (B, T) -> (loss, final state)."""
        logits, state = self(x, state)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        return loss, _like(state, self.head.weight.dtype)

    @torch.no_grad()
    def sample(self, prime_ids, length, temperature=1.0, top_k=None, rng=None):
        """Generate `length` characters after `prime_ids` (non-empty); returns the new ids (int64 array).

        The same rule as scratch.CharLM.sample (and the same draws for the same numpy `rng`): temperature 0 is
        argmax, otherwise a draw from softmax(logits / temperature), optionally restricted to the top_k."""
        prime, rng = sampling_inputs(prime_ids, temperature, top_k, rng)
        was_training = self.training
        self.eval()
        device = self.head.weight.device
        out = np.empty(length, dtype=np.int64)
        try:
            logits, state = self(torch.from_numpy(prime)[None].to(device))  # (1, P, V)
            for n in range(length):
                out[n] = pick_next(logits[0, -1].double().cpu().numpy(), temperature, top_k, rng)
                logits, state = self(torch.tensor([[out[n]]], device=device), state)
        finally:
            self.train(was_training)
        return out
