"""TensorBoard scalars for NumPy and PyTorch runs alike, under runs/<project>/<run>/."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class MetricsLogger:
    def __init__(self, project, run, log_dir=None, purge_step=None):
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir) if log_dir else ROOT / "runs" / project / run
        # purge_step drops events after a resumed checkpoint's step, so curves do not double back
        self.writer = SummaryWriter(str(self.log_dir), purge_step=purge_step)

    def scalar(self, tag, value, step):
        self.writer.add_scalar(tag, float(value), int(step))

    def scalars(self, values, step, prefix=""):
        for tag, value in values.items():
            self.scalar(prefix + tag, value, step)

    def close(self):
        self.writer.close()
