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


def test_the_comparison_keeps_each_set_in_its_row_whatever_its_score(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    row = {"macro_f1": 0.5, "chance_uar": 0.25, "model": "logreg"}
    for scores in ((0.9, 0.5, 0.7), (0.4, 0.8, 0.6)):  # two revisions ranking the sets differently
        summary = dict(sorted({name: {**row, "uar": uar} for name, uar in zip(("voice", "compare", "egemaps"),
                                                                               scores)}.items(),
                              key=lambda item: -item[1]["uar"]))
        plots.comparison(summary, tmp_path / "c.png")
    rows = [[label.get_text().split("\n")[0] for label in fig.axes[0].get_yticklabels()][::-1] for fig in figures]
    assert rows == [["compare", "egemaps", "voice"]] * 2  # top to bottom, by name, in both
    plots.comparison({"vggish": {**row, "uar": 0.5, "random_init": True}, "voice": {**row, "uar": 0.6}},
                     tmp_path / "c.png")
    labels = [label.get_text() for label in figures[-1].axes[0].get_yticklabels()]
    assert labels == ["voice\nlogreg", "vggish\nlogreg, random weights"]
