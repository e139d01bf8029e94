import hashlib
import time
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from vocalab.datasets.config import SyntheticConfig
from vocalab.datasets.ravdess import parse_name
from vocalab.datasets.synthetic import STYLES, clip_plan, generate, make_speakers, render_clip
from vocalab.errors import VocalabError
from vocalab.espeak import Espeak, Prosody


def test_espeak_speaks_and_prosody_changes_the_sound():
    engine = Espeak.get()
    slow = engine.synthesize("Dogs are sitting by the door", voice="en-us+m3", prosody=Prosody(rate_wpm=100))
    fast = engine.synthesize("Dogs are sitting by the door", voice="en-us+m3", prosody=Prosody(rate_wpm=300))
    assert slow.dtype == np.int16 and engine.sample_rate == 22050
    assert len(slow) > 1.8 * len(fast) > 0


def test_espeak_unknown_voice_is_a_clear_error():
    with pytest.raises(VocalabError, match=r"no voice 'xx-nowhere'"):
        Espeak.get().synthesize("hello", voice="xx-nowhere", prosody=Prosody())


def test_plan_follows_ravdess_proportions():
    plan = clip_plan(SyntheticConfig(speakers=2, statements=2, repetitions=2))
    assert len(plan) == 2 * 60  # RAVDESS: 60 speech clips per actor
    counts = Counter(c["emotion"] for c in plan)
    assert counts["neutral"] == 8 and counts["angry"] == 16


def test_a_smaller_corpus_is_a_subset_of_a_larger_one():
    small = clip_plan(SyntheticConfig(speakers=3, statements=1, repetitions=1))
    large = clip_plan(SyntheticConfig(speakers=4, statements=2, repetitions=2))
    assert len(small) == 3 * 15 and all(clip in large for clip in small)
    assert {clip["statement"] for clip in small} == {1}


def test_speakers_alternate_gender_and_differ():
    speakers = make_speakers(SyntheticConfig(speakers=6))
    assert [s.gender for s in speakers] == ["male", "female"] * 3
    assert len({s.voice for s in speakers}) == 6


def _digest(root):
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(root.rglob("*.wav")))).hexdigest()


def test_generation_is_deterministic_and_seeded(tmp_path):
    # 4 speakers: actor 4's voice (en+f2) has breath noise, which espeak seeds from the
    # clock unless told otherwise, so the second run starts in a later second
    config = SyntheticConfig(speakers=4, repetitions=1, seed=3)
    n = generate(config, tmp_path / "a", progress=False)
    time.sleep(1.1)
    generate(config, tmp_path / "b", progress=False)
    generate(SyntheticConfig(speakers=4, repetitions=1, seed=4), tmp_path / "c", progress=False)
    files = sorted((tmp_path / "a").rglob("*.wav"))
    assert n == len(files) == 60
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
    assert (tmp_path / "a" / "synthetic.json").is_file()
    for path in files:
        fields = parse_name(path.stem)
        assert path.parent.name == f"Actor_{fields['actor']:02d}"
    info = sf.info(str(files[0]))
    assert info.samplerate == 22050 and info.subtype == "PCM_16" and 1.0 < info.duration < 8.0


def test_emotions_are_rendered_through_prosody():
    """Sad is slower than neutral, angry louder: the cues exist (at strong intensity)."""
    config = SyntheticConfig(speakers=1, repetitions=1, snr_db=None)
    engine = Espeak.get()
    speaker = make_speakers(config)[0]

    def clip(emotion):
        return render_clip(speaker, {"actor": 1, "emotion": emotion, "code": list(STYLES).index(emotion) + 1,
                                     "intensity": 2, "statement": 1, "repetition": 1},
                           engine=engine, config=config)

    def active(samples):  # speech without the random lead/trail silence
        return samples[np.abs(samples) > 1e-3]

    neutral, sad, angry = clip("neutral"), clip("sad"), clip("angry")
    assert len(active(sad)) > 1.2 * len(active(neutral))
    assert np.sqrt(np.mean(active(angry) ** 2)) > 1.3 * np.sqrt(np.mean(active(neutral) ** 2))
