"""The csv layout (with audio inside mp4 containers), data.target and split.strategy: given."""

import pandas as pd
import pytest

from tests.conftest import speech_like, to_mp4, write_wav
from vocalab.audio import load_audio, read_info
from vocalab.datasets.config import DataConfig
from vocalab.datasets.layouts import scan_corpus
from vocalab.datasets.csv_table import CsvConfig
from vocalab.errors import ManifestError, ParamsError
from vocalab.manifest_build import build_manifest
from vocalab.params import from_mapping
from vocalab.splits import SplitConfig, assign_splits, speaker_overlap

STRESS = CsvConfig(file="stress.csv", path_column="audio_path", label_column="target_stress",
                   speaker_column=None, split_column="split")


@pytest.fixture
def stress_corpus(tmp_path):
    """The stress table's shape: MELD clips as mp4 video containers, IEMOCAP clips as wav."""
    root = tmp_path / "stress"
    rows = []
    for i in range(6):
        origin = "MELD" if i < 3 else "IEMOCAP"
        wav = write_wav(root / f"{origin}_Audio" / f"utt{i}.wav", speech_like(i, duration_s=0.8), 22050)
        path = wav
        if origin == "MELD":
            path = to_mp4(wav, wav.with_suffix(".mp4"))
            wav.unlink()
        rows.append({"Unnamed: 0": i, "Utterance_ID": f"u{i}", "audio_path": str(path.relative_to(root)),
                     "target_stress": str(i % 2), "split": ["train", "dev", "test"][i % 3], "dataset_origin": origin})
    rows.append({"Unnamed: 0": 6, "Utterance_ID": "u6", "audio_path": "MELD_Audio/missing.mp4", "target_stress": "1",
                 "split": "train", "dataset_origin": "MELD"})
    rows.append({"Unnamed: 0": 7, "Utterance_ID": "u7", "audio_path": "../outside.wav", "target_stress": "0",
                 "split": "train", "dataset_origin": "MELD"})
    rows.append({"Unnamed: 0": 8, "Utterance_ID": "u8", "audio_path": "IEMOCAP_Audio/utt3.wav",
                 "target_stress": "", "split": "train", "dataset_origin": "IEMOCAP"})
    pd.DataFrame(rows).to_csv(root / "stress.csv", index=False)
    return root


def manifest_of(root, layout, config):
    candidates = scan_corpus(root, layout=layout, dataset=layout, config=config)
    manifest, rejects = build_manifest(candidates, dataset=layout, progress=False)
    return manifest, rejects


def test_mp4_audio_is_decoded_through_the_wheel_ffmpeg(tmp_path):
    wav = write_wav(tmp_path / "a.wav", speech_like(1, duration_s=1.0, sampling_rate=22050), 22050)
    mp4 = to_mp4(wav, tmp_path / "a.mp4")
    info = read_info(mp4)
    assert (info.sample_rate, info.channels, info.format, info.subtype) == (22050, 1, "MP4", "AAC")
    assert abs(info.duration_s - 1.0) < 0.06  # the AAC encoder pads a few ms
    samples, rate = load_audio(mp4, sampling_rate=16000)
    reference, _ = load_audio(wav, sampling_rate=16000)
    assert rate == 16000 and abs(len(samples) - len(reference)) < 1000
    (tmp_path / "video.mp4").write_bytes(b"not a video")
    from vocalab.errors import AudioError

    with pytest.raises(AudioError, match="video.mp4' has no audio stream"):
        read_info(tmp_path / "video.mp4")


def test_stress_table_through_the_csv_layout(stress_corpus):
    manifest, rejects = manifest_of(stress_corpus, "csv", DataConfig(layout="csv", csv=STRESS))
    assert len(manifest) == 6 and set(manifest["label"]) == {"0", "1"}
    meld = manifest[manifest["dataset_origin"] == "MELD"]
    assert set(meld["format"]) == {"MP4"} and set(manifest.loc[manifest["dataset_origin"] == "IEMOCAP", "format"]) == {"WAV"}
    assert manifest["utt_id"].iloc[0] == "csv_IEMOCAP_Audio__utt3"
    assert set(manifest["speaker"]) == {"csv_unknown"} and not manifest["speaker_known"].any()
    assert sorted(manifest["given_split"].unique()) == ["dev", "test", "train"]
    assert "Unnamed: 0" not in manifest.columns and "Utterance_ID" in manifest.columns
    details = " | ".join(rejects["detail"])
    assert "missing.mp4" in " ".join(rejects["path"]) and "leaves the corpus root" in details
    assert "no value in column 'target_stress'" in details

    splits = assign_splits(manifest, SplitConfig(strategy="given"))
    assert dict(zip(manifest["given_split"], splits["split"])) == {"train": "train", "dev": "validation",
                                                                     "test": "test"}
    assert speaker_overlap(splits) is True  # unknown speakers are never claimed to be held out
    with pytest.raises(ParamsError, match="names none .* Use split.strategy: given"):
        assign_splits(manifest, SplitConfig(strategy="speaker"))


