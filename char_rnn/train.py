"""Train a character-level RNN or LSTM on tiny Shakespeare, from scratch in NumPy or in PyTorch, with one loop.

    python -m char_rnn.train --config=char_rnn/configs/lstm_torch.py             # the PyTorch headline LSTM
    python -m char_rnn.train --config=char_rnn/configs/lstm_numpy.py             # the NumPy LSTM
    python -m char_rnn.train --impl=numpy --cell=rnn --hidden=256 --max_steps=3000 --run=my-rnn
    python -m char_rnn.train --impl=torch --cell=lstm --layers=2 --hidden=384 --max_minutes=60

Data (nanoGPT's convention): the first 90% of the 1,115,394 characters train, the last 10% (111,540) validate;
the vocabulary is sorted(set(text)) (65 characters). Losses are mean cross-entropies in nats per character.

Batches. The training split is cut into `batch_size` contiguous stripes, one per stream; each step reads the next
`seq_len` characters of every stripe, and the recurrent state carries from one chunk to the next (truncated
BPTT: gradients stop at the chunk boundary, the state is detached). After a pass over the stripes (an epoch)
they are re-cut at a random offset in [0, seq_len) so that chunk boundaries move, and the state is reset.

Budget and schedule. Training stops after `max_steps` steps or `max_minutes` minutes of training time (the
steps themselves: evaluation and checkpointing excluded), whichever comes first. The learning rate warms up
linearly for `warmup_steps`, then follows a cosine from `lr` to `min_lr` over the budget: over the steps, or
over the elapsed fraction of the time budget (so a time-budgeted run ends at min_lr too; such a run is not
repeatable step for step, since its schedule depends on the machine's speed).

Evaluation. Every `eval_interval` steps the validation loss is measured by streaming the validation text with
carried state, `eval_batch` contiguous streams of it read `eval_seq` characters at a time: every one of its
111,539 next-character predictions is scored once (the first prediction of each stream starts from a zero
state). `eval_chars` > 0 uses only that prefix for the intermediate evaluations; the final metric always
uses the whole split. The history records step, epoch, lr, train_loss (mean over the steps since the last
evaluation), val_loss, train_time_s (the budget's clock) and time_s (wall clock including evaluations).

Each evaluation ends with an atomic checkpoint in char_rnn/checkpoints/resume/<run>.npz|.pt (weights,
optimizer, step, clocks, random generators, stream position and recurrent state, history); rerunning the same
command resumes from it exactly (--resume=false starts over). A finished run writes char_rnn/results/<run>.json,
TensorBoard scalars under runs/char_rnn/<run>, and with --save_weights its final weights, vocabulary and model
settings to char_rnn/checkpoints/<run>.npz|.pt for `python -m char_rnn.sample` and `make eval-char_rnn`.

Precision (PyTorch only): --precision=bf16 runs the training step under bfloat16 autocast (the LSTM's matrix
products in bf16, 1.7x faster per step on this AVX-512-BF16 CPU); weights, Adam's moments, the carried state and
every evaluation stay fp32.

Threads: --threads (default 1, best on a busy 2-core machine) sets OMP/OPENBLAS/MKL_NUM_THREADS before numpy
and torch load, and torch.set_num_threads.
"""

import dataclasses
import os
import sys


