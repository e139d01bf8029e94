import librosa
import numpy as np
import pytest

from tests.conftest import speech_like, tone
from vocalab.errors import AudioError
from vocalab.audio import padded_piece
from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor, frame_energies
from vocalab.params import from_mapping


def extractor(**params):
    return HandcraftedExtractor(from_mapping(HandcraftedConfig, params, section="features"))


def librosa_reference(y, sr, *, n_mfcc=13, hop_length=512, n_fft=2048, n_mels=128):
    """The notebook recipe, for comparison."""
    return np.vstack([
        librosa.feature.mfcc(y=y, sr=sr, n_mfcc=n_mfcc, hop_length=hop_length, n_fft=n_fft, n_mels=n_mels),
        librosa.feature.rms(y=y, hop_length=hop_length, frame_length=n_fft),
        librosa.feature.zero_crossing_rate(y, hop_length=hop_length, frame_length=n_fft),
    ]).T


@pytest.mark.parametrize("params", [{}, {"n_mfcc": 40}, {"hop_length": 256}, {"n_fft": 1024, "n_mels": 64}])
def test_matches_librosa_definitions(params):
    y = speech_like(7, duration_s=2.3)
    ours = extractor(**params).extract(y, 16000)
    reference = librosa_reference(y, 16000, **params)
    assert ours.shape == reference.shape
    np.testing.assert_allclose(ours, reference, atol=2e-3, rtol=1e-4)


@pytest.mark.parametrize("n_fft, hop, n", [(2048, 512, 53_000), (2048, 500, 40_001), (400, 160, 16_000),
                                          (512, 512, 1_000), (1024, 256, 10)])
