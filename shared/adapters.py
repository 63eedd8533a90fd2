"""What every model adapter has in common (shared/run.py describes the interface the training loops drive): the
network's weights, and what a resume checkpoint keeps of the network `self.net` and its optimizer `self.opt`.
A project's twin.py subclasses these and adds what differs: construction, train_step, logits.
"""


class NumpyAdapter:
    """A from-scratch network `self.net` (state_dict() / load_state_dict() of arrays) with a shared.optim
    optimizer `self.opt`."""

    device = "cpu"
    generators = ()  # NumPy Generators inside the model (dropout masks); checkpoints keep their states

    def weights(self):
        return self.net.state_dict()

    def set_weights(self, weights):
        self.net.load_state_dict(weights)

    def state_dict(self):
        return {"model": self.net.state_dict(), "optimizer": self.opt.state_dict()}

    def load_state_dict(self, state):
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])


class TorchAdapter:
    """A torch module `self.net` with a torch.optim optimizer `self.opt`, on `self.device`."""

    generators = ()  # torch's own generators are in every checkpoint already

    def num_params(self):
        return sum(p.numel() for p in self.net.parameters())

    def set_lr(self, lr):
        for group in self.opt.param_groups:
            group["lr"] = lr

    def weights(self):
        return {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}

    def set_weights(self, weights):
        self.net.load_state_dict(weights)

    def state_dict(self):
        return {"model": self.net.state_dict(), "optimizer": self.opt.state_dict()}

    def load_state_dict(self, state):
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
