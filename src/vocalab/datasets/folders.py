"""``folders`` layout: one folder per class, the speaker read from the file name.

``root/<class>/file.wav``, or class folders nested under task folders as in
Parkinson's corpora (``root/vowels/A/hc/AVPEPUDEAC0001a1.wav``,
``root/read-text/pd/...``): the label is the file's parent folder, the folders
above it become the ``task`` column. The speaker comes from
``data.folders.speaker_regex``, a regular expression with a ``speaker`` group,
searched in the file name (without extension).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vocalab.datasets.base import Candidate, Parsed, scan_parsed
from vocalab.errors import ParamsError


@dataclass(frozen=True)
class FoldersConfig:
    """``data.folders``: how to find the speaker in a file name.

    speaker_regex : str   a regular expression with a named group ``speaker``
    """

    speaker_regex: str = r"^(?P<speaker>[^_\-]+)"

    def check(self, section: str) -> None:
        try:
            pattern = re.compile(self.speaker_regex)
        except re.error as err:
            raise ParamsError(f"params key '{section}.speaker_regex' = {self.speaker_regex!r} is not a valid "
                              f"regular expression ({err}).") from err
        if "speaker" not in pattern.groupindex:
            raise ParamsError(f"params key '{section}.speaker_regex' = {self.speaker_regex!r} has no group named "
                              f"'speaker': write it as (?P<speaker>...), e.g. '^(?P<speaker>[A-Z]+\\d+)'.")


def parser(config: FoldersConfig):
    pattern = re.compile(config.speaker_regex)

    def parse_path(path: Path, root: Path) -> Parsed:
        relative = path.relative_to(root)
        if len(relative.parts) < 2:
            raise ValueError("file is not inside a class folder (the folders layout reads the label from "
                             "the file's parent folder)")
        match = pattern.search(path.stem)
        if match is None or not match.group("speaker"):
            raise ValueError(f"no speaker in the file name: data.folders.speaker_regex "
                             f"{config.speaker_regex!r} does not match '{path.stem}'")
        task = "/".join(relative.parts[:-2])
        utt = "__".join((*relative.parts[:-1], path.stem))
        return Parsed(speaker=match.group("speaker"), label=relative.parts[-2], extras={"task": task}, utt=utt)

    return parse_path


def scan(root: Path, *, dataset: str, config: FoldersConfig | None = None) -> list[Candidate]:
    return scan_parsed(root, dataset=dataset, parse=parser(config or FoldersConfig()))
