"""Saving and loading trained models without running code from the file.

* scikit-learn pipelines: ``skops`` format. Loading lists the file's types and
  refuses any outside :data:`TRUSTED_TYPES` (the estimators this project builds),
  so a tampered or foreign file is rejected before anything in it is built.
* sequence heads: a torch state dict read with ``torch.load(weights_only=True)``
  into the architecture recorded in ``model.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vocalab.errors import VocalabError
from vocalab.models import sequence as seq

POOLED_FILE = "model.skops"
SEQUENCE_FILE = "model.pt"

#: types skops does not trust by default that the project's own pipelines contain
TRUSTED_TYPES = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
)


def save_fold_model(model: Any, folder: Path) -> None:
    """Write a fitted model; a sequence head's architecture goes to ``model.json`` beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    if model.kind == "sequence":
        torch.save(model.model.state_dict(), folder / SEQUENCE_FILE)
    else:
        import skops.io

        skops.io.dump(model.model, folder / POOLED_FILE)


def load_fold_model(folder: Path, kind: str, architecture: dict[str, Any] | None, classes: list[str]) -> Any:
    """The fitted pipeline (pooled) or head (sequence) saved in ``folder``."""
    path = folder / (SEQUENCE_FILE if kind == "sequence" else POOLED_FILE)
    if not path.is_file():
        raise VocalabError(f"no trained model at '{path}'. Train it with: dvc repro train")
    if kind == "sequence":
        module = seq.build(architecture or {})
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            module.load_state_dict(state)
        except Exception as err:  # an unpickling or shape error: say which file, and what to do
            raise VocalabError(f"'{path}' is not a state dict of this model ({err}). Retrain: dvc repro train") from err
        return module.eval()
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as err:
        raise VocalabError(f"'{path}' is not a readable skops model file ({err}). Retrain: dvc repro train") from err
    foreign = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if foreign:
        raise VocalabError(
            f"'{path}' contains types this project never saves ({', '.join(foreign)}); it was not loaded. "
            f"Retrain it with: dvc repro train"
        )
    model = skops.io.load(path, trusted=list(untrusted))
    try:
        learned = [str(c) for c in model.classes_]
    except AttributeError:
        learned = None
    if learned != list(classes):
        raise VocalabError(f"'{path}' predicts {learned}, but its model.json lists {classes}. "
                           f"Retrain: dvc repro train")
    return model


REFERENCE_FILE = "speaker_reference.npy"


def save_speaker_reference(reference: Any, folder: Path) -> None:
    """The average training speaker's statistics (``train.normalize: speaker``), for ``vocalab predict``."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / REFERENCE_FILE, np.asarray(reference, dtype=np.float64))


def load_speaker_reference(folder: Path) -> Any:
    import numpy as np

    path = folder / REFERENCE_FILE
    if not path.is_file():
        raise VocalabError(f"'{path}' is missing: this model was trained before recordings of unknown speakers "
                           f"could be normalised. Retrain it with: dvc repro train")
    return np.load(path, allow_pickle=False)
