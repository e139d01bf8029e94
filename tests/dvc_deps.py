"""The code a DVC stage runs, found by a transitive scan of its script's imports.

A stage's ``cmd`` names its script (``python stages/<name>.py``); the generic
extraction script also imports ``vocalab.features.<extractor>``, named by its
``--extractor`` argument. Every ``import`` in a module counts, including those inside
functions (they run when the stage calls them), except those under
``if TYPE_CHECKING:``. Importing ``vocalab.a.b`` runs ``vocalab/a/__init__.py``
too; package ``__init__`` files that hold only a docstring run no code and are left out.
"""

from __future__ import annotations

from pathlib import Path

from vocalab.imports import runs_code
from vocalab.pipeline import code_deps, stage_roots


def listed_code(deps: list[str], root: Path, src: Path) -> set[Path]:
    """The code files a stage lists under ``deps`` (folders expand to their .py files)."""
    prefix = src.relative_to(root).as_posix() + "/"
    files: set[Path] = set()
    for dep in deps:
        if not dep.startswith(prefix):
            continue
        path = root / dep
        files |= set(path.rglob("*.py")) if path.is_dir() else {path}
    return {f for f in files if f.name != "__init__.py" or runs_code(f)}


def check_stages(stages: dict, root: Path, src: Path) -> dict[str, dict[str, list[str]]]:
    """``{stage: {"missing": [...], "unused": [...]}}`` for each stage whose code deps differ from its imports."""
    problems = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        cmd = body.get("cmd", "")
        cmd = " ".join(cmd) if isinstance(cmd, list) else cmd
        roots = stage_roots(cmd, root, src)
        if not roots:
            continue
        # the extractor module the generic script loads is code the stage runs, like what it imports
        imported = set(code_deps(cmd, root, src))
        listed = {p.relative_to(root).as_posix() for p in
                  listed_code([d if isinstance(d, str) else next(iter(d)) for d in body.get("deps", [])], root, src)}
        missing = sorted(imported - listed)
        unused = sorted(listed - imported)
        scripts_missing = [r.relative_to(root).as_posix() for r in roots
                           if not r.is_relative_to(src) and r.relative_to(root).as_posix() not in body.get("deps", [])]
        if missing or unused or scripts_missing:
            problems[name] = {"missing": scripts_missing + missing, "unused": unused}
    return problems
