"""MESD (Mexican Emotional Speech Database) layout: ``Anger_C_A_abajo.wav``.

Fields: emotion, voice type (F adult female, M adult male, C child), word corpus
(A or B) and the word. File names do not identify individual speakers (3 female,
2 male and 6 child voices), so the voice type stands in for the speaker: a
speaker-independent split keeps each voice type on one side, which is stricter
than needed but never leaks a voice. See Duville et al. (2021), Mendeley Data.
"""

from __future__ import annotations

import re
from pathlib import Path

from vocalab.datasets.base import Candidate, Parsed, scan_parsed

EMOTIONS = {"anger": "anger", "disgust": "disgust", "fear": "fear", "happiness": "happiness",
            "neutral": "neutral", "sadness": "sadness"}
VOICES = {"F": "female", "M": "male", "C": "child"}

_NAME = re.compile(r"^([A-Za-z]+)_([FMC])_([AB])_(.+)\Z")


def parse_name(stem: str) -> dict[str, object]:
    match = _NAME.match(stem)
    if match is None:
        raise ValueError("file name does not follow the MESD convention EMOTION_VOICE_CORPUS_WORD "
                         "(e.g. Anger_C_A_abajo)")
    emotion, voice, corpus, word = match.groups()
    if emotion.lower() not in EMOTIONS:
        raise ValueError(f"MESD emotion '{emotion}' is not one of {sorted(EMOTIONS)}")
    return {"emotion": EMOTIONS[emotion.lower()], "voice": VOICES[voice], "word_corpus": corpus, "word": word}


def parse_path(path: Path, root: Path) -> Parsed:
    fields = parse_name(path.stem)
    return Parsed(speaker=str(fields["voice"]), label=str(fields["emotion"]), extras=fields)


def scan(root: Path, *, dataset: str) -> list[Candidate]:
    return scan_parsed(root, dataset=dataset, parse=parse_path)
