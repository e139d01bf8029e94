import numpy as np
import pandas as pd
import pytest

from tests.conftest import speech_like, write_wav
from vocalab.errors import AudioError
from vocalab.features.base import Extractor
from vocalab.features.extraction import extract_manifest, open_cache, shard_bounds
from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor
from vocalab.features.store import FeatureStore


@pytest.fixture
def small_manifest(tmp_path):
    rows = []
    for i in range(9):
        rate = (16000, 22050, 48000)[i % 3]
        path = write_wav(tmp_path / "audio" / f"utt{i}.wav", speech_like(i, sampling_rate=rate, duration_s=0.5 + 0.1 * i), rate)
        rows.append({"utt_id": f"utt{i}", "path": str(path), "duration_s": 0.5 + 0.1 * i})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("n, size, workers", [(150, 32, 2), (150, 32, 1), (720, 32, 2), (3, 32, 2), (5, 2, 2),
                                               (1, 32, 4), (64, 32, 2), (97, 8, 3)])
def test_shards_cover_the_files_evenly_and_keep_every_worker_busy(n, size, workers):
    bounds = shard_bounds(n, size, workers)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(end == begin for (_, end), (begin, _) in zip(bounds, bounds[1:]))  # contiguous, in order
    sizes = [end - begin for begin, end in bounds]
    assert min(sizes) >= 1 and max(sizes) <= size and max(sizes) - min(sizes) <= 1
    assert len(bounds) == -(-n // size) if workers == 1 else len(bounds) % workers == 0 or len(bounds) == n
    assert shard_bounds(150, 32, 2) == [(i, i + 25) for i in range(0, 150, 25)]  # not 32, 32, 32, 32, 22 on 2 workers


def test_parallel_equals_serial_and_per_file(small_manifest, tmp_path):
    ex = HandcraftedExtractor(HandcraftedConfig())
    serial = extract_manifest(small_manifest, ex, tmp_path / "serial", workers=1, shard_size=2,
                              cache_root=tmp_path / "cache1", progress=False)
    parallel = extract_manifest(small_manifest, ex, tmp_path / "parallel", workers=2, shard_size=2,
                                cache_root=tmp_path / "cache2", progress=False)
    assert serial.n_utterances == 9 and serial.extracted == parallel.extracted == 9 and serial.cached == 0
    a, b = FeatureStore(tmp_path / "serial"), FeatureStore(tmp_path / "parallel")
    for name in ("frames.npy", "offsets.npy", "pooled.npy", "utt_ids.txt", "meta.json"):
        assert (a.root / name).read_bytes() == (b.root / name).read_bytes(), name
    assert a.utt_ids == small_manifest["utt_id"].tolist()
    from vocalab.audio import load_audio

    samples, rate = load_audio(small_manifest["path"][4], sampling_rate=16000)
    # the test process may use several BLAS threads: equal up to float32 summation order
    np.testing.assert_allclose(a.sequence("utt4"), ex.extract(samples, rate), rtol=1e-5, atol=1e-4)
    assert a.meta.params["n_mfcc"] == 13 and a.meta.pretrained is False


def test_failure_names_the_file_and_a_rerun_keeps_what_was_done(small_manifest, tmp_path):
    ex = HandcraftedExtractor(HandcraftedConfig())
    cache = tmp_path / "cache"
    broken = small_manifest["path"][5]
    good_bytes = open(broken, "rb").read()
    with open(broken, "wb") as handle:
        handle.write(b"corrupted")
    with pytest.raises(AudioError, match=r"utt5\.wav"):
        extract_manifest(small_manifest, ex, tmp_path / "out", workers=1, shard_size=2,
                         cache_root=cache, progress=False)
    assert len(open_cache(ex, cache).keys()) == 4  # the shards before the broken file were kept
    with open(broken, "wb") as handle:
        handle.write(good_bytes)
    report = extract_manifest(small_manifest, ex, tmp_path / "out", workers=1, shard_size=2,
                              cache_root=cache, progress=False)
    assert (report.cached, report.extracted) == (4, 5)
    fresh = extract_manifest(small_manifest, ex, tmp_path / "fresh", workers=1, shard_size=2,
                             cache_root=tmp_path / "cache2", progress=False)
    assert fresh.cached == 0
    assert (tmp_path / "out/frames.npy").read_bytes() == (tmp_path / "fresh/frames.npy").read_bytes()


def test_changed_params_miss_the_cache(small_manifest, tmp_path):
    cache = tmp_path / "cache"
    extract_manifest(small_manifest, HandcraftedExtractor(HandcraftedConfig()), tmp_path / "a",
                     workers=1, cache_root=cache, progress=False)
    report = extract_manifest(small_manifest, HandcraftedExtractor(HandcraftedConfig(n_mfcc=20)), tmp_path / "b",
                              workers=1, cache_root=cache, progress=False)
    assert report.cached == 0 and FeatureStore(tmp_path / "b").meta.dim == 22
    again = extract_manifest(small_manifest, HandcraftedExtractor(HandcraftedConfig()), tmp_path / "c",
                             workers=1, cache_root=cache, progress=False)
    assert (again.cached, again.extracted) == (9, 0)


class _Loud(Extractor):
    """A toy extractor whose frames overflow float16."""

    name, sampling_rate, feature_names, dim, frames_dtype = "loud", 16000, ["x"], 1, "float16"

    def meta(self):
        return {"feature_set": self.name, "feature_names": self.feature_names}

    def extract(self, samples, sampling_rate):
        return np.full((3, 1), 1e6 if len(samples) > 12000 else 1.0, dtype=np.float32)  # from 0.8 s (utt3)


def test_frames_that_overflow_their_storage_type_name_the_file(small_manifest, tmp_path):
    with pytest.raises(AudioError, match=r"utt3\.wav': loud features exceed the range of float16.*float32"):
        extract_manifest(small_manifest, _Loud(), tmp_path / "out", workers=1, cache_root=tmp_path / "s",
                         progress=False)


class _Functionals(Extractor):
    """A toy extractor with utterance-level features of its own: duration and peak."""

    name, sampling_rate, feature_names, dim, frames_dtype = "func", 16000, ["abs"], 1, "float32"

    def __init__(self, broken_from=None):
        self.broken_from = broken_from

    def meta(self):
        return {"feature_set": self.name, "feature_names": self.feature_names, "pooled": "functionals",
                "pooled_names": ["duration_s", "peak"]}

    def extract(self, samples, sampling_rate):
        peak = np.nan if self.broken_from and len(samples) > self.broken_from else np.abs(samples).max()
        return np.abs(samples[::1600, None]), np.array([len(samples) / sampling_rate, peak])


def test_an_extractor_with_functionals_stores_its_own_pooled_rows(small_manifest, tmp_path):
    extract_manifest(small_manifest, _Functionals(), tmp_path / "out", workers=2, shard_size=4,
                     cache_root=tmp_path / "s", progress=False)
    store = FeatureStore(tmp_path / "out")
    assert store.meta.pooled == "functionals" and store.pooled.shape == (9, 2)
    np.testing.assert_allclose(store.pooled[:, 0], small_manifest["duration_s"], atol=1e-4)
    assert store.sequence("utt0").shape == (5, 1)
    with pytest.raises(AudioError, match=r"utt3\.wav': func pooled features contain NaN"):
        extract_manifest(small_manifest, _Functionals(broken_from=12000), tmp_path / "bad", workers=1,
                         cache_root=tmp_path / "s2", progress=False)


def test_wav2vec2_over_a_manifest_in_spawned_workers(small_manifest, tiny_wav2vec2, tmp_path):
    from vocalab.audio import load_audio
    from vocalab.features.wav2vec2 import Wav2Vec2Extractor, Wav2Vec2ExtractorConfig

    ex = Wav2Vec2Extractor(Wav2Vec2ExtractorConfig(model=str(tiny_wav2vec2), init="pretrained", layers="all"))
    serial = extract_manifest(small_manifest, ex, tmp_path / "serial", workers=1, shard_size=4,
                              cache_root=tmp_path / "s", progress=False)
    extract_manifest(small_manifest, ex, tmp_path / "parallel", workers=2, shard_size=4,
                     cache_root=tmp_path / "s", progress=False)
    assert serial.n_utterances == 9
    a, b = FeatureStore(tmp_path / "serial"), FeatureStore(tmp_path / "parallel")
    assert a.frames.dtype == np.float16 and a.pooled.dtype == np.float32 and a.frames.shape[1] == 96
    np.testing.assert_allclose(np.asarray(a.frames, dtype=np.float32), np.asarray(b.frames, dtype=np.float32),
                               atol=2e-3)
    samples, rate = load_audio(small_manifest["path"][7], sampling_rate=16000)
    direct = ex.extract(samples, rate)
    np.testing.assert_allclose(a.sequence("utt7"), direct, rtol=1e-3, atol=1e-3)  # float16 storage
    # pooled statistics come from the float32 frames, not from their float16 copy
    np.testing.assert_allclose(a.pooled[7], np.concatenate([direct.mean(0), direct.std(0)]), rtol=1e-5, atol=1e-6)
    assert a.meta.layers == (0, 1, 2) and a.meta.layer_dim == 32 and a.meta.pretrained is True


class _Slow(Extractor):
    """A toy extractor that takes its time, so a run can be killed while its workers work."""

    name, sampling_rate, feature_names, dim, frames_dtype = "slow", 16000, ["x"], 1, "float32"

    def meta(self):
        return {"feature_set": self.name, "feature_names": self.feature_names}

    def extract(self, samples, sampling_rate):
        import time

        time.sleep(30)
        return np.zeros((1, 1), np.float32)


def test_workers_exit_when_a_killed_stage_dies(small_manifest, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    small_manifest.to_csv(tmp_path / "m.csv", index=False)
    code = ("import pandas as pd, sys; from tests.features.test_extraction import _Slow; "
            "from vocalab.features.extraction import extract_manifest; "
            "extract_manifest(pd.read_csv(sys.argv[1]), _Slow(), sys.argv[2], workers=2, shard_size=1, "
            "cache_root=sys.argv[3], progress=False)")
    from tests.conftest import REPO_ROOT

    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'src'}"}
    stage = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "m.csv"), str(tmp_path / "out"),
                              str(tmp_path / "s")], env=env)
    deadline = time.time() + 60
    workers = []
    while time.time() < deadline and len(workers) < 2:
        workers = [p for p in psutil.Process(stage.pid).children(recursive=True) if "python" in p.name()]
        time.sleep(0.2)
    assert len(workers) >= 2, "the workers did not start"
    time.sleep(1.0)  # past their start-up
    os.kill(stage.pid, signal.SIGKILL)
    stage.wait()
    gone, alive = psutil.wait_procs(workers, timeout=10)
    for process in alive:
        process.kill()
    assert not alive, f"{len(alive)} worker(s) outlived the killed stage"
