"""The PyTorch GPT: a decoder-only transformer over characters, in nanoGPT's layout and names. The same network as
scratch.GPT, written with torch.nn (twin.py copies weights between the two, name for name).

    model = GPT(GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128))
    logits, loss = model(idx, targets)          # idx, targets (B, T) long -> logits (B, T, V), mean cross-entropy
    logits, _ = model(idx)                      # no targets: loss is None
    out = model.generate(idx, 500, temperature=0.8, top_k=None, rng=np.random.default_rng(0))  # (B, T + 500)
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.99))

Each block is pre-norm: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)); the attention is causal, softmax(q k^T /
sqrt(hs)) v per head. The output head is the token embedding itself (logits = x wte^T), so the state_dict holds
wte once and nothing named lm_head. Initialisation is nanoGPT's: weights N(0, 0.02), the two projections back
into the residual stream (attn.c_proj, mlp.c_proj) N(0, 0.02 / sqrt(2 n_layer)), since each block adds two of
them to the stream; biases zero, LayerNorm weights one.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from shared.sampling import pick_next, sampling_inputs

__all__ = [
    "GPTConfig",
    "CausalSelfAttention",
    "MLP",
    "Block",
    "GPT",
    "sinusoidal_positions",
    "rotary_angles",
    "rotate",
]


@dataclass
class GPTConfig:
    block_size: int = 64  # the longest context the model reads
    vocab_size: int = 65
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    attn_dropout: float | None = None  # on the attention weights; None: dropout's rate (nanoGPT's one rate)
    bias: bool = False  # biases in every Linear and LayerNorm
    pos: str = (
        "learned"  # "learned" (an embedding table wpe) | "sinusoidal" (fixed, added) | "rotary" (q, k turned)
    )

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        if self.pos not in ("learned", "sinusoidal", "rotary"):
            raise ValueError(f"pos must be 'learned', 'sinusoidal' or 'rotary', got {self.pos!r}")
        if self.pos == "rotary" and (self.n_embd // self.n_head) % 2:
            raise ValueError(
                f"pos 'rotary' turns channel pairs: the head size {self.n_embd // self.n_head} is odd"
            )
        if self.attn_dropout is None:
            self.attn_dropout = self.dropout
        for name in ("dropout", "attn_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")


def sinusoidal_positions(T, C):
    """The fixed position code of "Attention is all you need", (T, C) float64: column 2i is
    sin(t / 10000^(2i/C)), column 2i + 1 is cos of the same angle."""
    t = torch.arange(T, dtype=torch.float64)[:, None]  # (T, 1)
    frequencies = 10000.0 ** (-torch.arange(0, C, 2, dtype=torch.float64) / C)  # (ceil(C/2),)
    angles = t * frequencies  # (T, ceil(C/2))
    code = torch.zeros(T, C, dtype=torch.float64)
    code[:, 0::2] = torch.sin(angles)
    code[:, 1::2] = torch.cos(angles[:, : C // 2])
    return code


def rotary_angles(T, hs, base=10000.0):
    """cos, sin (T, hs / 2) float64 of rotary position embeddings (RoFormer): at position t, channel pair i of a
    head turns by the angle t / base^(2i / hs)."""
    theta = torch.arange(T, dtype=torch.float64)[:, None] / base ** (
        torch.arange(0, hs, 2, dtype=torch.float64) / hs
    )
    return torch.cos(theta), torch.sin(theta)


def rotate(x, cos, sin):
    """Turn the channel pairs (x1, x2) = (x[..., i], x[..., i + hs/2]) of x (..., T, hs) by their angles, so
    that q_t . k_s depends on t - s only."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class CausalSelfAttention(nn.Module):
    """n_head heads of size hs = C / n_head; position t attends to positions <= t only. With pos "rotary" q and
    k are turned by their positions first."""

    def __init__(self, config):
        super().__init__()
        C = config.n_embd
        self.n_head, self.attn_dropout = config.n_head, config.attn_dropout
        self.c_attn = nn.Linear(C, 3 * C, bias=config.bias)  # q, k and v in one product
        self.c_proj = nn.Linear(C, C, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.rotary = config.pos == "rotary"
        if (
            self.rotary
        ):  # fixed tables that move with .to(), no state (float64: cast to the activations' dtype)
            cos, sin = rotary_angles(config.block_size, C // config.n_head)
            self.register_buffer("cos", cos, persistent=False)
            self.register_buffer("sin", sin, persistent=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # each (B, T, C)
        heads = (B, T, self.n_head, C // self.n_head)
        q, k, v = (z.view(heads).transpose(1, 2) for z in (q, k, v))  # each (B, nh, T, hs)
        if self.rotary:
            cos, sin = self.cos[:T].to(q.dtype), self.sin[:T].to(q.dtype)  # (T, hs / 2)
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        # softmax(q k^T / sqrt(hs) + causal mask) v, dropout on the attention weights while training; in at least
        # fp32 even under bf16 autocast: on CPUs torch's bf16 attention backward is ~5x slower than its fp32 one
        precision = torch.promote_types(q.dtype, torch.float32)
        with torch.autocast(x.device.type, enabled=False):
            y = F.scaled_dot_product_attention(
                q.to(precision),
                k.to(precision),
                v.to(precision),
                dropout_p=self.attn_dropout if self.training else 0.0,
                is_causal=True,
            )  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): the heads side by side
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise C -> 4C -> GELU (the exact erf form) -> C."""

    def __init__(self, config):
        super().__init__()
        C = config.n_embd
        self.c_fc = nn.Linear(C, 4 * C, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * C, C, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))  # (B, T, 4C) inside, (B, T, C) out


class Block(nn.Module):
    """One pre-norm transformer block: attention, then the MLP, each added to the residual stream."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=1e-5, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=1e-5, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))  # (B, T, C)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Token embedding (+ positions) -> n_layer Blocks -> LayerNorm -> logits against the token embedding."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        V, C = config.vocab_size, config.n_embd
        parts = dict(
            wte=nn.Embedding(V, C),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=nn.LayerNorm(C, eps=1e-5, bias=config.bias),
        )
        if config.pos == "learned":
            parts["wpe"] = nn.Embedding(config.block_size, C)
        elif (
            config.pos == "sinusoidal"
        ):  # a fixed table that moves with .to(), no parameter, no state; float64 so that
            # a float64 model reads the exact code (forward casts it to the activations' dtype)
            self.register_buffer("positions", sinusoidal_positions(config.block_size, C), persistent=False)
        self.transformer = nn.ModuleDict(parts)
        self.reset_parameters()

    def reset_parameters(self):
        """nanoGPT's initialisation (see the module docstring)."""
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    p.normal_(0.0, residual_std)
                elif name.endswith(".weight") and p.dim() == 2:  # Linear and Embedding weights
                    p.normal_(0.0, 0.02)
                elif name.endswith(".weight"):  # LayerNorm
                    p.fill_(1.0)
                else:
                    p.zero_()

    def num_params(self):
        """Every parameter, the position table wpe included (nanoGPT leaves wpe out of its count); the tied head
        adds none."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx, targets=None):
        """idx (B, T) long, T <= block_size -> (logits (B, T, V), mean cross-entropy against targets or None)."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} exceeds block_size {self.config.block_size}")
        x = self.transformer.wte(idx)  # (B, T, C)
        if self.config.pos == "learned":
            x = x + self.transformer.wpe(torch.arange(T, device=idx.device))  # + (T, C)
        elif self.config.pos == "sinusoidal":
            x = x + self.positions[:T].to(x.dtype)  # + (T, C); rotary positions act inside the attention
        x = self.transformer.drop(x)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        logits = F.linear(x, self.transformer.wte.weight)  # (B, T, V): the head is wte^T
        if targets is None:
            return logits, None
        # at least fp32 (under bf16 autocast the logits are bf16): the log-softmax over V wants the precision
        logits_fp32 = logits.to(torch.promote_types(logits.dtype, torch.float32))
        loss = F.cross_entropy(logits_fp32.reshape(B * T, -1), targets.reshape(B * T))
        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, betas, fused=False):
        """AdamW over two groups: the matrices (Linear weights and the embeddings) decay, the vectors
        (LayerNorm weights, biases) do not. fused: torch's one-kernel AdamW (the same update to round-off)."""
        params = list(self.parameters())
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=fused or None)

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, rng=None):
        """Continue each row of idx (B, T) long by max_new_tokens ids -> (B, T + max_new_tokens).

        Each step reads the last block_size ids and draws row by row with shared.sampling.pick_next and the numpy
        Generator `rng` (argmax at temperature 0), so scratch.GPT with the same weights and rng writes the same
        text."""
        _, rng = sampling_inputs(idx.reshape(-1).cpu().numpy(), temperature, top_k, rng)
        was_training = self.training
        self.eval()
        try:
            for _ in range(max_new_tokens):
                context = idx[:, -self.config.block_size :]  # (B, <= block)
                logits, _ = self(context)
                last = logits[:, -1].double().cpu().numpy()  # (B, V)
                picked = [pick_next(row, temperature, top_k, rng) for row in last]
                idx = torch.cat([idx, torch.tensor(picked, device=idx.device)[:, None]], dim=1)
        finally:
            self.train(was_training)
        return idx
