import numpy as np
import pandas as pd

from vocalab import plots


def _is_png(path):
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_plots_are_written(tmp_path):
    manifest = pd.DataFrame({"utt_id": [f"u{i}" for i in range(30)], "label": ["a", "b", "c"] * 10,
                             "duration_s": np.linspace(0.5, 4.0, 30)})
    splits = pd.DataFrame({"utt_id": manifest["utt_id"], "split": ["train", "test", "validation"] * 10})
    plots.duration_histogram(manifest, tmp_path / "d.png", short_threshold_s=0.975)
    plots.class_balance(manifest, tmp_path / "b.png")
    plots.class_balance(manifest, tmp_path / "s.png", splits=splits)
    plots.confusion_matrix(np.array([[3, 1], [0, 4]]), ["a", "b"], tmp_path / "c.png", title="t")
    for name in ("d", "b", "s", "c"):
        assert _is_png(tmp_path / f"{name}.png")
