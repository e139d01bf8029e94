"""A scratch copy of the project for benchmarks: its pipeline and code in a git repo, as DVC wants."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

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


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a benchmark run on a real corpus with speaker k-fold."""
    parser.add_argument("corpus", type=Path, help="the corpus root (read only)")
    parser.add_argument("--layout", required=True, help="data.layout of the corpus, e.g. emodb, ravdess, folders")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="any other params.yaml key, as in dvc exp run -S (value in YAML)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch project folder (default: a temp dir, removed)")


def corpus_project(args: argparse.Namespace, who: str) -> tuple[Path, dict[str, str], dict, Path]:
    """The scratch project of a corpus benchmark (:func:`add_corpus_arguments`): its root, environment,
    params (``-S`` overrides, then the corpus and speaker k-fold set) and corpus folder."""
    corpus = args.corpus.expanduser().resolve()
    if not corpus.is_dir():
        sys.exit(f"{who}: corpus folder '{args.corpus}' does not exist. Give the root of a corpus on disk.")
    root, env = scratch_project(args.workdir or Path(tempfile.mkdtemp(prefix=f"vocalab-{who}-")), who=who)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for override in args.overrides:
        key, _, value = override.partition("=")
        set_param(params, key, yaml.safe_load(value))
    for key, value in {"data.source": "local", "data.path": str(corpus), "data.layout": args.layout,
                       "split.strategy": "speaker_kfold", "split.folds": args.folds}.items():
        set_param(params, key, value)
    return root, env, params, corpus


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
