import numpy as np
import pytest

from vocalab.models.classifiers import build_classifier
from vocalab.models.config import TrainConfig
from vocalab.params import from_mapping


@pytest.mark.parametrize("model", ["svm", "logreg", "random_forest", "hist_gb", "mlp"])
def test_every_classifier_learns_separable_data_and_is_seeded(model):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (40, 5)), rng.normal(4, 1, (10, 5))]) * 100  # unscaled on purpose
    y = np.array(["a"] * 40 + ["b"] * 10)
    config = from_mapping(TrainConfig, {"model": model, "seed": 3}, section="train")
    first = build_classifier(config).fit(X, y)
    second = build_classifier(config).fit(X, y)
    assert (first.predict(X) == y).mean() > 0.95
    np.testing.assert_array_equal(first.predict(X + 1), second.predict(X + 1))
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert first.predict_proba(X).shape == (50, 2)
    classifier = first.named_steps["classify"]
    if model != "mlp":  # MLPClassifier has no class weights
        inner = classifier.estimator if model == "svm" else classifier  # svm: inside its calibration
        assert inner.class_weight == "balanced"
