import numpy as np
import pytest

from tests.conftest import tone
from vocalab.audio import load_audio, read_info, resample, to_mono
from vocalab.errors import AudioError


def dominant_frequency(samples: np.ndarray, sampling_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / sampling_rate)[np.argmax(spectrum)])


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "FLOAT"])
def test_bit_depths_decode_to_float_in_range(wav_factory, subtype):
    path = wav_factory(f"tone_{subtype}.wav", tone(440, duration_s=0.5), 16000, subtype)
    info = read_info(path)
    assert (info.sample_rate, info.channels, info.num_frames) == (16000, 1, 8000)
    assert info.subtype == subtype
    samples, sampling_rate = load_audio(path)
    assert samples.dtype == np.float32 and sampling_rate == 16000
    tolerance = 1 / 64 if subtype == "PCM_U8" else 1e-3
    np.testing.assert_allclose(samples, tone(440, duration_s=0.5), atol=tolerance)


def test_stereo_is_mixed_to_mono(wav_factory):
    left, right = tone(300, amplitude=0.4), tone(300, amplitude=0.2)
    path = wav_factory("stereo.wav", np.stack([left, right], axis=1), 16000, "FLOAT")
    assert read_info(path).channels == 2
    samples, _ = load_audio(path)
    np.testing.assert_allclose(samples, (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("name, subtype", [("mono.wav", "PCM_16"), ("mono.flac", "PCM_16"), ("loud.wav", "PCM_16"),
                                           ("stereo.wav", "PCM_16"), ("mono24.wav", "PCM_24")])
def test_the_fast_16_bit_read_gives_soundfiles_float32_values(wav_factory, name, subtype):
    import soundfile as sf

    rng = np.random.default_rng(7)
    samples = rng.uniform(-1.2 if name == "loud.wav" else -0.5, 0.5, size=(4001, 2 if "stereo" in name else 1))
    path = wav_factory(name, np.clip(samples, -1, 1), 22050, subtype)
    expected = sf.read(str(path), dtype="float32", always_2d=True)[0].mean(axis=1, dtype=np.float32)
    decoded, rate = load_audio(path)
    assert rate == 22050 and decoded.dtype == np.float32
    assert decoded.tobytes() == expected.tobytes()  # the same bits, not only close


@pytest.mark.parametrize("file_rate", [44100, 48000, 22050, 8000])
def test_resampling_keeps_length_and_pitch(wav_factory, file_rate):
    path = wav_factory(f"tone_{file_rate}.wav", tone(1000, sampling_rate=file_rate, duration_s=1.0), file_rate)
    samples, sampling_rate = load_audio(path, sampling_rate=16000)
    assert sampling_rate == 16000
    assert samples.shape == (16000,)
    assert dominant_frequency(samples, 16000) == pytest.approx(1000, abs=2)


def test_resample_length_is_ceil_of_ratio():
    out = resample(np.ones(1001, dtype=np.float32), orig_sr=48000, target_sr=16000)
    assert out.shape == (334,)


def test_to_mono_passes_1d_through():
    x = np.arange(5, dtype=np.float32)
    assert to_mono(x) is not None and np.array_equal(to_mono(x), x)


def test_missing_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(AudioError, match=r"'.*missing\.wav' does not exist"):
        read_info(tmp_path / "missing.wav")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x00not really a wave file at all")
    with pytest.raises(AudioError, match=r"'.*garbage\.wav' cannot be read"):
        read_info(garbage)
    with pytest.raises(AudioError, match=r"'.*garbage\.wav' cannot be decoded"):
        load_audio(garbage)


def test_empty_file_is_refused(wav_factory):
    path = wav_factory("empty.wav", np.zeros(0, dtype=np.float32), 16000)
    assert read_info(path).num_frames == 0
    with pytest.raises(AudioError, match=r"'.*empty\.wav' holds no samples"):
        load_audio(path)
