"""Extraction on Dask: a real ``dask.distributed`` cluster of worker processes gives the same store
bytes as the local backend, and a worker killed mid-run costs only its tasks."""

from __future__ import annotations

import os

import pytest

from tests.features.test_cache import corpus, store_bytes
from vocalab.features.extraction import extract_manifest
from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor

distributed = pytest.importorskip("distributed")


class DiesOnce(HandcraftedExtractor):
    """Kills the worker process it runs in, the first time only (the marker file remembers)."""

    def __init__(self, marker):
        super().__init__(HandcraftedConfig())
        self.marker = str(marker)

    def extract(self, samples, sampling_rate):
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return super().extract(samples, sampling_rate)
        os._exit(1)  # as a worker killed by the OOM killer or a lost node


def test_a_local_cluster_gives_the_local_backends_bytes(tmp_path):
    manifest = corpus(tmp_path / "audio", 10)
    extractor = HandcraftedExtractor(HandcraftedConfig())
    local = extract_manifest(manifest, extractor, tmp_path / "local", workers=2, shard_size=2,
                             cache_root=tmp_path / "c1", progress=False)
    on_dask = extract_manifest(manifest, extractor, tmp_path / "dask", workers=2, shard_size=2, backend="dask",
                               cache_root=tmp_path / "c2", progress=False)
    assert on_dask.extracted == local.extracted == 10 and on_dask.workers == 2
    assert "by 2 dask worker(s)" in on_dask.line("extract_handcrafted")
    assert store_bytes(tmp_path / "dask") == store_bytes(tmp_path / "local")


def test_a_killed_worker_does_not_fail_the_run_on_a_cluster_started_elsewhere(tmp_path):
    manifest = corpus(tmp_path / "audio", 8)
    extract_manifest(manifest, HandcraftedExtractor(HandcraftedConfig()), tmp_path / "local", workers=1,
                     cache_root=tmp_path / "c1", progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) \
            as cluster:
        report = extract_manifest(manifest, DiesOnce(tmp_path / "died"), tmp_path / "dask", shard_size=2,
                                  backend="dask", scheduler=cluster.scheduler_address, cache_root=tmp_path / "c2",
                                  progress=False)
    assert (tmp_path / "died").exists()  # a worker did die
    assert report.extracted == 8
    assert store_bytes(tmp_path / "dask") == store_bytes(tmp_path / "local")
