"""How many worker processes to use."""

from __future__ import annotations

import os


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
