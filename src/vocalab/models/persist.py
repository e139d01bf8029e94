"""Saving and loading trained models without running code from the file.

* scikit-learn pipelines: ``skops`` format. Loading lists the file's types and
  refuses any outside :data:`TRUSTED_TYPES` (the estimators this project builds),
  so a tampered or foreign file is rejected before anything in it is built.
* sequence heads: a torch state dict read with ``torch.load(weights_only=True)``
  into the architecture recorded in ``model.json``.
* a ready-made checkpoint's label map: ``model.json`` holds all of it; no file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from vocalab.errors import VocalabError, load_failure

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


#: the scikit-learn modules the project's pipelines are built from (models/classifiers.py)
ESTIMATOR_MODULES = ("sklearn.pipeline", "sklearn.preprocessing", "sklearn.calibration", "sklearn.svm",
                     "sklearn.linear_model", "sklearn.ensemble", "sklearn.tree", "sklearn.neural_network")


def _project_estimators(type_filter: Any = None) -> list[tuple[str, type]]:
    """The public estimators of :data:`ESTIMATOR_MODULES`, as ``sklearn.utils.all_estimators`` lists them."""
    import importlib
    import inspect

    from sklearn.base import BaseEstimator

    found: dict[str, type] = {}
    for module_name in ESTIMATOR_MODULES:
        for name, obj in vars(importlib.import_module(module_name)).items():
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator) and not name.startswith("_"):
                found[name] = obj
    return sorted(found.items())


def skops_io() -> Any:
    """``skops.io``, with its default list of trusted estimators limited to :data:`ESTIMATOR_MODULES`.

    skops builds that list when it is imported, from ``sklearn.utils.all_estimators()``, which
    imports every scikit-learn module and, through their array-API shims, torch, dask and
    pytest: about 3 s of every stage that saves or loads a model. The narrower list is also the
    stricter one: a file holding an estimator from any other module is refused on loading.
    """
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    import sklearn.utils

    every_estimator = sklearn.utils.all_estimators
    sklearn.utils.all_estimators = _project_estimators
    try:
        import skops.io
    finally:
        sklearn.utils.all_estimators = every_estimator
    return skops.io


def save_fold_model(model: Any, folder: Path) -> None:
    """Write a fitted model; a sequence head's architecture goes to ``model.json`` beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    if model.kind == "checkpoint":
        return  # the label map is the whole model, and model.json records it
    if model.kind == "sequence":
        import torch

        torch.save(model.model.state_dict(), folder / SEQUENCE_FILE)
    else:
        (folder / POOLED_FILE).write_bytes(canonical_skops(skops_io().dumps(model.model)))


def canonical_skops(raw: bytes) -> bytes:
    """A skops file whose bytes depend on the model only.

    skops names each object by its Python ``id()`` (in ``schema.json`` and in the
    names of its array files) and stamps the zip entries with the time of writing,
    so two saves of the same model differ. Here ids are renumbered in the order the
    schema lists them (objects shared stay shared), entries are stored uncompressed (no
    dependence on the zlib version) with a fixed date, in a fixed order.
    """
    import io
    import json
    import zipfile

    with zipfile.ZipFile(io.BytesIO(raw)) as source:
        schema = json.loads(source.read("schema.json"))
        contents = {name: source.read(name) for name in source.namelist()}
    new_ids: dict[int, int] = {}
    renamed: dict[str, str] = {}  # array file: old name -> new name

    def renumber(node: Any) -> Any:
        if isinstance(node, list):
            return [renumber(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: renumber(v) for k, v in node.items()}
        if "__id__" in node:
            out["__id__"] = new_ids.setdefault(node["__id__"], len(new_ids))
            if "file" in node:
                out["file"] = renamed[node["file"]] = f"{out['__id__']}.npy"
        return out

    files = {"schema.json": json.dumps(renumber(schema), sort_keys=True).encode()}
    unknown = set(contents) - set(files) - set(renamed)
    if unknown:
        raise VocalabError(f"skops wrote entries this project cannot store reproducibly: {sorted(unknown)}.")
    files.update({new: contents[old] for old, new in renamed.items()})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as target:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            target.writestr(info, files[name])
    return out.getvalue()


def load_fold_model(folder: Path, kind: str, architecture: dict[str, Any] | None, classes: list[str]) -> Any:
    """The fitted pipeline (pooled) or head (sequence) saved in ``folder``, or a checkpoint's label map."""
    if kind == "checkpoint":
        from vocalab.models.checkpoint import CheckpointMapping

        return CheckpointMapping.from_architecture(architecture or {}, classes)
    path = folder / (SEQUENCE_FILE if kind == "sequence" else POOLED_FILE)
    if not path.is_file():
        raise VocalabError(f"no trained model at '{path}'. Train it with: dvc repro train")
    if kind == "sequence":
        import torch

        from vocalab.models import sequence as seq

        module = seq.build(architecture or {})
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            module.load_state_dict(state)
            bad = [name for name, value in state.items()
                   if value.is_floating_point() and not bool(torch.isfinite(value).all())]
        except Exception as err:  # an unpickling or shape error: say which file, and what to do
            raise VocalabError(f"'{path}' is not a state dict of this model ({load_failure(err)}); vocalab loads "
                               f"no file that could run code. Retrain: dvc repro train") from None
        if bad:
            raise VocalabError(f"'{path}' holds NaN or infinite weights ({bad[0]}). Retrain: dvc repro train")
        return module.eval()
    skops = skops_io()
    try:
        untrusted = skops.get_untrusted_types(file=path)
    except Exception as err:
        raise VocalabError(f"'{path}' is not a readable skops model file ({err}). Retrain: dvc repro train") from err
    foreign = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if foreign:
        raise VocalabError(
            f"'{path}' contains types this project never saves ({', '.join(foreign)}); it was not loaded. "
            f"Retrain it with: dvc repro train"
        )
    model = skops.load(path, trusted=list(untrusted))
    try:
        learned = [str(c) for c in model.classes_]
    except AttributeError:
        learned = None
    if learned != list(classes):
        raise VocalabError(f"'{path}' predicts {learned}, but its model.json lists {classes}. "
                           f"Retrain: dvc repro train")
    broken = _non_finite_array(model)
    if broken:
        raise VocalabError(f"'{path}' holds NaN or infinite values ({broken}). Retrain: dvc repro train")
    return model


def _non_finite_array(model: Any) -> str | None:
    """The first fitted array of a pipeline's steps holding NaN or inf (``step.attribute``), or None."""
    import numpy as np

    steps = getattr(model, "steps", [("model", model)])
    for name, step in steps:
        estimators = [step, *getattr(step, "calibrated_classifiers_", [])]
        for estimator in estimators:
            for attribute, value in vars(estimator).items():
                if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.isfinite(value).all():
                    return f"{name}.{attribute}"
    return None