@dataclasses.dataclass
class Config:
    run: str = ""  # name of the run record and checkpoints; default "<impl>-<cell>-<layers>x<hidden>"
    impl: str = "numpy"  # numpy | torch
    cell: str = "lstm"  # lstm | rnn
    hidden: int = 256  # hidden units per recurrent layer
    layers: int = 1  # stacked recurrent layers
    embed: int = 0  # size of a learned embedding; 0 = one-hot input
    dropout: float = 0.0  # between stacked layers (training only)
    batch_size: int = 32  # parallel streams
    seq_len: int = 100  # characters per chunk (truncated BPTT length)
    lr: float = 2e-3  # Adam, peak learning rate
    min_lr: float = 2e-4  # end of the cosine
    warmup_steps: int = 100
    schedule: str = "cosine"  # cosine | constant
    grad_clip: float = 5.0  # global gradient-norm clipping, 0 = off
    weight_decay: float = 0.0  # Adam's L2 term
    max_steps: int = 0  # training budget in steps (0 = none) ...
    max_minutes: float = 0.0  # ... and/or in minutes of training time (0 = none); the first reached stops
    eval_interval: int = 200  # steps between evaluations (each one ends with a checkpoint)
    eval_chars: int = 0  # intermediate evaluations on this prefix of the validation text; 0 = all of it
    eval_batch: int = 32  # streams of the validation text
    eval_seq: int = 256  # characters per evaluation chunk (the result does not depend on it)
    train_chars: int = 0  # use only this prefix of the training split (0 = all); for quick looks and tests
    seed: int = 0
    threads: int = 1  # BLAS / torch threads
    device: str = "cpu"  # torch only: cpu | auto | cuda | mps
    precision: str = "fp32"  # torch only: fp32 | bf16 (autocast for the training step; evaluation stays fp32)
    group: str = "headline"  # the REPORT.md table this run belongs to
    save_weights: bool = False  # keep the final weights in char_rnn/checkpoints/<run>.npz|.pt (< 10 MB)
    out_dir: str = ""  # put results/, checkpoints/ and TensorBoard logs under this folder (tests)
    resume: bool = True
    progress: bool = True


def _thread_env(argv):
    """Put --threads (a flag or a --config file's line) into the environment before numpy and torch load."""
    if "numpy" in sys.modules or "torch" in sys.modules:
        return
    from shared.cli import UserError
    from shared.config import parse_config

    try:
        threads = parse_config(Config(), argv).threads
    except UserError:
        return  # main() reports the bad flag
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


if __name__ == "__main__":
    _thread_env(sys.argv[1:])

import functools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from shared import optim  # noqa: E402
from shared.checkpoint import (  # noqa: E402
    check_resumable,
    load_npz,
    load_torch,
    rng_state,
    save_npz,
    save_torch,
    set_rng_state,
)
from shared.cli import UserError, check_finite, run_main  # noqa: E402
from shared.config import parse_config  # noqa: E402
from shared.metrics import MetricsLogger  # noqa: E402
from shared.runrecord import write_run_record  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parent
DATASET = "tinyshakespeare"
MAX_WEIGHTS_BYTES = 10 * 1024 * 1024
NOT_SETTINGS = ("resume", "progress", "threads", "save_weights")  # may change when resuming


def check(cfg):
    choices = {
        "impl": ("numpy", "torch"),
        "cell": ("lstm", "rnn"),
        "schedule": ("cosine", "constant"),
        "precision": ("fp32", "bf16"),
    }
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise UserError(f"--{name}={getattr(cfg, name)}: choose one of {', '.join(allowed)}")
    positive = (
        "hidden",
        "layers",
        "batch_size",
        "seq_len",
        "eval_interval",
        "eval_batch",
        "eval_seq",
        "threads",
    )
    for name in positive:
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name}={getattr(cfg, name)}: must be >= 1")
    for name in ("embed", "warmup_steps", "max_steps", "eval_chars", "train_chars"):
        if getattr(cfg, name) < 0:
            raise UserError(f"--{name}={getattr(cfg, name)}: must be >= 0")
    if not 0.0 <= cfg.dropout < 1.0:
        raise UserError(f"--dropout={cfg.dropout}: must be in [0, 1)")
    if cfg.lr <= 0 or cfg.min_lr < 0 or cfg.grad_clip < 0 or cfg.weight_decay < 0 or cfg.max_minutes < 0:
        raise UserError("need --lr > 0 and --min_lr, --grad_clip, --weight_decay, --max_minutes >= 0")
    if not cfg.max_steps and not cfg.max_minutes:
        raise UserError("no training budget: set --max_steps=N and/or --max_minutes=M")
    if cfg.impl == "numpy" and cfg.device not in ("cpu", "auto"):
        raise UserError(f"--device={cfg.device}: the NumPy implementation runs on the CPU only")
    if cfg.impl == "numpy" and cfg.precision != "fp32":
        raise UserError(f"--precision={cfg.precision}: the NumPy implementation computes in fp32 only")
    if not cfg.run:
        cfg = dataclasses.replace(cfg, run=f"{cfg.impl}-{model_name(cfg)}")
    return cfg


