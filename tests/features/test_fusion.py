import numpy as np
import pytest

from vocalab.errors import FeatureStoreError
from vocalab.features.fusion import fuse_stores
from vocalab.features.store import FeatureStore, write_store


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
    meta = fuse_stores("a+b", a, b, tmp_path / "ab", layer_pooling="mean")
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
    meta = fuse_stores("f", a, b, tmp_path / "f", layer_pooling="mean")
    assert FeatureStore(tmp_path / "f").utt_ids == ["u1", "u3"] and meta.absent_utt_ids == ("u2",)
    c = store(tmp_path / "c", ["u1", "x9"], 2, 0.0)
    with pytest.raises(FeatureStoreError, match=r"lacks 1 utterance.*'x9'"):
        fuse_stores("g", a, c, tmp_path / "g", layer_pooling="mean")


def test_fusion_with_functionals_concatenates_named_columns(tmp_path):
    a = store(tmp_path / "a", ["u1", "u2"], 2, 0.0)
    functionals = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    write_store(tmp_path / "smile", utt_ids=["u2", "u1"], total_frames=2, dim=1, dtype="float32",
                frame_blocks=[(np.zeros((2, 1), np.float32), np.array([1, 1]), functionals[::-1])],
                meta={"feature_set": "smile", "feature_names": ["e"], "pooled": "functionals",
                      "pooled_names": ["F0_mean", "jitter", "shimmer"]})
    meta = fuse_stores("a+smile", a, FeatureStore(tmp_path / "smile"), tmp_path / "f", layer_pooling="mean")
    fused = FeatureStore(tmp_path / "f")
    assert meta.pooled == "functionals" and meta.is_fused and not fused.has_frames
    assert meta.pooled_names == ("a:a0_mean", "a:a1_mean", "a:a0_std", "a:a1_std",
                                 "smile:F0_mean", "smile:jitter", "smile:shimmer")
    np.testing.assert_array_equal(fused.pooled[:, 4:], functionals)
    np.testing.assert_array_equal(fused.pooled[:, :4], a.pooled)
