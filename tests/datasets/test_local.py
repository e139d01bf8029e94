"""A local corpus is indexed where it lies: what the index holds, when it is hashed again, when it is stale."""

import json
import os

import pytest

from tests.conftest import speech_like, tone, write_wav
from vocalab.audio import audio_hash
from vocalab.datasets import local
from vocalab.datasets.config import DataConfig
from vocalab.datasets.layouts import scan_corpora
from vocalab.datasets.local import INDEX_FILE, check_index, index_corpus, read_index
from vocalab.errors import ManifestError
from vocalab.manifest_build import build_manifest
from vocalab.params import from_mapping


def corpus_of(root, actors=(1, 2)):
    for actor in actors:
        write_wav(root / f"Actor_{actor:02d}" / f"03-01-05-01-01-01-{actor:02d}.wav", tone(200 * actor), 16000)
    return root


def test_the_index_refuses_to_overlap_its_folder_or_an_empty_corpus(tmp_path):
    corpus_of(tmp_path / "data" / "raw")
    with pytest.raises(ManifestError, match=r"overlaps the pipeline's corpus folder"):
        index_corpus(tmp_path / "data" / "raw", tmp_path / "data" / "raw", progress=False)
    with pytest.raises(ManifestError, match=r"overlaps"):
        index_corpus(tmp_path / "data", tmp_path / "data" / "raw", progress=False)
    with pytest.raises(ManifestError, match=r"holds no files"):
        index_corpus(tmp_path / "empty-does-not-exist", tmp_path / "raw2", progress=False)


