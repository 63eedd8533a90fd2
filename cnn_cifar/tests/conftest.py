import pytest


@pytest.fixture(scope="session")
def cifar10_train():
    """(x_train uint8 (50000, 32, 32, 3), y_train int64) of real CIFAR-10. A missing dataset is a failure with the fix
    in the message."""
    from shared.cli import UserError
    from shared.data import load_cifar10

    try:
        (x, y), _ = load_cifar10()
    except UserError as e:
        pytest.fail(
            f"CIFAR-10 could not be loaded ({e}); set REPRO_DATA_MIRROR to the offline mirror or run make data"
        )
    return x, y
