"""VGGish: checkpoint round trips, safe loading, checksums, downloads, short clips, batching.

Checkpoints are random VGGish weights saved here in the torchvggish key format;
downloads come from a server on 127.0.0.1.
"""

import hashlib
import os
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import serve_directory, speech_like
from vocalab.errors import AudioError, ParamsError
from vocalab.features import vggish_frontend as fe
from vocalab.features.vggish import VGGishExtractor, VGGishExtractorConfig, short_clip_ids
from vocalab.features.vggish_model import (
    _CONVS,
    KEY_MAP,
    WINOGRAD_CONVS,
    build_vggish,
    init_random,
    load_weights,
    postprocess,
    read_checkpoint,
)
from vocalab.testing.vggish_reference import torchvggish_layout
from vocalab.errors import FetchError, WeightsError
from vocalab.fetch import fetch
from vocalab.params import from_mapping

SECTION = "embeddings.vggish"


def layout_forward(model: nn.Module, examples: np.ndarray, *, final_relu: bool) -> np.ndarray:
    with torch.no_grad():
        return model.embed(torch.from_numpy(examples)[:, None], final_relu=final_relu).numpy()


def save_named_by_hash(state, directory, stem):
    """Save as torch.hub names release files: ``<stem>-<first 8 hex of sha256>.pth``."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{stem}.tmp"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    target = directory / f"{stem}-{digest[:8]}.pth"
    tmp.rename(target)
    return target, digest


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """A random VGGish in torchvggish format, its layout model, and PCA params with numpy arrays."""
    torch.manual_seed(0)
    model = torchvggish_layout()
    directory = tmp_path_factory.mktemp("vggish")
    weights, digest = save_named_by_hash(model.state_dict(), directory, "vggish")
    rng = np.random.default_rng(0)
    pca = {"pca_eigen_vectors": rng.standard_normal((128, 128)) * 20, "pca_means": rng.standard_normal(128) * 0.01}
    pca_path, _ = save_named_by_hash(pca, directory, "vggish_pca_params")
    return {"model": model, "weights": weights, "sha256": digest, "pca": pca, "pca_path": pca_path}


def make(**params):
    return VGGishExtractor(from_mapping(VGGishExtractorConfig, params, section=SECTION))


def examples_of(*seeds, seconds=2.0):
    return np.concatenate([fe.examples(fe.log_mel(speech_like(s, duration_s=seconds))) for s in seeds])


def close(actual, expected, tol=1e-5):
    scale = np.abs(expected).max()
    assert scale > 0
    assert np.abs(actual - expected).max() <= tol * scale


# -- weights ----------------------------------------------------------------------------


def test_torchvggish_state_dict_round_trip(checkpoint):
    examples = examples_of(1, 2, seconds=2.0)
    pre = make(init="pretrained", weights=str(checkpoint["weights"]))
    close(pre.embed(examples), layout_forward(checkpoint["model"], examples, final_relu=False))
    post = make(init="pretrained", weights=str(checkpoint["weights"]), embedding="post_relu")
    close(post.embed(examples), layout_forward(checkpoint["model"], examples, final_relu=True))
    meta = pre.meta()
    assert meta["pretrained"] is True and meta["embedding"] == "pre_relu"
    assert meta["weights"] == {"location": str(checkpoint["weights"]), "sha256": checkpoint["sha256"],
                               "verified_by": "name prefix", "format": "torchvggish"}


def test_torchaudio_key_names_map_too(checkpoint):
    renamed = {k.replace("features.", "features_network.").replace("embeddings.", "embedding_network."): v
               for k, v in checkpoint["model"].state_dict().items()}
    model = build_vggish()
    assert load_weights(model, renamed, key="k", source="mem") == "torchaudio"
    examples = examples_of(3)
    with torch.no_grad():
        ours = model(torch.from_numpy(examples)).numpy()
    close(ours, layout_forward(checkpoint["model"], examples, final_relu=False))


def test_every_key_is_mapped_explicitly():
    ours = set(build_vggish().state_dict())
    for table in KEY_MAP.values():
        assert {f"{layer}.{p}" for layer in table.values() for p in ("weight", "bias")} == ours


@pytest.mark.parametrize("change,message", [
    (lambda s: s.pop("embeddings.4.bias"), r"missing \['fc2.bias'\]"),
    (lambda s: s.update({"embeddings.6.weight": torch.zeros(1)}), r"unexpected \['embeddings.6.weight'\]"),
    (lambda s: s.update({"features.0.weight": torch.zeros(64, 1, 5, 5)}), r"shape \(64, 1, 5, 5\)"),
    (lambda s: [s.pop(k) for k in list(s)] and s.update({"encoder.weight": torch.zeros(1)}), "none of the layer"),
])
def test_a_checkpoint_that_does_not_fit_is_refused(checkpoint, change, message):
    state = dict(checkpoint["model"].state_dict())
    change(state)
    with pytest.raises(WeightsError, match=message):
        load_weights(build_vggish(), state, key=f"{SECTION}.weights", source="file.pth")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_weights_file_cannot_run_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": _RunsCode()}, path)
    with pytest.raises(WeightsError, match="not a PyTorch weights file that loads safely"):
        read_checkpoint(path, f"{SECTION}.weights")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "plain.pth").write_bytes(pickle.dumps({"a": 1}, protocol=2)[:5])
    with pytest.raises(WeightsError, match="plain.pth"):
        read_checkpoint(tmp_path / "plain.pth", f"{SECTION}.weights")


def test_numpy_arrays_from_older_numpy_load_safely(checkpoint, tmp_path):
    import zipfile

    old = tmp_path / "pca-old.pth"
    with zipfile.ZipFile(checkpoint["pca_path"]) as src, zipfile.ZipFile(old, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            dst.writestr(name, data)
    state = read_checkpoint(old, "k")
    np.testing.assert_array_equal(state["pca_means"], checkpoint["pca"]["pca_means"])


# -- checksums and downloads ----------------------------------------------------------


def test_checksums_are_verified(checkpoint, tmp_path):
    fetched = fetch(str(checkpoint["weights"]), sha256=None, key="k")
    assert fetched.verified == "name prefix" and fetched.sha256 == checkpoint["sha256"]
    assert fetch(str(checkpoint["weights"]), sha256=checkpoint["sha256"], key="k").verified == "sha256"
    with pytest.raises(FetchError, match="expected 0000"):
        fetch(str(checkpoint["weights"]), sha256="0" * 64, key="k")
    liar = tmp_path / "vggish-deadbeef.pth"
    liar.write_bytes(b"not the weights")
    with pytest.raises(FetchError, match="promises a hash starting deadbeef"):
        make(init="pretrained", weights=str(liar))
    with pytest.raises(FetchError, match="no such file"):
        make(init="pretrained", weights=str(tmp_path / "missing.pth"))
    with pytest.raises(FetchError, match="not a SHA-256"):
        fetch(str(liar), sha256="abc", key="k")


def test_download_from_a_url_is_verified_and_cached(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("VOCALAB_CACHE", str(tmp_path / "cache"))
    served = tmp_path / "served"
    served.mkdir()
    name = checkpoint["weights"].name
    os.link(checkpoint["weights"], served / name)
    (served / "vggish-deadbeef.pth").write_bytes(b"tampered")
    (served / "weights.pth").write_bytes(b"no hash anywhere")
    with serve_directory(served) as (url, requested):
        extractor = make(init="pretrained", weights=f"{url}/{name}")
        assert (tmp_path / "cache" / "downloads" / name).is_file()
        again = make(init="pretrained", weights=f"{url}/{name}")
        assert requested == [f"/{name}"]  # the second run used the cache
        examples = examples_of(4)
        np.testing.assert_array_equal(extractor.embed(examples), again.embed(examples))

        with pytest.raises(FetchError, match="promises a hash starting deadbeef"):
            make(init="pretrained", weights=f"{url}/vggish-deadbeef.pth")
        assert not (tmp_path / "cache" / "downloads" / "vggish-deadbeef.pth").exists()  # a bad download is not kept
        with pytest.raises(FetchError, match="without a checksum"):
            make(init="pretrained", weights=f"{url}/weights.pth")
        with pytest.raises(FetchError, match="could not download .*vggish-00000000.pth"):
            make(init="pretrained", weights=f"{url}/vggish-00000000.pth")  # 404


# -- postprocessing ---------------------------------------------------------------------


def test_postprocess_is_pca_clip_and_8_bit(checkpoint):
    extractor = make(init="pretrained", weights=str(checkpoint["weights"]), postprocess=True,
                     pca_params=str(checkpoint["pca_path"]))
    examples = examples_of(5, 6)
    raw = layout_forward(checkpoint["model"], examples, final_relu=False).astype(np.float64)
    pca = checkpoint["pca"]
    # the AudioSet postprocessor, step by step
    projected = pca["pca_eigen_vectors"] @ (raw.T - pca["pca_means"][:, None])
    expected = np.round((np.clip(projected.T, -2.0, 2.0) + 2.0) * 255.0 / 4.0)
    got = extractor.embed(examples)
    assert np.abs(got - expected).max() <= 1.0  # float32 network rounding may flip a .5
    assert np.mean(got == expected) > 0.99
    assert set(np.unique(got)) <= set(range(256)) and {0.0, 255.0} <= set(np.unique(got))
    assert extractor.meta()["embedding"] == "postprocessed (PCA, 8-bit)"
    edges = postprocess(np.array([[-9.0] * 64 + [9.0] * 63 + [0.0]]), np.eye(128), np.zeros(128))
    assert edges[0, 0] == 0 and edges[0, 64] == 255 and edges[0, 127] == 128  # 127.5 rounds to even


def test_pca_params_inside_a_full_model_state_dict(checkpoint, tmp_path):
    state = dict(checkpoint["model"].state_dict())
    state["pproc.pca_matrix"] = torch.from_numpy(checkpoint["pca"]["pca_eigen_vectors"]).float()
    state["pproc.pca_means"] = torch.from_numpy(checkpoint["pca"]["pca_means"]).float().reshape(-1, 1)
    full, _ = save_named_by_hash(state, tmp_path, "vggish-full")
    inside = make(init="pretrained", weights=str(full), postprocess=True, pca_params=None)
    apart = make(init="pretrained", weights=str(checkpoint["weights"]), postprocess=True,
                 pca_params=str(checkpoint["pca_path"]))
    examples = examples_of(7)
    assert np.abs(inside.embed(examples) - apart.embed(examples)).max() <= 1.0
    with pytest.raises(WeightsError, match="holds no PCA parameters"):
        make(init="pretrained", weights=str(checkpoint["weights"]), postprocess=True, pca_params=None)


# -- the extractor ----------------------------------------------------------------------


def test_random_init_is_seeded_and_recorded():
    a, b, c = make(seed=0), make(seed=0), make(seed=1)
    examples = examples_of(8)
    np.testing.assert_array_equal(a.embed(examples), b.embed(examples))
    assert not np.allclose(a.embed(examples), c.embed(examples))
    meta = a.meta()
    assert meta["pretrained"] is False and meta["weights"] is None and meta["num_parameters"] == 72141184


def test_short_clip_policies_and_logmel():
    short, long = speech_like(1, duration_s=0.5), speech_like(2, duration_s=2.2)
    results = {p: make(short_clips=p).extract_batch([short, long]) for p in ("pad", "repeat", "drop")}
    assert results["pad"][0]["vggish"].shape == results["repeat"][0]["vggish"].shape == (1, 128)
    assert results["drop"][0]["vggish"].shape == (0, 128)
    assert not np.allclose(results["pad"][0]["vggish"], results["repeat"][0]["vggish"])
    for policy, outs in results.items():
        assert outs[1]["vggish"].shape == (2, 128)  # 2.2 s: two whole examples, the rest left out
        np.testing.assert_array_equal(outs[1]["vggish"], results["pad"][1]["vggish"])
        # log-mel frames are those of the clip itself, whatever the policy
        assert outs[0]["logmel"].shape == (fe.num_frames(8000), 64)
        np.testing.assert_array_equal(outs[0]["logmel"], fe.log_mel(short))
    padded = make().embed(fe.examples(fe.log_mel(np.pad(short, (0, 15600 - 8000)))))
    close(results["pad"][0]["vggish"], padded, tol=1e-5)
    tiny = make().extract_batch([short[:100]])[0]  # under one 25 ms frame: padded to one
    assert tiny["logmel"].shape == (1, 64) and tiny["vggish"].shape == (1, 128)


def test_batching_across_clips_equals_one_at_a_time():
    extractor = make(batch_examples=3)
    clips = [speech_like(s, duration_s=d) for s, d in [(1, 0.7), (2, 3.1), (3, 1.4), (4, 5.0)]]
    together = extractor.extract_batch(clips)
    for clip, out in zip(clips, together):
        alone = extractor.extract_batch([clip])[0]
        close(out["vggish"], alone["vggish"], tol=1e-5)
        np.testing.assert_array_equal(out["logmel"], alone["logmel"])


@pytest.mark.parametrize("conv", ["direct", "winograd"])
def test_pooling_before_the_relu_gives_the_textbook_order_bit_for_bit(conv):
    model = build_vggish(conv=conv)
    init_random(model, 0)
    x = torch.from_numpy(examples_of(1, 2))
    with torch.inference_mode():
        y = x[:, None].contiguous(memory_format=torch.channels_last)
        for spec in _CONVS:  # ReLU after every convolution, then pooling; each convolution as the model runs it
            if spec == "pool":
                y = nn.functional.max_pool2d(y, 2)
            else:
                winograd = conv == "winograd" and spec[0] in WINOGRAD_CONVS
                layer = model._winograd if winograd else lambda name, z: getattr(model, name)(z)
                y = torch.relu(layer(spec[0], y))
        y = y.permute(0, 2, 3, 1).reshape(len(y), -1)
        expected = model.fc2(torch.relu(model.fc1_2(torch.relu(model.fc1_1(y)))))
        assert torch.equal(model(x), expected)


def test_bfloat16_stays_close_to_float32():
    examples = examples_of(1, 2)
    fp32, bf16 = make(), make(dtype="bfloat16")
    assert bf16.meta()["compute_dtype"] == "bfloat16"
    close(bf16.embed(examples), fp32.embed(examples), tol=5e-2)


def test_other_rates_are_resampled_and_bad_signals_named():
    extractor = make()
    out = extractor.extract(speech_like(3, sampling_rate=44100, duration_s=1.2), 44100)
    assert out["vggish"].shape == (1, 128) and out["logmel"].shape == (fe.num_frames(19200), 64)
    with pytest.raises(AudioError, match="empty"):
        extractor.extract(np.zeros(0, np.float32), 16000)


def test_short_clip_ids_from_the_manifest():
    import pandas as pd

    manifest = pd.DataFrame({
        "utt_id": ["a", "b", "c", "d"],
        "duration_s": [15599 / 16000, 15600 / 16000, round(21497 / 22050, 6), round(21498 / 22050, 6)],
        "sample_rate": [16000, 16000, 22050, 22050],
    })
    # 21497 samples at 22.05 kHz resample to 15599 at 16 kHz, 21498 to 15600
    from vocalab.audio import resampled_length

    assert resampled_length(21497, orig_sr=22050, target_sr=16000) == 15599
    assert resampled_length(21498, orig_sr=22050, target_sr=16000) == 15600
    assert short_clip_ids(manifest) == ["a", "c"]


@pytest.mark.parametrize("params,message", [
    ({"postprocess": True}, "postprocess' = true needs the released PCA"),
    ({"short_clips": "skip"}, "short_clips' = 'skip' is not allowed"),
    ({"device": "gpu"}, "device' = 'gpu' is not allowed"),
    ({"batch_examples": 0}, "batch_examples' = 0 is out of range"),
    ({"embedding": "postrelu"}, "Did you mean 'post_relu'"),
])
def test_bad_params_name_the_key(params, message):
    with pytest.raises(ParamsError, match=message):
        from_mapping(VGGishExtractorConfig, params, section=SECTION)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ParamsError, match="torch sees no CUDA device"):
        make(device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    examples = examples_of(1, 2, 3)
    cpu, gpu = make(device="cpu"), make(device="cuda")
    assert gpu.meta()["device"] == "cuda"
    close(gpu.embed(examples), cpu.embed(examples), tol=1e-3)  # TF32 convolutions on the GPU


def test_config_is_frozen():
    import dataclasses

    config = VGGishExtractorConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.short_clips = "drop"  # type: ignore[misc]
    assert config.short_clips == "pad"
    changed = replace(config, short_clips="drop")  # a changed copy is the way to vary it
    assert changed.short_clips == "drop" and config.short_clips == "pad"


# -- through the feature stores, training and evaluation -------------------------------


@pytest.fixture
def short_and_long_corpus(tmp_path):
    """4 speakers x 2 labels x 2 clips; speaker s3's and s0's first clips are under 0.975 s."""
    import pandas as pd

    from tests.conftest import write_wav

    rows = []
    for speaker in range(4):
        for label in ("calm", "angry"):
            for take in range(2):
                seconds = 0.6 if take == 0 and speaker in (0, 3) else 1.3 + 0.4 * take
                rate = 22050 if speaker % 2 else 16000
                seed = speaker * 10 + take + (5 if label == "angry" else 0)
                samples = speech_like(seed, duration_s=seconds, sampling_rate=rate) * (3 if label == "angry" else 1)
                path = write_wav(tmp_path / "audio" / f"s{speaker}_{label}_{take}.wav", samples, rate)
                rows.append({"utt_id": f"s{speaker}_{label}_{take}", "path": str(path), "speaker": f"s{speaker}",
                             "label": label, "duration_s": round(len(samples) / rate, 6), "sample_rate": rate})
    manifest = pd.DataFrame(rows)
    split = {"s0": "train", "s1": "train", "s2": "validation", "s3": "test"}
    splits = pd.DataFrame({"utt_id": manifest["utt_id"], "speaker": manifest["speaker"],
                           "split": manifest["speaker"].map(split)})
    return manifest, splits


def test_dropped_short_clips_are_counted_from_store_to_metrics(short_and_long_corpus, tmp_path):
    from vocalab.evaluation import evaluate
    from vocalab.features.extraction import extract_manifest
    from vocalab.features.store import FeatureStore
    from vocalab.models.config import TrainConfig
    from vocalab.training import load_model, train

    manifest, splits = short_and_long_corpus
    short = short_clip_ids(manifest)
    assert short == ["s0_calm_0", "s0_angry_0", "s3_calm_0", "s3_angry_0"]
    dirs = {"vggish": tmp_path / "vggish", "logmel": tmp_path / "logmel"}
    report = extract_manifest(
        manifest, make(short_clips="drop"), dirs, workers=1, cache_root=tmp_path / "scratch", progress=False,
        extra_meta={"vggish": {"short_clips": {"policy": "drop", "utt_ids": short}}},
    )
    assert report.absent == {"vggish": 4, "logmel": 0}
    assert "4 utterance(s) without vggish frames" in report.line("extract_vggish")
    vggish, logmel = FeatureStore(dirs["vggish"]), FeatureStore(dirs["logmel"])
    assert list(vggish.meta.absent_utt_ids) == short and len(vggish) == 12 and vggish.pooled.shape == (12, 256)
    assert logmel.meta.absent_utt_ids == () and len(logmel) == 16 and logmel.pooled.shape == (16, 128)
    assert vggish.sequence("s1_calm_1").shape == (1, 128)  # 1.7 s: one whole example
    assert logmel.meta.params == {"frames_dtype": "float32"}

    info, _ = train(vggish, manifest, splits, TrainConfig(), tmp_path / "model")
    assert info.folds[0].n_train == 6 and info.folds[0].n_train_absent == 2
    model, info = load_model(tmp_path / "model")
    metrics, predictions, _ = evaluate(model, info, vggish, manifest, splits)
    assert metrics["n_test"] == 2 and len(predictions) == 2
    assert metrics["n_absent"] == {"train": 2, "validation": 0, "test": 2}
    assert metrics["short_clips"] == {"policy": "drop", "n": 4, "n_test": 2}

    metrics_logmel, _, _ = evaluate(*_fit(logmel, manifest, splits, tmp_path / "m2"), logmel, manifest, splits)
    assert metrics_logmel["n_test"] == 4 and "n_absent" not in metrics_logmel and "short_clips" not in metrics_logmel


def _fit(store, manifest, splits, out):
    from vocalab.models.config import TrainConfig
    from vocalab.training import load_model, train

    train(store, manifest, splits, TrainConfig(), out)
    return load_model(out)


def test_spawned_workers_give_what_one_process_gives(short_and_long_corpus, tmp_path):
    from vocalab.features.extraction import extract_manifest
    from vocalab.features.store import FeatureStore

    manifest, _ = short_and_long_corpus
    extractor = make()
    for name, workers in (("serial", 1), ("parallel", 2)):
        extract_manifest(manifest, extractor, {"vggish": tmp_path / name / "v", "logmel": tmp_path / name / "l"},
                         workers=workers, shard_size=5, cache_root=tmp_path / "scratch", progress=False)
    for store in ("v", "l"):
        a, b = FeatureStore(tmp_path / "serial" / store), FeatureStore(tmp_path / "parallel" / store)
        assert a.utt_ids == b.utt_ids == manifest["utt_id"].tolist()
        close(np.asarray(b.frames), np.asarray(a.frames), tol=1e-5)


def test_the_logmel_store_does_not_depend_on_the_embedding_params(short_and_long_corpus, tmp_path):
    """Changing a VGGish-only param leaves the logmel store byte-identical, so DVC skips the logmel branch."""
    from vocalab.features.extraction import extract_manifest

    manifest, _ = short_and_long_corpus
    for embedding in ("pre_relu", "post_relu"):
        extract_manifest(manifest, make(embedding=embedding), {"vggish": tmp_path / embedding / "v",
                                                               "logmel": tmp_path / embedding / "l"},
                         workers=1, cache_root=tmp_path / "cache", progress=False)
    files = sorted(p.name for p in (tmp_path / "pre_relu" / "l").iterdir())
    assert "meta.json" in files and files == sorted(p.name for p in (tmp_path / "post_relu" / "l").iterdir())
    for name in files:
        assert (tmp_path / "pre_relu" / "l" / name).read_bytes() == (tmp_path / "post_relu" / "l" / name).read_bytes()
    assert (tmp_path / "pre_relu" / "v" / "pooled.npy").read_bytes() != (tmp_path / "post_relu" / "v" / "pooled.npy").read_bytes()
