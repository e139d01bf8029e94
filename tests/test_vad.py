"""Voice activity: silero's network from its wheel, the speech region of each utterance, and the stage's table."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT, speech_like, write_wav
from vocalab import vad
from vocalab.audio import cut_region
from vocalab.errors import ManifestError, WeightsError
from vocalab.fetch import packaged_file

SR = vad.SAMPLE_RATE


def espeak_speech(text: str = "Kids are talking by the door") -> np.ndarray:
    """Real synthetic speech at 16 kHz (espeak-ng renders at 22,050 Hz)."""
    from vocalab.audio import resample
    from vocalab.espeak import Espeak, Prosody

    engine = Espeak.get()
    pcm = engine.synthesize(text, voice="en-us", prosody=Prosody())
    return resample(pcm.astype(np.float32) / 32768, orig_sr=engine.sample_rate, target_sr=SR)


@pytest.fixture(scope="module")
def model():
    return vad.load_silero()


def test_the_module_is_the_wheels_own_network():
    """With the weights of the wheel's TorchScript model, :class:`SileroVAD` gives its probabilities."""
    with vad.torch_threads_kept():
        import silero_vad
        jit = silero_vad.load_silero_vad()
    names = {"stft_conv.weight": "_model.stft.forward_basis_buffer",
             "final_conv.weight": "_model.decoder.decoder.2.weight", "final_conv.bias": "_model.decoder.decoder.2.bias",
             **{f"conv{i + 1}.{w}": f"_model.encoder.{i}.reparam_conv.{w}" for i in range(4) for w in ("weight", "bias")},
             **{f"lstm_cell.{w}": f"_model.decoder.rnn.{w}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}}
    theirs = jit.state_dict()
    ours = vad._silero_module()()
    ours.load_state_dict({k: theirs[v] for k, v in names.items()})
    rng = np.random.default_rng(0)
    signals = [np.concatenate([np.zeros(SR // 2, np.float32), espeak_speech()]),
               (0.1 * rng.standard_normal(SR)).astype(np.float32)]
    import torch

    for samples, probs in zip(signals, vad.speech_probabilities(ours.eval(), signals)):  # batched, padded
        padded = np.pad(samples, (0, -len(samples) % vad.CHUNK))
        expected = jit.audio_forward(torch.from_numpy(padded)[None], SR)[0].numpy()
        np.testing.assert_allclose(probs, expected, atol=1e-4)  # float32 sums in another order


def test_speech_between_silences_is_found_and_a_clip_without_speech_is_kept_whole(model):
    speech = espeak_speech()
    signal = np.concatenate([np.zeros(SR, np.float32), speech, np.zeros(SR, np.float32)])
    noise = (0.003 * np.random.default_rng(1).standard_normal(2 * SR)).astype(np.float32)
    config = vad.VADConfig(padding_ms=100)
    found, empty = vad.find_regions(model, [signal, noise], config)
    assert found.speech_found and 0.85 <= found.start_s <= 1.05
    assert 1.0 + len(speech) / SR - 0.3 <= found.end_s <= 1.0 + len(speech) / SR + 0.25  # the last second cut
    assert not empty.speech_found and (empty.start_s, empty.end_s) == (0.0, 2.0)  # never dropped, never empty
    wider = vad.find_regions(model, [signal], vad.VADConfig(padding_ms=300))[0]
    assert wider.start_s == pytest.approx(found.start_s - 0.2, abs=0.01)


def test_importing_silero_leaves_the_process_thread_count_alone(tmp_path):
    script = ("import json, numpy as np, torch; torch.set_num_threads(3); from vocalab import vad; "
              "vad.speech_region(np.zeros(10), 5120, vad.VADConfig()); import silero_vad; "
              "print(json.dumps(torch.get_num_threads()))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={"PATH": "", "PYTHONPATH": str(REPO_ROOT / "src")})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == 3


def test_weights_whose_hash_differs_are_refused_naming_the_file(tmp_path):
    path = packaged_file(vad.SILERO_PACKAGE, vad.SILERO_WEIGHTS)
    copy = tmp_path / "silero.safetensors"
    copy.write_bytes(path.read_bytes()[:-1] + b"\0")
    with pytest.raises(WeightsError, match=r"silero\.safetensors' has SHA-256 .*expected c59271c2.*Reinstall"):
        vad.load_silero(copy)
    with pytest.raises(WeightsError, match=r"package 'no_such_wheel' is not installed"):
        packaged_file("no_such_wheel", "w.pt")


def test_the_region_table_counts_clips_without_speech_and_rejects_another_manifest(model, tmp_path):
    speech = np.concatenate([np.zeros(SR // 2, np.float32), espeak_speech(), np.zeros(SR // 2, np.float32)])
    paths = [write_wav(tmp_path / "a.wav", speech, SR), write_wav(tmp_path / "b.wav", np.zeros(SR, np.float32), SR)]
    manifest = pd.DataFrame({"utt_id": ["a", "b"], "path": [str(p) for p in paths], "audio_hash": ["h1", "h2"],
                             "duration_s": [len(speech) / SR, 1.0]})
    table = vad.region_table(manifest, vad.VADConfig(), progress=False, model=model)
    assert table.columns.tolist() == list(vad.REGION_COLUMNS)
    assert table["speech_found"].tolist() == [True, False]
    report = vad.summary(table, vad.VADConfig())
    assert report["n_no_speech"] == 1 and report["no_speech_utt_ids"] == ["b"] and report["n_trimmed"] == 1
    none = vad.region_table(manifest, vad.VADConfig(method="none"), progress=False)
    assert (none["speech_start_s"] == 0).all()
    np.testing.assert_allclose(none["speech_end_s"], manifest["duration_s"], atol=1e-4)
    assert vad.summary(none, vad.VADConfig(method="none"))["n_no_speech"] == 0

    table.to_csv(tmp_path / "vad.csv", index=False)
    merged = vad.with_regions(manifest, tmp_path / "vad.csv")
    assert merged["speech_end_s"].tolist() == table["speech_end_s"].tolist()
    with pytest.raises(ManifestError, match=r"no region for 1 manifest utterance.*first: b.*dvc repro vad"):
        vad.with_regions(manifest.assign(audio_hash=["h1", "changed"]), tmp_path / "vad.csv")
    with pytest.raises(ManifestError, match=r"'.*missing\.csv' not found.*dvc repro vad"):
        vad.with_regions(manifest, tmp_path / "missing.csv")


def test_a_region_cut_is_never_empty():
    samples = np.arange(100, dtype=np.float32)
    assert cut_region(samples, 100, 0.2, 0.5).tolist() == list(range(20, 50))
    assert len(cut_region(samples, 100, 0.999, 0.999)) == 1 and len(cut_region(samples, 100, 5.0, 6.0)) == 1



def test_predict_finds_new_files_regions_as_the_store_recorded(model, tmp_path):
    from vocalab.errors import VocalabError
    from vocalab.features.store import StoreMeta
    from vocalab.predict import speech_regions

    speech = np.concatenate([np.zeros(SR, np.float32), espeak_speech(), np.zeros(SR, np.float32)])
    path = write_wav(tmp_path / "new.wav", speech, SR)
    base = {"feature_set": "voice", "feature_names": [], "dim": 0, "pooled_names": []}
    whole_files = StoreMeta.from_dict(base, source="m")
    assert speech_regions(whole_files, [path], {}, "m") is None
    silero = StoreMeta.from_dict({**base, "reads_speech_region": True, "vad": {"method": "silero"}}, source="m")
    (start, end), = speech_regions(silero, [path], {}, "m")
    expected = vad.find_regions(model, [speech], vad.VADConfig())[0]
    assert (start, end) == (expected.start_s, expected.end_s) and start > 0.8
    none = StoreMeta.from_dict({**base, "reads_speech_region": True, "vad": {"method": "none"}}, source="m")
    assert speech_regions(none, [path], {}, "m") == [(0.0, round(len(speech) / SR, 4))]
    tampered = StoreMeta.from_dict({**base, "reads_speech_region": True, "vad": {"treshold": 2}}, source="m")
    with pytest.raises(VocalabError, match=r"model.json records vad params that are not valid.*treshold"):
        speech_regions(tampered, [path], {}, "the model's model.json")


def test_a_long_recording_is_encoded_a_segment_at_a_time_with_the_state_carried(monkeypatch):
    """Bounded memory: segments of chunks, the LSTM state carried across them, give the probabilities of one pass."""
    import vocalab.vad as vad

    model = vad.load_silero()
    signals = [np.concatenate([speech_like(seed, duration_s=1.5) for seed in range(4)]), speech_like(7, duration_s=2.0)]
    whole = vad.speech_probabilities(model, signals)
    monkeypatch.setattr(vad, "ENCODED_ROWS", 40)  # 20 chunks per segment for a batch of two
    for one, pieces in zip(whole, vad.speech_probabilities(model, signals)):
        np.testing.assert_allclose(pieces, one, atol=1e-5)
