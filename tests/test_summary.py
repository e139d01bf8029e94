"""The leaderboard: what a reader must not mistake for a result."""


def test_the_leaderboard_marks_random_weight_rows_as_no_result():
    from vocalab.summary import RANDOM_MARK, leaderboard_markdown

    row = {"folds": 1, "speaker_overlap": False, "normalize": "speaker", "model": "svm", "uar": 0.5,
           "macro_f1": 0.5, "accuracy": 0.5, "n_test": 10, "n_test_speakers": 2, "chance_uar": 0.25}
    table = leaderboard_markdown({"voice": {**row, "random_init": False}, "wav2vec2": {**row, "random_init": True}})
    assert f"| wav2vec2 {RANDOM_MARK} |" in table and "| voice |" in table
    assert "check the plumbing only; they are not results" in table
    assert "not results" not in leaderboard_markdown({"voice": {**row, "random_init": False}})
