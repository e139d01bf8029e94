import numpy as np
import opensmile
import pandas as pd
import pytest

from tests.conftest import speech_like, write_wav
from vocalab.audio import load_audio
from vocalab.errors import ParamsError
from vocalab.features.extraction import extract_manifest
from vocalab.features.opensmile import OpenSmileConfig, OpenSmileExtractor
from vocalab.features.registry import writer_of
from vocalab.features.store import FeatureStore
from vocalab.params import from_mapping


@pytest.fixture(scope="module")
def extractor():
    return OpenSmileExtractor(OpenSmileConfig())


def reference(signal, feature_set, level):
    smile = opensmile.Smile(feature_set=getattr(opensmile.FeatureSet, feature_set),
                            feature_level=getattr(opensmile.FeatureLevel, level))
    return smile.process_signal(signal, 16000).to_numpy()


@pytest.mark.parametrize("name, feature_set", [("egemaps", "eGeMAPSv02"), ("compare", "ComParE_2016")])
def test_one_pass_gives_the_packages_numbers_at_both_levels(extractor, name, feature_set):
    signal = speech_like(3, duration_s=1.2)
    llds, functionals = extractor.extract(signal, 16000)[name]
    np.testing.assert_array_equal(functionals, reference(signal, feature_set, "Functionals")[0])
    np.testing.assert_array_equal(llds, reference(signal, feature_set, "LowLevelDescriptors").astype(np.float32))
    assert functionals.shape == ({"egemaps": 88, "compare": 6373}[name],)
    assert llds.shape[1] == {"egemaps": 25, "compare": 65}[name] and llds.dtype == np.float32


def test_other_rates_are_resampled_first(extractor):
    from vocalab.audio import resample

    signal = speech_like(4, sampling_rate=48000, duration_s=1.0)
    at_48k = extractor.extract(signal, 48000)["egemaps"][1]
    at_16k = extractor.extract(resample(signal, orig_sr=48000, target_sr=16000), 16000)["egemaps"][1]
    np.testing.assert_array_equal(at_48k, at_16k)


def test_a_clip_too_short_to_analyse_gives_no_frames(extractor):
    llds, functionals = extractor.extract(speech_like(0, duration_s=0.03), 16000)["egemaps"]
    assert llds.shape == (0, 25) and functionals.size == 0


def test_meta_declares_functionals_and_the_registry_knows_both_sets(extractor):
    meta = {o.name: o.meta for o in extractor.outputs()}
    assert meta["egemaps"]["pooled"] == "functionals" and len(meta["egemaps"]["pooled_names"]) == 88
    assert meta["egemaps"]["pooled_names"][0] == "F0semitoneFrom27.5Hz_sma3nz_amean"
    assert meta["compare"]["feature_names"][0] == "F0final_sma"
    assert writer_of("egemaps").name == writer_of("compare").name == "opensmile"
    assert writer_of("compare").section == "opensmile"


def test_unknown_configuration_is_refused():
    with pytest.raises(ParamsError, match=r"'opensmile\.egemaps' = 'eGeMAPSv03' is not allowed"):
        from_mapping(OpenSmileConfig, {"egemaps": "eGeMAPSv03"}, section="opensmile")


def test_over_a_manifest_short_clips_are_left_out_and_counted(extractor, tmp_path):
    rows = []
    for i, duration in enumerate((0.8, 0.03, 1.1)):
        path = write_wav(tmp_path / "audio" / f"u{i}.wav", speech_like(i, duration_s=duration), 16000)
        rows.append({"utt_id": f"u{i}", "path": str(path), "duration_s": duration,
                     "speech_start_s": 0.0, "speech_end_s": duration})  # the whole clip
    manifest = pd.DataFrame(rows)
    report = extract_manifest(manifest, extractor, {"egemaps": tmp_path / "egemaps", "compare": tmp_path / "compare"},
                              workers=2, shard_size=1, cache_root=tmp_path / "scratch", progress=False)
    assert report.absent == {"egemaps": 1, "compare": 1}
    store = FeatureStore(tmp_path / "egemaps")
    assert store.utt_ids == ["u0", "u2"] and store.meta.absent_utt_ids == ("u1",)
    assert store.meta.pooled == "functionals" and store.pooled.shape == (2, 88)
    samples, rate = load_audio(rows[2]["path"], sampling_rate=16000)
    np.testing.assert_array_equal(store.pooled[1], extractor.extract(samples, rate)["egemaps"][1].astype(np.float32))
    assert store.sequence("u0").shape[1] == 25


def test_each_store_records_only_its_own_params(extractor):
    meta = {o.name: o.meta for o in OpenSmileExtractor(OpenSmileConfig(egemaps="GeMAPSv01b")).outputs()}
    assert meta["egemaps"]["params"] == {"sample_rate": 16000, "window_s": 300.0, "egemaps": "GeMAPSv01b"}
    assert meta["compare"] == {o.name: o.meta for o in extractor.outputs()}["compare"]
    assert len(meta["egemaps"]["pooled_names"]) == 62
    rebuilt = writer_of("egemaps").from_params(meta["egemaps"]["params"])
    assert rebuilt.sets["egemaps"].config_name == "GeMAPSv01b"


def test_a_recording_longer_than_the_window_is_analysed_in_equal_windows():
    """Memory stays bounded on long files: LLDs of each window in order, functionals averaged by window length."""
    from vocalab.features.opensmile import window_bounds

    assert window_bounds(25, 10) == [0, 8, 16, 25] and window_bounds(10, 10) == [0, 10]
    windowed = OpenSmileExtractor(OpenSmileConfig(window_s=10.0))
    signal = np.concatenate([speech_like(seed, duration_s=7.0) for seed in range(3)] + [speech_like(9, duration_s=4.0)])
    llds, functionals = windowed.extract(signal, 16000)["egemaps"]
    bounds = window_bounds(len(signal), 160000)
    pieces = [signal[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    np.testing.assert_array_equal(
        llds, np.concatenate([reference(p, "eGeMAPSv02", "LowLevelDescriptors") for p in pieces]).astype(np.float32))
    expected = np.average([reference(p, "eGeMAPSv02", "Functionals")[0] for p in pieces], axis=0,
                          weights=[len(p) for p in pieces])
    np.testing.assert_allclose(functionals, expected, rtol=1e-12)
    manifest = pd.DataFrame({"utt_id": ["a", "b"], "duration_s": [25.0, 9.0]})
    meta = windowed.store_meta(manifest)
    assert meta["egemaps"]["windowed_utterances"]["utt_ids"] == ["a"] and set(meta) == {"egemaps", "compare"}
