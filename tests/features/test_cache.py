"""The per-utterance feature cache: a growing corpus is extracted only where it grew, and the
store is the same bytes as a cold run's; damaged entries are recomputed, never read."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import speech_like, write_wav
from vocalab.audio import audio_hash
from vocalab.cli import main
from vocalab.features import cache as feature_cache
from vocalab.features.base import Extractor
from vocalab.features.extraction import extract_manifest, open_cache
from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor
from vocalab.features.store import FILES, Output

EXTRACTOR = HandcraftedExtractor(HandcraftedConfig())


def corpus(folder, n, start=0):
    rows = []
    for i in range(start, start + n):
        path = write_wav(folder / f"utt{i:02d}.wav", speech_like(i, duration_s=0.4 + 0.05 * i), 16000)
        rows.append({"utt_id": f"utt{i:02d}", "path": str(path), "duration_s": 0.4 + 0.05 * i,
                     "audio_hash": audio_hash(path)})
    return pd.DataFrame(rows)


def store_bytes(folder):
    return {name: (folder / name).read_bytes() for name in FILES}


def run(manifest, out, cache_root, **options):
    options = {"workers": 1, "shard_size": 3, **options}
    return extract_manifest(manifest, EXTRACTOR, out, cache_root=cache_root, progress=False, **options)


def test_a_grown_corpus_extracts_only_the_new_files_and_matches_a_cold_run(tmp_path):
    first = corpus(tmp_path / "audio", 8)
    run(first, tmp_path / "v1", tmp_path / "cache")
    grown = pd.concat([first, corpus(tmp_path / "audio", 3, start=8)], ignore_index=True)
    warm = run(grown, tmp_path / "warm", tmp_path / "cache", workers=2)
    assert (warm.cached, warm.extracted) == (8, 3)
    cold = run(grown, tmp_path / "cold", tmp_path / "cold-cache")
    assert (cold.cached, cold.extracted) == (0, 11)
    assert store_bytes(tmp_path / "warm") == store_bytes(tmp_path / "cold")

    # files removed from the manifest leave the store; a file moved or renamed is still a hit
    shrunk = grown.drop(index=[2, 5]).reset_index(drop=True)
    moved = tmp_path / "elsewhere" / "renamed.wav"
    moved.parent.mkdir()
    (tmp_path / "audio" / "utt00.wav").rename(moved)
    shrunk.loc[0, "path"] = str(moved)
    again = run(shrunk, tmp_path / "shrunk", tmp_path / "cache")
    assert (again.cached, again.extracted) == (9, 0)
    run(shrunk, tmp_path / "shrunk-cold", tmp_path / "cold-cache-2")
    assert store_bytes(tmp_path / "shrunk") == store_bytes(tmp_path / "shrunk-cold")


def test_without_audio_hashes_the_files_are_hashed(tmp_path):
    manifest = corpus(tmp_path / "audio", 4)
    run(manifest, tmp_path / "a", tmp_path / "cache")
    report = run(manifest.drop(columns="audio_hash"), tmp_path / "b", tmp_path / "cache")
    assert report.cached == 4 and store_bytes(tmp_path / "a") == store_bytes(tmp_path / "b")


@pytest.mark.parametrize("damage", ["truncate", "flip a byte", "empty", "not an entry"])
def test_a_damaged_entry_is_recomputed_never_read(tmp_path, damage):
    manifest = corpus(tmp_path / "audio", 5)
    run(manifest, tmp_path / "cold", tmp_path / "cache")  # shards of 3 and 2 files: two segments
    cache = open_cache(EXTRACTOR, tmp_path / "cache")
    shutil.rmtree(cache.pack_folder)  # the pack holds every row; without it, rows come from entries
    key = manifest["audio_hash"][4]
    segment, offset, length = cache.locate(key)
    data = segment.read_bytes()
    assert offset + length == len(data)  # the last entry of its segment
    entry = data[offset:]
    damaged = {"truncate": entry[:length // 2], "flip a byte": entry[:-9] + bytes([entry[-9] ^ 1]) + entry[-8:],
               "empty": b"", "not an entry": b"PK\x03\x04" + entry[4:]}[damage]
    segment.write_bytes(data[:offset] + damaged)
    report = run(manifest, tmp_path / "warm", tmp_path / "cache")
    assert report.corrupt == 1 and "1 damaged cache entries recomputed" in report.line("extract")
    assert store_bytes(tmp_path / "warm") == store_bytes(tmp_path / "cold")
    assert open_cache(EXTRACTOR, tmp_path / "cache").get(key).to_bytes() == entry  # written whole, anew


def test_a_lost_segment_or_a_torn_index_line_costs_only_a_recomputation(tmp_path):
    manifest = corpus(tmp_path / "audio", 5)
    run(manifest, tmp_path / "cold", tmp_path / "cache")
    cache = open_cache(EXTRACTOR, tmp_path / "cache")
    shutil.rmtree(cache.pack_folder)
    cache.locate(manifest["audio_hash"][0])[0].unlink()  # the first segment: files 0, 1 and 2
    with open(cache.folder / "index", "ab") as handle:
        handle.write(b'\n{"segment":"0123.seg","entries":[["ab",0')  # a writer that died mid-line
    report = run(manifest, tmp_path / "warm", tmp_path / "cache")
    assert report.corrupt == 3  # found missing when read, and recomputed
    assert store_bytes(tmp_path / "warm") == store_bytes(tmp_path / "cold")
    shutil.rmtree(cache.pack_folder)
    again = run(manifest, tmp_path / "again", tmp_path / "cache")  # the lines after the torn one are read
    assert again.corrupt == 0 and store_bytes(tmp_path / "again") == store_bytes(tmp_path / "cold")
    assert open_cache(EXTRACTOR, tmp_path / "cache").keys() == set(manifest["audio_hash"])


def test_a_cold_run_writes_a_segment_per_shard_not_a_file_per_utterance(tmp_path):
    manifest = corpus(tmp_path / "audio", 7)
    run(manifest, tmp_path / "cold", tmp_path / "cache", shard_size=3)
    cache = open_cache(EXTRACTOR, tmp_path / "cache")
    assert len(list((cache.folder / "segments").iterdir())) == 3
    assert cache.keys() == set(manifest["audio_hash"])


def test_entries_round_trip_every_shape_and_dtype():
    entry = feature_cache.Entry({"a": (np.arange(12, dtype=np.float16).reshape(4, 3), np.ones(6, np.float32)),
                                 "b": (np.zeros((0, 5), np.float32), np.zeros(10, np.float32))})
    back = feature_cache.Entry.from_bytes(entry.to_bytes())
    for name, (frames, row) in entry.outputs.items():
        assert back.outputs[name][0].dtype == frames.dtype and back.outputs[name][0].shape == frames.shape
        np.testing.assert_array_equal(back.outputs[name][0], frames)
        np.testing.assert_array_equal(back.outputs[name][1], row)


def test_the_fingerprint_follows_parameters_code_and_libraries():
    metas = [{"feature_set": "x", "params": {"n_mfcc": 13}}]
    code = {"vocalab/features/handcrafted.py": "abc", "lib:numpy": "2.4.6"}
    base = feature_cache.fingerprint(metas, code)
    assert base == feature_cache.fingerprint(metas, dict(code))
    assert base != feature_cache.fingerprint([{"feature_set": "x", "params": {"n_mfcc": 40}}], code)
    assert base != feature_cache.fingerprint(metas, {**code, "vocalab/features/handcrafted.py": "abd"})
    assert base != feature_cache.fingerprint(metas, {**code, "lib:numpy": "2.5.0"})
    version = feature_cache.code_version("vocalab.features.handcrafted")
    assert {"vocalab/features/handcrafted.py", "vocalab/features/mel.py", "vocalab/audio.py",
            "vocalab/features/compute.py", "lib:numpy", "lib:soxr", "lib:scipy"} <= set(version)
    # neither another extractor, nor the plumbing around every extractor, nor a library it does not import
    assert not {"vocalab/features/wav2vec2.py", "vocalab/params.py", "vocalab/features/registry.py",
                "vocalab/features/base.py", "vocalab/features/cache.py", "lib:torch"} & set(version)


def test_size_report_and_prune(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VOCALAB_CACHE", str(tmp_path / "vc"))
    manifest = corpus(tmp_path / "audio", 6)
    extract_manifest(manifest, HandcraftedExtractor(HandcraftedConfig(n_mfcc=20)), tmp_path / "old", workers=1,
                     progress=False)
    extract_manifest(manifest, EXTRACTOR, tmp_path / "a", workers=1, progress=False)
    extract_manifest(manifest.iloc[:4], EXTRACTOR, tmp_path / "b", workers=1, progress=False)  # the last run
    assert main(["cache"]) == 0
    shown = capsys.readouterr().out
    assert "12 entries" in shown and "not used by the last run" in shown
    rows = feature_cache.usage()
    assert sorted((r.entries, r.last_run) for r in rows) == [(6, False), (6, True)]
    assert main(["cache", "prune"]) == 0
    assert "deleted 8 entries" in capsys.readouterr().out
    assert [(r.entries, r.last_run) for r in feature_cache.usage()] == [(4, True)]
    cache = open_cache(EXTRACTOR)
    assert len(list((cache.folder / "segments").iterdir())) == 1  # the six entries' segment, rewritten with four
    shutil.rmtree(cache.pack_folder)  # the rows now come from the rewritten entries
    report = extract_manifest(manifest.iloc[:4], EXTRACTOR, tmp_path / "c", workers=1, progress=False)
    assert (report.cached, report.corrupt) == (4, 0)
    assert store_bytes(tmp_path / "c") == store_bytes(tmp_path / "b")
    assert main(["cache", "prune", "--all"]) == 0
    assert feature_cache.usage() == [] and "0 entries" in capsys.readouterr().out


class _TwoOutputs(Extractor):
    """A toy extractor with two stores from one pass; ``short`` has no frames for clips under 0.6 s."""

    name, sampling_rate = "two", 16000

    def outputs(self):
        return [Output("long", 2, "float32", {"feature_set": "long", "feature_names": ["a", "b"]}),
                Output("short", 1, "float16", {"feature_set": "short", "feature_names": ["c"]})]

    def extract(self, samples, sampling_rate):
        frames = np.abs(samples[:len(samples) // 800 * 800]).reshape(-1, 800).mean(axis=1, keepdims=True)
        return {"long": np.hstack([frames, frames ** 2]), "short": frames if len(samples) >= 9600 else frames[:0]}


def two_stores(folder):
    return {name: store_bytes(folder / name) for name in ("long", "short")}


def test_the_last_store_is_kept_whole_and_rows_come_from_it(tmp_path):
    extractor = _TwoOutputs()
    first = corpus(tmp_path / "audio", 6)
    first = pd.concat([first, first.iloc[[1]].assign(utt_id="again")], ignore_index=True)  # one file listed twice
    dirs = lambda name: {o: tmp_path / name / o for o in ("long", "short")}  # noqa: E731
    extract_manifest(first, extractor, dirs("v1"), workers=1, cache_root=tmp_path / "cache", progress=False)
    cache = open_cache(extractor, tmp_path / "cache")
    shutil.rmtree(cache.folder / "segments")  # from here on, rows held by the pack can only come from the pack
    grown = pd.concat([corpus(tmp_path / "audio", 2, start=6), first.iloc[::-1]], ignore_index=True)
    warm = extract_manifest(grown, extractor, dirs("warm"), workers=1, cache_root=tmp_path / "cache", progress=False)
    assert (warm.cached, warm.extracted, warm.absent) == (7, 2, {"long": 0, "short": 5})
    cold = extract_manifest(grown, extractor, dirs("cold"), workers=1, cache_root=tmp_path / "cold-cache",
                            progress=False)
    assert two_stores(tmp_path / "warm") == two_stores(tmp_path / "cold")
    # the pack now holds the grown store: every row of it comes from there
    again = extract_manifest(grown, extractor, dirs("again"), workers=1, cache_root=tmp_path / "cache",
                             progress=False)
    assert (again.cached, again.extracted) == (9, 0) and cold.extracted == 8
    assert two_stores(tmp_path / "again") == two_stores(tmp_path / "cold")


@pytest.mark.parametrize("damage", ["flip a byte in the frames", "truncate the offsets", "lose the pooled rows",
                                    "garble the index", "lose the index"])
def test_a_damaged_pack_is_dropped_never_read(tmp_path, damage):
    manifest = corpus(tmp_path / "audio", 5)
    run(manifest, tmp_path / "cold", tmp_path / "cache")
    folder = open_cache(EXTRACTOR, tmp_path / "cache").pack_folder
    frames, offsets = folder / "handcrafted" / "frames.npy", folder / "handcrafted" / "offsets.npy"
    if damage == "flip a byte in the frames":
        data = bytearray(frames.read_bytes())
        data[-5] ^= 1
        frames.unlink()  # a file of its own: the store's copy stays as it was
        frames.write_bytes(bytes(data))
    elif damage == "truncate the offsets":
        data = offsets.read_bytes()
        offsets.unlink()
        offsets.write_bytes(data[:-8])
    elif damage == "lose the pooled rows":
        (folder / "handcrafted" / "pooled.npy").unlink()
    elif damage == "garble the index":
        (folder / "index.json").write_text('{"version": 1, "outputs": {"handcrafted": {"keys": 7}}}')
    else:
        (folder / "index.json").unlink()
    report = run(manifest, tmp_path / "warm", tmp_path / "cache")
    assert report.pack_damaged and "a damaged pack of the last store dropped" in report.line("extract")
    assert (report.cached, report.extracted) == (5, 0)  # from the entries
    assert store_bytes(tmp_path / "warm") == store_bytes(tmp_path / "cold")
    again = run(manifest, tmp_path / "again", tmp_path / "cache")  # the pack was written anew
    assert not again.pack_damaged and store_bytes(tmp_path / "again") == store_bytes(tmp_path / "cold")


def test_two_runs_that_save_a_pack_at_once_leave_one_whole_pack(tmp_path, monkeypatch):
    from vocalab.features import pack

    manifest = corpus(tmp_path / "audio", 4)
    run(manifest, tmp_path / "first", tmp_path / "cache")
    folder = open_cache(EXTRACTOR, tmp_path / "cache").pack_folder
    other = tmp_path / "other-pack"
    shutil.copytree(folder, other)
    replace = pack.os.replace

    def racing(source, target):  # the other run renames its pack into place between our two renames
        if Path(target) == folder and Path(source).name.endswith(".tmp"):
            replace(other, folder)
        return replace(source, target)

    monkeypatch.setattr(pack.os, "replace", racing)
    run(manifest.iloc[:3], tmp_path / "second", tmp_path / "cache")
    monkeypatch.undo()
    assert sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(".")) == []
    again = run(manifest, tmp_path / "again", tmp_path / "cache")  # the pack that won is whole, and used
    assert not again.pack_damaged and store_bytes(tmp_path / "again") == store_bytes(tmp_path / "first")


def test_prune_keeps_segments_that_hold_only_used_entries_and_drops_the_rest(tmp_path):
    manifest = corpus(tmp_path / "audio", 6)
    run(manifest, tmp_path / "all", tmp_path / "cache")  # shards of 3: two segments
    cache = open_cache(EXTRACTOR, tmp_path / "cache")
    first = cache.locate(manifest["audio_hash"][0])[0]
    second = cache.locate(manifest["audio_hash"][3])[0]
    size = second.stat().st_size
    legacy = cache.folder / "ab" / f"ab{'0' * 62}.entry"  # a file per entry, as an earlier layout kept them
    legacy.parent.mkdir()
    legacy.write_bytes(b"x" * 100)
    run(manifest.iloc[:3], tmp_path / "half", tmp_path / "cache")  # the last run: the first segment's files
    entries, freed = feature_cache.prune(tmp_path / "cache")
    assert entries == 3 and freed >= size + 100 and not legacy.parent.exists()
    assert sorted((cache.folder / "segments").iterdir()) == [first] and not second.exists()
    assert open_cache(EXTRACTOR, tmp_path / "cache").keys() == set(manifest["audio_hash"][:3])
    assert feature_cache.usage(tmp_path / "cache")[0].entries == 3