def model_name(cfg):
    """'lstm-2x384', 'rnn-1x256' (plus '-emb64' with a learned embedding)."""
    return f"{cfg.cell}-{cfg.layers}x{cfg.hidden}" + (f"-emb{cfg.embed}" if cfg.embed else "")


# ---- data


@functools.cache
def encoded_text():
    """(vocabulary string sorted(set(text)), int64 ids of the whole text, read-only)."""
    from shared.data import load_shakespeare

    text = load_shakespeare()
    chars = sorted(set(text))
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
    table[[ord(c) for c in chars]] = np.arange(len(chars))
    ids = table[codes]
    ids.flags.writeable = False
    return "".join(chars), ids


def prepare_data(cfg=None):
    """{"vocab": str, "train": ids[:90%], "val": ids[90%:]} (nanoGPT's split: n_train = int(0.9 n))."""
    vocab, ids = encoded_text()
    split = int(0.9 * len(ids))
    train, val = ids[:split], ids[split:]
    if cfg is not None and cfg.train_chars:
        train = train[: cfg.train_chars]
    return {"vocab": vocab, "train": train, "val": val}


def encode(text, vocab):
    """Characters -> int64 ids; a character outside the vocabulary is a UserError naming it."""
    lookup = {c: i for i, c in enumerate(vocab)}
    missing = sorted({c for c in text if c not in lookup})
    if missing:
        raise UserError(
            f"{''.join(missing)!r} not in the model's {len(vocab)}-character vocabulary "
            f"(letters, space, newline and {''.join(c for c in vocab if not c.isalpha() and c.strip())!r})"
        )
    return np.array([lookup[c] for c in text], dtype=np.int64)


def train_layout(ids, batch, offset=0):
    """x, y (batch, S): ids[offset:] cut into `batch` contiguous stripes; y is x shifted by one character.
    Row b is the stream ids[offset + b S : offset + (b + 1) S] (the tail that does not fill a row is dropped)."""
    S = (len(ids) - 1 - offset) // batch
    x = ids[offset : offset + batch * S].reshape(batch, S)
    y = ids[offset + 1 : offset + 1 + batch * S].reshape(batch, S)
    return x, y


