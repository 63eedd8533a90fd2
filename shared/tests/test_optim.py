"""shared.optim against torch.optim: same problem, same gradients, float64 -> same parameters after many steps;
schedules against torch.optim.lr_scheduler; state_dict round trips that resume bit for bit."""

import math

import numpy as np
import pytest
import torch

from shared.optim import SGD, Adam, clip_grad_norm, cosine_lr, exponential_lr, step_lr


class Holder:
    """A minimal 'layer': params and grads dicts."""

    def __init__(self, **params):
        self.params = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
        self.grads = {}


def make_problem(seed=0):
    """Two holders (W (5, 3), b (3,)) and (V (3, 2),), and a fixed batch for a least-squares-plus-tanh loss."""
    rng = np.random.default_rng(seed)
    layers = [
        Holder(W=rng.standard_normal((5, 3)), b=rng.standard_normal(3)),
        Holder(V=rng.standard_normal((3, 2))),
    ]
    x = rng.standard_normal((8, 5))
    t = rng.standard_normal((8, 2))
    return layers, x, t


def torch_loss(tensors, x, t):
    w, b, v = tensors
    return ((torch.tanh(x @ w + b) @ v - t) ** 2).mean()


def run_pair(make_np_opt, make_torch_opt, steps=25, lr_at=None, seed=0, v_first_grad_at=0):
    """Run the NumPy optimizer and torch's side by side; gradients come from torch autograd on torch's current
    params and are handed to NumPy for NumPy's current params. Before step `v_first_grad_at` (counted from 0)
    V has no gradient: absent from its layer's grads, None in torch. Returns (numpy params, torch params)."""
    layers, x, t = make_problem(seed)
    slots = [(layers[0], "W"), (layers[0], "b"), (layers[1], "V")]
    tensors = [torch.tensor(layer.params[k], requires_grad=True) for layer, k in slots]
    xt, tt = torch.tensor(x), torch.tensor(t)
    opt_np, opt_t = make_np_opt(layers), make_torch_opt(tensors)
    for step in range(steps):
        if lr_at is not None:
            opt_np.lr = lr_at(step)
            for group in opt_t.param_groups:
                group["lr"] = lr_at(step)
        # NumPy side: gradient at NumPy's own parameters (computed by autograd on a copy)
        copies = [torch.tensor(layer.params[k], requires_grad=True) for layer, k in slots]
        torch_loss(copies, xt, tt).backward()
        for (layer, k), c in zip(slots, copies):
            layer.grads[k] = c.grad.numpy().copy()
        if step < v_first_grad_at:
            del layers[1].grads["V"]
        opt_np.step()
        # torch side
        opt_t.zero_grad()
        torch_loss(tensors, xt, tt).backward()
        if step < v_first_grad_at:
            tensors[2].grad = None
        opt_t.step()
    return [layer.params[k] for layer, k in slots], [p.detach().numpy() for p in tensors]


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.8, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05),
    dict(lr=0.1, momentum=0.9, dampening=0.5),
]


@pytest.mark.parametrize("kw", SGD_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_sgd_matches_torch(kw):
    ours, theirs = run_pair(lambda layers: SGD(layers, **kw), lambda ts: torch.optim.SGD(ts, **kw))
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


ADAM_CASES = [
    (dict(lr=0.01), False),
    (dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6), False),
    (dict(lr=0.01, weight_decay=0.1), False),
    (dict(lr=0.01, weight_decay=0.1), True),
]


@pytest.mark.parametrize("kw,decoupled", ADAM_CASES, ids=["plain", "betas-eps", "l2", "adamw"])
def test_adam_matches_torch(kw, decoupled):
    torch_cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    ours, theirs = run_pair(
        lambda layers: Adam(layers, decoupled=decoupled, **kw), lambda ts: torch_cls(ts, **kw), steps=40
    )
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_adam_changing_lr_matches_torch():
    lr_at = lambda s: cosine_lr(0.05, s, total=30, warmup=5)  # noqa: E731
    ours, theirs = run_pair(lambda ls: Adam(ls, lr=0.05), lambda ts: torch.optim.Adam(ts, lr=0.05), 30, lr_at)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
def test_adam_parameter_with_a_late_first_gradient_matches_torch(decoupled):
    """V's first gradient arrives at the third step: torch counts steps per parameter, so V's bias correction
    starts at t = 1 there (a count shared by all parameters would start it at t = 3), and V is neither moved
    nor decayed before."""
    torch_cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    kw = dict(lr=0.01, weight_decay=0.1)
    opts = {}

    def ours(layers):
        opts["numpy"] = Adam(layers, decoupled=decoupled, **kw)
        return opts["numpy"]

    def theirs(tensors):
        opts["torch"] = torch_cls(tensors, **kw)
        return opts["torch"]

    v_start = make_problem()[0][1].params["V"].copy()
    mine, _ = run_pair(ours, theirs, steps=2, v_first_grad_at=2)
    np.testing.assert_array_equal(mine[2], v_start)  # two steps without a gradient: V untouched
    mine, ref = run_pair(ours, theirs, steps=20, v_first_grad_at=2)
    for a, b in zip(mine, ref):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    torch_steps = [int(opts["torch"].state[p]["step"]) for p in opts["torch"].param_groups[0]["params"]]
    assert opts["numpy"].param_steps == torch_steps == [20, 20, 18]


