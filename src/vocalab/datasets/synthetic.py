"""A synthetic emotional-speech corpus in RAVDESS layout, made locally with espeak-ng.

Each speaker is an espeak voice variant with an accent and a personal baseline
(pitch, rate, range). Each of the 8 RAVDESS emotions is rendered through prosody
relative to that baseline -- rate, pitch, pitch range, loudness, pauses, a final
pitch movement -- and through two voice-quality cues (tremolo for fear, vocal
effort for anger). "strong" intensity exaggerates the deviation. Every clip
draws its own jitter, lead/trail silence and noise level, so the task is
learnable but not trivial, and speaker-independent evaluation matters.

The output is deterministic for a given config: every clip has its own RNG
seeded from (seed, actor, clip fields), which also seeds espeak's own noise
source (otherwise seeded from the clock), and is rendered in a fresh process,
because libespeak-ng keeps static state (its pitch-flutter position) that
makes a sentence come out a few samples different each time it is spoken in
the same process, and that no API call resets.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from vocalab.datasets.config import SyntheticConfig
from vocalab.datasets.ravdess import EMOTION_CODES, STATEMENTS, format_name
from vocalab.espeak import Espeak, Prosody
from vocalab.parallel import default_workers, die_with_parent

# (variant, accent) per actor; odd actors male, even female, as in RAVDESS.
_MALE = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "david", "john", "iven", "norbert"]
_FEMALE = ["f1", "f2", "f3", "f4", "f5", "belinda", "linda", "aunty", "Annie", "Andrea", "Alicia", "anika"]
_ACCENTS = ["en-us", "en", "en-us", "en-gb-x-rp", "en-029", "en-gb-scotland"]


@dataclass(frozen=True)
class EmotionStyle:
    """How an emotion departs from a speaker's neutral voice (at "normal" intensity)."""

    rate: float  # speaking-rate factor
    pitch: float  # base pitch shift, espeak pitch units
    pitch_range: float  # pitch-range shift, espeak units
    volume: float  # loudness factor
    word_gap: float  # extra pause between words, 10 ms units
    final_pitch_pct: float  # pitch movement on the last word, percent
    tremolo: float = 0.0  # amplitude-modulation depth (fear)
    effort: float = 0.0  # soft-clipping drive (anger)


STYLES: dict[str, EmotionStyle] = {
    "neutral": EmotionStyle(1.00, 0, 0, 1.00, 0, 0),
    "calm": EmotionStyle(0.90, -4, -14, 0.85, 1.5, -5),
    "happy": EmotionStyle(1.10, 8, 18, 1.15, 0, 15),
    "sad": EmotionStyle(0.80, -8, -22, 0.72, 3, -15),
    "angry": EmotionStyle(1.12, 4, 10, 1.40, 0, -8, effort=2.5),
    "fearful": EmotionStyle(1.22, 12, -8, 0.95, 1, 10, tremolo=0.25),
    "disgust": EmotionStyle(0.86, -5, 6, 1.05, 2, -10),
    "surprised": EmotionStyle(1.00, 14, 26, 1.20, 0, 35),
}
_STRONG = 1.7  # "strong" intensity scales every deviation by this


@dataclass(frozen=True)
class Speaker:
    actor: int
    gender: str
    voice: str
    pitch: float
    rate_wpm: float
    pitch_range: float


def make_speakers(config: SyntheticConfig) -> list[Speaker]:
    """The corpus's speakers, each with a seeded personal baseline."""
    speakers = []
    for actor in range(1, config.speakers + 1):
        rng = np.random.default_rng([config.seed, actor, 0])
        gender = "male" if actor % 2 == 1 else "female"
        variants = _MALE if gender == "male" else _FEMALE
        index = (actor - 1) // 2
        voice = f"{_ACCENTS[index % len(_ACCENTS)]}+{variants[index % len(variants)]}"
        speakers.append(
            Speaker(
                actor=actor,
                gender=gender,
                voice=voice,
                pitch=float(50 + rng.normal(0, 7)),
                rate_wpm=float(165 * rng.uniform(0.88, 1.12)),
                pitch_range=float(50 + rng.normal(0, 8)),
            )
        )
    return speakers


def clip_plan(config: SyntheticConfig) -> list[dict[str, int | str]]:
    """All clips of the corpus, in RAVDESS proportions (neutral has no strong intensity).

    Each clip is seeded from its own fields, so a corpus with fewer speakers, statements or
    repetitions is a subset of a larger one, clip for clip.
    """
    plan = []
    for actor in range(1, config.speakers + 1):
        for emotion, code in EMOTION_CODES.items():
            intensities = (1,) if emotion == "neutral" else (1, 2)
            for intensity in intensities:
                for statement in list(STATEMENTS)[: config.statements]:
                    for repetition in range(1, config.repetitions + 1):
                        plan.append(
                            {"actor": actor, "emotion": emotion, "code": code,
                             "intensity": intensity, "statement": statement,
                             "repetition": repetition}
                        )
    return plan


