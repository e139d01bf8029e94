"""A throwaway copy of the project in a git repo, and the commands run on it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT

COPIED = ["dvc.yaml", "params.yaml", "corpus", "stages", "src", ".dvc/config", ".dvcignore", ".gitignore"]


def run(args, cwd, env):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def make_project(root: Path, edit_params) -> tuple[Path, dict]:
    """Copy the project to ``root``, let ``edit_params(params, root)`` change params.yaml, commit it."""
    for name in COPIED:
        source = REPO_ROOT / name
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    params = yaml.safe_load((root / "params.yaml").read_text())
    edit_params(params, root)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "DVC_NO_ANALYTICS": "1", "HF_HUB_OFFLINE": "1", "VOCALAB_WORKERS": "2",
           "PYTHONPATH": str(root / "src")}  # the copied code, which DVC hashes, is the code that runs
    for args in (["git", "init", "-q"], ["git", "config", "user.name", "vocalab tests"],
                 ["git", "config", "user.email", "tests@vocalab.invalid"], ["git", "add", "-A"],
                 ["git", "commit", "-qm", "tiny project"]):
        run(args, root, env)
    return root, env


def dvc(project, *args):
    root, env = project
    return run([sys.executable, "-m", "dvc", *args], root, env)
