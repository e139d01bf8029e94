"""Where and with how many workers extraction runs (the ``parallel`` params section)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Literal

from vocalab.errors import ParamsError


@dataclass(frozen=True)
class ParallelConfig:
    """``parallel``: the engine extraction runs on. It changes no number, so no stage depends on it."""

    backend: Literal["local", "dask"] = "local"
    scheduler: str | None = None  # dask only: a scheduler address (null: a LocalCluster of VOCALAB_WORKERS processes)

    def check(self, section: str) -> None:
        if self.scheduler is not None and self.backend != "dask":
            raise ParamsError(f"params key '{section}.scheduler' is set but '{section}.backend' is "
                              f"{self.backend!r}: set {section}.backend: dask to use a Dask scheduler.")


def default_workers() -> int:
    """Worker processes: ``$VOCALAB_WORKERS`` if set, else the CPUs this process may use."""
    env = os.environ.get("VOCALAB_WORKERS")
    if env:
        if not env.strip().isdigit() or int(env) < 1:
            raise ParamsError(f"environment variable VOCALAB_WORKERS={env!r} is not a positive integer. "
                              f"Set it to a number of worker processes (e.g. VOCALAB_WORKERS=2), or unset it "
                              f"to use every CPU.")
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def die_with_parent() -> None:
    """In a worker process: exit when the process that started it dies, even by ``kill -9``.

    Without it, workers of a killed stage are re-parented and wait forever on a queue
    nobody writes to. Linux only (``PR_SET_PDEATHSIG``); elsewhere a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


_SHELLS = frozenset({"sh", "dash", "bash", "zsh", "fish", "ksh", "mksh", "busybox"})


def _stat(pid: int) -> tuple[str, int, str] | None:
    """``(name, parent pid, start time)`` of a process from /proc, or None if it is gone."""
    try:
        text = open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace").read()
    except OSError:
        return None
    name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
    return name, int(rest[1]), rest[19]


def die_with_launcher(poll_s: float = 0.5) -> None:
    """In a stage: exit when the program that launched it (``dvc``) dies, even by ``kill -9``.

    DVC runs a stage through a shell (``$SHELL -c``), and a shell that does not ``exec``
    the command outlives DVC, so the stage watches the nearest ancestor that is not a
    shell, as well as its own parent (:func:`die_with_parent`). Its workers die with it.
    Linux only; elsewhere a no-op.
    """
    if not sys.platform.startswith("linux"):
        return
    import signal
    import threading
    import time

    die_with_parent()
    pid = os.getppid()
    found = _stat(pid)
    while found is not None and found[0] in _SHELLS and found[1] > 1:
        pid = found[1]
        found = _stat(pid)
    if found is None or pid <= 1:
        return
    started = found[2]

    def watch() -> None:
        while True:
            now = _stat(pid)
            if now is None or now[2] != started:  # gone, or its pid taken by another process
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(poll_s)

    threading.Thread(target=watch, name="vocalab-launcher-watch", daemon=True).start()
