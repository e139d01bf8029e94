"""``model.json``: what a trained model folder holds, typed, each field with one default.

Written by :func:`vocalab.training.train`, read by ``evaluate``, ``summary`` and
``vocalab predict``. A missing, hand-edited or corrupt file is a clear error
naming the file and the field, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vocalab.errors import VocalabError
from vocalab.features.store import StoreMeta
from vocalab.models.config import TrainConfig
from vocalab.params import from_mapping, to_dict

INFO_FILE = "model.json"


class ModelInfoError(VocalabError):
    """A model folder's ``model.json`` is missing or malformed."""


def _get(data: Any, key: str, kind: Any, source: str, default: Any = dataclasses.MISSING) -> Any:
    if not isinstance(data, dict):
        raise ModelInfoError(f"{source} is not a JSON object. Retrain the model with 'dvc repro'.")
    if key not in data:
        if default is dataclasses.MISSING:
            raise ModelInfoError(f"{source} lacks '{key}'. Retrain the model with 'dvc repro'.")
        return default
    value = data[key]
    if (value is None and default is None) or (isinstance(value, kind) and not (kind is int and isinstance(value, bool))):
        return value
    raise ModelInfoError(f"{source} has a malformed '{key}' ({value!r}). Retrain the model with 'dvc repro'.")


@dataclass(frozen=True)
class CandidateInfo:
    """One candidate of ``train.search`` in one fold, as scored on the validation speakers."""

    params: dict[str, Any]
    validation_uar: float | None = None
    # sequence heads only
    architecture: dict[str, Any] | None = None
    best_epoch: int | None = None
    epochs_run: int | None = None
    layer_weights: list[Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"params": self.params, "validation_uar": self.validation_uar}
        for key in ("architecture", "best_epoch", "epochs_run", "layer_weights"):
            if getattr(self, key) is not None or (key == "layer_weights" and self.architecture is not None):
                data[key] = getattr(self, key)
        return data

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> CandidateInfo:
        return cls(params=_get(data, "params", dict, source), validation_uar=_get(data, "validation_uar", (int, float),
                                                                                  source, None),
                   architecture=_get(data, "architecture", dict, source, None),
                   best_epoch=_get(data, "best_epoch", int, source, None),
                   epochs_run=_get(data, "epochs_run", int, source, None),
                   layer_weights=_get(data, "layer_weights", list, source, None))


@dataclass(frozen=True)
class FoldInfo:
    """One fold's training data and the candidate chosen on its validation speakers."""

    name: str
    n_train: int
    n_validation: int
    n_train_absent: int
    n_train_speakers: int
    chosen: int
    candidates: tuple[CandidateInfo, ...]

    @property
    def chosen_candidate(self) -> CandidateInfo:
        return self.candidates[self.chosen]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "n_train": self.n_train, "n_validation": self.n_validation,
                "n_train_absent": self.n_train_absent, "n_train_speakers": self.n_train_speakers,
                "chosen": self.chosen, "chosen_params": self.chosen_candidate.params,
                "candidates": [c.to_dict() for c in self.candidates]}

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> FoldInfo:
        candidates = tuple(CandidateInfo.from_dict(c, source=f"{source}, candidate {k}")
                           for k, c in enumerate(_get(data, "candidates", list, source)))
        chosen = _get(data, "chosen", int, source)
        if not 0 <= chosen < len(candidates):
            raise ModelInfoError(f"{source} chose candidate {chosen} of {len(candidates)}. "
                                 f"Retrain the model with 'dvc repro'.")
        name = _get(data, "name", str, source)
        if not re.fullmatch(r"split(_\d{1,4})?", name):  # it names a folder: nothing path-like gets through
            raise ModelInfoError(f"{source} has a fold named {name!r}; folds are 'split' or 'split_<n>'. "
                                 f"Retrain the model with 'dvc repro'.")
        return cls(name=name, n_train=_get(data, "n_train", int, source),
                   n_validation=_get(data, "n_validation", int, source),
                   n_train_absent=_get(data, "n_train_absent", int, source, 0),
                   n_train_speakers=_get(data, "n_train_speakers", int, source), chosen=chosen,
                   candidates=candidates)


