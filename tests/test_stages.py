"""The stage scripts turn bad input into one clear line and exit code 2."""

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


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
    assert "copied 24 files" in result.stdout
    result = run_stage("manifest.py", "--raw", "data/raw", "--out", "data/manifest.csv",
                       "--rejects", "data/rejects.csv", "--metrics", "metrics/manifest.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "manifest: 24 utterances, 4 speakers, 0 rejected" in result.stdout
    assert (ravdess_tree / "Actor_01").is_dir()  # the original is untouched


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
        ("http://127.0.0.1:9/vggish-10086976.pth", "could not download http://127.0.0.1:9/vggish-10086976.pth"),
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
