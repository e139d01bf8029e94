"""RAVDESS layout: ``Actor_XX/MM-VV-EE-II-SS-RR-AA.wav``.

The seven two-digit fields are modality, vocal channel, emotion, intensity,
statement, repetition and actor (odd actors are male, even are female).
See Livingstone & Russo (2018), PLoS ONE 13(5): e0196391.
"""

from __future__ import annotations

import re
from pathlib import Path

from vocalab.datasets.base import Candidate, Parsed, scan_parsed

EMOTIONS = {
    1: "neutral",
    2: "calm",
    3: "happy",
    4: "sad",
    5: "angry",
    6: "fearful",
    7: "disgust",
    8: "surprised",
}
EMOTION_CODES = {name: code for code, name in EMOTIONS.items()}
INTENSITIES = {1: "normal", 2: "strong"}
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
MODALITIES = {1: "audio-video", 2: "video-only", 3: "audio-only"}
VOCAL_CHANNELS = {1: "speech", 2: "song"}

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})\Z")


def format_name(*, emotion: int, intensity: int, statement: int, repetition: int, actor: int) -> str:
    """The RAVDESS file name of an audio-only speech clip (``03-01-...``)."""
    return f"03-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.wav"


def parse_name(stem: str) -> dict[str, object]:
    """Parse a RAVDESS file stem into its fields.

    Raises
    ------
    ValueError
        With the reason, if the stem does not follow the convention.
    """
    match = _NAME.match(stem)
    if match is None:
        raise ValueError(
            "file name does not follow the RAVDESS convention MM-VV-EE-II-SS-RR-AA "
            "(seven two-digit fields)"
        )
    modality, channel, emotion, intensity, statement, repetition, actor = map(int, match.groups())
    checks = (
        ("modality", modality, MODALITIES),
        ("vocal channel", channel, VOCAL_CHANNELS),
        ("emotion", emotion, EMOTIONS),
        ("intensity", intensity, INTENSITIES),
        ("statement", statement, STATEMENTS),
    )
    for field, value, table in checks:
        if value not in table:
            raise ValueError(f"RAVDESS {field} code {value:02d} is not one of {sorted(table)}")
    if repetition not in (1, 2):
        raise ValueError(f"RAVDESS repetition code {repetition:02d} is not 01 or 02")
    if not 1 <= actor <= 99:
        raise ValueError(f"RAVDESS actor code {actor:02d} is not in 01..99")
    return {
        "emotion": EMOTIONS[emotion],
        "intensity": INTENSITIES[intensity],
        "statement": STATEMENTS[statement],
        "repetition": repetition,
        "actor": actor,
        "gender": "male" if actor % 2 == 1 else "female",
        "vocal_channel": VOCAL_CHANNELS[channel],
    }


def parse_path(path: Path, root: Path) -> Parsed:
    fields = parse_name(path.stem)
    return Parsed(speaker=f"{fields['actor']:02d}", label=str(fields["emotion"]), extras=fields)


def scan(root: Path, *, dataset: str) -> list[Candidate]:
    """Every audio file under ``root``, parsed as RAVDESS (unparseable names carry a reason)."""
    return scan_parsed(root, dataset=dataset, parse=parse_path)