def test_first_sgd_step_is_plain_gradient_step_and_optimizer_actually_moves():
    layers, _, _ = make_problem()
    before = layers[0].params["W"].copy()
    ref = layers[0].params["W"]
    g = np.ones_like(before)
    layers[0].grads = {"W": g, "b": np.zeros(3)}
    layers[1].grads = {"V": np.zeros((3, 2))}
    SGD(layers, lr=0.5, momentum=0.9).step()  # first step: buffer = g, update = lr * g
    assert layers[0].params["W"] is ref  # updated in place
    np.testing.assert_allclose(layers[0].params["W"], before - 0.5)


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    layer = Holder(W=rng.standard_normal((4, 3)))
    layer.params["W"] = layer.params["W"].astype(np.float32)
    layer.grads["W"] = rng.standard_normal((4, 3)).astype(np.float32)
    for opt in (
        Adam([layer], lr=1e-3, weight_decay=0.1),
        SGD([layer], lr=0.1, momentum=0.9, weight_decay=0.1),
    ):
        opt.step()
        assert layer.params["W"].dtype == np.float32
        buffers = [v for k, v in opt.state_dict().items() if k.split(".")[0] in opt.buffer_names]
        assert buffers and all(v.dtype == np.float32 for v in buffers)


@pytest.mark.parametrize("which", ["sgd", "adam"])
def test_state_dict_round_trip_resumes_identically(which, tmp_path):
    def make(layers):
        if which == "sgd":
            return SGD(layers, lr=0.05, momentum=0.9, nesterov=True)
        return Adam(layers, lr=0.02)

    def grads_for(layers, step):
        rng = np.random.default_rng(100 + step)
        for layer in layers:
            layer.grads = {k: rng.standard_normal(v.shape) for k, v in layer.params.items()}

    # uninterrupted: 10 steps
    ref_layers, _, _ = make_problem()
    ref = make(ref_layers)
    for s in range(10):
        grads_for(ref_layers, s)
        ref.step()
    # interrupted after 4 steps: save params and optimizer state through an .npz, rebuild, resume
    layers, _, _ = make_problem()
    opt = make(layers)
    for s in range(4):
        grads_for(layers, s)
        opt.step()
    np.savez(tmp_path / "ckpt.npz", **opt.state_dict())
    params = [{k: v.copy() for k, v in layer.params.items()} for layer in layers]
    new_layers, _, _ = make_problem(seed=1)  # different starting values, overwritten below
    for layer, p in zip(new_layers, params):
        for k in layer.params:
            layer.params[k][...] = p[k]
    new_opt = make(new_layers)
    with np.load(tmp_path / "ckpt.npz") as f:
        new_opt.load_state_dict(dict(f))
    assert new_opt.step_count == 4
    for s in range(4, 10):
        grads_for(new_layers, s)
        new_opt.step()
    for a, b in zip(ref_layers, new_layers):
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])


def _random_grads(layers, step, v_first_grad_at=0):
    rng = np.random.default_rng(100 + step)
    for layer in layers:
        layer.grads = {k: rng.standard_normal(v.shape) for k, v in layer.params.items()}
    if step < v_first_grad_at:
        del layers[1].grads["V"]


def _resume_matches_uninterrupted(state_of, v_first_grad_at=0, stop=4, steps=10):
    """Adam for `steps` steps straight, and again stopped after `stop` steps, its state_dict passed through
    `state_of`, loaded into a new optimizer, and resumed: the parameters must come out identical."""
    ref_layers, _, _ = make_problem()
    ref = Adam(ref_layers, lr=0.02)
    for s in range(steps):
        _random_grads(ref_layers, s, v_first_grad_at)
        ref.step()
    layers, _, _ = make_problem()
    opt = Adam(layers, lr=0.02)
    for s in range(stop):
        _random_grads(layers, s, v_first_grad_at)
        opt.step()
    resumed = Adam(layers, lr=0.02)
    resumed.load_state_dict(state_of(opt.state_dict()))
    assert resumed.param_steps == opt.param_steps
    for s in range(stop, steps):
        _random_grads(layers, s, v_first_grad_at)
        resumed.step()
    for a, b in zip(ref_layers, layers):
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])


