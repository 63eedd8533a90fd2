import pytest


@pytest.fixture(scope="session")
def cifar10():
    """((x_train uint8 (50000, 32, 32, 3), y_train), (x_test, y_test)) of real CIFAR-10, loaded once. A missing
    dataset is a failure with the fix in the message."""
    from shared.cli import UserError
    from shared.data import load_cifar10

    try:
        return load_cifar10()
    except UserError as e:
        pytest.fail(
            f"CIFAR-10 could not be loaded ({e}); set REPRO_DATA_MIRROR to the offline mirror or run make data"
        )


@pytest.fixture
def loaded_once(cifar10, monkeypatch):
    """resnet_repro's data pipeline reads the session's copy of CIFAR-10 instead of decoding it again."""
    monkeypatch.setattr("resnet_repro.data.load_cifar10", lambda: cifar10)
    return cifar10