def _text(statement: str, final_pitch_pct: float) -> str:
    """SSML for a statement with a pitch movement on its last word."""
    *head, last = statement.split()
    return (
        f"<speak>{' '.join(head)} "
        f'<prosody pitch="{final_pitch_pct:+.0f}%">{last}</prosody></speak>'
    )


def render_clip(
    speaker: Speaker, clip: dict[str, int | str], *, engine: Espeak, config: SyntheticConfig
) -> np.ndarray:
    """One clip as float32 samples at ``engine.sample_rate``."""
    rng = np.random.default_rng(
        [config.seed, speaker.actor, int(clip["code"]), int(clip["intensity"]),
         int(clip["statement"]), int(clip["repetition"])]
    )
    style = STYLES[str(clip["emotion"])]
    scale = _STRONG if clip["intensity"] == 2 else 1.0

    def factor(value: float) -> float:
        return 1.0 + (value - 1.0) * scale

    prosody = Prosody(
        rate_wpm=round(speaker.rate_wpm * factor(style.rate) * rng.normal(1.0, 0.06)),
        pitch=round(speaker.pitch + style.pitch * scale + rng.normal(0, 4)),
        pitch_range=round(speaker.pitch_range + style.pitch_range * scale + rng.normal(0, 6)),
        volume=round(100 * factor(style.volume) * rng.normal(1.0, 0.08)),
        word_gap_10ms=round(style.word_gap * scale + rng.integers(0, 3)),
    )
    final_pct = style.final_pitch_pct * scale + rng.normal(0, 5)
    text = _text(STATEMENTS[int(clip["statement"])], final_pct)
    speech = engine.synthesize(text, voice=speaker.voice, prosody=prosody, ssml=True,
                               noise_seed=int(rng.integers(2**31 - 1)))
    speech = speech.astype(np.float32) / 32768.0 * 0.8

    sample_rate = engine.sample_rate
    if style.tremolo:
        t = np.arange(speech.size) / sample_rate
        rate_hz = rng.uniform(5.0, 8.0)
        speech *= 1.0 - style.tremolo * scale * 0.5 * (1 + np.sin(2 * np.pi * rate_hz * t))
    if style.effort:
        drive = style.effort * scale
        speech = np.tanh(drive * speech) / np.tanh(drive) * np.max(np.abs(speech))

    lead = np.zeros(int(rng.uniform(0.25, 0.7) * sample_rate), dtype=np.float32)
    trail = np.zeros(int(rng.uniform(0.3, 0.9) * sample_rate), dtype=np.float32)
    signal = np.concatenate([lead, speech.astype(np.float32), trail])
    if config.snr_db is not None:
        speech_power = float(np.mean(speech**2)) + 1e-12
        snr_db = config.snr_db + rng.normal(0, 3)
        noise = rng.normal(0, np.sqrt(speech_power / 10 ** (snr_db / 10)), signal.size)
        signal = signal + noise.astype(np.float32)
    return np.clip(signal, -1.0, 1.0).astype(np.float32)


def _render_to_file(speaker: Speaker, clip: dict[str, int | str], config: SyntheticConfig, path: str) -> int:
    """Worker: render one clip in a pristine espeak process and write it; return its rate."""
    engine = Espeak.get()
    samples = render_clip(speaker, clip, engine=engine, config=config)
    sf.write(path, samples, engine.sample_rate, subtype="PCM_16")
    return engine.sample_rate


def generate(config: SyntheticConfig, root: Path, *, workers: int | None = None, progress: bool = True) -> int:
    """Write the corpus under ``root`` (``Actor_XX/03-01-...wav``), replacing what was
    there; return the clip count.

    A ``synthetic.json`` beside the audio records the config and every speaker's voice.
    """
    speakers = {s.actor: s for s in make_speakers(config)}
    plan = clip_plan(config)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    jobs = []
    for clip in plan:
        speaker = speakers[int(clip["actor"])]
        folder = root / f"Actor_{speaker.actor:02d}"
        folder.mkdir(exist_ok=True)
        name = format_name(
            emotion=int(clip["code"]), intensity=int(clip["intensity"]),
            statement=int(clip["statement"]), repetition=int(clip["repetition"]),
            actor=speaker.actor,
        )
        jobs.append((speaker, clip, config, str(folder / name)))
    # one fresh process per clip (see the module docstring); forkserver children start
    # from a process that has never spoken, whatever this process has done before
    workers = default_workers() if workers is None else workers
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["vocalab.datasets.synthetic"])
    rates = set()
    with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context, max_tasks_per_child=1,
                                initializer=die_with_parent) as pool:
        futures = [pool.submit(_render_to_file, *job) for job in jobs]
        for future in tqdm(cf.as_completed(futures), total=len(futures), desc="synthesise corpus",
                           unit="clip", disable=not progress):
            rates.add(future.result())
    description = {
        "generator": "vocalab synthetic (espeak-ng)",
        "sample_rate": rates.pop(),
        "config": asdict(config),
        "speakers": [asdict(s) for s in speakers.values()],
        "styles": {name: asdict(style) for name, style in STYLES.items()},
        "n_clips": len(plan),
    }
    (root / "synthetic.json").write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
    return len(plan)
