import numpy as np
import pytest

from vocalab.errors import FeatureStoreError, ParamsError
from vocalab.features.fusion import block_weights, fuse_stores
from vocalab.features.store import FeatureStore, write_not_built, write_store
from vocalab.models.classifiers import build_classifier, fit_pooled
from vocalab.models.config import FusionConfig, TrainConfig, needed_sets
from vocalab.params import from_mapping


def store(root, utt_ids, dim, offset, absent=()):
    frames = np.stack([np.full(dim, offset + i, dtype=np.float32) for i in range(len(utt_ids))])
    frames = np.repeat(frames, 2, axis=0)
    frames[1::2] += 1.0  # std 0.5 per utterance
    write_store(root, utt_ids=list(utt_ids), frame_blocks=[(frames, np.full(len(utt_ids), 2))],
                total_frames=2 * len(utt_ids), dim=dim, dtype="float32",
                meta={"feature_set": root.name, "feature_names": [f"{root.name}{k}" for k in range(dim)],
                      "absent_utt_ids": list(absent)})
    return FeatureStore(root)


def test_fused_rows_line_up_by_utt_id(tmp_path):
    a = store(tmp_path / "a", ["u1", "u2", "u3"], 2, 10.0)
    b = store(tmp_path / "b", ["u3", "u1", "u2"], 3, 100.0)  # another order
    meta = fuse_stores("a+b", [a, b], tmp_path / "ab", layer_pooling="mean")
    fused = FeatureStore(tmp_path / "ab")
    assert fused.utt_ids == ["u1", "u2", "u3"] and not fused.has_frames
    assert meta.feature_names == ("a:a0", "a:a1", "b:b0", "b:b1", "b:b2")
    row = fused.pooled[fused.index_of(["u1"])[0]]
    a_row, b_row = a.pooled[a.index_of(["u1"])[0]], b.pooled[b.index_of(["u1"])[0]]
    np.testing.assert_array_equal(row, np.concatenate([a_row[:2], b_row[:3], a_row[2:], b_row[3:]]))
    assert row[2] == 101.5  # u1 is b's second row: its own values, not b's first row's


def test_absent_utterances_stay_absent_and_foreign_stores_are_refused(tmp_path):
    a = store(tmp_path / "a", ["u1", "u2", "u3"], 2, 0.0)
    b = store(tmp_path / "b", ["u1", "u3"], 2, 0.0, absent=["u2"])
    meta = fuse_stores("f", [a, b], tmp_path / "f", layer_pooling="mean")
    assert FeatureStore(tmp_path / "f").utt_ids == ["u1", "u3"] and meta.absent_utt_ids == ("u2",)
    c = store(tmp_path / "c", ["u1", "x9"], 2, 0.0)
    with pytest.raises(FeatureStoreError, match=r"lacks 1 utterance.*'x9'"):
        fuse_stores("g", [a, c], tmp_path / "g", layer_pooling="mean")


def test_fusion_with_functionals_concatenates_named_columns(tmp_path):
    a = store(tmp_path / "a", ["u1", "u2"], 2, 0.0)
    functionals = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    write_store(tmp_path / "smile", utt_ids=["u2", "u1"], total_frames=2, dim=1, dtype="float32",
                frame_blocks=[(np.zeros((2, 1), np.float32), np.array([1, 1]), functionals[::-1])],
                meta={"feature_set": "smile", "feature_names": ["e"], "pooled": "functionals",
                      "pooled_names": ["F0_mean", "jitter", "shimmer"]})
    meta = fuse_stores("a+smile", [a, FeatureStore(tmp_path / "smile")], tmp_path / "f", layer_pooling="mean")
    fused = FeatureStore(tmp_path / "f")
    assert meta.pooled == "functionals" and meta.is_fused and not fused.has_frames
    assert meta.pooled_names == ("a:a0_mean", "a:a1_mean", "a:a0_std", "a:a1_std",
                                 "smile:F0_mean", "smile:jitter", "smile:shimmer")
    np.testing.assert_array_equal(fused.pooled[:, 4:], functionals)
    np.testing.assert_array_equal(fused.pooled[:, :4], a.pooled)