def eval_layout(ids, batch):
    """Every one of the n = len(ids) - 1 predictions of a text, as `batch` contiguous streams of length
    S = ceil(n / batch): x, y (batch, S) with target -1 (ignored) on the padding after the last prediction."""
    n = len(ids) - 1
    S = -(-n // batch)
    x = np.zeros(batch * S, dtype=np.int64)
    y = np.full(batch * S, -1, dtype=np.int64)
    x[:n], y[:n] = ids[:-1], ids[1:]
    return x.reshape(batch, S), y.reshape(batch, S)


def stream_loss(impl, ids, batch, seq):
    """Mean next-character cross-entropy (nats/char) over all of `ids`, read as `batch` streams in chunks of
    `seq` with carried state (see eval_layout). The training state of `impl` is left as it was."""
    x, y = eval_layout(ids, batch)
    total, count = 0.0, int((y >= 0).sum())
    impl.eval_begin(batch)
    try:
        for a in range(0, x.shape[1], seq):
            total += impl.eval_chunk(x[:, a : a + seq], y[:, a : a + seq])
    finally:
        impl.eval_end()
    return total / count


def masked_nll_sum(logits, y):
    """Sum of -log softmax(logits)[y] over the entries with y >= 0, in float64. logits (B, T, V), y (B, T)."""
    mask = y >= 0
    z = logits[mask].astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    return float(np.sum(lse - z[np.arange(len(z)), y[mask]]))


# ---- the two implementations behind the loop


class NumpyLM:
    """scratch.CharLM + shared.optim.Adam + clip_grad_norm."""

    suffix = ".npz"
    device = "cpu"

    def __init__(self, cfg, vocab_size):
        from char_rnn.scratch import CharLM

        self.model = CharLM(
            vocab_size,
            cfg.hidden,
            cfg.cell,
            cfg.layers,
            cfg.embed or None,
            dropout=cfg.dropout,
            rng=np.random.default_rng(cfg.seed),
            dtype=np.float32,
        )
        self.opt = optim.Adam(self.model.layers, cfg.lr, weight_decay=cfg.weight_decay)
        self.clip = cfg.grad_clip

    def num_params(self):
        return self.model.num_params()

    def reset_state(self, batch):
        self.model.reset_state(batch)

    def train_step(self, x, y, lr):
        """One step on chunk x, y (B, T) from the carried state -> (loss, gradient norm before clipping)."""
        self.opt.lr = lr
        loss = self.model.loss_and_backward(x, y)
        norm = (
            optim.clip_grad_norm(self.model.layers, self.clip) if self.clip else _numpy_grad_norm(self.model)
        )
        self.opt.step()
        return float(loss), norm

    def eval_begin(self, batch):
        self._saved = self.model.state
        self.model.reset_state(batch)

    def eval_chunk(self, x, y):
        return masked_nll_sum(self.model.forward(x, training=False), y)

    def eval_end(self):
        self.model.state = self._saved

    def weights(self):
        return self.model.state_dict()

    def save_weights(self, path, meta):
        save_npz(path, {**self.weights(), "meta": json.dumps(meta)})

    def save(self, path, meta, data_rng):
        state = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        state |= {f"opt/{k}": v for k, v in self.opt.state_dict().items()}
        for k, layer_state in enumerate(self.model.state or []):
            for j, s in enumerate(layer_state):
                state[f"state/{k}/{j}"] = s
        state |= {"meta": json.dumps(meta), "rng": rng_state([data_rng, self.model.rng])}
        save_npz(path, state)

    def load(self, path, data_rng):
        state = load_npz(path)
        part = lambda prefix: {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}  # noqa: E731
        self.model.load_state_dict(part("model/"))
        self.opt.load_state_dict(part("opt/"))
        carried = part("state/")
        n = 2 if self.model.cell == "lstm" else 1
        self.model.state = [
            tuple(np.array(carried[f"{k}/{j}"]) for j in range(n)) for k in range(len(self.model.cells))
        ]
        set_rng_state(state["rng"], [data_rng, self.model.rng])
        return json.loads(str(state["meta"]))


def _numpy_grad_norm(model):
    return math.sqrt(sum(float(np.sum(g * g)) for layer in model.layers for g in layer.grads.values()))


class TorchLM:
    """char_rnn.model.CharRNN + torch.optim.Adam + clip_grad_norm_, started from the same initial weights as the
    NumPy model of the same seed."""

    suffix = ".pt"

    def __init__(self, cfg, vocab_size):
        import torch

        from char_rnn.model import detach, from_scratch
        from char_rnn.scratch import CharLM
        from shared.seeding import pick_device

        self.torch, self.detach = torch, detach
        self.device = pick_device(cfg.device)
        torch.manual_seed(cfg.seed)
        init = CharLM(
            vocab_size, cfg.hidden, cfg.cell, cfg.layers, cfg.embed or None, cfg.dropout,
            rng=np.random.default_rng(cfg.seed), dtype=np.float32,
        )  # fmt: skip
        self.model = from_scratch(init).to(self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.clip = cfg.grad_clip
        self.state = None
        # bf16 autocast runs the LSTM's matrix products in bfloat16 (about 1.75x faster per step on this AVX-512
        # CPU); the weights, Adam's moments and the carried state stay fp32.
        self.autocast = functools.partial(
            torch.autocast, self.device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"
        )

    def num_params(self):
        return self.model.num_params()

    def reset_state(self, batch):
        self.state = self.model.init_state(batch, self.device)

    def _tensor(self, a):
        return self.torch.from_numpy(np.array(a, dtype=np.int64)).to(self.device)  # a writable copy

    def train_step(self, x, y, lr):
        torch = self.torch
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.model.train()
        with self.autocast():
            loss, state = self.model.loss(self._tensor(x), self._tensor(y), self.detach(self.state))
        self.state = self.detach(state)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip if self.clip else float("inf"))
        self.opt.step()
        return loss.item(), float(norm)

    def eval_begin(self, batch):
        self._saved = self.state
        self.state = self.model.init_state(batch, self.device)
        self.model.eval()

    def eval_chunk(self, x, y):
        torch = self.torch
        with torch.no_grad():
            logits, self.state = self.model(self._tensor(x), self.state)
            logits = logits.double().reshape(-1, logits.shape[-1])
            return torch.nn.functional.cross_entropy(
                logits, self._tensor(y).reshape(-1), ignore_index=-1, reduction="sum"
            ).item()

    def eval_end(self):
        self.state = self._saved
        self.model.train()

    def weights(self):
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def save_weights(self, path, meta):
        save_torch(path, {"model": self.weights(), "meta": json.dumps(meta)})

    def save(self, path, meta, data_rng):
        state = self.state if isinstance(self.state, tuple) else (self.state,)
        save_torch(
            path,
            {
                "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(),
                "state": [s.detach().cpu() for s in state],
                "meta": json.dumps(meta),
                "rng": rng_state([data_rng]),
            },
        )

    def load(self, path, data_rng):
        state = load_torch(path, map_location=self.device)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        carried = [s.to(self.device) for s in state["state"]]
        self.state = tuple(carried) if self.model.cell == "lstm" else carried[0]
        set_rng_state(state["rng"], [data_rng])
        return json.loads(state["meta"])


def build(cfg, vocab_size):
    return NumpyLM(cfg, vocab_size) if cfg.impl == "numpy" else TorchLM(cfg, vocab_size)


# ---- schedule


def progress(cfg, step, train_time):
    """Fraction of the budget used after warm-up: the larger of the step and time fractions, at most 1."""
    fractions = []
    if cfg.max_steps:
        fractions.append((step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    if cfg.max_minutes:
        fractions.append(train_time / (60.0 * cfg.max_minutes))
    return min(1.0, max(0.0, *fractions))


def learning_rate(cfg, step, train_time):
    """Linear warm-up to cfg.lr over warmup_steps, then a cosine to min_lr over the rest of the budget."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    return optim.cosine_lr(cfg.lr, progress(cfg, step, train_time), 1.0, warmup=0, min_lr=cfg.min_lr)


def budget_spent(cfg, step, train_time):
    return bool(
        (cfg.max_steps and step >= cfg.max_steps)
        or (cfg.max_minutes and train_time >= 60.0 * cfg.max_minutes)
    )


# ---- paths and saved files


def folders(cfg):
    """(checkpoints folder, results folder or None for the default, TensorBoard folder or None)."""
    if cfg.out_dir:
        out = Path(cfg.out_dir)
        return out / "checkpoints", out / "results", out / "runs" / cfg.run
    return PROJECT_DIR / "checkpoints", None, None


def weights_meta(cfg, vocab, impl):
    """What sample.py and evaluate.py need beside the weights: vocabulary and model settings."""
    return {
        "impl": cfg.impl,
        "run": cfg.run,
        "model": model_name(cfg),
        "vocab": vocab,
        "config": {
            "vocab_size": len(vocab),
            "hidden_size": cfg.hidden,
            "cell": cfg.cell,
            "num_layers": cfg.layers,
            "embed_dim": cfg.embed or None,
            "dropout": cfg.dropout,
        },
        "params": impl.num_params(),
        "eval_batch": cfg.eval_batch,
        "eval_seq": cfg.eval_seq,
    }


def weights_bytes(impl):
    if isinstance(impl, NumpyLM):
        return sum(v.nbytes for v in impl.weights().values())
    return sum(v.numel() * v.element_size() for v in impl.weights().values())


# ---- the loop


def train(cfg, stop_at=None):
    """Train per cfg; returns (impl, run record path). `stop_at`: leave after the checkpoint of that step, as if
    interrupted (tests of resuming); returns (impl, None) then."""
    cfg = check(cfg)
    if cfg.impl == "torch" or "torch" in sys.modules:
        import torch

        torch.set_num_threads(cfg.threads)
    data = prepare_data(cfg)
    vocab, train_ids, val_ids = data["vocab"], data["train"], data["val"]
    B, T = cfg.batch_size, cfg.seq_len
    if (len(train_ids) - 1 - T) // B < T:
        raise UserError(
            f"--train_chars={cfg.train_chars} is too short for {B} streams of {T}-character chunks"
        )
    impl = build(cfg, len(vocab))
    if cfg.save_weights and weights_bytes(impl) >= MAX_WEIGHTS_BYTES:
        raise UserError(
            f"--save_weights: {impl.num_params():,} float32 parameters make a {weights_bytes(impl) / 2**20:.1f} MB "
            "file, over the 10 MB limit for committed weights: use a smaller --hidden or --layers"
        )
    data_rng = np.random.default_rng([cfg.seed, 1])
    ckpt_dir, results_dir, log_dir = folders(cfg)
    resume_path = ckpt_dir / "resume" / f"{cfg.run}{impl.suffix}"
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in NOT_SETTINGS}
    config_json = json.dumps(settings, sort_keys=True)
    st = {
        "step": 0,
        "epoch": 0,
        "offset": 0,
        "pos": 0,
        "train_time": 0.0,
        "wall": 0.0,
        "loss_sum": 0.0,
        "loss_count": 0,
        "history": {},
        "config": config_json,
    }
    if cfg.resume and resume_path.exists():
        st = impl.load(resume_path, data_rng)
        check_resumable(resume_path, st["config"], config_json)
        print(f"resuming {cfg.run} from step {st['step']}")
    else:
        impl.reset_state(B)

    x_train, y_train = train_layout(train_ids, B, st["offset"])
    chunks = x_train.shape[1] // T
    eval_ids = val_ids[: cfg.eval_chars + 1] if cfg.eval_chars else val_ids
    history = st["history"]
    logger = MetricsLogger("char_rnn", cfg.run, log_dir=log_dir, purge_step=st["step"] or None)
    wall_start = time.perf_counter() - st["wall"]
    bar = tqdm(
        total=cfg.max_steps or None,
        initial=st["step"],
        desc=cfg.run,
        disable=not cfg.progress,
        mininterval=2.0,
        leave=False,
    )
    while not budget_spent(cfg, st["step"], st["train_time"]):
        if st["pos"] + 1 > chunks:  # end of an epoch: re-cut the stripes at a new offset, forget the state
            st.update(epoch=st["epoch"] + 1, offset=int(data_rng.integers(0, T)), pos=0)
            x_train, y_train = train_layout(train_ids, B, st["offset"])
            chunks = x_train.shape[1] // T
            impl.reset_state(B)
        step, a = st["step"], st["pos"] * T
        lr = learning_rate(cfg, step, st["train_time"])
        t0 = time.perf_counter()
        loss, grad_norm = impl.train_step(x_train[:, a : a + T], y_train[:, a : a + T], lr)
        st["train_time"] += time.perf_counter() - t0
        check_finite(loss, "training loss", step)
        st.update(step=step + 1, pos=st["pos"] + 1)
        st["loss_sum"] += loss
        st["loss_count"] += 1
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.1e}")
            logger.scalars({"loss": loss, "lr": lr, "grad_norm": grad_norm}, step, prefix="train/")

        done = budget_spent(cfg, st["step"], st["train_time"])
        if st["step"] % cfg.eval_interval == 0 or done:
            val_loss = check_finite(
                stream_loss(impl, eval_ids, cfg.eval_batch, cfg.eval_seq), "val loss", step
            )
            row = {
                "step": st["step"],
                "epoch": st["epoch"] + st["pos"] / chunks,
                "lr": lr,
                "train_loss": st["loss_sum"] / st["loss_count"],
                "val_loss": val_loss,
                "train_time_s": st["train_time"],
                "time_s": time.perf_counter() - wall_start,
            }
            for key, value in row.items():
                history.setdefault(key, []).append(value)
            logger.scalars(
                {"val_loss": val_loss, "train_loss": row["train_loss"]}, st["step"], prefix="eval/"
            )
            logger.scalar("eval/val_loss_vs_seconds", val_loss, int(st["train_time"]))
            tqdm.write(
                f"{cfg.run} step {st['step']:6d}: train loss {row['train_loss']:.4f}  val loss {val_loss:.4f}  "
                f"lr {lr:.2e}  ({st['train_time']:.0f} s training, {row['time_s']:.0f} s wall)"
            )
            st.update(loss_sum=0.0, loss_count=0, history=history, wall=time.perf_counter() - wall_start)
            impl.save(resume_path, dict(st), data_rng)
            if stop_at is not None and st["step"] >= stop_at:
                bar.close()
                logger.close()
                return impl, None
    bar.close()

    full = not cfg.eval_chars and history.get("step", [None])[-1] == st["step"]
    val_loss = history["val_loss"][-1] if full else stream_loss(impl, val_ids, cfg.eval_batch, cfg.eval_seq)
    wall = time.perf_counter() - wall_start
    logger.close()
    metrics = {
        "val_loss": val_loss,
        "val_bpc": val_loss / math.log(2),
        "train_loss": history["train_loss"][-1] if history else float("nan"),
        "steps": st["step"],
        "epochs": round(st["epoch"] + st["pos"] / chunks, 3),
        "train_time_s": round(st["train_time"], 1),
        "ms_per_step": round(1000 * st["train_time"] / max(1, st["step"]), 1),
    }
    if cfg.save_weights:
        meta = weights_meta(cfg, vocab, impl) | {"val_loss": val_loss}
        weights_path = ckpt_dir / f"{cfg.run}{impl.suffix}"
        impl.save_weights(weights_path, meta)
        size = weights_path.stat().st_size
        if size >= MAX_WEIGHTS_BYTES:
            print(
                f"warning: {weights_path} is {size / 2**20:.1f} MB, over the 10 MB limit for committed weights"
            )
    path = write_run_record(
        project="char_rnn",
        run=cfg.run,
        impl=cfg.impl,
        model=model_name(cfg),
        dataset=DATASET,
        metrics=metrics,
        history=history,
        params=impl.num_params(),
        wall_time_s=wall,
        config=cfg,
        seed=cfg.seed,
        group=cfg.group,
        device=str(impl.device),
        notes="losses in nats/char; val_loss streams the whole 10% validation split with carried state; "
        "train_time_s counts training steps only (the time budget's clock), wall_time_s includes evaluation",
        results_dir=results_dir,
    )
    shown = path.relative_to(PROJECT_DIR.parent) if path.is_relative_to(PROJECT_DIR.parent) else path
    print(
        f"{cfg.run}: val loss {val_loss:.4f} nats/char after {st['step']} steps, {st['train_time']:.0f} s training "
        f"({wall:.0f} s wall) -> {shown}"
    )
    return impl, path


def main(argv):
    cfg = parse_config(Config(), argv)
    train(cfg)


if __name__ == "__main__":
    run_main(main)
