import json

import numpy as np
import pytest

from vocalab.errors import FeatureStoreError
from vocalab.features.store import FeatureStore, pool, write_store


def make_store(root, lengths=(3, 1, 5), dim=4, block=2):
    rng = np.random.default_rng(0)
    frames = [rng.standard_normal((n, dim)).astype(np.float32) for n in lengths]
    utt_ids = [f"u{i}" for i in range(len(lengths))]
    blocks = [(np.concatenate(frames[i:i + block]), np.array(lengths[i:i + block]))
              for i in range(0, len(lengths), block)]
    write_store(root, utt_ids=utt_ids, frame_blocks=blocks, total_frames=sum(lengths), dim=dim,
                dtype="float32", meta={"feature_set": "toy", "feature_names": list("abcd")})
    return frames, utt_ids


def test_round_trip_is_ragged_and_pooled(tmp_path):
    frames, utt_ids = make_store(tmp_path / "toy")
    store = FeatureStore(tmp_path / "toy")
    assert store.utt_ids == utt_ids and len(store) == 3
    assert store.offsets.tolist() == [0, 3, 4, 9]
    assert isinstance(store.frames, np.memmap)
    for utt_id, expected in zip(utt_ids, frames):
        np.testing.assert_array_equal(store.sequence(utt_id), expected)
    np.testing.assert_allclose(store.pooled[2], np.concatenate([frames[2].mean(0), frames[2].std(0)]), rtol=1e-6)
    meta = json.loads((tmp_path / "toy" / "meta.json").read_text())
    assert meta["dim"] == 4 and meta["n_utterances"] == 3 and meta["pooled_names"][0] == "a_mean"
    assert not (tmp_path / "toy.tmp").exists()


def test_pool_of_a_single_frame_has_zero_std():
    pooled = pool(np.array([[1.0, 2.0]]))
    assert pooled.tolist() == [1.0, 2.0, 0.0, 0.0]


def test_missing_or_inconsistent_store_is_a_clear_error(tmp_path):
    with pytest.raises(FeatureStoreError, match=r"is missing frames\.npy.*dvc repro"):
        FeatureStore(tmp_path / "none")
    make_store(tmp_path / "toy")
    np.save(tmp_path / "toy" / "offsets.npy", np.array([0, 3, 4]))
    with pytest.raises(FeatureStoreError, match=r"is inconsistent"):
        FeatureStore(tmp_path / "toy")


def test_lookup_of_unknown_utterances(tmp_path):
    make_store(tmp_path / "toy")
    store = FeatureStore(tmp_path / "toy")
    assert store.index_of(["u2", "u0"]).tolist() == [2, 0]
    with pytest.raises(FeatureStoreError, match=r"lacks 1 utterance\(s\).*first: 'zz'"):
        store.index_of(["u1", "zz"])


def test_short_write_is_refused(tmp_path):
    with pytest.raises(FeatureStoreError, match=r"store incomplete"):
        write_store(tmp_path / "x", utt_ids=["a", "b"], frame_blocks=[(np.zeros((2, 3)), np.array([2]))],
                    total_frames=4, dim=3, dtype="float32", meta={"feature_names": ["p", "q", "r"]})


def write_functionals(root, n=3, dim=2, n_pooled=5):
    rng = np.random.default_rng(1)
    lengths = np.array([2, 4, 3][:n])
    frames = rng.standard_normal((int(lengths.sum()), dim)).astype(np.float32)
    functionals = rng.standard_normal((n, n_pooled)).astype(np.float32)
    return write_store(root, utt_ids=[f"u{i}" for i in range(n)], frame_blocks=[(frames, lengths, functionals)],
                       total_frames=int(lengths.sum()), dim=dim, dtype="float32",
                       meta={"feature_set": "toy", "feature_names": ["x", "y"], "pooled": "functionals",
                             "pooled_names": [f"f{k}" for k in range(n_pooled)]}), functionals


def test_store_of_functionals_keeps_its_own_pooled_features(tmp_path):
    meta, functionals = write_functionals(tmp_path / "toy")
    store = FeatureStore(tmp_path / "toy")
    assert meta.pooled == "functionals" and store.meta.pooled_names == ("f0", "f1", "f2", "f3", "f4")
    np.testing.assert_array_equal(store.pooled, functionals)
    np.testing.assert_array_equal(store.pooled_matrix(np.array([2, 0]), "mean"), functionals[[2, 0]])
    assert store.sequence("u1").shape == (4, 2)


def test_store_of_functionals_without_pooled_rows_is_refused(tmp_path):
    with pytest.raises(FeatureStoreError, match=r"functionals needs its pooled rows"):
        write_store(tmp_path / "x", utt_ids=["a"], frame_blocks=[(np.zeros((2, 1)), np.array([2]))], total_frames=2,
                    dim=1, dtype="float32", meta={"feature_set": "t", "feature_names": ["p"],
                                                  "pooled": "functionals", "pooled_names": ["q"]})


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.pop("feature_set"), r"lacks 'feature_set'"),
    (lambda m: m.update(dim="four"), r"malformed 'dim' \('four'\)"),
    (lambda m: m.update(pooled="median"), r"pooled = 'median'"),
    (lambda m: m.update(components={"a": {}}), r"malformed 'components'"),
])
def test_malformed_meta_names_the_field(tmp_path, edit, message):
    make_store(tmp_path / "toy")
    path = tmp_path / "toy" / "meta.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(FeatureStoreError, match=message + r".*dvc repro"):
        FeatureStore(tmp_path / "toy")


def test_corrupt_meta_is_a_clear_error(tmp_path):
    make_store(tmp_path / "toy")
    (tmp_path / "toy" / "meta.json").write_text("{not json")
    with pytest.raises(FeatureStoreError, match=r"meta\.json' cannot be read as JSON"):
        FeatureStore(tmp_path / "toy")