def test_any_number_of_sets_join_in_order_and_record_where_each_column_comes_from(tmp_path):
    a = store(tmp_path / "a", ["u1", "u2"], 2, 0.0)
    b = store(tmp_path / "b", ["u2", "u1"], 3, 10.0)
    c = store(tmp_path / "c", ["u1", "u2"], 1, 20.0)
    meta = fuse_stores("a+b+c", [a, b, c], tmp_path / "abc", layer_pooling="mean", weighting="equal")
    assert [m.feature_set for m in meta.components] == ["a", "b", "c"]
    assert meta.pooled_blocks == (0, 0, 1, 1, 1, 2) * 2  # means of a, b, c, then their stds
    weights = block_weights(FeatureStore(tmp_path / "abc").meta)
    np.testing.assert_allclose(weights, [1 / np.sqrt(4)] * 2 + [1 / np.sqrt(6)] * 3 + [1 / np.sqrt(2)]
                               + [1 / np.sqrt(4)] * 2 + [1 / np.sqrt(6)] * 3 + [1 / np.sqrt(2)])
    unweighted = fuse_stores("a+b+c", [a, b, c], tmp_path / "none", layer_pooling="mean", weighting="none")
    assert block_weights(unweighted) is None


def test_equal_weighting_gives_every_block_the_same_share_of_the_distance():
    """A 2-d block that separates the classes beside a 6,000-d block of noise (ComParE is 6,373 wide): unweighted, the noise
    dominates the RBF distance and the classifier is little better than chance; weighted equally, the 2-d block
    counts as much as the 6,000-d one."""
    rng = np.random.default_rng(0)
    n = 200
    labels = np.array(["x", "y"] * (n // 2))
    signal = rng.normal(size=(n, 2)) + np.where(labels == "x", 1.5, -1.5)[:, None]
    noise = rng.normal(size=(n, 6000)) * rng.uniform(0.1, 10.0, size=6000)  # any scale: standardised first
    features = np.concatenate([signal, noise], axis=1)
    weights = np.concatenate([np.full(2, 1 / np.sqrt(2)), np.full(6000, 1 / np.sqrt(6000))])
    config = TrainConfig(model="svm")
    train, test = slice(0, 150), slice(150, n)
    scores = {}
    for name, w in (("none", None), ("equal", weights)):
        pipeline = build_classifier(config)
        fit_pooled(pipeline, features[train], labels[train], w)
        scaled = pipeline[:-1].transform(features[train])
        shares = [np.mean(np.sum(scaled[:, :2] ** 2, axis=1)), np.mean(np.sum(scaled[:, 2:] ** 2, axis=1))]
        if w is not None:  # each block's expected squared norm is 1: equal shares of the distance
            np.testing.assert_allclose(shares, [1.0, 1.0], rtol=1e-6)
        scores[name] = float(np.mean(pipeline.predict(features[test]) == labels[test]))
    assert scores["equal"] >= 0.95 and scores["none"] <= 0.75  # 1.0 and 0.68 (chance is 0.5)


def test_fusion_params_are_checked_and_only_listed_fusions_are_needed():
    fusions = {"a+b": {"sets": ["a", "b"]}, "x+y+z": {"sets": ["x", "y", "z"], "weighting": "none"}}
    config = from_mapping(TrainConfig, {"feature_sets": ["a+b", "c"], "fusions": fusions}, section="train")
    assert config.fusions["a+b"] == FusionConfig(sets=("a", "b"), weighting="equal")
    assert needed_sets(config) == {"a+b", "a", "b", "c"}  # x+y+z is declared but no entry lists it
    for bad, match in (({"f": {"sets": ["a"]}}, "at least two"), ({"f": {"sets": ["a", "a"]}}, "twice"),
                       ({"f": {"sets": ["a", "g"]}, "g": {"sets": ["b", "c"]}}, "'g', a fusion"),
                       ({"f": {"sets": ["a", "b"], "weighting": "loud"}}, "weighting")):
        with pytest.raises(ParamsError, match=match):
            from_mapping(TrainConfig, {"feature_sets": ["a"], "fusions": bad}, section="train")


def test_a_store_that_was_not_built_says_why(tmp_path):
    write_not_built(tmp_path / "wav2vec2", "wav2vec2", "no train.feature_sets entry uses it")
    with pytest.raises(FeatureStoreError, match=r"was not built: no train.feature_sets entry uses it.*List the set"):
        FeatureStore(tmp_path / "wav2vec2")
