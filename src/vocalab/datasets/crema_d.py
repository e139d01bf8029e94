"""CREMA-D layout: ``AudioWAV/1001_DFA_ANG_XX.wav``.

Fields: actor (1001-1091), sentence code (12 sentences), emotion (ANG, DIS, FEA,
HAP, NEU, SAD) and level (LO, MD, HI, or XX for unspecified).
See Cao et al. (2014), IEEE Trans. Affective Computing 5(4).
"""

from __future__ import annotations

import re
from pathlib import Path

from vocalab.datasets.base import Candidate, Parsed, scan_parsed

EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified", "X": "unspecified"}
SENTENCES = {
    "IEO": "It's eleven o'clock", "TIE": "That is exactly what happened", "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about", "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold", "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment", "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before", "TSI": "The surface is slick", "WSI": "We'll stop in a couple of minutes",
}

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})\Z")


def parse_name(stem: str) -> dict[str, object]:
    match = _NAME.match(stem)
    if match is None:
        raise ValueError("file name does not follow the CREMA-D convention ACTOR_SENTENCE_EMOTION_LEVEL "
                         "(e.g. 1001_DFA_ANG_XX)")
    actor, sentence, emotion, level = match.groups()
    if emotion not in EMOTIONS:
        raise ValueError(f"CREMA-D emotion code {emotion} is not one of {sorted(EMOTIONS)}")
    if sentence not in SENTENCES:
        raise ValueError(f"CREMA-D sentence code {sentence} is not one of {sorted(SENTENCES)}")
    if level not in LEVELS:
        raise ValueError(f"CREMA-D level code {level} is not one of LO, MD, HI, XX")
    return {"emotion": EMOTIONS[emotion], "intensity": LEVELS[level], "statement": SENTENCES[sentence],
            "actor": int(actor)}


def parse_path(path: Path, root: Path) -> Parsed:
    fields = parse_name(path.stem)
    return Parsed(speaker=str(fields["actor"]), label=str(fields["emotion"]), extras=fields)


def scan(root: Path, *, dataset: str) -> list[Candidate]:
    return scan_parsed(root, dataset=dataset, parse=parse_path)
