"""Table-driven: kinds of bad input, each with the one outcome a user should see.

Every row is a kind of bad audio file, bad parameter or bad environment, and what
vocalab must do with it: a counted reject with a named reason, a one-line error
naming the key or file (never a traceback), or correct acceptance. The count of
kinds tried and handled is printed at the end of the run (see conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import speech_like, tone
from vocalab.datasets.config import DataConfig
from vocalab.datasets.layouts import scan_corpus
from vocalab.errors import ParamsError
from vocalab.features.handcrafted import HandcraftedConfig
from vocalab.features.opensmile import OpenSmileConfig
from vocalab.features.vggish import VGGishExtractorConfig
from vocalab.features.voice import VoiceConfig
from vocalab.features.wav2vec2 import Wav2Vec2ExtractorConfig
from vocalab.manifest_build import build_manifest
from vocalab.models.config import TrainConfig
from vocalab.params import from_mapping
from vocalab.splits import SplitConfig
from vocalab.vad import VADConfig

RATE = 16000


def _write(samples, rate=RATE, subtype="PCM_16", fmt=None):
    return lambda path: sf.write(path, samples, rate, subtype=subtype, format=fmt)


def _bytes(data: bytes):
    return lambda path: path.write_bytes(data)


def _truncated(path):
    sf.write(path, speech_like(1), RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[:60])  # a header that promises samples the file does not hold


def _half_missing(path):
    sf.write(path, speech_like(14, duration_s=2.0), RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a copy cut off halfway: libsndfile reads it as a 1 s clip


def _wrong_extension(path):
    sf.write(path.with_suffix(".flac"), speech_like(2), RATE, format="FLAC")
    path.with_suffix(".flac").rename(path)  # FLAC bytes under a .wav name: decoded by content


# kind -> (how to write the file, expected: "accept" or the reject reason)
FILES = {
    "empty file (0 bytes)": (_bytes(b""), "unreadable"),
    "text named .wav": (_bytes(b"this is not audio at all"), "unreadable"),
    "RIFF header only": (_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "), "unreadable"),
    "truncated data chunk (8 samples left)": (_truncated, "truncated"),
    "header promises twice the samples": (_half_missing, "truncated"),
    "valid header, 0 samples": (_write(np.zeros(0, np.float32)), "empty"),
    "digital silence": (_write(np.zeros(RATE, np.float32)), "silent"),
    "NaN samples": (_write(np.array([0.1, np.nan, 0.2] * 2000, np.float32), subtype="FLOAT"), "non_finite"),
    "infinite samples": (_write(np.array([0.1, np.inf, 0.2] * 2000, np.float32), subtype="FLOAT"), "non_finite"),
    "50 ms clip": (_write(tone(300, duration_s=0.05)), "too_short"),
    "one sample": (_write(np.array([0.5], np.float32)), "too_short"),
    "float32 WAV": (_write(speech_like(3), subtype="FLOAT"), "accept"),
    "float64 WAV": (_write(speech_like(4).astype(np.float64), subtype="DOUBLE"), "accept"),
    "24-bit WAV": (_write(speech_like(5), subtype="PCM_24"), "accept"),
    "8-bit unsigned WAV": (_write(speech_like(6), subtype="PCM_U8"), "accept"),
    "stereo": (_write(np.stack([speech_like(7), speech_like(8)], axis=1)), "accept"),
    "6 channels": (_write(np.stack([speech_like(i) for i in range(6)], axis=1)), "accept"),
    "8 kHz": (_write(speech_like(9, sampling_rate=8000), rate=8000), "accept"),
    "96 kHz": (_write(speech_like(10, sampling_rate=96000), rate=96000), "accept"),
    "FLAC bytes under .wav": (_wrong_extension, "accept"),
    "clipped at full scale": (_write(np.clip(speech_like(11) * 20, -1, 1)), "accept"),
    "large DC offset": (_write(speech_like(12) * 0.2 + 0.7), "accept"),
    "near-silent (-90 dBFS)": (_write(speech_like(13) * 3e-5, subtype="FLOAT"), "accept"),
}


@pytest.fixture(scope="module")
def corpus_outcome(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-corpus")
    names = {}
    for k, (kind, (write, _)) in enumerate(FILES.items()):
        name = f"03-01-01-01-01-01-{k + 1:02d}.wav"  # one valid RAVDESS name per kind (actor k + 1)
        path = root / f"Actor_{k + 1:02d}" / name
        path.parent.mkdir(parents=True)
        write(path)
        names[kind] = name
    manifest, rejects = build_manifest(scan_corpus(root, layout="ravdess", dataset="ravdess"), dataset="ravdess",
                                       root=root, progress=False)
    outcome = {}
    for kind, name in names.items():
        rejected = rejects[rejects["path"].str.endswith(name)]
        kept = manifest[manifest["path"].str.endswith(name)]
        assert len(rejected) + len(kept) == 1, f"{kind}: neither kept nor rejected (lost)"
        outcome[kind] = ("accept" if len(kept) else rejected["reason"].iloc[0],
                         "" if len(kept) else rejected["detail"].iloc[0])
    return outcome


@pytest.mark.parametrize("kind", list(FILES))
def test_bad_file(kind, corpus_outcome):
    outcome, detail = corpus_outcome[kind]
    assert outcome == FILES[kind][1], f"{kind}: {outcome} ({detail})"
    if outcome != "accept":
        assert "\n" not in detail and len(detail) > 10  # one line that names the file and what is wrong
        assert ".wav" in detail or "0 samples" in detail
    if kind == "empty file (0 bytes)":  # the fix is to copy it again, not to re-encode it
        assert "0 bytes" in detail and "Copy it again" in detail and "Re-encode" not in detail


# kind -> (config class, section, params, the error's text)
PARAMS = {
    "unknown key": (HandcraftedConfig, "features", {"n_mfccs": 40}, r"unknown params key 'features\.n_mfccs'"),
    "string for a number": (HandcraftedConfig, "features", {"n_mfcc": "forty"}, r"'features\.n_mfcc' = 'forty'"),
    "boolean for a number": (HandcraftedConfig, "features", {"n_mels": True}, r"'features\.n_mels' = True"),
    "negative count": (HandcraftedConfig, "features", {"n_mfcc": -1}, r"'features\.n_mfcc' = -1 is out of range"),
    "more MFCCs than mel bands": (HandcraftedConfig, "features", {"n_mfcc": 40, "n_mels": 20}, r"exceeds"),
    "fmax above Nyquist": (HandcraftedConfig, "features", {"fmax": 9000}, r"Nyquist"),
    "hop larger than the frame": (HandcraftedConfig, "features", {"hop_length": 4096}, r"larger than"),
    "fmin above fmax": (HandcraftedConfig, "features", {"fmin": 5000, "fmax": 4000}, r"'features\.fmin'"),
    "n_fft too small for n_mels": (HandcraftedConfig, "features", {"n_fft": 64, "hop_length": 32, "n_mels": 128},
                                   r"'features\.n_fft' = 64 and 'features\.n_mels' = 128: \d+ of the 128 mel filters"),
    "section given as a list": (HandcraftedConfig, "features", [1, 2], r"section 'features' must be a mapping"),
    "unknown openSMILE set": (OpenSmileConfig, "opensmile", {"egemaps": "eGeMAPSv9"}, r"'opensmile\.egemaps'"),
    "openSMILE rate too low": (OpenSmileConfig, "opensmile", {"sample_rate": 100}, r"'opensmile\.sample_rate'"),
    "unknown wav2vec2 init": (Wav2Vec2ExtractorConfig, "embeddings.wav2vec2", {"init": "pretrain"},
                              r"'embeddings\.wav2vec2\.init' = 'pretrain'.*Did you mean 'pretrained'"),
    "wav2vec2 device typo": (Wav2Vec2ExtractorConfig, "embeddings.wav2vec2", {"device": "gpu"},
                             r"embeddings\.wav2vec2\.device"),
    "VGGish unknown short-clip policy": (VGGishExtractorConfig, "embeddings.vggish", {"short_clips": "skip"},
                                         r"'embeddings\.vggish\.short_clips' = 'skip'"),
    "voice partials too sparse to cover a clip": (VoiceConfig, "embeddings.voice", {"rate": 0.5},
                                                  r"'embeddings\.voice\.rate' = 0\.5 is out of range"),
    "unknown VAD method": (VADConfig, "vad", {"method": "webrtc"}, r"'vad\.method' = 'webrtc'"),
    "VAD threshold that no speech reaches": (VADConfig, "vad", {"threshold": 1.0}, r"'vad\.threshold' = 1\.0"),
    "unknown layout": (DataConfig, "data", {"source": "synthetic", "layout": "ravdes"}, r"Did you mean 'ravdess'"),
    "corpus path left empty": (DataConfig, "data", {"path": None}, r"'data\.path' is empty"),
    "corpus path with a tilde": (DataConfig, "data", {"source": "local", "path": "~/corpora/ravdess"},
                                 r"'data\.path' = '~/corpora/ravdess' starts with '~'"),
    "merged corpus outside data.path": (DataConfig, "data", {"path": "corpus", "sources": [
        {"source": "local", "path": "/", "layout": "ravdess"}]}, r"'data\.sources\[0\]\.path' = '/' is outside"),
    "unknown split strategy": (SplitConfig, "split", {"strategy": "speakers"}, r"'split\.strategy' = 'speakers'"),
    "split leaves no training data": (SplitConfig, "split", {"test_fraction": 0.6, "validation_fraction": 0.4},
                                      r"leave nothing to train on"),
    "one fold": (SplitConfig, "split", {"folds": 1}, r"'split\.folds' = 1 is out of range"),
    "unknown model": (TrainConfig, "train", {"model": "xgboost"}, r"'train\.model' = 'xgboost'"),
    "search over an unknown key": (TrainConfig, "train", {"search": {"svm": {"gamma_": [1, 2]}}},
                                   r"'train\.search\.svm\.gamma_' is not a key of 'train\.svm'"),
    "search value out of range": (TrainConfig, "train", {"search": {"logreg": {"C": [-1]}}},
                                  r"'train\.search\.logreg\.C' = -1"),
    "search grid not under a model": (TrainConfig, "train", {"search": {"C": [1]}},
                                      r"'train\.search\.C' is not a model"),
    "fusion of a set with itself": (TrainConfig, "train", {"feature_sets": ["x"], "fusions": {"x": {"sets": ["x", "y"]}}},
                                    r"'train\.fusions\.x\.sets' joins 'x', a fusion"),
    "fusion in the old a/b form": (TrainConfig, "train", {"fusions": {"x": {"a": "p", "b": "q"}}},
                                   r"unknown params key 'train\.fusions\.x\.a'.*sets, weighting"),
    "a feature set listed twice": (TrainConfig, "train", {"feature_sets": ["handcrafted", "handcrafted"]},
                                   r"lists a feature set twice"),
    "no feature set": (TrainConfig, "train", {"feature_sets": []}, r"'train\.feature_sets' is empty"),
    "unknown normalisation": (TrainConfig, "train", {"normalize": "per_speaker"}, r"'train\.normalize'"),
}


@pytest.mark.parametrize("kind", list(PARAMS))
def test_bad_param(kind):
    cls, section, params, message = PARAMS[kind]
    with pytest.raises(ParamsError, match=message) as caught:
        from_mapping(cls, params, section=section)
    assert "\n" not in str(caught.value)


def _add(corpus, raw):
    sf.write(corpus / "Actor_01" / "03-01-05-01-01-01-01.wav", speech_like(3, duration_s=0.5), RATE)


def _change(corpus, raw):
    (corpus / "Actor_01" / "03-01-01-01-01-01-01.wav").write_bytes(b"RIFF edited after indexing")


def _remove(corpus, raw):
    (corpus / "Actor_01" / "03-01-01-01-01-01-01.wav").unlink()


def _lose_index(corpus, raw):
    (raw / "corpus-index.json").unlink()


def _damage_index(corpus, raw):
    (raw / "corpus-index.json").write_text('{"version": 1, "root": ')


#: a local corpus, or its index in data/raw, changed between 'download' and 'manifest'
CORPUS_STATES = {
    "corpus file added after download": (_add, r"1 file\(s\) of the corpus at .* were added after 'download' "
                                               r"indexed it \(e\.g\. 'Actor_01/03-01-05-01-01-01-01\.wav'\)"),
    "corpus file changed after download": (_change, r"were changed after 'download' indexed it .* Run 'dvc repro'"),
    "corpus file removed after download": (_remove, r"were removed after 'download' indexed it .* Run 'dvc repro'"),
    "corpus index missing": (_lose_index, r"corpus-index\.json' is missing or unreadable.* Run 'dvc repro'"),
    "corpus index damaged": (_damage_index, r"corpus-index\.json' is missing or unreadable.* Run 'dvc repro'"),
}


@pytest.mark.parametrize("kind", sorted(CORPUS_STATES))
def test_bad_corpus_state(kind, tmp_path):
    from vocalab.datasets.layouts import scan_corpora
    from vocalab.datasets.local import index_corpus
    from vocalab.errors import ManifestError

    corpus, raw = tmp_path / "corpus", tmp_path / "raw"
    (corpus / "Actor_01").mkdir(parents=True)
    sf.write(corpus / "Actor_01" / "03-01-01-01-01-01-01.wav", speech_like(1, duration_s=0.5), RATE)
    sf.write(corpus / "Actor_01" / "03-01-03-01-01-01-01.wav", speech_like(2, duration_s=0.5), RATE)
    config = from_mapping(DataConfig, {"source": "local", "path": str(corpus), "layout": "ravdess"}, section="data")
    index_corpus(corpus, raw, progress=False)
    assert len(scan_corpora(config, raw)[0].candidates) == 2  # as indexed: read
    mutate, message = CORPUS_STATES[kind]
    mutate(corpus, raw)
    with pytest.raises(ManifestError, match=message) as caught:
        scan_corpora(config, raw)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("layout, stem", [("ravdess", "03-01-07-01-01-02-01\n"), ("emodb", "03a01Fa\n"),
                                          ("crema_d", "1001_DFA_ANG_XX\n"), ("tess", "OAF_back_angry\n")])
def test_a_name_that_ends_in_a_newline_does_not_follow_the_layout(layout, stem):
    """'$' matches before a final newline: a layout's pattern must not accept one into an id."""
    import importlib

    parse = importlib.import_module(f"vocalab.datasets.{layout}").parse_name
    with pytest.raises(ValueError):
        parse(stem)
    parse(stem.rstrip("\n"))  # the same name without it is fine
