"""Is a difference between two revisions real? Paired tests on the same test utterances.

``vocalab compare BASE [HEAD]`` reads ``metrics/predictions/<set>.csv`` at two revisions
(a git revision, or a ``dvc exp`` name; HEAD defaults to the working tree) and, per set,
on the utterances both predicted:

* UAR before and after, and the difference with a 95 % interval from a **paired bootstrap
  over test speakers** (the same speakers drawn for both sides: utterances of one speaker
  are not independent, and the pairing removes what the two runs share);
* an exact **McNemar** test on the utterances one side got right and the other wrong.

A difference is flagged only when its interval excludes 0.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vocalab.errors import VocalabError
from vocalab.metrics import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, percentile_interval, speaker_bootstrap_uar, uar

PREDICTIONS = "metrics/predictions"
_TEXT_COLUMNS = dict.fromkeys(("utt_id", "speaker", "actual", "predicted"), str)  # labels such as "1" stay text
WORKTREE = "workspace"  # HEAD's default: the files as they are now


def _git(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)


def resolve(root: Path, revision: str) -> str:
    """A git commit for ``revision``: a branch, tag or commit, or the name of a ``dvc exp``."""
    found = _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if found.returncode == 0:
        return found.stdout.strip()
    refs = _git(root, "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps").stdout.split("\n")
    matches = [line.split()[1] for line in refs if line and line.split()[0].rsplit("/", 1)[-1] == revision]
    if len(matches) == 1:
        return matches[0]
    raise VocalabError(f"'{revision}' is neither a git revision nor a dvc experiment of {root} "
                       f"(see 'git log' and 'dvc exp show').")


def read_predictions(root: Path, revision: str) -> dict[str, pd.DataFrame]:
    """Each set's predictions at ``revision`` (:data:`WORKTREE`: the files on disk)."""
    if revision == WORKTREE:
        folder = root / PREDICTIONS
        return {p.stem: pd.read_csv(p, dtype=_TEXT_COLUMNS) for p in sorted(folder.glob("*.csv"))}
    commit = resolve(root, revision)
    listed = _git(root, "ls-tree", "--name-only", f"{commit}:{PREDICTIONS}")
    if listed.returncode != 0:
        raise VocalabError(f"revision '{revision}' has no {PREDICTIONS}/: it predates the pipeline's "
                           f"predictions, or its metrics were not committed.")
    tables = {}
    for name in sorted(n for n in listed.stdout.split() if n.endswith(".csv")):
        text = _git(root, "show", f"{commit}:{PREDICTIONS}/{name}").stdout
        tables[name[:-4]] = pd.read_csv(io.StringIO(text), dtype=_TEXT_COLUMNS)
    return tables


def mcnemar_p(base_right: np.ndarray, head_right: np.ndarray) -> float:
    """Exact two-sided McNemar p-value: a binomial test on the utterances the two sides disagree about."""
    from scipy.stats import binomtest

    b = int(np.sum(base_right & ~head_right))
    c = int(np.sum(~base_right & head_right))
    return 1.0 if b + c == 0 else float(binomtest(c, b + c, 0.5).pvalue)


@dataclass(frozen=True)
class SetComparison:
    name: str
    n: int  # utterances both sides predicted
    n_speakers: int
    base_uar: float
    head_uar: float
    low: float  # 95 % interval of head - base
    high: float
    mcnemar_p: float

    @property
    def difference(self) -> float:
        return self.head_uar - self.base_uar

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def compare_predictions(name: str, base: pd.DataFrame, head: pd.DataFrame) -> SetComparison:
    """One set's paired comparison on the utterances both sides predicted (same speakers, same labels)."""
    joined = base.merge(head, on="utt_id", suffixes=("_base", "_head"), validate="one_to_one")
    if joined.empty:
        raise VocalabError(f"{name}: the two revisions predicted no utterance in common (another corpus or split).")
    differs = (joined["actual_base"] != joined["actual_head"]) | (joined["speaker_base"] != joined["speaker_head"])
    if differs.any():
        raise VocalabError(f"{name}: utterance '{joined.loc[differs, 'utt_id'].iloc[0]}' has another label or "
                           f"speaker in the two revisions: they used different corpora or labels, so a paired "
                           f"test does not apply.")
    actual, speakers = joined["actual_base"].to_numpy(), joined["speaker_base"].to_numpy()
    base_pred, head_pred = joined["predicted_base"].to_numpy(), joined["predicted_head"].to_numpy()
    # the same speakers drawn for both sides (same seed, same speakers): the interval is of the paired difference
    draws = speaker_bootstrap_uar(actual, head_pred, speakers) - speaker_bootstrap_uar(actual, base_pred, speakers)
    low, high = percentile_interval(draws)
    return SetComparison(name=name, n=len(joined), n_speakers=len(set(speakers)),
                         base_uar=uar(actual, base_pred), head_uar=uar(actual, head_pred), low=low, high=high,
                         mcnemar_p=mcnemar_p(base_pred == actual, head_pred == actual))


def compare_sets(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame], base: str,
                 head: str) -> tuple[list[SetComparison], list[str]]:
    """Every set both sides predicted, compared; and the sets only one of them has."""
    common = sorted(set(before) & set(after))
    only = [f"{name} (only in {base})" for name in sorted(set(before) - set(after))]
    only += [f"{name} (only in {head})" for name in sorted(set(after) - set(before))]
    return [compare_predictions(name, before[name], after[name]) for name in common], only


def compare_revisions(root: Path, base: str, head: str = WORKTREE) -> tuple[list[SetComparison], list[str]]:
    """Every set both revisions predicted, compared; and the sets only one of them has."""
    return compare_sets(read_predictions(root, base), read_predictions(root, head), base, head)


def table(rows: list[SetComparison], base: str, head: str) -> str:
    """A Markdown table, one row per set, in name order (rows do not move between revisions)."""
    lines = [f"| set | UAR {base} | UAR {head} | difference (95 % CI, speaker bootstrap) | McNemar p | |",
             "|---|---:|---:|---:|---:|---|"]
    for row in rows:
        flag = ("better" if row.difference > 0 else "worse") if row.significant else ""
        lines.append(f"| {row.name} | {row.base_uar:.3f} | {row.head_uar:.3f} | {row.difference:+.3f} "
                     f"[{row.low:+.3f}, {row.high:+.3f}] | {row.mcnemar_p:.3g} | {flag} |")
    lines.append("")
    lines.append(f"Paired on the same test utterances; the interval resamples test speakers "
                 f"({BOOTSTRAP_RESAMPLES} draws, seed {BOOTSTRAP_SEED}). Only a difference whose interval excludes "
                 f"0 is flagged; with few test speakers (the default split has 2) none will be: use "
                 f"split.strategy: speaker_kfold.")
    return "\n".join(lines) + "\n"
