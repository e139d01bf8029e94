"""Drive real `dvc` on a tiny synthetic corpus in a throwaway git repo.

Checks the user-facing contract: `dvc repro` runs everything from an empty data/,
`dvc exp run -S features.n_mfcc=20` reruns exactly the handcrafted branch (and each
extractor's params change its own stage only), `dvc metrics diff` and `dvc exp show`
fit a reviewer's screen. wav2vec2 is a tiny saved model loaded with init: pretrained; VGGish
runs at full size with init: random.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.e2e.browser import chromium, rendered_images
from tests.e2e.project import dvc, make_project, run, stages_run
from vocalab.testing.wav2vec2_tiny import save_tiny_wav2vec2

pytestmark = pytest.mark.e2e

HANDCRAFTED_BRANCH = {"extract_handcrafted", "train@handcrafted", "evaluate@handcrafted"}
WAV2VEC2_BRANCH = {"extract_wav2vec2", "train@wav2vec2", "evaluate@wav2vec2"}
VGGISH_STAGES = {"extract_vggish", "train@vggish", "evaluate@vggish"}
LOGMEL_STAGES = {"train@logmel", "evaluate@logmel"}
VOICE_BRANCH = {"vad", "extract_voice", "train@voice", "evaluate@voice"}
VOICE_FUSED = {f"{stage}@{name}" for stage in ("fuse", "train", "evaluate") for name in ("compare+voice",
                                                                                        "egemaps+voice")}
EGEMAPS_STAGES = {"train@egemaps", "evaluate@egemaps"}
COMPARE_STAGES = {"train@compare", "evaluate@compare"}
SMILE_FUSED = {"fuse@egemaps+handcrafted", "train@egemaps+handcrafted", "evaluate@egemaps+handcrafted"}
SETS = ["compare+voice", "egemaps+voice", "compare", "voice", "egemaps+handcrafted", "egemaps", "handcrafted",
        "logmel", "wav2vec2", "vggish"]
# extractors no set of the default run reads: their stages run, say so and extract nothing
UNUSED_EXTRACTORS = {"extract_checkpoint", "extract_encoder", "extract_notebook180", "extract_waveform"}
ALL_STAGES = ({"check_params", "download", "manifest", "split", "durations", "summary", "extract_opensmile"}
              | UNUSED_EXTRACTORS
              | HANDCRAFTED_BRANCH | WAV2VEC2_BRANCH | VGGISH_STAGES | LOGMEL_STAGES | VOICE_BRANCH | VOICE_FUSED
              | EGEMAPS_STAGES | COMPARE_STAGES | SMILE_FUSED)
TINY_MODEL = "models/tiny-wav2vec2"
# the README's command for reviewing experiments: what changed, headline UAR only
EXP_SHOW = ["--only-changed", "--drop",
            "Created|data/.*|src/.*|stages/.*|params[.]yaml$|metrics/predictions"
            "|.*:(uar_std|macro_f1|accuracy|n_test|n_features)"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    def edit(params, root):
        params["data"]["synthetic"].update({"speakers": 4, "repetitions": 1})
        save_tiny_wav2vec2(root / TINY_MODEL)
        params["embeddings"]["wav2vec2"].update({"model": TINY_MODEL, "init": "pretrained"})

    return make_project(tmp_path_factory.mktemp("project"), edit)


def changed_stages(project, changes: dict) -> set[str]:
    """The stages `dvc status` finds changed once ``changes`` (dotted keys) are set in params.yaml; the file is restored."""
    root, _ = project
    path = root / "params.yaml"
    text = path.read_text()
    params = yaml.safe_load(text)
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        section = params
        for name in parents:
            section = section[name]
        section[key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        return set(json.loads(dvc(project, "status", "--json")))
    finally:
        path.write_text(text)


def details(root, name):
    return json.loads((root / "metrics" / "details" / f"{name}.json").read_text())


def test_repro_from_empty_data_then_exp_run_reruns_only_handcrafted(project):
    root, env = project
    output = dvc(project, "repro")
    assert stages_run(output) == ALL_STAGES
    manifest = json.loads((root / "metrics/manifest.json").read_text())
    assert manifest["n_utterances"] == 60 and manifest["n_rejected"] == 0
    split = json.loads((root / "metrics/split.json").read_text())
    assert split["speaker_overlap"] is False
    before = json.loads((root / "metrics/handcrafted.json").read_text())
    assert set(before) == {"uar", "uar_std", "macro_f1", "accuracy", "n_test", "n_features"}  # headline only
    assert before["n_features"] == 30 and 0.0 <= before["uar"] <= 1.0
    wav2vec2 = details(root, "wav2vec2")
    assert wav2vec2["n_features"] == 64 and wav2vec2["pretrained"] is True and wav2vec2["model"] == TINY_MODEL
    assert wav2vec2["n_test"] == before["n_test"]
    vggish = details(root, "vggish")
    assert vggish["n_features"] == 256 and vggish["pretrained"] is False and vggish["model"] == "vggish"
    assert vggish["short_clips"] == {"policy": "pad", "n": 0, "n_test": 0} and vggish["n_test"] == before["n_test"]
    logmel = json.loads((root / "metrics/logmel.json").read_text())
    assert logmel["n_features"] == 128 and logmel["n_test"] == before["n_test"]
    fused = details(root, "compare+voice")
    assert fused["n_features"] == 6373 + 256 and fused["components"] == ["compare", "voice"]
    voice = details(root, "voice")
    assert voice["n_features"] == 256 and voice["pretrained"] is True
    vad = json.loads((root / "metrics/vad.json").read_text())
    assert vad["n_utterances"] == 60 and vad["n_no_speech"] == len(vad["no_speech_utt_ids"])
    hc = details(root, "handcrafted")
    assert len(hc["per_class"]) == 8 and hc["protocol"]["folds"] == 1  # 8 synthetic emotions
    summary = json.loads((root / "metrics/summary.json").read_text())
    assert set(summary) == set(SETS)
    egemaps = json.loads((root / "metrics/egemaps.json").read_text())
    assert egemaps["n_features"] == 88 and egemaps["n_test"] == before["n_test"]
    assert json.loads((root / "metrics/compare.json").read_text())["n_features"] == 6373
    assert json.loads((root / "metrics/egemaps+handcrafted.json").read_text())["n_features"] == 88 + 30
    assert hc["protocol"]["normalize"] == "speaker" and hc["uar"] == before["uar"]
    assert summary["handcrafted"]["uar"] == before["uar"]  # recomputed from the predictions, same number
    assert list(summary) == sorted(summary, key=lambda name: -summary[name]["uar"])
    table = (root / "metrics/leaderboard.md").read_text()
    assert table.startswith("| rank | feature set |") and "| compare+voice |" in table
    assert "| vggish (random weights: not a result) |" in table  # a plumbing check, never read as a result
    for name in ("durations.png", "class_balance.png", "split_balance.png", "handcrafted_confusion.png",
                 "wav2vec2_confusion.png", "vggish_confusion.png", "logmel_confusion.png", "comparison.png",
                 "curves/handcrafted.png"):
        assert (root / "metrics" / name).stat().st_size > 0
    assert "Data and pipelines are up to date" in dvc(project, "repro")

    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "baseline run"], root, env)

    output = dvc(project, "exp", "run", "-S", "features.n_mfcc=20")
    # check_params reruns on any edit of params.yaml: it checks every section, in under a second
    # every fusion may join any store, so each checks its own again: only egemaps+handcrafted changed
    fuse_checks = {"fuse@compare+voice", "fuse@egemaps+voice"}
    assert stages_run(output) == HANDCRAFTED_BRANCH | SMILE_FUSED | fuse_checks | {"summary", "check_params"}
    for cached in ("download", "manifest", "split", "durations", "extract_wav2vec2", "extract_vggish",
                   "extract_opensmile", "extract_voice", "vad", "train@compare+voice"):
        assert f"Stage '{cached}' didn't change, skipping" in output
    after = json.loads((root / "metrics/handcrafted.json").read_text())
    assert after["n_features"] == 44

    diff = json.loads(dvc(project, "metrics", "diff", "--json"))
    assert diff["metrics/handcrafted.json"]["n_features"] == {"old": 30, "new": 44, "diff": 14}
    rows = [line for line in dvc(project, "metrics", "diff").splitlines() if line.startswith("metrics/")]
    assert len(rows) == sum(len(changed) for changed in diff.values()) <= 20  # one screen in review

    dvc(project, "exp", "run", "-S", "features.n_mfcc=30")  # a second and a third experiment: the README's
    dvc(project, "exp", "run", "-S", "features.n_mfcc=16")  # exp show line (its width depends on the columns kept)
    shown = run([sys.executable, "-m", "dvc", "exp", "show", "--no-pager", *EXP_SHOW], root, {**env, "COLUMNS": "400"})
    lines = [line.rstrip() for line in shown.splitlines()]
    assert max(map(len, lines)) <= 160 and "features.n_mfcc" in shown and "metrics/handcrafted.json:uar" in shown
    assert sum("[" in line for line in lines) == 3 and "…" not in shown  # three experiments, nothing cut

    # each extractor's params reach its own stage and no other (what follows reruns by DVC's hashes; that a
    # sibling store comes out byte-identical, so its branch is skipped, is tested on the extractors)
    assert changed_stages(project, {"features.hop_length": 256}) == {"extract_handcrafted", "check_params"}
    assert changed_stages(project, {"embeddings.wav2vec2.layers": [1]}) == {"extract_wav2vec2", "check_params"}
    assert changed_stages(project, {"embeddings.vggish.embedding": "post_relu"}) == {"extract_vggish",
                                                                                    "check_params"}
    assert changed_stages(project, {"opensmile.egemaps": "GeMAPSv01b"}) == {"extract_opensmile", "check_params"}
    # speech regions reach the stages that read them, and only those
    assert changed_stages(project, {"vad.padding_ms": 50}) == {"vad", "extract_voice", "extract_opensmile",
                                                               "check_params"}
    assert changed_stages(project, {"train.svm.C": 10.0}) == {f"train@{name}" for name in SETS} | {"check_params"}

    # a misspelled section changes no other stage, and is named instead of ignored
    path = root / "params.yaml"
    text = path.read_text()
    path.write_text(text.replace("\nfeatures:", "\nfeaturs:", 1))
    try:
        failed = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=root, env=env, capture_output=True,
                                text=True, timeout=300)
    finally:
        path.write_text(text)
    assert failed.returncode != 0 and "unknown params section 'featurs'" in failed.stdout + failed.stderr

    shown = dvc(project, "exp", "show", "--csv")
    header, *rows = [line.split(",") for line in shown.strip().splitlines()]
    n_mfcc = header.index("features.n_mfcc")
    assert any(row[n_mfcc] == "20" for row in rows)  # the experiment, with its params...
    assert any(column.endswith("uar") for column in header)  # ...and its metrics


def test_plots_diff_renders_offline(project):
    """`dvc plots diff` against the last commit: every declared plot once, each rendered with no network."""
    root, env = project
    declared = json.loads(dvc(project, "plots", "diff", "HEAD", "--json"))["data"]
    images = [r for plot in declared.values() for r in plot if r.get("type") == "image"]
    assert images and len(images) == sum(len(plot) for plot in declared.values())  # static images only
    assert "metrics/curves/handcrafted.png" in declared and "metrics/comparison.png" in declared
    dvc(project, "plots", "diff", "HEAD", "-o", "review")
    page = root / "review" / "index.html"
    html = page.read_text()
    assert "<script" not in html and "http" not in html.replace("http-equiv", "")  # nothing to fetch
    browser = chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install chromium): the page was checked as text only")
    assert rendered_images(page, browser) == (len(images), len(images))


def test_sequence_model_with_speaker_folds_then_predict(project):
    """A tiny attentive head over 2 leave-speakers-out folds, then predict with the saved model."""
    root, env = project
    output = dvc(project, "exp", "run", "-S", "train.model=attentive", "-S", "train.sequence.epochs=2",
                 "-S", "train.sequence.hidden=8", "-S", "train.feature_sets=[handcrafted,logmel]",
                 "-S", "split.strategy=speaker_kfold", "-S", "split.folds=2")
    assert {"split", "train@handcrafted", "evaluate@handcrafted", "train@logmel", "summary"} <= stages_run(output)
    # sets no entry uses are neither extracted nor fused (each stage leaves word of it in a moment)
    for unused in ("wav2vec2", "opensmile", "voice"):
        assert f"extract_{unused}: no entry of train.feature_sets uses" in output
    assert "fuse: compare+voice is not in train.feature_sets: not built" in output
    metrics = details(root, "handcrafted")
    assert metrics["classifier"] == "attentive" and metrics["protocol"]["split"] == "speaker_kfold"
    assert len(metrics["folds"]["per_fold"]) == 2 and metrics["n_test"] == 60  # every utterance tested once
    assert metrics["protocol"]["early_stopping"] == "validation UAR"
    curves = (root / "metrics/curves/handcrafted.csv").read_text().splitlines()
    assert curves[0].startswith("fold,candidate,step,epoch,train_loss") and len(curves) >= 3
    assert set(json.loads((root / "metrics/summary.json").read_text())) == {"handcrafted", "logmel"}
    import pandas as pd

    predictions = pd.read_csv(root / "metrics/predictions/handcrafted.csv")
    manifest = pd.read_csv(root / "data/manifest.csv").set_index("utt_id")
    speaker = predictions["speaker"].iloc[0]
    mine = predictions[predictions["speaker"] == speaker]
    audio = [str(root / manifest.loc[u, "path"]) for u in mine["utt_id"]]
    out = run([sys.executable, "-m", "vocalab.cli", "predict", *audio, "--model", "data/models/handcrafted",
               "--speaker", speaker, "--json"], root, env)
    records = json.JSONDecoder().raw_decode(out[out.index("["):])[0]
    assert [r["file"] for r in records] == audio and {r["speaker"] for r in records} == {speaker}
    assert {r["normalised_by"] for r in records} == {f"speaker '{speaker}' ({len(audio)} files)"}
    assert {r["label"] for r in records} <= set(predictions["actual"])
