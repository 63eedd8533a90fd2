"""Settings for the whole test suite."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The tests use small arrays: one torch thread and one OpenBLAS thread avoid thread start-up and spin-wait
    costs, which on a busy 2-core machine make small matrix products many times slower."""
    import torch

    from shared.threads import blas_threads

    before_torch, before_blas = torch.get_num_threads(), blas_threads()
    torch.set_num_threads(1)
    if before_blas:
        blas_threads(1)
    yield
    torch.set_num_threads(before_torch)
    if before_blas:
        blas_threads(before_blas)