def test_frame_energies_equal_each_frames_own_sum(n_fft, hop, n):
    """Block running sums give every frame's sum of squares, whatever gcd(n_fft, hop) is."""
    y = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    padded = np.concatenate([np.zeros(n_fft // 2, np.float32), y, np.zeros(n_fft // 2, np.float32)])
    n_frames = 1 + n // hop
    direct = [np.sum(np.square(padded[k * hop:k * hop + n_fft], dtype=np.float64)) for k in range(n_frames)]
    got = frame_energies(y, n_fft // 2, n_frames, n_fft, hop)
    assert got.shape == (n_frames,)
    np.testing.assert_allclose(got, direct, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("edge", [False, True])
def test_a_padded_piece_is_that_slice_of_the_padded_signal(edge):
    y = np.random.default_rng(3).standard_normal(50).astype(np.float32)
    padded = np.pad(y, 7, mode="edge" if edge else "constant")
    for begin, end in [(0, 64), (0, 3), (5, 20), (30, 64), (60, 64), (0, 10)]:
        np.testing.assert_array_equal(padded_piece(y, 7, begin, end, edge=edge), padded[begin:end])


def test_a_long_file_is_analysed_in_blocks_to_the_same_bytes(monkeypatch):
    """Beyond the size kept, the mel spectrogram is computed twice instead of held: the same features."""
    import vocalab.features.handcrafted as handcrafted

    y = (0.1 * np.random.default_rng(4).standard_normal(16000 * 75)).astype(np.float32)  # over two blocks of frames
    kept = extractor().extract(y, 16000)
    monkeypatch.setattr(handcrafted, "_MEL_KEPT_BYTES", 0)
    np.testing.assert_array_equal(extractor().extract(y, 16000), kept)


def test_frame_count_and_layout():
    ex = extractor()
    assert ex.feature_names[-2:] == ["rms", "zcr"] and ex.dim == 15
    assert ex.frames_per_second == 16000 / 512
    for n in (1, 511, 512, 16000, 16001):
        assert ex.extract(np.full(n, 0.1, dtype=np.float32), 16000).shape == (1 + n // 512, 15)


def test_pure_tone_rms_and_zero_crossing_rate():
    frequency, amplitude = 1000.0, 0.5
    frames = extractor().extract(tone(frequency, amplitude=amplitude, duration_s=1.0), 16000)
    middle = frames[5:-5]
    np.testing.assert_allclose(middle[:, -2], amplitude / np.sqrt(2), rtol=1e-3)  # RMS of a sine
    np.testing.assert_allclose(middle[:, -1], 2 * frequency / 16000, atol=2 / 2048)  # 2 crossings a period


def test_higher_tone_has_more_crossings_and_a_different_spectrum():
    low = extractor().extract(tone(300), 16000)[5:-5]
    high = extractor().extract(tone(3000), 16000)[5:-5]
    assert high[:, -1].mean() > 5 * low[:, -1].mean()
    assert np.abs(high[:, 1:13].mean(0) - low[:, 1:13].mean(0)).max() > 10


def test_silence_is_flat_and_zero():
    frames = extractor().extract(np.zeros(8000, dtype=np.float32), 16000)
    assert np.all(frames[:, -2] == 0) and np.all(frames[:, -1] == 0)
    np.testing.assert_allclose(frames[:, :13], np.broadcast_to(frames[0, :13], (len(frames), 13)), atol=1e-3)
    assert np.isfinite(frames).all()


def test_clip_shorter_than_one_frame_gives_one_frame():
    frames = extractor().extract(tone(440, duration_s=0.01), 16000)  # 160 samples < n_fft
    assert frames.shape == (1, 15) and np.isfinite(frames).all()


@pytest.mark.parametrize("rate", [44100, 48000, 8000])
def test_other_rates_are_resampled_first(rate):
    frames = extractor().extract(tone(440, sampling_rate=rate, duration_s=1.0), rate)
    assert frames.shape == (1 + 16000 // 512, 15)
    reference = extractor().extract(tone(440, sampling_rate=16000, duration_s=1.0), 16000)
    np.testing.assert_allclose(frames[3:-3, -1], reference[3:-3, -1], atol=2e-3)


def test_bad_signals_are_refused():
    with pytest.raises(AudioError, match=r"expected a mono signal of shape \(n,\), got shape \(100, 2\)"):
        extractor().extract(np.zeros((100, 2), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty signal"):
        extractor().extract(np.zeros(0, dtype=np.float32), 16000)


def test_long_signal_processed_in_blocks_matches():
    y = speech_like(3, duration_s=40.0)  # > 1024 frames: crosses a block boundary
    np.testing.assert_allclose(extractor().extract(y, 16000), librosa_reference(y, 16000), atol=2e-3, rtol=1e-4)


@pytest.mark.parametrize("kwargs", [
    {"sampling_rate": 16000, "n_fft": 2048, "n_mels": 128},
    {"sampling_rate": 22050, "n_fft": 512, "n_mels": 40, "fmin": 50.0, "fmax": 8000.0},
    {"sampling_rate": 8000, "n_fft": 256, "n_mels": 20},
])
def test_mel_filterbank_equals_librosa(kwargs):
    from vocalab.features.mel import mel_filterbank

    ours = mel_filterbank(**kwargs)
    reference = librosa.filters.mel(sr=kwargs["sampling_rate"], n_fft=kwargs["n_fft"], n_mels=kwargs["n_mels"],
                                    fmin=kwargs.get("fmin", 0.0), fmax=kwargs.get("fmax"))
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-8)


def test_mel_scale_known_points():
    from vocalab.features.mel import hz_to_mel, mel_to_hz

    np.testing.assert_allclose(hz_to_mel(np.array([0.0, 1000.0])), [0.0, 15.0])  # linear: 200/3 Hz per mel
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(np.array([60.0, 440.0, 4000.0]))), [60.0, 440.0, 4000.0])


def test_pure_tone_peaks_in_its_mel_band():
    ex = extractor()
    from vocalab.features.mel import mel_filterbank

    bank = mel_filterbank(sampling_rate=16000, n_fft=2048, n_mels=128)
    bin_1k = round(1000 * 2048 / 16000)
    assert np.argmax(bank[:, bin_1k]) == np.argmax(np.asarray(ex.tables[1].todense())[:, bin_1k])
