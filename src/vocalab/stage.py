"""Shared plumbing for the thin scripts in ``stages/``: arguments, errors, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from vocalab.errors import VocalabError, report
from vocalab.parallel import die_with_launcher


def parse_args(description: str, *paths: str, names: tuple[str, ...] = (),
               optional: tuple[str, ...] = ()) -> argparse.Namespace:
    """Parse a stage's arguments: ``--params``, one required ``--<path> PATH`` per path, one
    required ``--<name> TEXT`` per name, and one ``--<path> PATH`` (default None) per ``optional``.

    Paths come from dvc.yaml, so they are never repeated in code.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: params.yaml)")
    for path in paths:
        parser.add_argument(f"--{path}", type=Path, required=True)
    for name in names:
        parser.add_argument(f"--{name}", required=True)
    for path in optional:
        parser.add_argument(f"--{path}", type=Path, default=None)
    return parser.parse_args()


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def run(main: Callable[[], None]) -> None:
    """Run a stage; a VocalabError becomes one clear line on stderr and exit code 2.

    The stage ends when the process that started it (``dvc``) dies, even by ``kill -9``:
    its workers end with it, so nothing is left working for a run nobody waits for.
    """
    die_with_launcher()
    try:
        main()
    except VocalabError as err:
        sys.exit(report(err))
