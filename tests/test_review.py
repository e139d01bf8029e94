"""vocalab review: one offline report of a change between two commits of a real git repository."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from tests.test_compare import SPEAKERS, predictions
from vocalab.cli import main
from vocalab.review import IMAGE_WIDTH, changed_params, flat


def _png(path, color: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2), dpi=50)
    ax.bar([0, 1], [1, 2], color=color)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def _commit(repo, message: str) -> None:
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", message], cwd=repo, check=True)


@pytest.fixture
def two_commits(tmp_path):
    repo = tmp_path / "project"
    (repo / "metrics" / "predictions").mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "config", "user.name", "vocalab tests"], cwd=repo, check=True)
    subprocess.run(["git", "config", "user.email", "tests@vocalab.invalid"], cwd=repo, check=True)
    (repo / "params.yaml").write_text("features:\n  n_mfcc: 13\n  hop_length: 512\ntrain:\n  model: logreg\n")
    predictions(dict.fromkeys(SPEAKERS, 0.5), seed=0).to_csv(repo / "metrics/predictions/handcrafted.csv",
                                                              index=False)
    predictions(dict.fromkeys(SPEAKERS, 0.6), seed=5).to_csv(repo / "metrics/predictions/egemaps.csv", index=False)
    (repo / "metrics" / "leaderboard.md").write_text("| rank | feature set |\n|---:|---|\n| 1 | handcrafted |\n")
    _png(repo / "metrics" / "handcrafted_confusion.png", "red")
    _png(repo / "metrics" / "egemaps_confusion.png", "blue")
    _commit(repo, "base")
    (repo / "params.yaml").write_text("features:\n  n_mfcc: 40\n  hop_length: 512\ntrain:\n  model: logreg\n")
    predictions(dict.fromkeys(SPEAKERS, 0.9), seed=1).to_csv(repo / "metrics/predictions/handcrafted.csv",
                                                              index=False)
    _png(repo / "metrics" / "handcrafted_confusion.png", "green")  # changed; egemaps's plot is not
    _commit(repo, "head: n_mfcc 40")
    return repo


def test_the_report_holds_the_change_and_only_the_change(two_commits, monkeypatch, capsys):
    monkeypatch.chdir(two_commits)
    assert main(["review", "HEAD~1", "HEAD"]) == 0
    md = (two_commits / "review" / "review.md").read_text()
    # the comparison: handcrafted flagged better, egemaps unchanged
    handcrafted = next(line for line in md.splitlines() if line.startswith("| handcrafted |"))
    assert handcrafted.endswith("| better |")
    assert re.search(r"\| egemaps \| 0\.\d+ \| 0\.\d+ \| \+0\.000", md)
    assert "| 1 | handcrafted |" in md  # the leaderboard
    # per-class recall: handcrafted's four classes moved, egemaps's did not
    recall = md.split("## Per-class recall that changed")[1].split("##")[0]
    assert recall.count("| handcrafted |") == 4 and "| egemaps |" not in recall
    # only the plot that changed, both sides, sized for a 1,000 px column
    plots = md.split("## Plots whose data changed")[1].split("## Params")[0]
    assert "metrics/handcrafted_confusion.png" in plots and "egemaps_confusion" not in plots
    images = re.findall(r'<img src="([^"]+)" width="(\d+)">', plots)
    assert len(images) == 2 and all(int(w) * 2 <= 1000 for _, w in images) and int(images[0][1]) == IMAGE_WIDTH
    assert all((two_commits / "review" / src).is_file() for src, _ in images)
    assert (two_commits / "review" / images[0][0]).read_bytes() != (two_commits / "review" / images[1][0]).read_bytes()
    # the params that changed, and no other
    assert "| features.n_mfcc | 13 | 40 |" in md and "hop_length" not in md
    # the HTML twin is one self-contained file: images inline, nothing fetched
    page = (two_commits / "review" / "review.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "http" not in page.replace("http-equiv", "")
    # tables are tables in the HTML, not Markdown text: comparison, leaderboard, recall, params (+ plot rows)
    assert "<pre>" not in page and "| handcrafted |" not in page and page.count("<thead>") == 4
    assert "review: wrote" in capsys.readouterr().out


def test_the_workspace_is_the_default_head_and_a_bad_revision_is_one_line(two_commits, monkeypatch, capsys):
    monkeypatch.chdir(two_commits)
    assert main(["review", "HEAD", "--out", "r2"]) == 0
    md = (two_commits / "r2" / "review.md").read_text()
    assert "No plot changed." in md and "No param changed." in md and "No per-class recall changed." in md
    capsys.readouterr()
    assert main(["review", "no-such-revision"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "neither a git revision nor a dvc experiment" in err


def test_params_are_compared_key_by_key():
    assert flat({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {"a.b": 1, "a.c.d": [1, 2], "e": {}}
    rows = changed_params(b"a:\n  b: 1\n  c: x\n", b"a:\n  b: 2\n  d: y\n")
    assert rows == [("a.b", "1", "2"), ("a.c", "x", "-"), ("a.d", "-", "y")]


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")), reason="no Chromium here")
def test_the_html_report_opens_in_headless_chromium(two_commits, monkeypatch, tmp_path):
    monkeypatch.chdir(two_commits)
    assert main(["review", "HEAD~1", "HEAD"]) == 0
    shot = tmp_path / "shot.png"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1000,1400",
                           f"--screenshot={shot}", (two_commits / "review" / "review.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.is_file(), done.stderr
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (1400, 1000) and pixels.std() > 5  # a rendered page, not a blank one


def test_the_ci_template_runs_the_review_and_is_not_run_by_the_projects_ci():
    import yaml

    from tests.conftest import REPO_ROOT

    template = REPO_ROOT / "ci-templates" / "github-review.yml"
    workflow = yaml.safe_load(template.read_text())
    steps = workflow["jobs"]["review"]["steps"]
    commands = " ".join(step.get("run", "") for step in steps)
    assert 'vocalab review "origin/${{ github.base_ref }}"' in commands and "gh pr comment" in commands
    assert "review/review.md" in commands and any(s.get("with", {}).get("path") == "review/" for s in steps)
    assert "GitLab" in template.read_text()
    assert "ci-templates" not in (REPO_ROOT / ".ci" / "run").read_text()
    assert not (REPO_ROOT / ".github" / "workflows" / "review.yml").exists()
