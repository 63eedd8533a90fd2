import pytest


@pytest.fixture(scope="session")
def mnist():
    """((x_train uint8 (60000, 28, 28), y_train int64), (x_test (10000, 28, 28), y_test)): real MNIST. A
    missing dataset is a failure with the fix in the message."""
    from shared.cli import UserError
    from shared.data import load_mnist

    try:
        return load_mnist()
    except UserError as e:
        pytest.fail(
            f"MNIST could not be loaded ({e}); set REPRO_DATA_MIRROR to the offline mirror or run make data"
        )
