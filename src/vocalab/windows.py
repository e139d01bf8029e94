"""Analysis windows that more than one part of vocalab needs to know.

VGGish embeds non-overlapping examples of 96 frames of 10 ms, each frame a 25 ms
window, at 16 kHz: a clip shorter than one example (0.975 s) gives no embedding.
The VGGish front end (:mod:`vocalab.features.vggish_frontend`) computes its
examples with these numbers, and the duration report (:mod:`vocalab.durations`)
counts the clips under that length, without either importing the other.
"""

from __future__ import annotations

VGGISH_SAMPLE_RATE = 16000
VGGISH_WINDOW_S = 0.025
VGGISH_HOP_S = 0.010
VGGISH_EXAMPLE_S = 0.96

VGGISH_WINDOW_LENGTH = int(round(VGGISH_SAMPLE_RATE * VGGISH_WINDOW_S))  # 400 samples
VGGISH_HOP_LENGTH = int(round(VGGISH_SAMPLE_RATE * VGGISH_HOP_S))  # 160 samples
VGGISH_EXAMPLE_FRAMES = int(round(VGGISH_EXAMPLE_S / VGGISH_HOP_S))  # 96 frames per example, and as hop
#: the shortest signal that fills one example: 15,600 samples
VGGISH_MIN_EXAMPLE_SAMPLES = VGGISH_WINDOW_LENGTH + (VGGISH_EXAMPLE_FRAMES - 1) * VGGISH_HOP_LENGTH
#: the same in seconds: 0.975 s
VGGISH_MIN_CLIP_S = VGGISH_MIN_EXAMPLE_SAMPLES / VGGISH_SAMPLE_RATE
