import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tests use small arrays: one torch thread and one OpenBLAS thread avoid thread start-up and spin-wait
    costs, which on a busy machine make small matrix products many times slower."""
    from cnn_cifar.bench import blas_threads

    before_torch, before_blas = torch.get_num_threads(), blas_threads()
    torch.set_num_threads(1)
    if before_blas:
        blas_threads(1)
    yield
    torch.set_num_threads(before_torch)
    if before_blas:
        blas_threads(before_blas)


@pytest.fixture(scope="session")
def cifar10_train():
    """(x_train uint8 (50000, 32, 32, 3), y_train int64) of real CIFAR-10. Skipped only while shared.data does
    not exist; a missing dataset is a failure with the fix in the message."""
    try:
        from shared.data import load_cifar10
    except ImportError:
        pytest.skip("shared.data (the dataset loader) does not exist yet")
    from shared.cli import UserError

    try:
        (x, y), _ = load_cifar10()
    except UserError as e:
        pytest.fail(
            f"CIFAR-10 could not be loaded ({e}); set REPRO_DATA_MIRROR to the offline mirror or run make data"
        )
    return x, y
