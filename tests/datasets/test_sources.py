"""Several corpora in one manifest: data.sources, data.label_map, a split across corpora."""

import pytest

from tests.conftest import speech_like, write_wav
from vocalab.datasets.config import DataConfig
from vocalab.datasets.layouts import scan_corpora
from vocalab.datasets.sources import put_corpora
from vocalab.errors import ParamsError
from vocalab.manifest_build import build_manifest, merge_manifests
from vocalab.params import from_mapping
from vocalab.splits import SplitConfig, assign_splits, speaker_overlap

LABEL_MAP = {"fearful": "fear", "calm": None, "pleasant_surprise": "surprised", "neutral": "neutral",
             "happy": "happy", "angry": "angry", "surprised": "surprised"}


@pytest.fixture
def two_corpora(tmp_path):
    ravdess, tess = tmp_path / "ravdess", tmp_path / "tess"
    for actor in (1, 2, 3, 4):
        for emotion in (1, 2, 3, 5, 6, 8):
            write_wav(ravdess / f"Actor_{actor:02d}" / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav",
                      speech_like(actor * 10 + emotion, duration_s=0.4), 48000)
    for s, speaker in enumerate(("OAF", "YAF")):
        for w, word in enumerate(("back", "bath")):
            for e, emotion in enumerate(("angry", "fear", "happy", "neutral", "ps")):
                write_wav(tess / f"{speaker}_{emotion}" / f"{speaker}_{word}_{emotion}.wav",
                          speech_like(100 + 10 * s + 5 * w + e, duration_s=0.4), 24414)  # every file its own audio
    return ravdess, tess


def config_for(ravdess, tess, **extra):
    return from_mapping(DataConfig, {
        "path": str(ravdess.parent),  # the folder DVC watches: the local corpora lie under it
        "sources": [{"source": "local", "path": str(ravdess), "layout": "ravdess"},
                    {"source": "local", "path": tess.name, "layout": "tess"}],  # relative to data.path
        "label_map": LABEL_MAP, **extra}, section="data")


def merged(config, raw):
    put_corpora(config, raw)
    return merge_manifests([build_manifest(c.candidates, dataset=c.dataset, hashes=c.hashes, progress=False)
                            for c in scan_corpora(config, raw)])


def test_ravdess_and_tess_merge_into_one_label_set(two_corpora, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    manifest, rejects = merged(config_for(*two_corpora), tmp_path / "data/raw")
    for name in ("ravdess", "tess"):  # each indexed in its folder of data/raw, and read where it lies
        assert [p.name for p in (tmp_path / "data/raw" / name).iterdir()] == ["corpus-index.json"]
    assert manifest["path"].str.startswith("ravdess/Actor_").sum() == 20
    assert set(manifest["label"]) == {"angry", "fear", "happy", "neutral", "surprised"}
    assert set(manifest["dataset"]) == {"ravdess", "tess"} and manifest["utt_id"].is_monotonic_increasing
    assert manifest["speaker"].nunique() == 6 and manifest["speaker"].str.match(r"^(ravdess|tess)_").all()
    # calm is mapped to null: left out, and said so
    assert len(rejects) == 4 and rejects["detail"].str.contains("'calm' is mapped to null").all()
    assert set(rejects["reason"]) == {"left_out_by_label_map"}  # not blamed on the layout
    splits = assign_splits(manifest, SplitConfig(test_fraction=0.34, validation_fraction=0.0))
    assert speaker_overlap(splits) is False
    assert set(splits.loc[splits["split"] == "test", "speaker"]) and set(splits["split"]) == {"train", "test"}


def test_a_label_the_map_does_not_cover_is_named_with_its_corpus(two_corpora, tmp_path):
    config = config_for(*two_corpora, label_map={k: v for k, v in LABEL_MAP.items() if k != "pleasant_surprise"})
    put_corpora(config, tmp_path / "raw")
    with pytest.raises(ParamsError, match=r"label 'pleasant_surprise' of corpus 'tess' is not covered"):
        scan_corpora(config, tmp_path / "raw")


def test_sources_params_are_checked(two_corpora, tmp_path_factory):
    ravdess, _ = two_corpora
    root = str(ravdess.parent)
    entry = {"source": "local", "path": str(ravdess), "layout": "ravdess"}
    with pytest.raises(ParamsError, match=r"names corpora \['ravdess', 'ravdess'\]; give each a different 'name'"):
        from_mapping(DataConfig, {"path": root, "sources": [entry, entry]}, section="data")
    named = from_mapping(DataConfig, {"path": root, "sources": [entry, {**entry, "name": "ravdess_b"}]},
                         section="data")
    assert [c.dataset for c in named.corpora()] == ["ravdess", "ravdess_b"]
    with pytest.raises(ParamsError, match=r"'data\.sources' lists the corpora, so leave 'data\.source'"):
        from_mapping(DataConfig, {"source": "local", "path": str(ravdess), "sources": [entry]}, section="data")
    with pytest.raises(ParamsError, match=r"'data\.sources\[0\]\.path' is required"):
        from_mapping(DataConfig, {"path": root, "sources": [{"source": "local"}]}, section="data")
    # a local corpus outside data.path would be invisible to DVC's dependency on data.path
    elsewhere = str(tmp_path_factory.mktemp("elsewhere"))
    with pytest.raises(ParamsError, match=r"'data\.sources\[0\]\.path' = .* is outside data\.path .* common parent"):
        from_mapping(DataConfig, {"path": root, "sources": [{**entry, "path": elsewhere}]}, section="data")
    with pytest.raises(ParamsError, match=r"'data\.sources\[0\]\.path' = 'nosuch' is not a folder under data\.path"):
        from_mapping(DataConfig, {"path": root, "sources": [{**entry, "path": "nosuch"}]}, section="data")
