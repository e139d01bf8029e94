import numpy as np
import pandas as pd
import pytest

from vocalab.durations import describe, duration_report


def test_describe_known_answers():
    stats = describe(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert stats["count"] == 5 and stats["total_s"] == 15.0 and stats["mean_s"] == 3.0
    assert stats["min_s"] == 1.0 and stats["max_s"] == 5.0 and stats["p50_s"] == 3.0
    assert stats["p25_s"] == 2.0


def test_report_counts_short_clips_and_balance():
    manifest = pd.DataFrame({
        "dataset": ["d"] * 4 + ["e"],
        "label": ["a", "a", "a", "b", "b"],
        "duration_s": [0.5, 0.97, 2.0, 3.0, 0.975],
        "sample_rate": [16000] * 4 + [48000],
    })
    report = duration_report(manifest)
    assert report["short_clips"]["count"] == 2  # 0.975 itself is long enough for VGGish
    assert report["short_clips"]["fraction"] == pytest.approx(0.4)
    assert report["short_clips"]["by_label"] == {"a": 2}
    assert report["class_balance"]["counts"] == {"a": 3, "b": 2}
    assert report["class_balance"]["imbalance_ratio"] == 1.5
    assert report["by_dataset"]["e"]["count"] == 1
    assert report["sample_rates"] == {"16000": 4, "48000": 1}
    assert report["by_label"]["b"]["mean_s"] == pytest.approx(1.9875, abs=1e-4)
