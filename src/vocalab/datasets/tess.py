"""TESS layout: ``OAF_back_angry.wav`` / ``YAF_back_angry.wav`` (two speakers).

Two actresses, aged 64 (OAF) and 26 (YAF), say "Say the word ___" with 200 target
words in 7 emotions; "ps" is pleasant surprise. Folder names vary between copies
of the corpus, so only the file name is read.
See Pichora-Fuller & Dupuis (2020), Toronto emotional speech set, Borealis.
"""

from __future__ import annotations

import re
from pathlib import Path

from vocalab.datasets.base import Candidate, Parsed, scan_parsed

SPEAKERS = {"OAF": "older", "YAF": "younger"}
EMOTIONS = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy", "neutral": "neutral",
            "ps": "pleasant_surprise", "sad": "sad"}

_NAME = re.compile(r"^(OAF|YAF)_(.+)_([a-z]+)\Z", re.IGNORECASE)


def parse_name(stem: str) -> dict[str, object]:
    match = _NAME.match(stem)
    if match is None:
        raise ValueError("file name does not follow the TESS convention SPEAKER_WORD_EMOTION (e.g. OAF_back_angry)")
    speaker, word, emotion = match.group(1).upper(), match.group(2).lower(), match.group(3).lower()
    if emotion not in EMOTIONS:
        raise ValueError(f"TESS emotion '{emotion}' is not one of {sorted(EMOTIONS)}")
    return {"emotion": EMOTIONS[emotion], "word": word, "actor": speaker, "age_group": SPEAKERS[speaker],
            "gender": "female"}


def parse_path(path: Path, root: Path) -> Parsed:
    fields = parse_name(path.stem)
    return Parsed(speaker=str(fields["actor"]), label=str(fields["emotion"]), extras=fields,
                  utt=path.stem.upper()[:3] + path.stem[3:].lower())


def scan(root: Path, *, dataset: str) -> list[Candidate]:
    return scan_parsed(root, dataset=dataset, parse=parse_path)
