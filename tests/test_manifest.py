import numpy as np
import pandas as pd
import pytest

from tests.conftest import tone, write_wav
from vocalab.datasets.layouts import scan_corpus
from vocalab.datasets.base import count_other_files
from vocalab.errors import ManifestError
from vocalab.manifest import CORE_COLUMNS, manifest_summary, read_manifest, validate_manifest, write_manifest
from vocalab.manifest_build import build_manifest


def test_good_corpus_gives_a_sorted_validated_manifest(ravdess_tree, monkeypatch):
    monkeypatch.chdir(ravdess_tree.parent)
    manifest, rejects = build_manifest(scan_corpus(ravdess_tree, layout="ravdess", dataset="ravdess"),
                                       dataset="ravdess", progress=False)
    assert rejects.empty
    assert len(manifest) == 24
    assert list(manifest.columns[: len(CORE_COLUMNS)]) == CORE_COLUMNS
    assert {"gender", "intensity", "statement", "repetition", "actor"} <= set(manifest.columns)
    assert manifest["utt_id"].is_monotonic_increasing and manifest["utt_id"].is_unique
    assert manifest["path"].iloc[0] == "raw/Actor_01/03-01-01-01-01-01-01.wav"  # relative to the root
    assert set(manifest["label"]) == {"neutral", "happy", "angry"}
    assert manifest["duration_s"].iloc[0] == pytest.approx(1.5)
    assert manifest["sample_rate"].iloc[0] == 16000 and manifest["channels"].iloc[0] == 1


def test_bad_files_are_rejected_with_reasons_never_dropped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "raw" / "Actor_01"
    write_wav(root / "03-01-01-01-01-01-01.wav", tone(200), 16000)
    write_wav(root / "03-01-01-01-01-02-01.wav", np.zeros(0, dtype=np.float32), 16000)
    write_wav(root / "03-01-03-01-01-01-01.wav", np.zeros(800, dtype=np.float32), 16000)
    (root / "03-01-05-01-01-01-01.wav").write_bytes(b"this is not audio")
    write_wav(root / "03-01-05-01-01-02-01.wav", np.array([0.1, np.nan, 0.2], dtype=np.float32), 16000, "FLOAT")
    write_wav(root / "take-2.wav", tone(200), 16000)
    write_wav(root / "03-01-06-01-01-01-01.wav", tone(200, duration_s=0.05), 16000)
    write_wav(tmp_path / "raw" / "Actor_02" / "03-01-01-01-01-01-01.flac", tone(300), 16000, "PCM_16")
    (root / "notes.txt").write_text("session notes")
    candidates = scan_corpus(tmp_path / "raw", layout="ravdess", dataset="ravdess")
    manifest, rejects = build_manifest(candidates, dataset="ravdess", progress=False)

    assert manifest["utt_id"].tolist() == ["ravdess_03-01-01-01-01-01-01"]
    reasons = dict(zip(rejects["path"].str.rsplit("/", n=1).str[-1], rejects["reason"]))
    assert reasons == {
        "03-01-01-01-01-02-01.wav": "empty",
        "03-01-03-01-01-01-01.wav": "silent",
        "03-01-05-01-01-01-01.wav": "unreadable",
        "03-01-05-01-01-02-01.wav": "non_finite",
        "03-01-06-01-01-01-01.wav": "too_short",
        "take-2.wav": "unparseable_name",
        "03-01-01-01-01-01-01.flac": "duplicate_utt_id",
    }
    assert rejects["detail"].str.len().min() > 10
    summary = manifest_summary(manifest, rejects, n_other_files=count_other_files(tmp_path / "raw"))
    assert summary["n_audio_files"] == 8 and summary["n_utterances"] == 1 and summary["n_rejected"] == 7
    assert summary["n_other_files"] == 1
    assert summary["rejected_by_reason"]["unparseable_name"] == 1


def test_nothing_usable_is_an_error(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(ManifestError, match=r"no usable audio found for dataset 'ravdess'"):
        build_manifest(scan_corpus(tmp_path / "raw", layout="ravdess", dataset="ravdess"),
                       dataset="ravdess", progress=False)


def _frame(**overrides):
    base = {"utt_id": ["a", "b"], "path": ["x.wav", "y.wav"], "dataset": ["d", "d"], "speaker": ["s1", "s2"],
            "label": ["l1", "l2"], "duration_s": [1.0, 2.0], "sample_rate": [16000, 16000],
            "channels": [1, 1], "format": ["WAV", "WAV"], "subtype": ["PCM_16", "PCM_16"]}
    base.update(overrides)
    return pd.DataFrame(base)


@pytest.mark.parametrize("overrides, message", [
    ({"utt_id": ["a", "a"]}, r"duplicate utt_id 'a'"),
    ({"utt_id": ["b", "a"]}, r"not sorted by utt_id"),
    ({"duration_s": [1.0, 0.0]}, r"utterance 'b' has duration_s=0.0"),
    ({"speaker": ["s1", ""]}, r"row 1 has an empty 'speaker'"),
])
def test_validate_names_the_problem(overrides, message):
    with pytest.raises(ManifestError, match=message):
        validate_manifest(_frame(**overrides))


def test_missing_column_and_missing_files(tmp_path):
    with pytest.raises(ManifestError, match=r"lacks column\(s\) \['label'\]"):
        validate_manifest(_frame().drop(columns="label"))
    path = tmp_path / "manifest.csv"
    write_manifest(_frame(), path)
    assert read_manifest(path).equals(_frame())
    with pytest.raises(ManifestError, match=r"lists 'x\.wav', which does not exist"):
        read_manifest(path, check_files=True)
    with pytest.raises(ManifestError, match=r"not found\. Build it with: dvc repro manifest"):
        read_manifest(tmp_path / "nope.csv")
