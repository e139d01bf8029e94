"""A reviewer's round trip through a real DVC remote (a local folder) and a bare git remote.

Push a run from one clone; a fresh clone `dvc pull`s it, finds nothing to rerun,
then shares an experiment with `dvc exp push` / `dvc exp pull` and diffs its metrics.
"""

from __future__ import annotations

import json

import yaml

import pytest

from tests.e2e.project import dvc, make_project, run, stages_run

pytestmark = pytest.mark.e2e



def test_push_pull_and_share_an_experiment(tmp_path_factory):
    def edit(params, root):  # the handcrafted branch only: what is shared, not how long it takes, is tested
        params["data"]["synthetic"].update({"speakers": 4, "repetitions": 1})
        params["train"].update({"feature_sets": ["handcrafted"], "fusions": {}})
        pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
        for stage in ("extract_wav2vec2", "extract_vggish", "extract_opensmile"):
            del pipeline["stages"][stage]
        (root / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))

    base = tmp_path_factory.mktemp("remote")
    root, env = make_project(base / "author", edit)
    git_remote, storage = base / "origin.git", base / "dvc-storage"
    run(["git", "init", "-q", "--bare", str(git_remote)], base, env)
    dvc((root, env), "remote", "add", "-d", "storage", str(storage))
    dvc((root, env), "repro")
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "a run, with its remote"], root, env)
    run(["git", "remote", "add", "origin", str(git_remote)], root, env)
    run(["git", "push", "-q", "origin", "HEAD:main"], root, env)
    dvc((root, env), "push")

    clone = base / "reviewer"
    run(["git", "clone", "-q", "-b", "main", str(git_remote), str(clone)], base, env)
    reviewer = (clone, {**env, "PYTHONPATH": str(clone / "src")})
    dvc(reviewer, "pull")
    assert "up to date" in dvc(reviewer, "status")
    assert stages_run(dvc(reviewer, "repro")) == set()  # everything came from the remote
    assert (clone / "data/features/handcrafted/frames.npy").is_file()

    dvc((root, env), "exp", "run", "-n", "more-mfcc", "-S", "features.n_mfcc=20")
    dvc((root, env), "exp", "push", "origin", "more-mfcc")
    dvc(reviewer, "exp", "pull", "origin", "more-mfcc")
    assert "more-mfcc" in dvc(reviewer, "exp", "list")
    diff = json.loads(dvc(reviewer, "metrics", "diff", "HEAD", "more-mfcc", "--json"))
    assert diff["metrics/handcrafted.json"]["n_features"] == {"old": 30, "new": 44, "diff": 14}
    dvc(reviewer, "exp", "apply", "more-mfcc")  # its outputs come from the remote's cache, not a rerun
    assert json.loads((clone / "metrics/handcrafted.json").read_text())["n_features"] == 44
    assert "up to date" in dvc(reviewer, "status")
