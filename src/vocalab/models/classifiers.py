"""Classifiers on pooled utterance statistics: scikit-learn pipelines.

Every pipeline standardises features with statistics fitted on the training
split only and is seeded, so a rerun gives the same model. Where the estimator
allows it, classes are weighted inversely to their frequency (``balanced``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from vocalab.errors import ParamsError
from vocalab.models.config import TrainConfig


def build_classifier(config: TrainConfig) -> Pipeline:
    """An unfitted ``StandardScaler -> classifier`` pipeline for a pooled ``config.model``."""
    seed = config.seed
    if config.model == "svm":
        # class probabilities by Platt scaling on internal folds; the SVM itself is fitted on all
        # training data (ensemble=False) and decides the labels (see decision_scores). The folds are
        # plain stratified ones: calibration only. break_ties: predict is the argmax of decision_function
        classifier: Any = CalibratedClassifierCV(
            SVC(C=config.svm.C, kernel=config.svm.kernel, class_weight="balanced", break_ties=True,
                random_state=seed),
            method="sigmoid", ensemble=False)
    elif config.model == "logreg":
        classifier = LogisticRegression(C=config.logreg.C, max_iter=config.logreg.max_iter,
                                        class_weight="balanced", random_state=seed)
    elif config.model == "random_forest":
        classifier = RandomForestClassifier(
            n_estimators=config.random_forest.n_estimators, max_depth=config.random_forest.max_depth,
            class_weight="balanced", random_state=seed, n_jobs=1,
        )
    elif config.model == "hist_gb":
        gb = config.hist_gb
        classifier = HistGradientBoostingClassifier(
            learning_rate=gb.learning_rate, max_iter=gb.max_iter, max_depth=gb.max_depth,
            l2_regularization=gb.l2_regularization, class_weight="balanced", early_stopping=False,
            random_state=seed,
        )
    elif config.model == "mlp":
        # MLPClassifier has no class weights; its own early stopping would draw a random
        # (speaker-mixing) validation set, so it is off and max_iter bounds training
        classifier = MLPClassifier(hidden_layer_sizes=config.mlp.hidden, alpha=config.mlp.alpha,
                                   max_iter=config.mlp.max_iter, random_state=seed)
    else:
        raise ParamsError(f"train.model: {config.model} is a sequence model, not a pooled classifier.")
    return Pipeline([("scale", StandardScaler()), ("classify", classifier)])


def fit_pooled(pipeline: Pipeline, features: np.ndarray, labels: np.ndarray,
               column_weights: np.ndarray | None = None) -> None:
    """Fit a :func:`build_classifier` pipeline; with ``column_weights``, each standardised column is scaled by its
    weight before the classifier sees it (a fusion's ``weighting: equal``).

    The weights go into the scaler itself (its ``scale_`` divided by them), so the saved
    pipeline is a plain scikit-learn one and applies them wherever it is used.
    """
    if column_weights is None:
        pipeline.fit(features, labels)
        return
    scaler = pipeline.named_steps["scale"]
    scaler.fit(features)
    if scaler.scale_.shape != column_weights.shape:
        raise ValueError(f"{column_weights.shape[0]} column weights for {scaler.scale_.shape[0]} features")
    scaler.scale_ = scaler.scale_ / column_weights
    pipeline[-1].fit(scaler.transform(features), labels)


#: significant digits kept of each Platt sigmoid's two parameters (see :func:`settle_calibration`)
SIGMOID_DIGITS = 6


#: a logistic regression's weights are kept on a grid of 2**-WEIGHT_BITS of the largest one's power of two
WEIGHT_BITS = 24


def settled(weights: np.ndarray) -> np.ndarray:
    """``weights`` on a grid of :data:`WEIGHT_BITS` bits below the largest one's binary exponent.

    L-BFGS reaches a logistic regression's weights through BLAS products whose last bits differ
    by CPU (up to 3e-15 of the largest weight, measured under OpenBLAS's Haswell and SandyBridge
    kernels). On a grid 6e-8 of the largest weight apart, a weight changes only when it sits
    within 3e-15 of a midpoint between two grid values: about once in ten million weights. The
    probabilities move by under 1e-6.
    """
    weights = np.asarray(weights, dtype=np.float64)
    largest = float(np.max(np.abs(weights))) if weights.size else 0.0
    if largest == 0.0 or not np.isfinite(largest):
        return weights
    step = np.ldexp(1.0, int(np.frexp(largest)[1]) - WEIGHT_BITS)
    return np.round(weights / step) * step


def settle_calibration(pipeline: Pipeline) -> None:
    """The same saved model on every CPU: a logistic regression's weights on a fixed grid
    (:func:`settled`), the SVM's Platt sigmoids rounded to :data:`SIGMOID_DIGITS` significant
    digits, in place.

    scipy fits each sigmoid with L-BFGS-B, whose BLAS calls give results that differ in the
    last digits from one CPU's kernels to another's (up to 1e-10 relative, measured with
    OpenBLAS's Haswell and SandyBridge kernels), so the saved model would not be the same
    bytes on every machine. Rounded, it is; probabilities move by under 1e-5, and labels,
    which come from the SVM's decision values (:func:`decision_scores`), not at all.
    """
    classify = pipeline[-1]
    if isinstance(classify, LogisticRegression):
        classify.coef_ = settled(classify.coef_)
        classify.intercept_ = settled(classify.intercept_)
        return
    if not isinstance(classify, CalibratedClassifierCV):
        return
    for calibrated in classify.calibrated_classifiers_:
        for sigmoid in calibrated.calibrators:
            sigmoid.a_ = np.float64(f"{sigmoid.a_:.{SIGMOID_DIGITS}g}")
            sigmoid.b_ = np.float64(f"{sigmoid.b_:.{SIGMOID_DIGITS}g}")


def decision_scores(pipeline: Pipeline, features: np.ndarray) -> np.ndarray:
    """Per-class scores whose argmax is the classifier's own decision, ``[shape=(n, n_classes)]``.

    Labels come from here, not from calibrated probabilities: Platt scaling is
    fitted without the balanced class weights, so the argmax of its probabilities
    drifts toward the frequent classes on an imbalanced corpus. For the SVM these
    are its one-vs-rest decision values (``predict`` is their argmax); for every
    other model, whose ``predict`` is the argmax of its own probabilities, they are
    those probabilities.
    """
    classify = pipeline[-1]
    if isinstance(classify, CalibratedClassifierCV):
        svm = classify.calibrated_classifiers_[0].estimator
        scores = svm.decision_function(pipeline[:-1].transform(features))
        return np.stack([-scores, scores], axis=1) if scores.ndim == 1 else scores
    return pipeline.predict_proba(features)
