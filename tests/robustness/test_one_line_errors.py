"""Faults that used to end in a traceback, or in advice to load unsafely: each is one line naming the file and
the fix."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.conftest import speech_like, write_wav
from vocalab.errors import FeatureStoreError, VocalabError, WeightsError
from vocalab.features.store import FeatureStore, write_store


class _Evil:
    def __reduce__(self):
        return (print, ("this must not run",))


def _one_line(err: BaseException, *must: str) -> None:
    message = str(err)
    assert "\n" not in message and "allow_pickle" not in message and "weights_only=False" not in message
    for text in must:
        assert text in message, message


@pytest.fixture
def store(tmp_path):
    write_store(tmp_path / "s", utt_ids=["a", "b"], total_frames=4, dim=2, dtype="float32",
                frame_blocks=[(np.ones((4, 2), np.float32), np.array([2, 2]), np.ones((2, 4), np.float32))],
                meta={"feature_set": "s", "feature_names": ["x", "y"]})
    return tmp_path / "s"


@pytest.mark.parametrize("name", ["pooled.npy", "offsets.npy", "frames.npy"])
def test_a_pickled_or_object_array_in_a_store_is_refused(store, name):
    np.save(store / name, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(FeatureStoreError) as caught:
        FeatureStore(store)
    _one_line(caught.value, f"{name}'", "pickled", "dvc repro")
    (store / name).write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(FeatureStoreError) as caught:
        FeatureStore(store)
    _one_line(caught.value, f"{name}'", "not a readable numpy array")


def test_a_wav2vec2_folder_whose_bin_would_run_code_is_refused(tiny_wav2vec2, tmp_path):
    from vocalab.features.wav2vec2 import Wav2Vec2Extractor, Wav2Vec2ExtractorConfig

    folder = tmp_path / "model"
    shutil.copytree(tiny_wav2vec2, folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"encoder.weight": _Evil()}))
    with pytest.raises(WeightsError) as caught:
        Wav2Vec2Extractor(Wav2Vec2ExtractorConfig(model=str(folder), init="pretrained"))
    _one_line(caught.value, str(folder), "could run code")


def test_vggish_weights_that_would_run_code_are_refused_without_unsafe_advice(tmp_path):
    from vocalab.features.vggish_model import read_checkpoint

    path = tmp_path / "vggish-00000000.pth"
    path.write_bytes(pickle.dumps({"features.0.weight": _Evil()}))
    with pytest.raises(WeightsError) as caught:
        read_checkpoint(path, "embeddings.vggish.weights")
    _one_line(caught.value, str(path), "loads safely")


def _trained(tmp_path, labels):
    from vocalab.features.extraction import extract_manifest
    from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor
    from vocalab.models.config import TrainConfig
    from vocalab.splits import SplitConfig, assign_splits
    from vocalab.training import train

    rows = []
    for s in range(6):
        for i in range(4):
            path = write_wav(tmp_path / "audio" / f"s{s}_{i}.wav", speech_like(10 * s + i, duration_s=0.5), 16000)
            rows.append({"utt_id": f"s{s}_{i}", "path": str(path), "speaker": f"s{s}", "label": labels[i % 2],
                         "duration_s": 0.5})
    manifest = pd.DataFrame(rows)
    extract_manifest(manifest, HandcraftedExtractor(HandcraftedConfig(n_mfcc=8)), tmp_path / "store", workers=1,
                     progress=False, cache_root=tmp_path / "cache")
    splits = assign_splits(manifest, SplitConfig(seed=0))
    return lambda out, **settings: train(FeatureStore(tmp_path / "store"), manifest, splits,
                                         TrainConfig(**settings), out)


def test_a_corpus_of_one_label_is_one_line(tmp_path):
    fit = _trained(tmp_path, ["happy", "happy"])
    with pytest.raises(VocalabError) as caught:
        fit(tmp_path / "model")
    _one_line(caught.value, "one label ('happy')", "data.target")


def test_model_folders_are_checked_before_use(tmp_path):
    from vocalab.model_info import ModelInfoError
    from vocalab.training import load_model

    fit = _trained(tmp_path, ["hi", "lo"])
    fit(tmp_path / "a")
    info = json.loads((tmp_path / "a" / "model.json").read_text())
    info["folds"][0]["name"] = "../../etc"
    (tmp_path / "a" / "model.json").write_text(json.dumps(info))
    with pytest.raises(ModelInfoError) as caught:
        load_model(tmp_path / "a")
    _one_line(caught.value, "'../../etc'", "Retrain")

    fit(tmp_path / "b")
    fit(tmp_path / "c", normalize="global", layer_pooling="concat")
    shutil.copy(tmp_path / "c" / "model.skops", tmp_path / "b" / "model.skops")  # same width: accepted
    load_model(tmp_path / "b")
    info = json.loads((tmp_path / "b" / "model.json").read_text())
    info["n_features"] += 3  # a model.json of another set
    (tmp_path / "b" / "model.json").write_text(json.dumps(info))
    with pytest.raises(VocalabError) as caught:
        load_model(tmp_path / "b")
    _one_line(caught.value, "fitted on 20 features", f"says {info['n_features']}")


def test_tampered_extractor_params_in_model_json_are_blamed_on_the_model(tmp_path):
    from vocalab.predict import predict

    fit = _trained(tmp_path, ["hi", "lo"])
    fit(tmp_path / "m")
    info = json.loads((tmp_path / "m" / "model.json").read_text())
    info["features"]["params"]["n_mfcc"] = -3
    (tmp_path / "m" / "model.json").write_text(json.dumps(info))
    with pytest.raises(VocalabError) as caught:
        predict([tmp_path / "audio" / "s0_0.wav"], tmp_path / "m")
    _one_line(caught.value, "model.json' records features params that are not valid", "params.yaml is not involved",
              "Retrain")
    assert "Fix it in params.yaml" not in str(caught.value)


def _clips(tmp_path, n=6):
    rows = [{"utt_id": f"u{i}", "path": str(write_wav(tmp_path / "audio" / f"u{i}.wav", speech_like(i), 16000)),
             "duration_s": 1.5} for i in range(n)]
    return pd.DataFrame(rows)


def test_a_feature_cache_removed_mid_run_is_made_again(tmp_path):
    from vocalab.features.extraction import extract_manifest
    from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor

    class Forgetful(HandcraftedExtractor):
        """Deletes the whole cache while the run goes on, as a user clearing space would."""

        seen = 0

        def extract(self, samples, sampling_rate):
            Forgetful.seen += 1
            if Forgetful.seen == 3:
                shutil.rmtree(tmp_path / "cache", ignore_errors=True)
            return super().extract(samples, sampling_rate)

    manifest = _clips(tmp_path)
    Forgetful.name = "handcrafted"
    extract_manifest(manifest, Forgetful(HandcraftedConfig()), tmp_path / "a", workers=1, shard_size=2,
                     cache_root=tmp_path / "cache", progress=False)
    extract_manifest(manifest, HandcraftedExtractor(HandcraftedConfig()), tmp_path / "b", workers=1,
                     cache_root=tmp_path / "clean", progress=False)
    for name in ("frames.npy", "pooled.npy", "offsets.npy"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_full_disk_while_writing_the_cache_or_a_store_is_one_line_and_leaves_no_tmp(tmp_path, monkeypatch):
    import errno

    from vocalab.features import cache as cache_module
    from vocalab.features.extraction import extract_manifest
    from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor

    class Full:
        def __init__(self, path, mode):
            self.handle = open(path, mode)

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(cache_module, "open", Full, raising=False)
    with pytest.raises(FeatureStoreError) as caught:
        extract_manifest(_clips(tmp_path), HandcraftedExtractor(HandcraftedConfig()), tmp_path / "s", workers=1,
                         cache_root=tmp_path / "cache", progress=False)
    _one_line(caught.value, "No space left on device", "VOCALAB_CACHE")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.endswith(".tmp")]
    monkeypatch.undo()

    def blocks():
        yield np.ones((2, 2), np.float32), np.array([2])
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(FeatureStoreError) as caught:
        write_store(tmp_path / "store", utt_ids=["a", "b"], frame_blocks=blocks(), total_frames=4, dim=2,
                    dtype="float32", meta={"feature_set": "s", "feature_names": ["x", "y"]})
    _one_line(caught.value, "could not write the feature store", "Free space")
    assert not (tmp_path / "store.tmp").exists() and not (tmp_path / "store").exists()


def test_a_model_file_with_non_finite_values_is_named(tmp_path):
    from vocalab.models.persist import POOLED_FILE, canonical_skops, skops_io
    from vocalab.training import load_model

    fit = _trained(tmp_path, ["hi", "lo"])
    fit(tmp_path / "m", normalize="global", model="logreg")
    skops = skops_io()
    path = tmp_path / "m" / POOLED_FILE
    model = skops.load(path, trusted=skops.get_untrusted_types(file=path))
    model.steps[-1][1].coef_[0, 0] = np.nan
    path.write_bytes(canonical_skops(skops.dumps(model)))
    with pytest.raises(VocalabError) as caught:
        load_model(tmp_path / "m")
    _one_line(caught.value, "model.skops' holds NaN or infinite values", "coef_", "Retrain")


def test_sequence_weights_with_non_finite_values_are_named(tmp_path):
    import torch

    from vocalab.models.config import SequenceConfig
    from vocalab.models.persist import SEQUENCE_FILE
    from vocalab.training import load_model

    fit = _trained(tmp_path, ["hi", "lo"])
    fit(tmp_path / "m", model="attentive", sequence=SequenceConfig(epochs=1, hidden=8, device="cpu"))
    path = tmp_path / "m" / SEQUENCE_FILE
    state = torch.load(path, weights_only=True)
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel())
    state[name].view(-1)[0] = float("inf")
    torch.save(state, path)
    with pytest.raises(VocalabError) as caught:
        load_model(tmp_path / "m")
    _one_line(caught.value, "model.pt' holds NaN or infinite weights", name)
