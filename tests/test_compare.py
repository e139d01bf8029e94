"""vocalab compare: paired tests between two revisions' predictions, flagged only when the interval excludes 0."""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pytest

from vocalab.cli import main
from vocalab.compare import compare_predictions, compare_revisions, mcnemar_p, table
from vocalab.errors import VocalabError


def predictions(accuracy_by_speaker: dict[str, float], seed: int, n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for speaker, accuracy in accuracy_by_speaker.items():
        actual = np.tile(["angry", "happy", "sad", "neutral"], n // 4)
        wrong = np.roll(actual, 1)
        predicted = np.where(rng.random(n) < accuracy, actual, wrong)
        rows += [{"utt_id": f"{speaker}_{i}", "speaker": speaker, "fold": 0, "actual": a, "predicted": p}
                 for i, (a, p) in enumerate(zip(actual, predicted))]
    return pd.DataFrame(rows)


SPEAKERS = [f"s{i}" for i in range(10)]


def test_a_real_improvement_is_flagged_and_no_change_is_not():
    base = predictions(dict.fromkeys(SPEAKERS, 0.5), seed=0)
    better = predictions(dict.fromkeys(SPEAKERS, 0.8), seed=1)
    same = predictions(dict.fromkeys(SPEAKERS, 0.5), seed=2)  # another run of equal skill
    up = compare_predictions("x", base, better)
    assert up.significant and up.low > 0 and up.difference == pytest.approx(up.head_uar - up.base_uar)
    assert up.mcnemar_p < 1e-6 and up.n == 400 and up.n_speakers == 10
    flat = compare_predictions("x", base, same)
    assert not flat.significant and flat.low < 0 < flat.high and flat.mcnemar_p > 0.05
    down = compare_predictions("x", better, base)
    assert down.significant and down.high < 0
    text = table([up, flat, down], "main", "HEAD")
    assert "| x | 0." in text and text.count("better") == 1 and text.count("worse") == 1


def test_a_gain_on_one_speaker_alone_is_not_significant():
    """Utterances are not independent: 40 better utterances of one speaker out of 10 do not make a real effect,
    however small McNemar's p on the utterances."""
    base = predictions(dict.fromkeys(SPEAKERS, 0.5), seed=0)
    head = base.copy()
    one = head["speaker"] == "s3"
    head.loc[one, "predicted"] = head.loc[one, "actual"]
    result = compare_predictions("x", base, head)
    assert result.mcnemar_p < 0.01 and not result.significant


def test_mcnemar_counts_only_the_discordant_utterances():
    right = np.array([True] * 10 + [False] * 10)
    assert mcnemar_p(right, right) == 1.0
    assert mcnemar_p(np.zeros(8, bool), np.ones(8, bool)) == pytest.approx(2 / 2 ** 8)


def test_predictions_of_another_corpus_are_refused():
    base = predictions({"a": 0.5, "b": 0.5}, seed=0)
    other = base.assign(actual=np.roll(base["actual"], 1))
    with pytest.raises(VocalabError, match=r"another label or speaker"):
        compare_predictions("x", base, other)
    with pytest.raises(VocalabError, match=r"no utterance in common"):
        compare_predictions("x", base, base.assign(utt_id="z" + base["utt_id"]))


def _git(root, *args):
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def test_two_commits_of_a_git_repo_and_the_workspace(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "metrics" / "predictions"
    folder.mkdir(parents=True)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.name", "vocalab test")
    _git(tmp_path, "config", "user.email", "test@vocalab.invalid")
    predictions(dict.fromkeys(SPEAKERS, 0.5), seed=0).to_csv(folder / "voice.csv", index=False)
    predictions(dict.fromkeys(SPEAKERS, 0.5), seed=0).to_csv(folder / "compare.csv", index=False)
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "base")
    predictions(dict.fromkeys(SPEAKERS, 0.85), seed=1).to_csv(folder / "voice.csv", index=False)
    (folder / "compare.csv").unlink()
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "head")
    _git(tmp_path, "update-ref", "refs/exps/ab/cdef/brave-vole", "HEAD~1")  # as dvc exp names its runs

    rows, only = compare_revisions(tmp_path, "HEAD~1", "HEAD")
    assert [r.name for r in rows] == ["voice"] and rows[0].significant
    assert only == ["compare (only in HEAD~1)"]
    assert compare_revisions(tmp_path, "brave-vole", "HEAD")[0] == rows  # a dvc exp name resolves
    predictions(dict.fromkeys(SPEAKERS, 0.5), seed=0).to_csv(folder / "voice.csv", index=False)
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "HEAD"]) == 0  # against the workspace: back to the base's predictions
    out = capsys.readouterr().out
    assert "| voice |" in out and "worse" in out and "not compared" not in out
    assert main(["compare", "no-such-revision"]) == 2
    assert "'no-such-revision' is neither a git revision nor a dvc experiment" in capsys.readouterr().err
