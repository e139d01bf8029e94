"""Real `dvc repro` on corpora of the field's other shapes: a `folders` corpus of
class folders under task folders (as PC-GITA), and a `csv` table with audio inside
mp4 containers and the table's own split (as the MELD/IEMOCAP stress table).

Only the handcrafted branch is reproduced: the corpus handling is what is tested.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import speech_like, to_mp4, write_wav
from tests.e2e.project import dvc, make_project, stages_run

pytestmark = pytest.mark.e2e

BRANCH = {"download", "manifest", "split", "extract_handcrafted", "train@handcrafted", "evaluate@handcrafted"}


def clip(path, seed, *, pathological, rate=16000):
    samples = speech_like(seed, duration_s=0.6, sampling_rate=rate)
    if pathological:  # a rougher, noisier voice
        samples = samples + 0.05 * speech_like(seed + 999, duration_s=0.6, sampling_rate=rate) ** 2
    return write_wav(path, samples, rate)


def test_folders_corpus_with_task_folders(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("pcgita")
    for n in range(1, 7):
        for group in ("hc", "pd"):
            speaker = f"AVPEPUDEA{'C' if group == 'hc' else ''}{n:04d}"
            for task, take in (("vowels/A", "a1"), ("vowels/A", "a2"), ("read-text", "readtext")):
                clip(corpus / task / group / f"{speaker}{'_' if take == 'readtext' else ''}{take}.wav",
                     n * 7 + len(take), pathological=group == "pd")

    def edit(params, root):
        params["data"].update({"source": "local", "path": str(corpus), "layout": "folders"})
        params["data"]["folders"]["speaker_regex"] = r"^(?P<speaker>AVPEPUDEAC?\d{4})"
        params["split"].update({"test_fraction": 0.34, "validation_fraction": 0.17})
        params["train"]["feature_sets"] = ["handcrafted"]

    project = make_project(tmp_path_factory.mktemp("folders-project"), edit)
    root, _ = project
    output = dvc(project, "repro", "evaluate@handcrafted")
    assert stages_run(output) == BRANCH
    manifest = pd.read_csv(root / "data/manifest.csv")
    assert len(manifest) == 36 and manifest["speaker"].nunique() == 12
    assert set(manifest["task"]) == {"vowels/A", "read-text"} and set(manifest["label"]) == {"hc", "pd"}
    metrics = json.loads((root / "metrics/details/handcrafted.json").read_text())
    assert metrics["speaker_overlap"] is False and metrics["n_test_speakers"] == 4
    assert set(metrics["per_class"]) == {"hc", "pd"}

    # the corpus's content is a dependency: a file replaced in place reruns the branch, not only a new data.path
    assert "Data and pipelines are up to date" in dvc(project, "status", "download")
    clip(corpus / "vowels/A/hc/AVPEPUDEAC0001a1.wav", 4242, pathological=True)
    assert "download" in dvc(project, "status", "download")
    output = dvc(project, "repro", "evaluate@handcrafted")
    assert {"download", "manifest", "extract_handcrafted"} <= stages_run(output)


def test_csv_corpus_with_mp4_and_its_own_split(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("stress")
    rows = []
    for i in range(24):
        origin, stressed = ("MELD" if i % 2 else "IEMOCAP"), i % 3 == 0
        wav = clip(corpus / f"{origin}_Audio" / f"utt{i}.wav", i, pathological=stressed, rate=22050)
        path = wav
        if origin == "MELD":
            path = to_mp4(wav, wav.with_suffix(".mp4"))
            wav.unlink()
        rows.append({"audio_path": str(path.relative_to(corpus)), "target_stress": int(stressed),
                     "split": ["train", "train", "dev", "test"][i % 4], "dataset_origin": origin})
    pd.DataFrame(rows).to_csv(corpus / "stress.csv", index=False)

    def edit(params, root):
        params["data"].update({"source": "local", "path": str(corpus), "layout": "csv"})
        params["data"]["csv"].update({"file": "stress.csv", "path_column": "audio_path",
                                      "label_column": "target_stress", "speaker_column": None,
                                      "split_column": "split"})
        params["split"]["strategy"] = "given"
        params["train"]["feature_sets"] = ["handcrafted"]

    project = make_project(tmp_path_factory.mktemp("csv-project"), edit)
    root, _ = project
    output = dvc(project, "repro", "evaluate@handcrafted")
    assert stages_run(output) == BRANCH
    manifest = pd.read_csv(root / "data/manifest.csv")
    assert len(manifest) == 24 and set(manifest["format"]) == {"MP4", "WAV"}
    splits = pd.read_csv(root / "data/splits.csv")
    assert splits["split"].value_counts().to_dict() == {"train": 12, "validation": 6, "test": 6}
    metrics = json.loads((root / "metrics/details/handcrafted.json").read_text())
    assert metrics["n_test"] == 6 and metrics["speaker_overlap"] is True  # the table names no speakers
    assert metrics["protocol"]["normalize"] == "global"  # so no per-speaker statistics, and one line says so
    assert "train: the corpus names no speakers, so features are standardised with the training statistics" \
        in output
