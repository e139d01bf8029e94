"""Classifiers on pooled utterance statistics (scikit-learn pipelines).

Every pipeline standardises features with statistics fitted on the training
split only, weights classes inversely to their frequency (``balanced``) and is
seeded, so a rerun gives the same model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from vocalab.errors import ParamsError
from vocalab.features import FEATURE_SETS
from vocalab.params import bounded, nested


@dataclass(frozen=True)
class SVMConfig:
    C: float = bounded(1.0, gt=0.0)
    kernel: Literal["rbf", "linear"] = "rbf"


@dataclass(frozen=True)
class LogRegConfig:
    C: float = bounded(1.0, gt=0.0)
    max_iter: int = bounded(2000, ge=10)


@dataclass(frozen=True)
class RandomForestConfig:
    n_estimators: int = bounded(300, ge=1, le=10000)
    max_depth: int | None = bounded(None, ge=1)


@dataclass(frozen=True)
class TrainConfig:
    """``train``: which feature sets get a model, and which classifier."""

    feature_sets: tuple[str, ...] = ("handcrafted",)
    model: Literal["svm", "logreg", "random_forest"] = "svm"
    # how a store with several layers (wav2vec2 layers: all or a list) becomes one vector:
    # average the layers' statistics, or concatenate them
    layer_pooling: Literal["mean", "concat"] = "mean"
    seed: int = bounded(0, ge=0)
    svm: SVMConfig = nested(SVMConfig)
    logreg: LogRegConfig = nested(LogRegConfig)
    random_forest: RandomForestConfig = nested(RandomForestConfig)

    def check(self, section: str) -> None:
        if not self.feature_sets:
            raise ParamsError(f"params key '{section}.feature_sets' is empty: list at least one feature set.")
        for name in self.feature_sets:
            if name not in FEATURE_SETS:
                raise ParamsError(
                    f"params key '{section}.feature_sets' names unknown feature set {name!r}; "
                    f"available: {', '.join(sorted(FEATURE_SETS))}."
                )
        if len(set(self.feature_sets)) != len(self.feature_sets):
            raise ParamsError(f"params key '{section}.feature_sets' lists a feature set twice: {list(self.feature_sets)}.")


def build_classifier(config: TrainConfig) -> Pipeline:
    """An unfitted ``StandardScaler -> classifier`` pipeline for ``config.model``."""
    if config.model == "svm":
        classifier = SVC(C=config.svm.C, kernel=config.svm.kernel, class_weight="balanced",
                         random_state=config.seed)
    elif config.model == "logreg":
        classifier = LogisticRegression(C=config.logreg.C, max_iter=config.logreg.max_iter,
                                        class_weight="balanced", random_state=config.seed)
    else:
        classifier = RandomForestClassifier(
            n_estimators=config.random_forest.n_estimators, max_depth=config.random_forest.max_depth,
            class_weight="balanced", random_state=config.seed, n_jobs=1,
        )
    return Pipeline([("scale", StandardScaler()), ("classify", classifier)])
