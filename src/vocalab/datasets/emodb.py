"""EmoDB (Berlin Database of Emotional Speech) layout: ``wav/03a01Fa.wav``.

Fields: speaker (2 digits), text code (a01-a07, b01-b03), emotion letter (German
initials: W Ärger, L Langeweile, E Ekel, A Angst, F Freude, T Trauer, N neutral)
and version. Speakers 03, 10, 11, 12, 15 are male, 08, 09, 13, 14, 16 female.
See Burkhardt et al. (2005), Interspeech.
"""

from __future__ import annotations

import re
from pathlib import Path

from vocalab.datasets.base import Candidate, Parsed, scan_parsed

EMOTIONS = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness", "T": "sadness",
            "N": "neutral"}
GENDERS = {"03": "male", "08": "female", "09": "female", "10": "male", "11": "male", "12": "male",
           "13": "female", "14": "female", "15": "male", "16": "female"}

_NAME = re.compile(r"^(\d{2})([ab]\d{2})([WLEAFTN])([a-z])\Z")


def parse_name(stem: str) -> dict[str, object]:
    match = _NAME.match(stem)
    if match is None:
        raise ValueError("file name does not follow the EmoDB convention SPEAKER TEXT EMOTION VERSION "
                         "(e.g. 03a01Fa)")
    speaker, text, emotion, version = match.groups()
    if speaker not in GENDERS:
        raise ValueError(f"EmoDB speaker {speaker} is not one of {sorted(GENDERS)}")
    return {"emotion": EMOTIONS[emotion], "text": text, "version": version, "actor": speaker,
            "gender": GENDERS[speaker]}


def parse_path(path: Path, root: Path) -> Parsed:
    fields = parse_name(path.stem)
    return Parsed(speaker=str(fields["actor"]), label=str(fields["emotion"]), extras=fields)


def scan(root: Path, *, dataset: str) -> list[Candidate]:
    return scan_parsed(root, dataset=dataset, parse=parse_path)
