"""Drive real `dvc` on a tiny synthetic corpus in a throwaway git repo.

Checks the user-facing contract: `dvc repro` runs everything from an empty data/,
`dvc exp run -S features.n_mfcc=20` reruns exactly the handcrafted branch (and
`-S embeddings.wav2vec2.layers=[1]` exactly the wav2vec2 one, a VGGish param
exactly the VGGish stages, leaving log-mel alone), and `dvc metrics diff` shows
what changed. wav2vec2 is a tiny saved model loaded with init: pretrained; VGGish
runs at full size with init: random.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import save_tiny_wav2vec2
from tests.e2e.project import dvc, make_project, run, stages_run

pytestmark = pytest.mark.e2e

HANDCRAFTED_BRANCH = {"extract_handcrafted", "train@handcrafted", "evaluate@handcrafted"}
WAV2VEC2_BRANCH = {"extract_wav2vec2", "train@wav2vec2", "evaluate@wav2vec2"}
VGGISH_STAGES = {"extract_vggish", "train@vggish", "evaluate@vggish"}
LOGMEL_STAGES = {"train@logmel", "evaluate@logmel"}
ALL_STAGES = ({"download", "manifest", "split", "durations"} | HANDCRAFTED_BRANCH | WAV2VEC2_BRANCH
              | VGGISH_STAGES | LOGMEL_STAGES)
TINY_MODEL = "models/tiny-wav2vec2"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    def edit(params, root):
        params["data"]["synthetic"].update({"speakers": 4, "repetitions": 1})
        save_tiny_wav2vec2(root / TINY_MODEL)
        params["embeddings"]["wav2vec2"].update({"model": TINY_MODEL, "init": "pretrained"})

    return make_project(tmp_path_factory.mktemp("project"), edit)


def test_repro_from_empty_data_then_exp_run_reruns_only_handcrafted(project):
    root, env = project
    output = dvc(project, "repro")
    assert stages_run(output) == ALL_STAGES
    manifest = json.loads((root / "metrics/manifest.json").read_text())
    assert manifest["n_utterances"] == 120 and manifest["n_rejected"] == 0
    split = json.loads((root / "metrics/split.json").read_text())
    assert split["speaker_overlap"] is False
    before = json.loads((root / "metrics/handcrafted.json").read_text())
    assert before["n_features"] == 30 and 0.0 <= before["uar"] <= 1.0
    wav2vec2 = json.loads((root / "metrics/wav2vec2.json").read_text())
    assert wav2vec2["n_features"] == 64 and wav2vec2["pretrained"] is True and wav2vec2["model"] == TINY_MODEL
    assert wav2vec2["n_test"] == before["n_test"]
    vggish = json.loads((root / "metrics/vggish.json").read_text())
    assert vggish["n_features"] == 256 and vggish["pretrained"] is False and vggish["model"] == "vggish"
    assert vggish["short_clips"] == {"policy": "pad", "n": 0, "n_test": 0} and vggish["n_test"] == before["n_test"]
    logmel = json.loads((root / "metrics/logmel.json").read_text())
    assert logmel["n_features"] == 128 and logmel["n_test"] == before["n_test"]
    for name in ("durations.png", "class_balance.png", "split_balance.png", "handcrafted_confusion.png",
                 "wav2vec2_confusion.png", "vggish_confusion.png", "logmel_confusion.png"):
        assert (root / "metrics" / name).stat().st_size > 0
    assert "Data and pipelines are up to date" in dvc(project, "repro")

    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "baseline run"], root, env)

    output = dvc(project, "exp", "run", "-S", "features.n_mfcc=20")
    assert stages_run(output) == HANDCRAFTED_BRANCH
    for cached in ("download", "manifest", "split", "durations", "extract_wav2vec2", "extract_vggish"):
        assert f"Stage '{cached}' didn't change, skipping" in output
    after = json.loads((root / "metrics/handcrafted.json").read_text())
    assert after["n_features"] == 44

    diff = dvc(project, "metrics", "diff", "--json")
    changed = json.loads(diff)["metrics/handcrafted.json"]
    assert changed["n_features"] == {"old": 30, "new": 44, "diff": 14}

    output = dvc(project, "exp", "run", "-S", "features.hop_length=256")
    assert stages_run(output) == HANDCRAFTED_BRANCH
    meta = json.loads((root / "data/features/handcrafted/meta.json").read_text())
    assert meta["params"]["hop_length"] == 256 and meta["frames_per_second"] == 62.5

    output = dvc(project, "exp", "run", "-S", "embeddings.wav2vec2.layers=[1]")
    assert stages_run(output) == WAV2VEC2_BRANCH
    meta = json.loads((root / "data/features/wav2vec2/meta.json").read_text())
    assert meta["layers"] == [1] and meta["feature_names"][0] == "l1_0"

    output = dvc(project, "exp", "run", "-S", "embeddings.vggish.embedding=post_relu")
    assert stages_run(output) == VGGISH_STAGES  # the log-mel store came out identical
    for cached in ("train@logmel", "evaluate@logmel", "extract_wav2vec2", "extract_handcrafted"):
        assert f"Stage '{cached}' didn't change, skipping" in output
    meta = json.loads((root / "data/features/vggish/meta.json").read_text())
    assert meta["embedding"] == "post_relu" and (root / "data/features/vggish/pooled.npy").is_file()

    shown = dvc(project, "exp", "show", "--csv")
    header, *rows = [line.split(",") for line in shown.strip().splitlines()]
    n_mfcc = header.index("features.n_mfcc")
    assert any(row[n_mfcc] == "20" for row in rows)  # the experiment, with its params...
    assert any(column.endswith("uar") for column in header)  # ...and its metrics