def test_adam_state_dict_keeps_each_parameters_step_count():
    # V's first gradient at the third step; stopped after one step (V has no state yet) and after four
    for stop in (1, 4):
        _resume_matches_uninterrupted(dict, v_first_grad_at=2, stop=stop)
    layers, _, _ = make_problem()
    opt = Adam(layers, lr=0.02)
    for s in range(4):
        _random_grads(layers, s, v_first_grad_at=2)
        opt.step()
    sd = opt.state_dict()
    assert int(sd["step"]) == 4 and [int(sd[f"step.{i}"]) for i in range(3)] == [4, 4, 2]


def test_adam_loads_an_old_state_dict_with_one_step_count():
    """Checkpoints written before the per-parameter counts have only 'step': every parameter that has moments
    takes that count, and training resumes as before."""

    def without_param_steps(sd):
        return {k: v for k, v in sd.items() if not k.startswith("step.")}

    _resume_matches_uninterrupted(without_param_steps)


def test_state_dict_contents():
    layers, _, _ = make_problem()
    opt = Adam(layers, lr=0.01)
    for layer in layers:
        layer.grads = {k: np.ones_like(v) for k, v in layer.params.items()}
    opt.step()
    opt.step()
    sd = opt.state_dict()
    assert int(sd["step"]) == 2 and float(sd["lr"]) == 0.01
    assert sorted(k for k in sd if k.startswith("exp_avg.")) == ["exp_avg.0", "exp_avg.1", "exp_avg.2"]
    assert all(isinstance(v, np.ndarray) for v in sd.values())


def test_clip_grad_norm_matches_torch():
    rng = np.random.default_rng(3)
    layers = [Holder(W=np.zeros((4, 3)), b=np.zeros(3)), Holder(V=np.zeros((3, 2)))]
    grads = [rng.standard_normal((4, 3)), rng.standard_normal(3), rng.standard_normal((3, 2))]
    layers[0].grads = {"W": grads[0].copy(), "b": grads[1].copy()}
    layers[1].grads = {"V": grads[2].copy()}
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads):
        t.grad = torch.tensor(g)
    total_t = torch.nn.utils.clip_grad_norm_(tensors, 1.0)
    total = clip_grad_norm(layers, 1.0)
    assert total == pytest.approx(float(total_t), rel=1e-12)
    assert total > 1.0  # the clipping did happen
    ours = [layers[0].grads["W"], layers[0].grads["b"], layers[1].grads["V"]]
    for a, t in zip(ours, tensors):
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=1e-12)
    # below the limit nothing changes
    before = layers[1].grads["V"].copy()
    clip_grad_norm(layers, 100.0)
    np.testing.assert_array_equal(layers[1].grads["V"], before)


def _torch_lrs(make_sched, base_lr, n):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base_lr)
    sched = make_sched(opt)
    lrs = []
    for _ in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def test_step_lr_matches_torch():
    theirs = _torch_lrs(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 0.1, 20)
    np.testing.assert_allclose([step_lr(0.1, t, 3, 0.5) for t in range(20)], theirs, rtol=1e-12)


def test_exponential_lr_matches_torch():
    theirs = _torch_lrs(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9), 0.1, 20)
    np.testing.assert_allclose([exponential_lr(0.1, t, 0.9) for t in range(20)], theirs, rtol=1e-12)


@pytest.mark.parametrize("min_lr", [0.0, 0.01])
def test_cosine_lr_matches_torch(min_lr):
    theirs = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=min_lr), 0.1, 21
    )
    np.testing.assert_allclose([cosine_lr(0.1, t, 20, min_lr=min_lr) for t in range(21)], theirs, rtol=1e-9)
    assert cosine_lr(0.1, 25, 20, min_lr=min_lr) == min_lr  # stays at the floor after the end


def test_cosine_warmup_matches_torch_sequential():
    warm, total = 5, 30

    def make(o):
        lin = torch.optim.lr_scheduler.LinearLR(
            o, start_factor=1 / warm, end_factor=1.0, total_iters=warm - 1
        )
        cos = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total - warm, eta_min=0.001)
        return torch.optim.lr_scheduler.SequentialLR(o, [lin, cos], milestones=[warm])

    theirs = _torch_lrs(make, 0.1, total + 1)
    ours = [cosine_lr(0.1, t, total, warmup=warm, min_lr=0.001) for t in range(total + 1)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)
    # and the hand formula
    assert ours[0] == pytest.approx(0.1 / warm) and ours[warm - 1] == pytest.approx(0.1)
    assert ours[warm] == pytest.approx(0.1)
    mid = warm + (total - warm) // 2
    expected = 0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * (mid - warm) / (total - warm))) / 2
    assert ours[mid] == pytest.approx(expected)


def test_optimizer_rejects_no_params():
    with pytest.raises(ValueError):
        SGD([object()], lr=0.1)
