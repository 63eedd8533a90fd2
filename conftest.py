"""Settings for the whole test suite."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """The tests use small arrays: one torch thread and one BLAS thread avoid thread start-up and spin-wait
    costs, which on a busy 2-core machine make small matrix products many times slower. Training scripts keep
    this count: their --threads default (0) leaves the libraries' settings alone."""
    from threadpoolctl import threadpool_limits

    from shared.threads import set_threads

    with threadpool_limits(limits=1):  # restores the libraries' own counts at the end of the session
        set_threads(1)
        yield
