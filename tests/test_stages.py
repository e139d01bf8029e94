"""The stage scripts turn bad input into one clear line and exit code 2."""

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT, tone, write_wav


def run_stage(script, *args, cwd):
    return subprocess.run([sys.executable, str(REPO_ROOT / "stages" / script), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_unknown_param_key_stops_the_stage(tmp_path):
    (tmp_path / "params.yaml").write_text("features:\n  n_mfccs: 40\n")
    result = run_stage("extract.py", "--extractor", "handcrafted", "--manifest", "m.csv", "--features", "out",
                       cwd=tmp_path)
    assert result.returncode == 2
    assert "error: unknown params key 'features.n_mfccs'. Did you mean 'features.n_mfcc'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_manifest_names_the_fix(tmp_path):
    (tmp_path / "params.yaml").write_text("split: {}\n")
    result = run_stage("split.py", "--manifest", "data/manifest.csv", "--out", "s.csv",
                       "--metrics", "m.json", "--plot", "p.png", cwd=tmp_path)
    assert result.returncode == 2
    assert "manifest 'data/manifest.csv' not found. Build it with: dvc repro manifest" in result.stderr


def test_local_corpus_download_and_manifest(ravdess_tree, tmp_path):
    (tmp_path / "params.yaml").write_text(f"data:\n  source: local\n  path: {ravdess_tree}\n  layout: ravdess\n")
    result = run_stage("download.py", "--out", "data/raw", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "indexed 24 files" in result.stdout and "(24 new or changed, hashed)" in result.stdout
    assert [p.name for p in (tmp_path / "data" / "raw").iterdir()] == ["corpus-index.json"]  # no copy
    result = run_stage("manifest.py", "--raw", "data/raw", "--out", "data/manifest.csv",
                       "--rejects", "data/rejects.csv", "--metrics", "metrics/manifest.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "manifest: 24 utterances, 4 speakers, 0 rejected" in result.stdout
    manifest = (tmp_path / "data" / "manifest.csv").read_text()
    assert f",{ravdess_tree.name}/Actor_01/03-01-" in manifest  # read where it lies (in the project: relative)
    result = run_stage("download.py", "--out", "data/raw", cwd=tmp_path)
    assert "indexed 24 files" in result.stdout and "(0 new or changed, hashed)" in result.stdout


def test_download_never_deletes_a_corpus_inside_its_output(ravdess_tree, tmp_path):
    raw = tmp_path / "data" / "raw"
    raw.parent.mkdir(parents=True)
    ravdess_tree.rename(raw)
    (tmp_path / "params.yaml").write_text(f"data:\n  source: local\n  path: {raw}\n")
    result = run_stage("download.py", "--out", "data/raw", cwd=tmp_path)
    assert result.returncode == 2 and "overlaps the pipeline's corpus folder" in result.stderr
    assert len(list(raw.rglob("*.wav"))) == 24


def test_pretrained_wav2vec2_without_weights_stops_with_the_fix(tmp_path):
    (tmp_path / "params.yaml").write_text(
        "embeddings:\n  wav2vec2:\n    model: facebook/wav2vec2-base\n    init: pretrained\n")
    (tmp_path / "m.csv").write_text("utt_id,path\n")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "stages" / "extract.py"), "--extractor", "wav2vec2", "--manifest", "m.csv",
         "--features", "out"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "HF_HOME": str(tmp_path / "empty-cache"), "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2, result.stderr
    assert "hub id 'facebook/wav2vec2-base'" in result.stderr and "init: random" in result.stderr
    assert "Traceback" not in result.stderr


def test_pretrained_vggish_that_cannot_be_had_stops_with_the_fix(tmp_path):
    (tmp_path / "m.csv").write_text("utt_id,path\n")
    cases = [
        # a host that refuses the connection stands in for a machine without network
        ("http://127.0.0.1:9/vggish-10086976.pth", "could not reach http://127.0.0.1:9/vggish-10086976.pth"),
        (str(tmp_path / "nowhere.pth"), "nowhere.pth: no such file"),
    ]
    for weights, message in cases:
        (tmp_path / "params.yaml").write_text(
            f"embeddings:\n  vggish:\n    init: pretrained\n    weights: {weights}\n")
        result = run_stage("extract.py", "--extractor", "vggish", "--manifest", "m.csv", "--features", "f",
                           cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "embeddings.vggish.weights" in result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / "f").exists()


def test_downloaded_corpus_goes_through_download_and_manifest(tmp_path, monkeypatch):
    import hashlib
    import io
    import zipfile

    import soundfile as sf

    from tests.conftest import serve_directory, speech_like

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for actor in (1, 2):
            for emotion in (1, 5):
                wav = io.BytesIO()
                sf.write(wav, speech_like(actor * 10 + emotion, duration_s=0.5), 16000, format="WAV")
                zf.writestr(f"Audio_Speech/Actor_0{actor}/03-01-0{emotion}-01-01-01-0{actor}.wav", wav.getvalue())
        zf.writestr("Audio_Speech/readme.txt", "not audio")
    served = tmp_path / "served"
    served.mkdir()
    (served / "mirror.zip").write_bytes(buffer.getvalue())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.setenv("VOCALAB_CACHE", str(tmp_path / "cache"))
    with serve_directory(served) as (url, requested):
        (project / "params.yaml").write_text(
            f"data:\n  source: ravdess\n  url: {url}/mirror.zip\n  sha256: {digest}\n")
        for _ in range(2):
            result = run_stage("download.py", "--out", "data/raw", cwd=project)
            assert result.returncode == 0, result.stderr
        assert requested == ["/mirror.zip"]  # the second run came from the verified cache
    assert "5 files unpacked" in result.stdout
    result = run_stage("manifest.py", "--raw", "data/raw", "--out", "data/manifest.csv", "--rejects",
                       "data/rejects.csv", "--metrics", "metrics/manifest.json", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "4 utterances, 2 speakers, 0 rejected" in result.stdout


def test_the_wrong_layout_writes_its_rejects_before_stopping(ravdess_tree, tmp_path):
    (tmp_path / "params.yaml").write_text(f"data:\n  source: local\n  path: {ravdess_tree}\n  layout: crema_d\n")
    assert run_stage("download.py", "--out", "data/raw", cwd=tmp_path).returncode == 0
    result = run_stage("manifest.py", "--raw", "data/raw", "--out", "data/manifest.csv",
                       "--rejects", "data/rejects.csv", "--metrics", "metrics/manifest.json", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no usable audio found for dataset 'crema_d' (24 file(s) rejected, 24 as unparseable_name" \
        in result.stderr and "data.layout" in result.stderr and "data/rejects.csv" in result.stderr
    rejects = (tmp_path / "data" / "rejects.csv").read_text().splitlines()
    assert len(rejects) == 25 and rejects[0] == "path,utt_id,reason,detail"


def test_a_bad_worker_count_stops_a_stage_in_one_line(ravdess_tree, tmp_path):
    (tmp_path / "params.yaml").write_text(f"data:\n  source: local\n  path: {ravdess_tree}\n  layout: ravdess\n"
                                          f"features: {{}}\n")
    assert run_stage("download.py", "--out", "data/raw", cwd=tmp_path).returncode == 0
    assert run_stage("manifest.py", "--raw", "data/raw", "--out", "data/manifest.csv", "--rejects", "data/r.csv",
                     "--metrics", "m.json", cwd=tmp_path).returncode == 0
    result = subprocess.run([sys.executable, str(REPO_ROOT / "stages" / "extract.py"), "--extractor", "handcrafted",
                             "--manifest", "data/manifest.csv", "--features", "data/features"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, env={**os.environ, "VOCALAB_WORKERS": "abc"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "VOCALAB_WORKERS='abc' is not a positive integer" in result.stderr


def test_links_and_hidden_files_of_a_corpus_are_counted_not_lost(ravdess_tree, tmp_path):
    import json

    (ravdess_tree / "Actor_01" / "03-01-08-01-01-01-01.wav").symlink_to(tmp_path / "gone.wav")  # dangling
    (ravdess_tree / ".DS_Store").write_bytes(b"\0")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "03-01-08-01-02-01-05.wav").write_bytes(b"x")
    (ravdess_tree / "Actor_05").symlink_to(elsewhere, target_is_directory=True)
    (ravdess_tree / "README.txt").write_text("about the corpus")
    (tmp_path / "params.yaml").write_text(f"data:\n  source: local\n  path: {ravdess_tree}\n  layout: ravdess\n")
    assert run_stage("download.py", "--out", "data/raw", cwd=tmp_path).returncode == 0
    result = run_stage("manifest.py", "--raw", "data/raw", "--out", "data/manifest.csv",
                       "--rejects", "data/rejects.csv", "--metrics", "metrics/manifest.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 skipped when indexed (broken_link, hidden, linked_folder" in result.stdout
    summary = json.loads((tmp_path / "metrics" / "manifest.json").read_text())
    assert summary["skipped_by_reason"] == {"broken_link": 1, "hidden": 1, "linked_folder": 1}
    on_disk = sum(len(files) + sum(os.path.islink(os.path.join(d, x)) for x in dirs)
                  for d, dirs, files in os.walk(ravdess_tree))
    assert summary["n_audio_files"] + summary["n_other_files"] + summary["n_skipped"] == on_disk == 28


def test_a_feature_set_no_stage_makes_is_named_before_training(tmp_path):
    import shutil

    import pandas as pd

    shutil.copy(REPO_ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text("split: {}\ntrain:\n  feature_sets: [handcrafted, egemap]\n")
    write_wav(tmp_path / "a.wav", tone(200), 16000)
    (tmp_path / "data").mkdir()
    pd.DataFrame({"utt_id": ["a"], "path": ["a.wav"], "dataset": ["d"], "speaker": ["s"], "label": ["x"],
                  "duration_s": [1.0], "sample_rate": [16000], "channels": [1], "format": ["WAV"],
                  "subtype": ["PCM_16"]}).to_csv(tmp_path / "data" / "manifest.csv", index=False)
    result = run_stage("split.py", "--manifest", "data/manifest.csv", "--out", "s.csv",
                       "--metrics", "m.json", "--plot", "p.png", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'train.feature_sets' lists 'egemap', which no stage of dvc.yaml extracts" in result.stderr
    assert "Did you mean 'egemaps'?" in result.stderr


def test_a_stage_ends_when_the_process_that_started_it_is_killed(tmp_path):
    """As DVC runs a stage (through a shell), and is then killed with SIGKILL: the stage stops too."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    script = tmp_path / "slow_stage.py"
    script.write_text("import time\nfrom vocalab import stage\nstage.run(lambda: time.sleep(120))\n")
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, time; subprocess.Popen('{sys.executable} {script}', shell=True); "
                               f"time.sleep(120)"],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")})
    try:
        deadline = time.monotonic() + 30
        stage_process = None
        while stage_process is None and time.monotonic() < deadline:
            found = [p for p in psutil.Process(parent.pid).children(recursive=True)
                     if str(script) in " ".join(p.cmdline()) and "python" in p.name()]
            stage_process = found[0] if found else None
            time.sleep(0.2)
        assert stage_process is not None, "the stage did not start"
        time.sleep(1.0)  # past its imports, inside the stage
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        stage_process.wait(timeout=10)  # psutil.TimeoutExpired if it lingers
    finally:
        for child in psutil.Process().children(recursive=True):
            child.kill()


def _local_manifest(ravdess_tree, tmp_path, extra: str = "") -> None:
    (tmp_path / "params.yaml").write_text(f"data:\n  source: local\n  path: {ravdess_tree}\n  layout: ravdess\n{extra}")
    for script, args in (("download.py", ("--out", "data/raw")),
                         ("manifest.py", ("--raw", "data/raw", "--out", "data/manifest.csv", "--rejects",
                                          "data/rejects.csv", "--metrics", "metrics/manifest.json"))):
        assert run_stage(script, *args, cwd=tmp_path).returncode == 0


def test_sets_no_entry_uses_are_neither_extracted_nor_fused(ravdess_tree, tmp_path):
    import json

    train = ("embeddings:\n  vggish: {}\n  voice: {}\nfeatures: {}\n"
             "train:\n  feature_sets: [handcrafted, a+b]\n  fusions:\n    a+b: {sets: [handcrafted, logmel]}\n"
             "    c+d: {sets: [handcrafted, voice]}\n")
    _local_manifest(ravdess_tree, tmp_path, train)
    for extractor, used in (("voice", False), ("vggish", True)):  # vggish writes logmel, which a+b joins
        result = run_stage("extract.py", "--extractor", extractor, "--manifest", "data/manifest.csv",
                           "--regions", "data/vad.csv", "--features", "data/features", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert ("not extracted" in result.stdout) is not used
    assert "not_built" in json.loads((tmp_path / "data/features/voice/meta.json").read_text())
    assert not (tmp_path / "data/vad.csv").exists()  # an unused set never asked for its regions
    assert run_stage("extract.py", "--extractor", "handcrafted", "--manifest", "data/manifest.csv",
                     "--features", "data/features", cwd=tmp_path).returncode == 0
    built = run_stage("fuse.py", "--name", "a+b", "--features", "data/features", "--out", "data/features/a+b",
                      cwd=tmp_path)
    assert built.returncode == 0 and "a+b = handcrafted + logmel" in built.stdout
    assert "weighting equal" in built.stdout
    skipped = run_stage("fuse.py", "--name", "c+d", "--features", "data/features", "--out", "data/features/c+d",
                        cwd=tmp_path)
    assert skipped.returncode == 0 and "c+d is not in train.feature_sets: not built" in skipped.stdout
    (tmp_path / "params.yaml").write_text((tmp_path / "params.yaml").read_text().replace("[handcrafted, a+b]",
                                                                                     "[handcrafted, c+d]"))
    stale = run_stage("fuse.py", "--name", "c+d", "--features", "data/features", "--out", "data/features/c+d",
                      cwd=tmp_path)  # listed now, but its voice store was not built: named, with the fix
    assert stale.returncode == 2 and "feature store 'data/features/voice' was not built" in stale.stderr


def test_the_vad_stage_writes_every_utterances_region_and_counts(ravdess_tree, tmp_path):
    import json

    import pandas as pd

    _local_manifest(ravdess_tree, tmp_path, "vad:\n  method: silero\nembeddings:\n  voice: {}\n")
    result = run_stage("vad.py", "--manifest", "data/manifest.csv", "--out", "data/vad.csv",
                       "--metrics", "metrics/vad.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "data/vad.csv")
    report = json.loads((tmp_path / "metrics/vad.json").read_text())
    assert len(table) == report["n_utterances"] == 24 and (table["speech_end_s"] > table["speech_start_s"]).all()
    assert report["n_no_speech"] == (~table["speech_found"]).sum() == len(report["no_speech_utt_ids"])
    assert f"vad: silero, 24 utterances" in result.stdout
    extract = run_stage("extract.py", "--extractor", "voice", "--manifest", "data/manifest.csv",
                        "--features", "data/features", cwd=tmp_path)  # no train section: every set is used
    assert extract.returncode == 2 and "pass the vad stage's table with --regions data/vad.csv" in extract.stderr
