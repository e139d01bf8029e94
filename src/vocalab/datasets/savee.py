"""SAVEE layout: ``DC/a01.wav`` (a folder per speaker) or ``DC_a01.wav`` (flattened copies).

Four male speakers (DC, JE, JK, KL); the emotion is the name's prefix: a anger,
d disgust, f fear, h happiness, n neutral, sa sadness, su surprise.
See Haq & Jackson (2009), AVSP.
"""

from __future__ import annotations

import re
from pathlib import Path

from vocalab.datasets.base import Candidate, Parsed, scan_parsed

SPEAKERS = ("DC", "JE", "JK", "KL")
EMOTIONS = {"a": "anger", "d": "disgust", "f": "fear", "h": "happiness", "n": "neutral", "sa": "sadness",
            "su": "surprise"}

_FLAT = re.compile(r"^([A-Z]{2})_(sa|su|[adfhn])(\d{2})\Z")
_IN_FOLDER = re.compile(r"^(sa|su|[adfhn])(\d{2})\Z")


def parse_path(path: Path, root: Path) -> Parsed:
    flat = _FLAT.match(path.stem)
    if flat is not None:
        speaker, emotion, number = flat.groups()
    else:
        nested = _IN_FOLDER.match(path.stem)
        if nested is None:
            raise ValueError("file name does not follow the SAVEE convention SPEAKER/EMOTIONNN or "
                             "SPEAKER_EMOTIONNN (e.g. DC/a01 or DC_a01)")
        speaker, (emotion, number) = path.parent.name, nested.groups()
    if speaker not in SPEAKERS:
        raise ValueError(f"SAVEE speaker '{speaker}' is not one of {list(SPEAKERS)}")
    fields = {"emotion": EMOTIONS[emotion], "sentence": int(number), "actor": speaker, "gender": "male"}
    return Parsed(speaker=speaker, label=EMOTIONS[emotion], extras=fields, utt=f"{speaker}_{emotion}{number}")


def scan(root: Path, *, dataset: str) -> list[Candidate]:
    return scan_parsed(root, dataset=dataset, parse=parse_path)
