"""A ready-made classifier's labels as the corpus's (``train.model: checkpoint``).

The ``checkpoint`` feature set stores, per utterance, the class probabilities an
audio-classification checkpoint gives (as ``pipeline("audio-classification")`` does).
This model learns nothing: ``train.checkpoint.label_map`` maps each checkpoint label
to a corpus label (or to null: left out), the probabilities of the labels mapped to
one corpus label are added, and the result is renormalised over the mapped labels.
It is then scored on each fold's test speakers like every trained model.

The map is checked against both label sets: a checkpoint label neither mapped nor
spelled as a corpus label is an error, as is a target that is not a corpus label or
a key the checkpoint does not have. Corpus labels that no checkpoint label reaches
are reported (:func:`unreachable`): the model can never predict them.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from vocalab.errors import VocalabError

KEY = "train.checkpoint.label_map"
#: the feature set whose pooled rows are a checkpoint's class probabilities
FEATURE_SET = "checkpoint"


def label_mapping(checkpoint_labels: Sequence[str], classes: Sequence[str],
                  label_map: Mapping[str, str | None]) -> dict[str, str | None]:
    """Each checkpoint label's corpus label (None: left out), ``label_map`` checked against both label sets."""
    unknown = sorted(set(label_map) - set(checkpoint_labels))
    if unknown:
        raise VocalabError(f"params key '{KEY}' maps {unknown}, which the checkpoint does not predict; its labels: "
                           f"{list(checkpoint_labels)}.")
    wrong = {k: v for k, v in label_map.items() if v is not None and v not in classes}
    if wrong:
        first = next(iter(wrong))
        raise VocalabError(f"params key '{KEY}.{first}' = {wrong[first]!r} is not a label of the corpus; its "
                           f"labels: {list(classes)}. Map it to one of them, or to null to leave it out.")
    mapping: dict[str, str | None] = {}
    unmapped = []
    for label in checkpoint_labels:
        if label in label_map:
            mapping[label] = label_map[label]
        elif label in classes:
            mapping[label] = label
        else:
            unmapped.append(label)
    if unmapped:
        example = ", ".join(f"{label}: <corpus label or null>" for label in unmapped[:3])
        raise VocalabError(f"the checkpoint predicts {unmapped}, which are not corpus labels and '{KEY}' does not "
                           f"map. Map each one, e.g. label_map: {{{example}}}; corpus labels: {list(classes)}.")
    if all(target is None for target in mapping.values()):
        raise VocalabError(f"params key '{KEY}' leaves every checkpoint label out: map at least one to a corpus "
                           f"label.")
    return mapping


def unreachable(mapping: Mapping[str, str | None], classes: Sequence[str]) -> list[str]:
    """The corpus labels no checkpoint label maps to: never predicted."""
    return [c for c in classes if c not in set(mapping.values())]


def unreachable_labels(info: Any) -> list[str]:
    """The corpus labels a trained ``checkpoint`` model (its :class:`~vocalab.model_info.ModelInfo`) never predicts."""
    return unreachable(label_map_of(info), info.labels)


def label_map_of(info: Any) -> dict[str, str | None]:
    """The label map a ``checkpoint`` model was trained with, as ``model.json`` records it."""
    return info.folds[0].chosen_candidate.architecture["label_map"]


class CheckpointMapping:
    """``predict_proba`` of a checkpoint's probabilities (``[shape=(n, n_checkpoint_labels)]``), in corpus labels."""

    def __init__(self, checkpoint_labels: Sequence[str], mapping: Mapping[str, str | None],
                 classes: Sequence[str]) -> None:
        self.checkpoint_labels, self.classes_ = list(checkpoint_labels), np.array(list(classes))
        self.mapping = dict(mapping)
        column = {c: k for k, c in enumerate(classes)}
        self.matrix = np.zeros((len(self.checkpoint_labels), len(classes)))
        for row, label in enumerate(self.checkpoint_labels):
            target = self.mapping.get(label)
            if target is not None:
                self.matrix[row, column[target]] = 1.0

    def predict_proba(self, probabilities: np.ndarray) -> np.ndarray:
        mass = np.asarray(probabilities, dtype=np.float64) @ self.matrix
        total = mass.sum(axis=1, keepdims=True)
        uniform = np.full_like(mass, 1.0 / mass.shape[1]) if mass.size else mass
        return np.where(total > 0, mass / np.where(total > 0, total, 1.0), uniform)

    def architecture(self) -> dict[str, Any]:
        """What ``model.json`` records: the whole model."""
        return {"kind": FEATURE_SET, "checkpoint_labels": self.checkpoint_labels, "label_map": self.mapping}

    @classmethod
    def from_architecture(cls, arch: Mapping[str, Any], classes: Sequence[str]) -> CheckpointMapping:
        try:
            labels = [str(label) for label in arch["checkpoint_labels"]]
            return cls(labels, label_mapping(labels, classes, dict(arch["label_map"])), classes)
        except (KeyError, TypeError, VocalabError) as err:
            raise VocalabError(f"model.json's checkpoint label map is damaged ({err}). Retrain: dvc repro train") \
                from None
