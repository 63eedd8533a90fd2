"""Initialisation study (CE2.2): 10-layer tanh and ReLU MLPs under every initialisation scheme.

    python -m mlp_mnist.init_study

For each (activation, scheme) it measures, on one fixed batch of 1,000 training images, the standard deviation
of every hidden layer's activations and the norm of every weight gradient: at initialisation, then again after
a short training run (an ordinary mlp_mnist.train run with its own run record, group "init"). Everything goes
to mlp_mnist/results/init_stats.json, which mlp_mnist/figures.py plots. A run that diverges is recorded as such:
that is one of the findings.
"""

import dataclasses
import json

import numpy as np

from mlp_mnist.scratch import Linear, build_mlp
from mlp_mnist.train import PROJECT_DIR, Config, prepare_data, to_inputs, train
from shared.checkpoint import _atomic_write
from shared.cli import UserError, run_main
from shared.config import parse_config

SCHEMES = ("zero", "small", "large", "xavier", "he")
ACTIVATIONS = ("tanh", "relu")


@dataclasses.dataclass
class StudyConfig:
    depth: int = 10
    width: int = 256
    epochs: int = 2
    lr: float = 0.01
    seed: int = 0


def layer_statistics(net, x, y):
    """Per hidden layer: std of the activation outputs; per Linear layer: Frobenius norm of dL/dW."""
    stds = []
    h = np.asarray(x, dtype=np.float32)
    for layer in net.layers:
        h = layer.forward(h, training=False)
        if not layer.params:  # an activation layer: its output is a hidden representation
            stds.append(float(h.std()))
    loss, dlogits = net.loss_fn(h, y)
    net.backward(dlogits)
    grad_norms = [
        float(np.linalg.norm(layer.grads["W"])) for layer in net.layers if isinstance(layer, Linear)
    ]
    finite = bool(np.isfinite(loss))
    return {"activation_std": stds, "grad_norm": grad_norms, "loss": float(loss) if finite else None}


def main(argv):
    study = parse_config(StudyConfig(), argv)
    base = Config(
        hidden=(study.width,) * study.depth,
        epochs=study.epochs,
        optimizer="momentum",
        lr=study.lr,
        schedule="constant",
        group="init",
        seed=study.seed,
        progress=False,
        resume=False,
    )
    data = prepare_data(base)
    x_all, y_all = data["train"]
    idx = np.random.default_rng(study.seed).choice(len(x_all), 1000, replace=False)
    x, y = to_inputs(x_all[idx], base), y_all[idx]
    results = []
    for activation in ACTIVATIONS:
        for scheme in SCHEMES:
            cfg = dataclasses.replace(
                base, activation=activation, init=scheme, run=f"init-{activation}-{scheme}"
            )
            at_init = layer_statistics(
                build_mlp([784, *cfg.hidden, 10], activation=activation, init=scheme, seed=cfg.seed), x, y
            )
            entry = {"activation": activation, "scheme": scheme, "at_init": at_init}
            try:
                impl, record_path = train(cfg)
                entry["after_training"] = layer_statistics(impl.net, x, y)
                entry["test_acc"] = json.loads(record_path.read_text())["metrics"]["test_acc"]
            except UserError as e:  # divergence (NaN loss) is a result here, not a failure of the study
                entry["diverged"] = str(e)
                print(f"{cfg.run}: {e}")
            results.append(entry)
    out = PROJECT_DIR / "results" / "init_stats.json"
    text = json.dumps({"config": dataclasses.asdict(study), "results": results}, indent=1)
    _atomic_write(out, lambda f: f.write(text.encode()))
    print(f"wrote {out.relative_to(PROJECT_DIR.parent)}")


if __name__ == "__main__":
    run_main(main)