@dataclass(frozen=True)
class ModelInfo:
    """A trained model: its feature set (and that store's meta), its classes, its training config and folds."""

    feature_set: str
    kind: Literal["pooled", "sequence", "checkpoint"]
    classes: tuple[str, ...]
    train: TrainConfig
    features: StoreMeta
    folds: tuple[FoldInfo, ...]
    n_features: int
    #: each fold also holds the same model fitted under global normalisation, for speakers it cannot
    #: standardise (``train.normalize: speaker`` only): see :data:`vocalab.training.UNKNOWN_SPEAKER_DIR`
    unknown_speaker_model: bool = False

    @property
    def labels(self) -> list[str]:
        return list(self.classes)

    @property
    def is_sequence(self) -> bool:
        return self.kind == "sequence"

    @property
    def random_init_network(self) -> bool:
        """Its numbers come from a network with random weights: its features', or an encoder fine-tuned here from
        ``init: random``. Such a model checks the plumbing only."""
        return self.features.random_init_network or (self.train.model == "finetune"
                                                     and self.train.finetune.init == "random")

    @property
    def reads_vectors(self) -> bool:
        """A sequence head over each utterance's pooled row (``vector_cnn``)."""
        return self.train.reads_vectors

    @property
    def searched(self) -> bool:
        return any(len(f.candidates) > 1 for f in self.folds)

    def to_dict(self) -> dict[str, Any]:
        first = self.folds[0]
        return {"feature_set": self.feature_set, "kind": self.kind, "classes": list(self.classes),
                "train": to_dict(self.train), "features": self.features.to_dict(),
                "folds": [f.to_dict() for f in self.folds], "n_train": first.n_train,
                "n_train_absent": first.n_train_absent, "n_train_speakers": first.n_train_speakers,
                "n_features": self.n_features, "unknown_speaker_model": self.unknown_speaker_model}

    def write(self, model_dir: Path) -> None:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        (Path(model_dir) / INFO_FILE).write_text(text, encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> ModelInfo:
        kind = _get(data, "kind", str, source)
        if kind not in ("pooled", "sequence", "checkpoint"):
            raise ModelInfoError(f"{source} has kind {kind!r}; expected 'pooled', 'sequence' or 'checkpoint'.")
        folds = tuple(FoldInfo.from_dict(f, source=f"{source}, fold {k}")
                      for k, f in enumerate(_get(data, "folds", list, source)))
        if not folds:
            raise ModelInfoError(f"{source} lists no folds. Retrain the model with 'dvc repro'.")
        try:
            train = from_mapping(TrainConfig, _get(data, "train", dict, source), section=f"{source} train")
        except VocalabError as err:
            raise ModelInfoError(f"{err} Retrain the model with 'dvc repro'.") from err
        return cls(feature_set=_get(data, "feature_set", str, source), kind=kind,
                   classes=tuple(str(c) for c in _get(data, "classes", list, source)), train=train,
                   features=StoreMeta.from_dict(_get(data, "features", dict, source), source=f"{source} features"),
                   folds=folds, n_features=_get(data, "n_features", int, source),
                   unknown_speaker_model=_get(data, "unknown_speaker_model", bool, source, False))

    @classmethod
    def read(cls, model_dir: Path) -> ModelInfo:
        path = Path(model_dir) / INFO_FILE
        if not path.is_file():
            raise ModelInfoError(f"no trained model in '{model_dir}' (no {INFO_FILE}). "
                                 f"Train it with: dvc repro train")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelInfoError(f"'{path}' cannot be read as JSON ({err}). Retrain the model with 'dvc repro'.") \
                from err
        return cls.from_dict(data, source=f"'{path}'")
