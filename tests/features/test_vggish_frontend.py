"""The VGGish front end against values worked out here from the published formulas.

Reference: Hershey et al. 2017 and the AudioSet release's mel_features: 16 kHz,
25 ms periodic Hann window, 10 ms hop, FFT 512, 64 HTK-mel triangles over
125-7500 Hz (DC excluded), log(mel + 0.01), 96-frame examples.
"""

import math

import numpy as np
import pytest

from tests.conftest import tone
from vocalab.features import vggish_frontend as fe


def hz_to_mel(f):
    return 1127.0 * math.log(1.0 + f / 700.0)


def mel_to_hz(m):
    return 700.0 * (math.exp(m / 1127.0) - 1.0)


def band_edges_hz():
    """The 66 edges of the 64 triangles, evenly spaced in HTK mel."""
    lo, hi = hz_to_mel(125.0), hz_to_mel(7500.0)
    return [mel_to_hz(lo + (hi - lo) * i / 65) for i in range(66)]


def test_constants_follow_from_the_published_parameters():
    assert (fe.WINDOW_LENGTH, fe.HOP_LENGTH, fe.FFT_LENGTH, fe.EXAMPLE_FRAMES) == (400, 160, 512, 96)
    assert fe.MIN_EXAMPLE_SAMPLES == 15600  # 0.975 s: 400 + 95 * 160
    assert fe.htk_hz_to_mel(700.0) == pytest.approx(1127.0 * math.log(2.0))


def test_periodic_hann_is_the_periodic_window():
    w = fe.periodic_hann(400)
    assert w[0] == 0.0 and w[200] == pytest.approx(1.0)
    assert w[1] == pytest.approx(w[399])  # periodic: symmetric about N/2, not about (N-1)/2
    assert w.sum() == pytest.approx(200.0)


@pytest.mark.parametrize("n,frames,examples", [
    (0, 0, 0), (399, 0, 0), (400, 1, 0), (559, 1, 0), (560, 2, 0),
    (15599, 95, 0), (15600, 96, 1), (16000, 98, 1), (30959, 191, 1), (30960, 192, 2), (31200, 193, 2), (48000, 298, 3),
])
def test_frame_and_example_counts(n, frames, examples):
    assert fe.num_frames(n) == frames
    assert fe.num_examples(n) == examples
    rng = np.random.default_rng(n)
    log_mel = fe.log_mel(rng.standard_normal(n))
    assert log_mel.shape == (frames, 64)
    assert fe.examples(log_mel).shape == (examples, 96, 64)


def test_mel_matrix_edges_match_the_formula():
    weights = fe.mel_matrix()
    assert weights.shape == (257, 64)
    bins_hz = [k * 8000.0 / 256 for k in range(257)]  # linspace(0, 8000, 257)
    edges = band_edges_hz()
    assert (weights[0] == 0).all()  # no DC
    for k, f in enumerate(bins_hz):
        if f <= 125.0 or f >= 7500.0:
            assert (weights[k] == 0).all(), f"bin {k} ({f} Hz) is outside 125-7500 Hz"
    for band in (0, 1, 31, 62, 63):
        lower, center, upper = (hz_to_mel(edges[band + i]) for i in range(3))
        expected = [max(0.0, min((hz_to_mel(f) - lower) / (center - lower), (upper - hz_to_mel(f)) / (upper - center)))
                    for f in bins_hz]
        np.testing.assert_allclose(weights[1:, band], expected[1:], atol=1e-9)
        # the triangle covers exactly the bins strictly between its outer edges
        inside = [k for k, f in enumerate(bins_hz) if edges[band] + 1e-6 < f < edges[band + 2] - 1e-6]
        assert np.flatnonzero(weights[:, band] > 1e-9).tolist() == inside
        assert weights[:, band].max() > 0.5  # each band catches at least one bin near its peak
    assert weights.max() <= 1.0


def test_stft_magnitude_of_a_sine_on_a_bin():
    f = 40 * 31.25  # 1250 Hz is FFT bin 40
    spectrum = fe.stft_magnitude(tone(f, duration_s=0.1, amplitude=1.0))
    assert spectrum.shape == (1 + (1600 - 400) // 160, 257)
    assert (spectrum.argmax(axis=1) == 40).all()
    # a unit sine at a bin frequency: |X| = sum(window) / 2 = 100
    np.testing.assert_allclose(spectrum[:, 40], 100.0, rtol=1e-6)  # float32 samples


@pytest.mark.parametrize("frequency", [200.0, 440.0, 1000.0, 2500.0, 6000.0])
def test_pure_tone_lands_in_its_mel_band(frequency):
    edges = band_edges_hz()
    centers = edges[1:-1]
    frames = fe.log_mel(tone(frequency, duration_s=1.0, amplitude=0.5))
    band = int(frames.mean(axis=0).argmax())
    nearest = min(range(64), key=lambda b: abs(centers[b] - frequency))
    assert band == nearest, f"{frequency} Hz peaked in band {band} (centre {centers[band]:.0f} Hz)"
    assert edges[band] < frequency < edges[band + 2]


def test_silence_is_the_log_offset():
    frames = fe.log_mel(np.zeros(16000))
    np.testing.assert_allclose(frames, math.log(0.01), rtol=1e-6)


def test_short_clip_policies():
    clip = np.arange(1, 8001, dtype=np.float32)  # 0.5 s
    padded = fe.fit_short_clip(clip, "pad")
    assert len(padded) == 15600 and (padded[:8000] == clip).all() and (padded[8000:] == 0).all()
    repeated = fe.fit_short_clip(clip, "repeat")
    assert len(repeated) == 15600 and (repeated[8000:] == clip[:7600]).all()
    assert fe.fit_short_clip(clip, "drop") is None
    long_enough = np.ones(15600, dtype=np.float32)
    for policy in ("pad", "repeat", "drop"):
        assert fe.fit_short_clip(long_enough, policy) is long_enough
    assert fe.num_examples(len(padded)) == fe.num_examples(len(repeated)) == 1


def test_resampled_length_matches_the_resampler():
    from vocalab.audio import resample, resampled_length

    for n, rate in [(21499, 22050), (48000, 48000), (7, 44100), (33333, 8000)]:
        assert resampled_length(n, orig_sr=rate, target_sr=16000) == len(
            resample(np.zeros(n, np.float32), orig_sr=rate, target_sr=16000))
