"""How many threads NumPy's BLAS and torch use, set in one place.

    from shared.threads import set_threads
    set_threads(1)          # NumPy (OpenBLAS) and torch: one thread each

OpenBLAS sizes its thread pool when NumPy is imported, from OPENBLAS_NUM_THREADS / OMP_NUM_THREADS. So
`set_threads` writes those environment variables (which also reach torch, if it is imported later, and child
processes) and, when NumPy is already loaded, calls the loaded OpenBLAS's own `openblas_set_num_threads`
through ctypes; when torch is already loaded it calls `torch.set_num_threads`. This module imports neither
library itself, so a script can call `set_threads` before its own `import numpy`.

On a small shared machine one thread per process is often the fastest: for the layer sizes of this repository,
a second thread mostly waits (spin-waits) on a core that another process is using.
"""

import ctypes
import glob
import os
import sys

ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# NumPy's wheels ship scipy-openblas, whose symbols carry a prefix and suffix; other builds use the plain names.
_GET = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads")
_SET = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")


def _openblas():
    """The OpenBLAS library that NumPy loaded (imports NumPy), or None when it cannot be found."""
    import numpy as np

    base = os.path.dirname(np.__file__)
    for libdir in (os.path.join(os.path.dirname(base), "numpy.libs"), os.path.join(base, ".dylibs")):
        for path in sorted(glob.glob(os.path.join(libdir, "*openblas*"))):
            try:
                return ctypes.CDLL(path)
            except OSError:
                continue
    return None


def _first_symbol(lib, names):
    for name in names:
        fn = getattr(lib, name, None) if lib is not None else None
        if fn is not None:
            return fn
    return None


def blas_threads(set_to=None):
    """OpenBLAS's thread count (after setting it to `set_to` if given); None if OpenBLAS cannot be found.
    Imports NumPy. Raises UserError when asked to set a count but OpenBLAS's setter cannot be found."""
    lib = _openblas()
    if set_to:
        setter = _first_symbol(lib, _SET)
        if setter is None:
            from shared.cli import UserError

            raise UserError(
                "--threads: cannot find OpenBLAS's set_num_threads; set OPENBLAS_NUM_THREADS instead"
            )
        setter(ctypes.c_int(int(set_to)))
    getter = _first_symbol(lib, _GET)
    return int(getter()) if getter is not None else None


def set_threads(n):
    """Use n threads for NumPy's BLAS and for torch; n <= 0 (or None) leaves the libraries' defaults alone.

    Before NumPy is imported this only sets the environment variables (read when the libraries load); after, it
    also sets the loaded OpenBLAS's pool (UserError if that cannot be found) and, if torch is loaded,
    torch.set_num_threads(n). Returns n, or None when nothing was asked.
    """
    if not n or int(n) <= 0:
        return None
    n = int(n)
    for var in ENV_VARS:
        os.environ[var] = str(n)
    if "numpy" in sys.modules:
        blas_threads(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    return n


def bench_threads(n, log=print):
    """For a NumPy-vs-torch benchmark: set_threads(n) (0 keeps the libraries' counts), then give torch exactly
    OpenBLAS's count so both sides compute with the same threads. Returns that count."""
    import torch

    set_threads(n)
    threads = blas_threads()
    if threads is None:
        threads = n or os.cpu_count()
        log(f"warning: cannot query OpenBLAS's thread count; assuming {threads}")
    torch.set_num_threads(threads)
    return threads
