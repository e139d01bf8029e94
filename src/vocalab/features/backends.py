"""Where extraction runs: a pool of local worker processes, or a Dask cluster.

A backend runs the extractor over shards of files; each shard's entries go to
``sink(keys, entries)`` (which writes them to the cache), and what the sink returns
to ``on_result(keys, result, audio_s)`` in the parent, in completion order. Local
workers call the sink themselves, so cache writes run in parallel too; Dask workers
send their entries back and the parent calls it. A backend knows nothing of cache
layout or stores. Workers load the extractor (and so a model's weights) once, not
per shard.

``local`` (the default) is a process pool on this machine whose workers exit when
the stage dies. ``dask`` runs the same shards as tasks on a ``dask.distributed``
cluster: a ``LocalCluster`` of worker processes started for the run, or the
scheduler at ``parallel.scheduler`` (a cluster started elsewhere, e.g. with
dask-jobqueue on SLURM or the Dask Kubernetes operator; its workers must see the
corpus at the same paths). A worker lost mid-run loses only its tasks: Dask runs
them again on another worker.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import sys
from collections import Counter
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

from vocalab.features.base import Extractor
from vocalab.features.compute import Regions, extract_entries
from vocalab.parallel import die_with_parent

#: one shard of work: its files, their cache keys, their audio seconds, and their speech regions (or None)
Shard = tuple[Sequence[str], Sequence[str], float, Regions]
Sink = Callable[[Sequence[str], list], Any]
OnResult = Callable[[Sequence[str], Any, float], None]

# fork starts workers in milliseconds (spawn re-imports numpy/scipy in each, ~0.5 s);
# where fork is unavailable or unsafe (macOS, Windows) use spawn. An extractor can
# ask for another start method (torch-based ones need spawn).
_START_METHOD = "fork" if sys.platform.startswith("linux") else "spawn"

_WORKER: dict[str, Any] = {}


def _load(extractor: Extractor, n_workers: int, sink: Sink | None = None) -> None:
    # the extractor arrives once per worker (a torch model is loaded once, not per shard); its thread
    # budget is entered for the worker's life
    threads = extractor.worker_threads(n_workers)
    threads.__enter__()
    _WORKER.update(extractor=extractor, sink=sink, threads=threads)


def _init_local_worker(extractor: Any, n_workers: int, sink: Sink) -> None:
    die_with_parent()  # a killed stage leaves no worker behind
    _load(extractor, n_workers, sink)


def _run_shard(paths: Sequence[str], keys: Sequence[str] = (), regions: Regions = None) -> Any:
    """One shard in a worker: its entries, or what the worker's sink made of them."""
    entries = extract_entries(_WORKER["extractor"], paths, regions)
    sink = _WORKER.get("sink")
    return entries if sink is None else sink(keys, entries)


def run_local(extractor: Extractor, shards: Sequence[Shard], sink: Sink, on_result: OnResult, *,
              workers: int) -> int:
    """Run ``shards`` in this process (one worker or one shard) or a local process pool; returns the workers used."""
    if workers <= 1 or len(shards) <= 1:
        with extractor.worker_threads(1):  # the same thread rule as in the workers
            for paths, keys, audio_s, regions in shards:
                on_result(keys, sink(keys, extract_entries(extractor, paths, regions)), audio_s)
        return 1
    start_method = extractor.start_method or _START_METHOD
    if start_method == "fork":
        extractor.before_fork()  # built once here, shared by every forked worker
    context = multiprocessing.get_context(start_method)
    n_workers = min(workers, len(shards))
    with cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=context, initializer=_init_local_worker,
                                initargs=(extractor, n_workers, sink)) as executor:
        futures = {executor.submit(_run_shard, paths, keys, regions): (keys, audio_s)
                   for paths, keys, audio_s, regions in shards}
        try:
            for future in cf.as_completed(futures):
                keys, audio_s = futures.pop(future)
                on_result(keys, future.result(), audio_s)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return n_workers


def _dask_plugin(extractor: Extractor, per_host: dict[str, int]) -> Any:
    from distributed import WorkerPlugin

    class LoadExtractor(WorkerPlugin):
        """Puts the extractor in each worker once, with a thread budget shared by the workers of its host."""

        def __init__(self) -> None:
            self.extractor, self.per_host = extractor, per_host

        def setup(self, worker: Any) -> None:
            _load(self.extractor, self.per_host.get(urlparse(worker.address).hostname or "", 1))

    return LoadExtractor()


def run_dask(extractor: Extractor, shards: Sequence[Shard], sink: Sink, on_result: OnResult, *, workers: int,
             scheduler: str | None) -> int:
    """Run ``shards`` as tasks on a Dask cluster; returns the number of Dask workers."""
    from distributed import Client, LocalCluster, as_completed

    with contextlib.ExitStack() as stack:
        if scheduler is None:
            cluster = stack.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster))
        else:
            client = stack.enter_context(Client(scheduler, timeout="30s"))
        addresses = list(client.scheduler_info()["workers"])
        per_host = dict(Counter(urlparse(a).hostname or "" for a in addresses))
        client.register_plugin(_dask_plugin(extractor, per_host), name=f"vocalab-{extractor.name}")
        futures = {client.submit(_run_shard, list(paths), (), regions, pure=False): (keys, audio_s)
                   for paths, keys, audio_s, regions in shards}
        try:
            for future in as_completed(list(futures)):
                keys, audio_s = futures.pop(future)
                on_result(keys, sink(keys, future.result()), audio_s)
                future.release()  # results stream through: the corpus is never held in memory
        except BaseException:
            client.cancel(list(futures))
            raise
        return len(addresses)
