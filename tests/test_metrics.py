"""The UAR's confidence interval: a bootstrap over test speakers, not over utterances."""

import numpy as np

from vocalab.metrics import speaker_bootstrap_uar, uar, uar_interval


def test_each_resample_is_the_uar_of_the_speakers_drawn():
    rng = np.random.default_rng(3)
    speakers = np.repeat(["a", "b", "c", "d"], 12)
    y_true = rng.choice(["x", "y", "z"], size=len(speakers))
    y_pred = np.where(rng.random(len(speakers)) < 0.7, y_true, "x")
    samples = speaker_bootstrap_uar(y_true, y_pred, speakers, resamples=50, seed=1)
    # the same draws, done by hand: each drawn speaker brings all of their utterances, as often as drawn
    names = np.unique(speakers)
    draws = np.random.default_rng(1).multinomial(4, np.full(4, 0.25), size=50)
    for sample, counts in zip(samples, draws):
        rows = np.concatenate([np.flatnonzero(speakers == n) for n, k in zip(names, counts)
                               for _ in range(k)])
        assert np.isclose(sample, uar(y_true[rows], y_pred[rows]))


def test_the_interval_holds_the_estimate_and_widens_when_speakers_disagree():
    speakers = np.repeat([f"s{i}" for i in range(8)], 20)
    y_true = np.tile(["x", "y"], 80)
    perfect = uar_interval(y_true, y_true, speakers)
    assert perfect == [1.0, 1.0]
    # half the speakers recognised perfectly, half at chance: the same UAR, a wide interval
    mixed = np.where(np.isin(speakers, ["s0", "s1", "s2", "s3"]), y_true, "x")
    low, high = uar_interval(y_true, mixed, speakers)
    assert low < uar(y_true, mixed) < high and high - low > 0.15
    # every speaker alike at the same UAR: a narrow one
    even = y_true.copy()
    even[np.arange(len(even)) % 8 == 1] = "x"  # one "y" in four wrong, for every speaker
    low, high = uar_interval(y_true, even, speakers)
    assert low <= uar(y_true, even) <= high and high - low < 0.05
    assert uar_interval(y_true, mixed, speakers) == uar_interval(y_true, mixed, speakers)  # seeded
    assert uar_interval(y_true[:20], y_true[:20], speakers[:20]) is None  # one speaker: no interval
