"""A scratch copy of the project for benchmarks: its pipeline and code in a git repo, as DVC wants."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ["dvc.yaml", "params.yaml", "corpus", "stages", "src", ".dvc/config", ".dvcignore", ".gitignore"]


def run(args: list[str], cwd: Path, env: dict[str, str], *, quiet: bool = False, name: str = "benchmark") -> str:
    """Run a command; exit with its output when it fails."""
    result = subprocess.run(args, cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None)
    if result.returncode != 0:
        sys.exit(f"{name}: '{' '.join(args)}' failed in {cwd}" + (f":\n{result.stdout}" if quiet else ""))
    return result.stdout or ""


def scratch_project(workdir: Path, *, who: str = "benchmark") -> tuple[Path, dict[str, str]]:
    """A copy of this project's pipeline and code in ``workdir`` (a git repo), and the environment to run it."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source, target = ROOT / name, workdir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": str(workdir / "src"), "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1"}
    if not (workdir / ".git").is_dir():
        for args in (["git", "init", "-q"], ["git", "config", "user.name", f"vocalab {who}"],
                     ["git", "config", "user.email", f"{who}@vocalab.invalid"]):
            run(args, workdir, env, name=who)
    return workdir, env


def set_param(params: dict, dotted: str, value: object) -> None:
    *parents, key = dotted.split(".")
    for part in parents:
        params = params.setdefault(part, {})
    params[key] = value


def rewrite_block(path: Path, start: str, end: str, body: str) -> None:
    """Replace what lies between the ``start`` and ``end`` markers of a README with ``body``."""
    text = path.read_text(encoding="utf-8")
    if start not in text or end not in text:
        sys.exit(f"error: {path} has no '{start}' ... '{end}' block to regenerate.")
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    path.write_text(f"{before}{start}\n{body}\n{end}{after}", encoding="utf-8")
