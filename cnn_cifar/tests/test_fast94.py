"""fast94: its network (model.FastNet) shapes and initialisation, Muon, its batch augmentation (augment.py's
torch half), TTA, learning on real CIFAR-10, exact resume from an epoch checkpoint, weights file size, the
committed weights still loading, and one-line errors for bad flags."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnn_cifar import fast94
from cnn_cifar.augment import EpochSampler, crop_flip, normalize_nchw, reflect_pad, to_nchw
from cnn_cifar.fast94 import Config, check, orthogonalize, predict
from cnn_cifar.model import Block, FastNet, IdentityInitConv, count_params
from shared.cli import UserError

SMALL = (8, 16, 16)


@pytest.fixture(scope="module")
def cifar_slice():
    """A seeded mixed slice of real CIFAR-10: 600 training and 300 test images, uint8 (N, 3, 32, 32)."""
    from shared.data import load_cifar10

    try:
        (x, y), (xt, yt) = load_cifar10()
    except UserError as e:
        pytest.fail(f"CIFAR-10 could not be loaded ({e}); set REPRO_DATA_MIRROR or run make data")
    rng = np.random.default_rng(0)
    tr, te = rng.permutation(len(x))[:600], rng.permutation(len(xt))[:300]
    as_t = lambda a: torch.from_numpy(np.array(a))  # noqa: E731
    return to_nchw(x[tr]), as_t(y[tr]), to_nchw(xt[te]), as_t(yt[te])


def test_forward_shapes_and_parameter_count():
    torch.manual_seed(0)
    model = FastNet(SMALL)
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    full = FastNet()
    assert 1.9e6 < count_params(full) < 2.1e6  # airbench94's 1.97M
    assert count_params(full) * 4 < 10e6  # a --save_weights file stays under 10 MB
    cl = fast94.build_model(check(Config(widths=SMALL)))
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert cl(x).shape == (2, 10)


def test_whitening_stem_whitens_patches():
    torch.manual_seed(0)
    model = FastNet(SMALL)
    mix = torch.randn(3, 3)
    images = torch.einsum("ij,njhw->nihw", mix, torch.randn(64, 3, 8, 8))  # correlated channels
    model.init_whitening(images, eps=0.0)
    out = F.conv2d(images.double(), model.whiten.weight.double())[:, :12]  # the + half of the stem
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12)
    cov = flat.T @ flat / len(flat)
    torch.testing.assert_close(cov, torch.eye(12, dtype=torch.float64), atol=1e-3, rtol=0)
    torch.testing.assert_close(model.whiten.weight[12:], -model.whiten.weight[:12])


def test_square_convs_start_as_identity():
    block = Block(8, 8, 0.6)
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block.conv2(x), x)
    wide = IdentityInitConv(4, 8)(x[:, :4])
    torch.testing.assert_close(wide[:, :4], x[:, :4])


@pytest.mark.parametrize("shape", [(16, 72), (72, 16)])
def test_orthogonalize_flattens_singular_values(shape):
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * 5
    out = orthogonalize(g)
    assert out.shape == g.shape
    s = torch.linalg.svdvals(out)
    assert s.min() > 0.3 and s.max() < 1.5  # vs a spread of about 3x in g's
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    cos = F.cosine_similarity((u @ vh).flatten(), out.flatten(), dim=0)
    assert cos > 0.9  # close to the orthogonal factor U V^T


def test_crop_flip_identity_shift_and_mirror():
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    padded = reflect_pad(images, 2)
    centre = torch.full((3, 2), 2)
    none, all_ = torch.zeros(3, dtype=torch.bool), torch.ones(3, dtype=torch.bool)
    torch.testing.assert_close(crop_flip(padded, centre, none), images)
    torch.testing.assert_close(crop_flip(padded, centre, all_), images.flip(-1))
    shifted = crop_flip(padded, torch.tensor([[0, 4]] * 3), none)  # 2 rows up, 2 columns right
    torch.testing.assert_close(shifted[:, :, 2:, :30], images[:, :, :30, 2:])


def test_alternating_flip_complements_between_epochs():
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    sampler = EpochSampler(images, torch.arange(8), batch_size=8, translate=0, flip="alternate", seed=0)
    seen = []
    for epoch in (0, 1):
        (x, y) = next(sampler.epoch(epoch))
        ref = normalize_nchw(images[y])
        mirrored = torch.isclose(x, ref.flip(-1)).flatten(1).all(1) & ~torch.isclose(x, ref).flatten(1).all(1)
        seen.append(torch.zeros(8, dtype=torch.bool).index_put((y,), mirrored))  # by image, not batch slot
    assert 0 < seen[0].sum() < 8  # a random part mirrored in epoch 0 ...
    assert torch.equal(seen[1], ~seen[0])  # ... and exactly the others in epoch 1


def test_tta_shapes_and_mirror_average():
    torch.manual_seed(0)
    model = FastNet(SMALL).eval()
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    outs = {t: predict(model, images, tta=t, precision="fp32", channels_last=False) for t in (0, 1, 2)}
    assert all(o.shape == (5, 10) and o.dtype == torch.float32 for o in outs.values())
    x = normalize_nchw(images, channels_last=False)
    with torch.no_grad():
        expected = 0.5 * (model(x) + model(x.flip(-1)))
    torch.testing.assert_close(outs[1], expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(outs[2], outs[1])


def test_training_steps_lower_the_loss_on_real_cifar(cifar_slice):
    x_train, y_train, _, _ = cifar_slice
    torch.manual_seed(0)
    cfg = check(Config(widths=SMALL, batch_size=200, translate=0, flip="none"))
    model = fast94.build_model(cfg)
    model.init_whitening(normalize_nchw(x_train))
    sgd, muon = fast94.make_optimizers(model, cfg)
    x, y = normalize_nchw(x_train[:200]), y_train[:200]
    device = torch.device("cpu")
    losses = []
    for step in range(12):
        fast94.set_learning_rates(sgd, muon, step, 40, 40)
        losses.append(fast94.train_step(model, sgd, muon, x, y, cfg, device, True)[0])
    assert np.isfinite(losses).all()
    assert np.mean(losses[-3:]) < losses[0] - 0.1, losses


def _tiny(run, **kw):
    return Config(
        run=run, widths=SMALL, epochs=2, batch_size=100, tta=1, train_subset=300, progress=False, **kw
    )


def test_resume_from_epoch_checkpoint_is_exact(cifar_slice, tmp_path, monkeypatch):
    x_train, y_train, x_test, y_test = cifar_slice
    monkeypatch.setattr(fast94, "load_data", lambda cfg: (x_train[:300], y_train[:300], x_test, y_test))

    _, straight = fast94.train(_tiny("straight", save_weights=True), out_dir=tmp_path)

    real_checkpoint = fast94.Run.checkpoint

    def checkpoint_then_crash(*args):  # the first epoch's checkpoint is written, then the session dies
        real_checkpoint(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(fast94.Run, "checkpoint", checkpoint_then_crash)
    with pytest.raises(KeyboardInterrupt):
        fast94.train(_tiny("resumed", save_weights=True), out_dir=tmp_path)
    assert (tmp_path / "checkpoints" / "resume" / "resumed.pt").exists()
    monkeypatch.setattr(fast94.Run, "checkpoint", real_checkpoint)
    _, resumed = fast94.train(_tiny("resumed", save_weights=True), out_dir=tmp_path)

    import json

    a, b = json.loads(straight.read_text()), json.loads(resumed.read_text())
    assert a["metrics"]["test_acc"] == b["metrics"]["test_acc"]
    assert a["history"]["train_loss"] == b["history"]["train_loss"]
    assert a["group"] == "fast94" and a["impl"] == "torch" and 0 <= a["metrics"]["test_acc"] <= 1
    wa = torch.load(tmp_path / "checkpoints" / "straight.pt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "checkpoints" / "resumed.pt", weights_only=True)["model"]
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0, msg=key)
    reloaded = fast94.load_weights(tmp_path / "checkpoints" / "straight.pt")
    assert reloaded(normalize_nchw(x_test[:2])).shape == (2, 10)

    with pytest.raises(UserError, match="different settings"):
        fast94.train(_tiny("resumed", lr=0.1), out_dir=tmp_path)


def test_committed_weights_load_into_fastnet():
    """cnn_cifar/checkpoints/fast94.pt (the headline run's) loads strictly: FastNet's module names are those it
    was saved with."""
    from pathlib import Path

    path = Path(fast94.__file__).resolve().parent / "checkpoints" / "fast94.pt"
    model = fast94.load_weights(path)
    assert isinstance(model, FastNet) and count_params(model) == 1_972_792
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert predict(model, images, tta=0).shape == (2, 10)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--flip=sideways"], "--flip=sideways"),
        (["--tta=5"], "--tta=5"),
        (["--widths=64,256"], "--widths"),
        (["--epochs=0"], "--epochs"),
        (["--learning_rate=0.1"], "unknown flag --learning_rate"),
        (["--batch_size=big"], "expected a int"),
    ],
)
def test_bad_flags_are_one_line_user_errors(argv, message):
    with pytest.raises(UserError) as info:
        fast94.main(argv)
    assert message in str(info.value) and "\n" not in str(info.value)
