"""What DVC checks before any stage runs is checked first by ``vocalab check`` (and ``make repro``)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def _project(tmp_path: Path, data_path: str) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO_ROOT / "dvc.yaml", project / "dvc.yaml")
    text = (REPO_ROOT / "params.yaml").read_text().replace("  source: synthetic ", "  source: local     ", 1)
    (project / "params.yaml").write_text(text.replace("  path: corpus", f"  path: {data_path}", 1))
    return project


def _check(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vocalab.cli", "check"], cwd=project, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")})


def test_the_project_as_shipped_passes():
    done = subprocess.run([sys.executable, "-m", "vocalab.cli", "check"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")})
    assert done.returncode == 0 and "sections valid" in done.stdout, done.stderr


def test_broken_links_and_loops_under_the_corpus_are_named_with_the_fix(tmp_path):
    project = _project(tmp_path, "corpus")
    corpus = project / "corpus" / ".hidden"
    corpus.mkdir(parents=True)
    (project / "corpus" / "a.wav").write_bytes(b"x")
    (project / "corpus" / "gone.wav").symlink_to("nowhere.wav")
    (corpus / "b").symlink_to("c")
    (corpus / "c").symlink_to("b")
    (project / "corpus" / "up").symlink_to("..")  # a link to a folder: DVC does not follow it, nor does vocalab
    done = _check(project)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    line = done.stderr.strip()
    assert line.count("\n") == 0 and "3 link(s) that cannot be followed" in line
    assert "'gone.wav' (a link to 'nowhere.wav', which does not exist)" in line
    assert "'.hidden/b' (a link to 'c' that leads back to itself)" in line and "-xtype l" in line


@pytest.mark.parametrize("data_path, words", [("data/raw", "is inside 'data/raw', which stage 'download' writes"),
                                              ("data", "holds 'data/raw'"),
                                              (".", "holds")])
def test_a_corpus_inside_or_around_the_outputs_is_named_before_dvc_finds_a_cycle(tmp_path, data_path, words):
    project = _project(tmp_path, data_path)
    (project / data_path).mkdir(parents=True, exist_ok=True)
    done = _check(project)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"params key 'data.path' = '{data_path}' {words}" in done.stderr


def test_make_repro_runs_the_check_before_dvc():
    recipe = (REPO_ROOT / "Makefile").read_text().split("\nrepro:")[1].split("\n\n")[0]
    assert recipe.index("vocalab check") < recipe.index("dvc repro")


def test_broken_project_files_are_one_line_each(tmp_path):
    project = _project(tmp_path, "corpus")
    (project / "corpus").mkdir()
    (project / "dvc.yaml").write_text("stages: [\n")
    done = _check(project)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "is not a DVC pipeline file" in done.stderr
    (project / "dvc.yaml").unlink()
    done = _check(project)
    assert done.returncode == 2 and "no 'dvc.yaml'" in done.stderr
    (project / "params.yaml").write_text("data: [1\n")
    done = _check(project)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "is not valid YAML at line 2, column 1" in done.stderr