def test_the_index_lists_every_file_with_its_hash_and_rehashes_only_what_changed(tmp_path, monkeypatch):
    corpus, raw = corpus_of(tmp_path / "corpus"), tmp_path / "raw"
    (raw / "Actor_01").mkdir(parents=True)
    (raw / "Actor_01" / "old-copy.wav").write_bytes(b"a copy an earlier version left here")
    assert index_corpus(corpus, raw, progress=False) == (2, 2)
    assert sorted(p.name for p in raw.iterdir()) == [INDEX_FILE]  # nothing else stays in data/raw
    saved = json.loads((raw / INDEX_FILE).read_text())
    assert saved["root"] == corpus.resolve().as_posix()
    assert {rel: digest for rel, _, _, digest in saved["files"]} == {
        p.relative_to(corpus).as_posix(): audio_hash(p) for p in corpus.rglob("*.wav")}

    hashed = []
    monkeypatch.setattr(local, "audio_hash", lambda path: hashed.append(path.name) or audio_hash(path))
    assert index_corpus(corpus, raw, progress=False) == (2, 0) and hashed == []  # nothing changed
    write_wav(corpus / "Actor_03" / "03-01-05-01-01-01-03.wav", tone(700), 16000)  # added
    replaced = corpus / "Actor_02" / "03-01-05-01-01-01-02.wav"
    before = os.stat(replaced)
    write_wav(replaced, tone(900, duration_s=1.5), 16000)  # replaced, its old modification time put back
    os.utime(replaced, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert index_corpus(corpus, raw, progress=False) == (3, 2)
    assert sorted(hashed) == ["03-01-05-01-01-01-02.wav", "03-01-05-01-01-01-03.wav"]
    assert read_index(raw, corpus).files["Actor_02/03-01-05-01-01-01-02.wav"][2] == audio_hash(replaced)
    (corpus / "Actor_03" / "03-01-05-01-01-01-03.wav").unlink()
    assert index_corpus(corpus, raw, progress=False) == (2, 0)


def test_a_corpus_changed_after_indexing_stops_the_manifest_with_the_fix(tmp_path):
    corpus, raw = corpus_of(tmp_path / "corpus"), tmp_path / "raw"
    index_corpus(corpus, raw, progress=False)
    check_index(read_index(raw, corpus))  # unchanged: passes
    write_wav(corpus / "Actor_03" / "03-01-05-01-01-01-03.wav", tone(700), 16000)
    with pytest.raises(ManifestError, match=r"1 file\(s\) of the corpus at .* were added after 'download' indexed "
                                            r"it \(e\.g\. 'Actor_03/03-01-05-01-01-01-03\.wav'\)\. Run 'dvc repro'"):
        check_index(read_index(raw, corpus))
    (corpus / "Actor_03" / "03-01-05-01-01-01-03.wav").unlink()
    (corpus / "Actor_01" / "03-01-05-01-01-01-01.wav").write_bytes(b"not what was hashed")
    with pytest.raises(ManifestError, match=r"were changed after 'download'"):
        check_index(read_index(raw, corpus))
    (corpus / "Actor_01" / "03-01-05-01-01-01-01.wav").unlink()
    with pytest.raises(ManifestError, match=r"were removed after 'download'"):
        check_index(read_index(raw, corpus))
    with pytest.raises(ManifestError, match=r"indexes '.*corpus', not data\.path '.*elsewhere'. Run 'dvc repro'"):
        read_index(raw, tmp_path / "elsewhere")
    (raw / INDEX_FILE).write_text('{"version": 1, "root": "/x", "files": [["a.wav", 1]]}')  # damaged
    with pytest.raises(ManifestError, match=r"corpus-index\.json' is missing or unreadable.*dvc repro"):
        read_index(raw, corpus)


def test_the_manifest_reads_a_local_corpus_where_it_lies_with_the_indexed_hashes(tmp_path, monkeypatch):
    corpus = tmp_path / "elsewhere" / "corpus"
    for i, label in enumerate(("calm", "tense", "calm")):
        write_wav(corpus / label / f"spk{i % 2}_{i}.wav", speech_like(i, duration_s=0.5), 16000)
    write_wav(corpus / "calm" / ".spk0_hidden.wav", speech_like(9, duration_s=0.5), 16000)
    (corpus / "README.txt").write_text("about the corpus")
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    config = from_mapping(DataConfig, {"source": "local", "path": str(corpus), "layout": "folders"}, section="data")
    index_corpus(corpus, project / "data" / "raw", progress=False)
    [scanned] = scan_corpora(config, project / "data" / "raw")
    assert scanned.n_other_files == 1  # README.txt; the hidden clip was skipped when indexed
    read = []
    monkeypatch.setattr("vocalab.manifest_build.audio_hash", lambda path: read.append(path) or "")
    manifest, rejects = build_manifest(scanned.candidates, dataset="folders", hashes=scanned.hashes, progress=False)
    assert read == [] and len(rejects) == 0  # every hash came from the index
    assert sorted(manifest["path"]) == sorted(str(p.resolve()) for p in corpus.rglob("spk*_*.wav")
                                              if not p.name.startswith("."))
    assert list(manifest["audio_hash"]) == [audio_hash(p) for p in manifest["path"]]


def test_a_table_row_naming_a_file_the_index_lacks_is_a_reject(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    write_wav(corpus / "a.wav", speech_like(1, duration_s=0.5), 16000)
    (corpus / "metadata.csv").write_text("path,label,speaker\na.wav,calm,s1\nmissing.wav,tense,s2\n")
    monkeypatch.chdir(tmp_path)
    config = from_mapping(DataConfig, {"source": "local", "path": str(corpus), "layout": "csv"}, section="data")
    index_corpus(corpus, tmp_path / "raw", progress=False)
    [scanned] = scan_corpora(config, tmp_path / "raw")
    manifest, rejects = build_manifest(scanned.candidates, dataset="csv", hashes=scanned.hashes, progress=False)
    assert list(manifest["path"]) == ["corpus/a.wav"]
    assert len(rejects) == 1 and rejects["detail"][0] == (
        "line 3 of 'metadata.csv' names 'missing.wav', which is not a file under the corpus root")
    assert rejects["reason"][0] == "missing_file"
