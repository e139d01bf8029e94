"""Classifiers on pooled utterance statistics (scikit-learn pipelines), and the ``train`` params.

Every pipeline standardises features with statistics fitted on the training
split only and is seeded, so a rerun gives the same model. Where the estimator
allows it, classes are weighted inversely to their frequency (``balanced``).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, Literal

from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from vocalab.errors import ParamsError
from vocalab.features import FEATURE_SETS
from vocalab.models.sequence import SequenceConfig
from vocalab.params import bounded, from_mapping, nested

POOLED_MODELS = ("svm", "logreg", "random_forest", "hist_gb", "mlp")
SEQUENCE_MODELS = ("attentive", "cnn1d")


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
class HistGBConfig:
    learning_rate: float = bounded(0.1, gt=0.0, le=1.0)
    max_iter: int = bounded(200, ge=1, le=10000)
    max_depth: int | None = bounded(None, ge=1)
    l2_regularization: float = bounded(0.0, ge=0.0)


@dataclass(frozen=True)
class MLPConfig:
    hidden: tuple[int, ...] = (256,)
    alpha: float = bounded(1e-3, ge=0.0)
    max_iter: int = bounded(300, ge=1, le=100000)

    def check(self, section: str) -> None:
        if not self.hidden or min(self.hidden) < 1:
            raise ParamsError(f"params key '{section}.hidden' = {list(self.hidden)} must list layer sizes >= 1.")


@dataclass(frozen=True)
class FusionConfig:
    """One early-fusion set: the pooled statistics of ``a`` then ``b``, joined by utt_id."""

    a: str
    b: str


@dataclass(frozen=True)
class TrainConfig:
    """``train``: which feature sets get a model, which model, and how it is chosen."""

    feature_sets: tuple[str, ...] = ("handcrafted",)
    # early fusion: name -> {a, b}; list the name in feature_sets too (chain fusions for more than two)
    fusions: dict[str, FusionConfig] = dataclasses.field(default_factory=dict)
    model: Literal["svm", "logreg", "random_forest", "hist_gb", "mlp", "attentive", "cnn1d"] = "svm"
    # standardise with training statistics (global), or each speaker with their own (speaker)
    normalize: Literal["global", "speaker"] = "global"
    # a grid over the chosen model's own keys, e.g. {C: [0.1, 1, 10]}, scored on validation speakers
    search: dict[str, tuple[float | int | str | None, ...]] = dataclasses.field(default_factory=dict)
    # how a store with several layers (wav2vec2 layers: all or a list) becomes one vector:
    # average the layers' statistics, or concatenate them (sequence models learn layer weights)
    layer_pooling: Literal["mean", "concat"] = "mean"
    seed: int = bounded(0, ge=0)
    svm: SVMConfig = nested(SVMConfig)
    logreg: LogRegConfig = nested(LogRegConfig)
    random_forest: RandomForestConfig = nested(RandomForestConfig)
    hist_gb: HistGBConfig = nested(HistGBConfig)
    mlp: MLPConfig = nested(MLPConfig)
    sequence: SequenceConfig = nested(SequenceConfig)

    def check(self, section: str) -> None:
        if not self.feature_sets:
            raise ParamsError(f"params key '{section}.feature_sets' is empty: list at least one feature set.")
        known = set(FEATURE_SETS) | set(self.fusions)
        for name in self.feature_sets:
            if name not in known:
                hint = (f" To fuse sets, declare it under '{section}.fusions', e.g. "
                        f"{{{name}: {{a: ..., b: ...}}}}." if "+" in name else "")
                raise ParamsError(
                    f"params key '{section}.feature_sets' names unknown feature set {name!r}; "
                    f"available: {', '.join(sorted(known))}.{hint}"
                )
        if len(set(self.feature_sets)) != len(self.feature_sets):
            raise ParamsError(f"params key '{section}.feature_sets' lists a feature set twice: {list(self.feature_sets)}.")
        for name, fusion in self.fusions.items():
            if name in FEATURE_SETS:
                raise ParamsError(f"params key '{section}.fusions.{name}' reuses the name of an extracted feature set.")
            for part in (fusion.a, fusion.b):
                if part not in known or part == name:
                    raise ParamsError(
                        f"params key '{section}.fusions.{name}' joins {part!r}, which is not a feature set "
                        f"(available: {', '.join(sorted(known - {name}))})."
                    )
        search_grid(self, section)  # refuses unknown keys and bad values now, not after training

    @property
    def is_sequence_model(self) -> bool:
        return self.model in SEQUENCE_MODELS

    @property
    def model_key(self) -> str:
        """The params section of ``model``: ``sequence`` for the sequence heads, else the model's own."""
        return "sequence" if self.is_sequence_model else self.model

    def model_section(self) -> Any:
        return getattr(self, self.model_key)


def search_grid(config: TrainConfig, section: str = "train") -> list[dict[str, Any]]:
    """Every combination of ``train.search``, each a validated override of the model's own section.

    Returns ``[{}]`` when there is nothing to search.
    """
    if not config.search:
        return [{}]
    model_section = config.model_section()
    name = config.model_key
    fields = {f.name for f in dataclasses.fields(model_section)}
    for key, values in config.search.items():
        if key not in fields:
            raise ParamsError(
                f"params key '{section}.search.{key}' is not a key of '{section}.{name}' "
                f"(the section of train.model: {config.model}); searchable: {', '.join(sorted(fields))}."
            )
        if not values:
            raise ParamsError(f"params key '{section}.search.{key}' is an empty list: give the values to try.")
    keys = sorted(config.search)
    grid = []
    for values in itertools.product(*(config.search[k] for k in keys)):
        override = dict(zip(keys, values))
        # validated like the section itself: a bad value names the search key
        from_mapping(type(model_section), {**dataclasses.asdict(model_section), **override},
                     section=f"{section}.search")
        grid.append(override)
    return grid


def with_override(config: TrainConfig, override: dict[str, Any]) -> TrainConfig:
    """``config`` with one :func:`search_grid` candidate applied to the model's section."""
    if not override:
        return config
    section = config.model_section()
    updated = from_mapping(type(section), {**dataclasses.asdict(section), **override}, section="train.search")
    return dataclasses.replace(config, **{config.model_key: updated})


def build_classifier(config: TrainConfig) -> Pipeline:
    """An unfitted ``StandardScaler -> classifier`` pipeline for a pooled ``config.model``."""
    seed = config.seed
    if config.model == "svm":
        # class probabilities by Platt scaling on internal folds; the SVM itself is fitted on all
        # training data (ensemble=False). The folds are plain stratified ones: calibration only
        classifier: Any = CalibratedClassifierCV(
            SVC(C=config.svm.C, kernel=config.svm.kernel, class_weight="balanced", random_state=seed),
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
