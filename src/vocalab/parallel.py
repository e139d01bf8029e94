"""How many worker processes to use, and keeping each of them single-threaded."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_workers() -> int:
    """Worker processes: ``$VOCALAB_WORKERS`` if set, else the CPUs this process may use."""
    env = os.environ.get("VOCALAB_WORKERS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"VOCALAB_WORKERS={env!r} must be a positive integer.")
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def single_threaded_children() -> Iterator[None]:
    """Processes started inside this block use one BLAS/OpenMP thread each,
    so N workers on N cores do not oversubscribe them."""
    saved = {name: os.environ.get(name) for name in _THREAD_VARS}
    os.environ.update({name: "1" for name in _THREAD_VARS})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
