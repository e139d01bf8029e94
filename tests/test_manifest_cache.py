"""The manifest's cache: a file with known content is not decoded again, and a damaged cache costs a decode."""

import json

import pytest

from tests.conftest import tone, write_wav
from vocalab import manifest_build
from vocalab.datasets.layouts import scan_corpus
from vocalab.imports import code_hashes
from vocalab.manifest_build import build_manifest
from vocalab.manifest_cache import ManifestCache, manifest_fingerprint


@pytest.fixture
def decodes(monkeypatch):
    """The files inspect_file decodes."""
    seen = []
    real = manifest_build.inspect_file
    monkeypatch.setattr(manifest_build, "inspect_file", lambda path, *a: seen.append(path.name) or real(path, *a))
    return seen


def build(root, cache):
    return build_manifest(scan_corpus(root, layout="ravdess", dataset="ravdess"), dataset="ravdess",
                          progress=False, cache=cache)


def test_known_content_is_not_decoded_again_and_gives_the_same_manifest(ravdess_tree, tmp_path, decodes):
    first, rejects = build(ravdess_tree, cache := ManifestCache(tmp_path / "cache"))
    assert len(decodes) == 24 and cache.save() == 24 and cache.hits == 0 and rejects.empty
    decodes.clear()
    write_wav(ravdess_tree / "Actor_05" / "03-01-05-01-01-01-05.wav", tone(300), 16000)  # one new file
    second, _ = build(ravdess_tree, cache := ManifestCache(tmp_path / "cache"))
    assert decodes == ["03-01-05-01-01-01-05.wav"] and cache.hits == 24 and cache.save() == 1
    assert second.drop(second.index[second["actor"] == 5]).reset_index(drop=True).equals(first)
    decodes.clear()
    third, _ = build(ravdess_tree, ManifestCache(tmp_path / "cache"))
    assert decodes == [] and third.equals(second)


def test_a_damaged_line_is_decoded_again_and_a_rejected_file_is_never_kept(ravdess_tree, tmp_path, decodes):
    cache = ManifestCache(tmp_path / "cache")
    build(ravdess_tree, cache)
    cache.save()
    lines = cache.path.read_text().splitlines()
    entry = json.loads(lines[0])
    lines[0] = json.dumps({**entry, "sample_rate": "16000"})  # a wrong type
    cache.path.write_text("\n".join(lines) + '\n{"audio_hash": "ab", "dura')  # and a line cut short
    decodes.clear()
    cache = ManifestCache(tmp_path / "cache")
    assert len(cache.known) == 23
    manifest, _ = build(ravdess_tree, cache)
    assert len(decodes) == 1 and cache.save() == 1
    assert len(ManifestCache(tmp_path / "cache").known) == 24  # appended after the cut line, not onto it
    (ravdess_tree / "Actor_01" / "03-01-01-01-01-01-01.wav").write_bytes(b"RIFF broken")
    decodes.clear()
    manifest, rejects = build(ravdess_tree, cache := ManifestCache(tmp_path / "cache"))
    assert decodes == ["03-01-01-01-01-01-01.wav"] and list(rejects["reason"]) == ["unreadable"]
    assert cache.save() == 0


def test_the_fingerprint_covers_the_code_that_decodes():
    code = code_hashes(["vocalab.manifest_build"])
    assert {"vocalab/manifest_build.py", "vocalab/audio.py"} <= set(code)
    assert len(manifest_fingerprint()) == 24
