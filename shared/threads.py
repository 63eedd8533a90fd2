"""How many threads NumPy's BLAS and torch use, set in one place from every script's --threads flag.

    set_threads(cfg.threads)    # 0 (every script's default): the libraries' own choice, one per core

threadpoolctl resizes the BLAS (OpenBLAS) and OpenMP pools of the libraries already loaded, so this works at
any point of a script: nothing has to happen before `import numpy`. torch gets torch.set_num_threads(n).
On a small shared machine one thread per process is often the fastest: for the layer sizes of this repository,
a second thread mostly waits (spin-waits) on a core that another process is using.
"""

import contextlib
import os

DEFAULT = 0  # the default of every --threads flag: leave the libraries' choice (one thread per core)


def blas_threads():
    """The thread count of NumPy's BLAS, or None when threadpoolctl finds no BLAS library."""
    import numpy  # noqa: F401  (loads the BLAS library that threadpoolctl inspects)
    from threadpoolctl import threadpool_info

    counts = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return counts[0] if counts else None


def set_threads(n):
    """Use n threads for NumPy's BLAS (and OpenMP) and for torch; n <= 0 leaves the libraries' defaults.
    Returns n, or None when nothing was asked."""
    if not n or int(n) <= 0:
        return None
    import numpy  # noqa: F401
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=int(n))  # kept for the rest of the process (not used as a context manager)
    torch.set_num_threads(int(n))
    return int(n)


def bench_threads(n, log=print):
    """For a NumPy-vs-torch benchmark: set_threads(n) (0 keeps the libraries' counts), then give torch exactly
    the BLAS count so both sides compute with the same threads. Returns that count."""
    import torch

    set_threads(n)
    threads = blas_threads()
    if threads is None:
        threads = n or os.cpu_count()
        log(f"warning: threadpoolctl finds no BLAS library; assuming {threads} threads")
    torch.set_num_threads(threads)
    return threads


@contextlib.contextmanager
def one_thread():
    """BLAS and torch on one thread inside the block, the counts restored after: what goes into committed files
    (figure statistics, samples) is computed so, since a sum's order, and so its last bits, depends on threads."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)
