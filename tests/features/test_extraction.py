import numpy as np
import pandas as pd
import pytest

from tests.conftest import speech_like, write_wav
from vocalab.errors import AudioError
from vocalab.features.extraction import extract_manifest
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


def test_parallel_equals_serial_and_per_file(small_manifest, tmp_path):
    ex = HandcraftedExtractor(HandcraftedConfig())
    scratch = tmp_path / "scratch"
    serial = extract_manifest(small_manifest, ex, tmp_path / "serial", workers=1, shard_size=2,
                              scratch_root=scratch, progress=False)
    extract_manifest(small_manifest, ex, tmp_path / "parallel", workers=2, shard_size=2,
                     scratch_root=scratch, progress=False)
    assert serial.n_utterances == 9 and serial.resumed_shards == 0
    a, b = FeatureStore(tmp_path / "serial"), FeatureStore(tmp_path / "parallel")
    np.testing.assert_array_equal(np.asarray(a.frames), np.asarray(b.frames))
    np.testing.assert_array_equal(a.pooled, b.pooled)
    assert a.utt_ids == small_manifest["utt_id"].tolist()
    from vocalab.audio import load_audio

    samples, rate = load_audio(small_manifest["path"][4], sampling_rate=16000)
    # the test process may use several BLAS threads: equal up to float32 summation order
    np.testing.assert_allclose(a.sequence("utt4"), ex.extract(samples, rate), rtol=1e-5, atol=1e-4)
    assert a.meta["params"]["n_mfcc"] == 13 and a.meta["pretrained"] is False
    assert not scratch.exists()  # cleaned up after success


def test_failure_names_the_file_and_a_rerun_resumes(small_manifest, tmp_path):
    ex = HandcraftedExtractor(HandcraftedConfig())
    scratch = tmp_path / "scratch"
    broken = small_manifest["path"][5]
    good_bytes = open(broken, "rb").read()
    with open(broken, "wb") as handle:
        handle.write(b"corrupted")
    with pytest.raises(AudioError, match=r"utt5\.wav"):
        extract_manifest(small_manifest, ex, tmp_path / "out", workers=1, shard_size=2,
                         scratch_root=scratch, progress=False)
    assert len(list(scratch.rglob("shard-*.npz"))) == 2  # shards 0 and 1 were kept
    with open(broken, "wb") as handle:
        handle.write(good_bytes)
    report = extract_manifest(small_manifest, ex, tmp_path / "out", workers=1, shard_size=2,
                              scratch_root=scratch, progress=False)
    assert report.resumed_shards == 2
    fresh = extract_manifest(small_manifest, ex, tmp_path / "fresh", workers=1, shard_size=2,
                             scratch_root=tmp_path / "scratch2", progress=False)
    assert fresh.resumed_shards == 0
    np.testing.assert_array_equal(FeatureStore(tmp_path / "out").pooled, FeatureStore(tmp_path / "fresh").pooled)


def test_changed_params_do_not_reuse_shards(small_manifest, tmp_path):
    scratch = tmp_path / "scratch"
    (scratch).mkdir()
    extract_manifest(small_manifest, HandcraftedExtractor(HandcraftedConfig()), tmp_path / "a",
                     workers=1, scratch_root=scratch, progress=False)
    report = extract_manifest(small_manifest, HandcraftedExtractor(HandcraftedConfig(n_mfcc=20)), tmp_path / "b",
                              workers=1, scratch_root=scratch, progress=False)
    assert report.resumed_shards == 0 and FeatureStore(tmp_path / "b").meta["dim"] == 22
