"""Inputs that used to be lost or changed without a word: each is now read, or rejected and counted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import REPO_ROOT, speech_like, to_mp4, write_wav
from vocalab.datasets.base import Candidate
from vocalab.datasets.layouts import scan_corpus
from vocalab.manifest_build import build_manifest, merge_manifests

RATE = 16000


def test_aiff_and_m4a_files_are_read_not_counted_as_other(tmp_path):
    root = tmp_path / "corpus"
    for k, label in enumerate(("happy", "sad")):
        (root / label).mkdir(parents=True)
        sf.write(root / label / f"spk1_{label}.aiff", speech_like(10 + k), RATE, format="AIFF")
        sf.write(root / label / f"spk2_{label}.aif", speech_like(20 + k), RATE, format="AIFF")
        wav = write_wav(tmp_path / f"{label}.wav", speech_like(30 + k), RATE)
        to_mp4(wav, root / label / f"spk3_{label}.m4a")
    (root / "happy" / "notes.txt").write_text("not audio")
    candidates = scan_corpus(root, layout="folders", dataset="f")
    manifest, rejects = build_manifest(candidates, dataset="f", root=root, progress=False)
    assert len(manifest) == 6 and rejects.empty
    assert {p.rsplit(".", 1)[1] for p in manifest["path"]} == {"aiff", "aif", "m4a"}
    from vocalab.datasets.base import count_other_files

    assert count_other_files(root) == 1  # the text file, and only it


@pytest.mark.parametrize("name", ["a.wav", "b.wav"])
def test_the_same_audio_under_two_labels_is_rejected_naming_both(tmp_path, name):
    audio = write_wav(tmp_path / "a.wav", speech_like(5), RATE)
    shutil.copy(audio, tmp_path / "b.wav")
    write_wav(tmp_path / "c.wav", speech_like(6), RATE)
    candidates = [Candidate(tmp_path / "a.wav", "f_a", "s1", "happy"),
                  Candidate(tmp_path / "b.wav", "f_b", "s2", "sad"), Candidate(tmp_path / "c.wav", "f_c", "s1", "sad")]
    manifest, rejects = build_manifest(candidates, dataset="f", root=tmp_path, progress=False)
    assert manifest["utt_id"].tolist() == ["f_c"]
    assert set(rejects["reason"]) == {"conflicting_labels"} and len(rejects) == 2
    detail = rejects.set_index("path").loc[name, "detail"]
    other = "b.wav" if name == "a.wav" else "a.wav"
    assert other in detail and "same audio" in detail and "\n" not in detail


def test_the_same_audio_under_two_labels_in_two_merged_corpora_is_rejected_naming_both(tmp_path):
    audio = write_wav(tmp_path / "one" / "a.wav", speech_like(5), RATE)
    (tmp_path / "two").mkdir()
    shutil.copy(audio, tmp_path / "two" / "x.wav")
    write_wav(tmp_path / "two" / "y.wav", speech_like(6), RATE)
    one = build_manifest([Candidate(audio, "one_a", "s1", "happy")], dataset="one", root=tmp_path, progress=False)
    two = build_manifest([Candidate(tmp_path / "two" / "x.wav", "two_x", "t1", "sad"),
                          Candidate(tmp_path / "two" / "y.wav", "two_y", "t1", "sad")], dataset="two",
                         root=tmp_path, progress=False)
    assert one[1].empty and two[1].empty  # each corpus alone is consistent
    manifest, rejects = merge_manifests([one, two])
    assert manifest["utt_id"].tolist() == ["two_y"]
    assert rejects["reason"].tolist() == ["conflicting_labels"] * 2
    detail = rejects.set_index("utt_id").loc["one_a", "detail"]
    assert "two/x.wav" in detail and "'sad'" in detail and "Keep one copy" in detail


def test_the_same_audio_with_the_same_label_is_kept(tmp_path):
    audio = write_wav(tmp_path / "a.wav", speech_like(5), RATE)
    shutil.copy(audio, tmp_path / "b.wav")
    candidates = [Candidate(tmp_path / "a.wav", "f_a", "s1", "happy"), Candidate(tmp_path / "b.wav", "f_b", "s1",
                                                                                  "happy")]
    manifest, rejects = build_manifest(candidates, dataset="f", root=tmp_path, progress=False)
    assert len(manifest) == 2 and rejects.empty


def _check(params_text: str, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(params_text)
    return subprocess.run([sys.executable, str(REPO_ROOT / "stages/check_params.py"), "--params", str(params)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")})


def test_a_misspelled_section_stops_the_params_check_stage(tmp_path):
    """The one stage that depends on the whole params.yaml names a section no other stage reads."""
    text = (REPO_ROOT / "params.yaml").read_text()
    good = _check(text, tmp_path)
    assert good.returncode == 0 and "sections valid" in good.stdout
    for bad in (text.replace("\nfeatures:", "\nfeaturs:", 1),  # a typo, nothing else changed
                text + "\nfeaturs:\n  n_mfcc: 40\n"):  # what 'dvc exp run -S +featurs.n_mfcc=40' writes
        done = _check(bad, tmp_path)
        assert done.returncode == 2 and "unknown params section 'featurs'" in done.stderr
        assert "Did you mean 'features'" in done.stderr and "Traceback" not in done.stderr
    done = _check(text.replace("  n_fft: 2048", "  n_fft: 64", 1).replace("  hop_length: 512", "  hop_length: 32"),
                  tmp_path)
    assert done.returncode == 2 and "mel filters fall between FFT bins" in done.stderr


def test_the_params_check_stage_depends_on_the_whole_file():
    import yaml

    stage = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]["check_params"]
    assert "params.yaml" in stage["deps"] and not stage.get("outs")


def test_a_truncated_wav_is_named_in_one_line(tmp_path):
    from vocalab.manifest_build import wav_truncation

    path = write_wav(tmp_path / "cut.wav", speech_like(1, duration_s=1.0), RATE)
    assert wav_truncation(path) is None
    path.write_bytes(path.read_bytes()[:20000])
    detail = wav_truncation(path)
    assert "cut.wav' is truncated" in detail and "32,000 bytes" in detail and "19,956" in detail
    assert np.isfinite(sf.info(str(path)).frames)  # libsndfile itself reads it as a shorter clip


def test_link_loops_under_a_local_corpus_are_counted_as_skipped(tmp_path):
    """A link that leads back to itself (directly or through others) is counted, never a traceback."""
    import json

    corpus = tmp_path / "corpus" / "Actor_01"
    for emotion in (1, 3):
        write_wav(corpus / f"03-01-0{emotion}-01-01-01-01.wav", speech_like(emotion), RATE)
    (corpus / "self.wav").symlink_to("self.wav")
    (corpus / "b").symlink_to("c")
    (corpus / "c").symlink_to("b")
    (corpus / "up").symlink_to("..")
    text = (REPO_ROOT / "params.yaml").read_text().replace("  source: synthetic ", "  source: local     ", 1)
    (tmp_path / "params.yaml").write_text(text)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "VOCALAB_CACHE": str(tmp_path / "cache")}
    for args in (["download.py", "--out", "data/raw"],
                 ["manifest.py", "--raw", "data/raw", "--out", "data/m.csv", "--rejects", "data/r.csv",
                  "--metrics", "data/m.json"]):
        done = subprocess.run([sys.executable, str(REPO_ROOT / "stages" / args[0]), *args[1:]], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    counts = json.loads((tmp_path / "data/m.json").read_text())
    assert counts["n_utterances"] == 2 and counts["skipped_by_reason"] == {"link_loop": 3, "linked_folder": 1}
    assert counts["n_audio_files"] + counts["n_other_files"] + counts["n_skipped"] == 6  # every entry on disk


def _manifest(rows):
    import pandas as pd

    return pd.DataFrame([{"utt_id": f"u{i}", "speaker": s, "label": label} for i, (s, label) in enumerate(rows)])


def test_speaker_folders_read_as_classes_are_named_not_blamed_on_the_split():
    from vocalab.errors import ManifestError
    from vocalab.splits import SplitConfig, assign_splits

    actors_as_labels = _manifest([(f"f_{a:02d}", f"Actor_{a:02d}") for a in range(1, 9) for _ in range(3)])
    with pytest.raises(ManifestError, match=r"each of the 8 labels is spoken by one speaker.*speaker_regex"):
        assign_splits(actors_as_labels, SplitConfig())
    one_speaker = _manifest([("f_03", label) for label in ("happy", "sad") for _ in range(5)])
    for strategy in ("speaker", "speaker_kfold"):
        with pytest.raises(ManifestError, match=r"one speaker \('f_03'\) for all 10 files.*data\.layout"):
            assign_splits(one_speaker, SplitConfig(strategy=strategy))
    # a pathology corpus: every speaker has one label, but a label has many speakers; that splits fine
    pathology = _manifest([(f"s{s}", "healthy" if s % 2 else "dysarthric") for s in range(8) for _ in range(3)])
    assert set(assign_splits(pathology, SplitConfig())["split"]) == {"train", "validation", "test"}


def test_the_csv_layout_counts_every_entry_on_disk_once(tmp_path):
    from vocalab.datasets.base import count_other_files
    from vocalab.manifest import manifest_summary

    root = tmp_path / "corpus"
    for k, name in enumerate(("a.wav", "b.wav", "c.wav", "unlisted.wav")):
        write_wav(root / "audio" / name, speech_like(40 + k), RATE)
    (root / "README.txt").write_text("about this corpus")
    (root / "metadata.csv").write_text("path,label,speaker\n"
                                       "audio/a.wav,happy,s1\naudio/b.wav,sad,s2\naudio/c.wav,sad,s1\n"
                                       "audio/missing.wav,happy,s2\n,happy,s1\naudio/a.wav,happy,s1\n")
    manifest, rejects = build_manifest(scan_corpus(root, layout="csv", dataset="t"), dataset="t", root=root,
                                       progress=False)
    summary = manifest_summary(manifest, rejects, n_other_files=count_other_files(root))
    on_disk = sum(1 for p in root.rglob("*") if p.is_file())
    assert on_disk == 6
    assert summary["n_audio_files"] + summary["n_other_files"] + summary["n_skipped"] == on_disk
    assert summary["n_audio_files"] == 4 and summary["n_other_files"] == 2 and summary["n_table_rows_rejected"] == 3
    assert summary["rejected_by_reason"] == {"duplicate_row": 1, "missing_file": 1, "not_in_table": 1,
                                             "table_row": 1}
    details = " ".join(rejects["detail"])
    assert "unlisted.wav" in details and "missing.wav" in details and "line 6" in details and "line 7" in details