def test_given_split_names_are_checked():
    manifest = pd.DataFrame({"utt_id": ["a", "b"], "speaker": ["s1", "s2"], "label": ["x", "y"],
                             "given_split": ["train", "holdout"]})
    with pytest.raises(ManifestError, match=r"holds \['holdout'\]"):
        assign_splits(manifest, SplitConfig(strategy="given"))
    with pytest.raises(ParamsError, match="has none. Set data.csv.split_column"):
        assign_splits(manifest.drop(columns="given_split"), SplitConfig(strategy="given"))


def test_csv_with_speakers_and_bad_columns(tmp_path):
    root = tmp_path / "raw"
    for i in range(4):
        write_wav(root / f"clips/{i}.flac", speech_like(i, duration_s=0.4), 16000, subtype="PCM_16")
    pd.DataFrame({"path": [f"clips/{i}.flac" for i in range(4)], "label": ["hc", "pd", "hc", "pd"],
                  "speaker": ["p1", "p1", "p2", "p2"], "duration": [0.4] * 4}).to_csv(root / "metadata.csv",
                                                                                    index=False)
    manifest, rejects = manifest_of(root, "csv", DataConfig(layout="csv"))
    assert manifest["speaker"].tolist() == ["csv_p1", "csv_p1", "csv_p2", "csv_p2"] and rejects.empty
    assert manifest["format"].tolist() == ["FLAC"] * 4 and manifest["speaker_known"].all()
    with pytest.raises(ManifestError, match=r"data.csv.label_column = 'emotion' is not a column .* \['path', "):
        scan_corpus(root, layout="csv", dataset="csv", config=DataConfig(csv=CsvConfig(label_column="emotion")))
    with pytest.raises(ManifestError, match="data.csv.file = 'other.csv': no such table"):
        scan_corpus(root, layout="csv", dataset="csv", config=DataConfig(csv=CsvConfig(file="other.csv")))


def test_target_picks_another_field(ravdess_tree, stress_corpus):
    candidates = scan_corpus(ravdess_tree, layout="ravdess", dataset="ravdess", config=DataConfig(target="gender"))
    assert {c.label for c in candidates} == {"male", "female"} and not any(c.reason for c in candidates)
    assert {c.extras["emotion"] for c in candidates} == {"neutral", "happy", "angry"}  # still in the manifest
    with pytest.raises(ParamsError, match=r"'data\.target' = 'valence' is not a field of the ravdess layout; "
                                          r"its fields are \['actor', 'emotion', 'gender', 'intensity'"):
        scan_corpus(ravdess_tree, layout="ravdess", dataset="ravdess", config=DataConfig(target="valence"))
    config = DataConfig(layout="csv", csv=STRESS, target="dataset_origin")
    labels = {c.label for c in scan_corpus(stress_corpus, layout="csv", dataset="csv", config=config) if not c.reason}
    assert labels == {"MELD", "IEMOCAP"}


def test_csv_params_are_validated():
    config = from_mapping(DataConfig, {"layout": "csv", "csv": {"speaker_column": None, "split_column": "split"}},
                          section="data")
    assert config.csv.speaker_column is None and config.csv.split_column == "split"
    with pytest.raises(ParamsError, match=r"unknown params key 'data\.csv\.label'"):
        from_mapping(DataConfig, {"csv": {"label": "x"}}, section="data")


def test_a_table_without_speakers_does_not_hide_the_speakers_of_other_corpora():
    manifest = pd.DataFrame({"utt_id": [f"u{i}" for i in range(8)], "speaker": [f"s{i // 2}" for i in range(8)],
                             "label": ["a", "b"] * 4, "speaker_known": [None] * 8})
    splits = assign_splits(manifest, SplitConfig(test_fraction=0.25, validation_fraction=0.25))
    assert speaker_overlap(splits) is False
    manifest.loc[0, "speaker_known"] = False
    with pytest.raises(ParamsError, match="names none"):
        assign_splits(manifest, SplitConfig())
