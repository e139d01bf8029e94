"""Fit a model on one feature store's training speakers, chosen on validation speakers, and save it.

Protocol: for each fold (one for a held-out split, ``k`` for ``speaker_kfold``)
every candidate of ``train.search`` is fitted on the training speakers and
scored (UAR) on the validation speakers; sequence models also stop early on
them. The best candidate is saved. Test speakers are never read here.

Saved models load without running code: scikit-learn pipelines through skops
with an allowlist of types, torch heads as ``weights_only`` state dicts.

With ``train.normalize: speaker`` a model sees each speaker standardised by their own
statistics, which a single recording of a new voice cannot give. So each fold also
saves its chosen candidate fitted again under global normalisation (training
statistics, as ``train.normalize: global``): the **unknown-speaker model** that
``vocalab predict`` uses for files without enough recordings of their speaker, and whose
UAR on held-out speakers ``evaluate`` reports, so users know what to expect from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vocalab.errors import FeatureStoreError, VocalabError
from vocalab.features.store import FeatureStore
from vocalab.metrics import uar
from vocalab.features.fusion import block_weights
from vocalab.models.classifiers import build_classifier, decision_scores, fit_pooled, settle_calibration
from vocalab.models.config import TrainConfig, search_grid, with_override
from vocalab.manifest import speakers_known
from vocalab.models.normalize import speaker_standardise, speaker_standardise_frames
from vocalab.models.persist import load_fold_model, save_fold_model
from vocalab.model_info import CandidateInfo, FoldInfo, ModelInfo
from vocalab.splits import fold_index, fold_names, fold_view


@dataclass(frozen=True)
class SplitData:
    """One split's inputs, aligned by utt_id with the manifest: pooled rows or frame sequences."""

    labels: np.ndarray  # [shape=(n,)]
    utt_ids: list[str]
    speakers: list[str]
    features: np.ndarray | None = None  # [shape=(n, 2 * dim)] pooled models
    sequences: list[np.ndarray] | None = None  # [shape=(t_i, dim)] sequence models
    absent_utt_ids: list[str] = field(default_factory=list)  # in the split, but without frames in the store
    # a fusion's weights per pooled column (weighting: equal), applied after standardisation; None: all 1
    column_weights: np.ndarray | None = None
    pooled_names: tuple[str, ...] = ()  # a store of functionals: its pooled columns' names


#: the folder, inside each fold's, of the model for speakers who cannot be standardised on their own
UNKNOWN_SPEAKER_DIR = "unknown_speaker"


def fold_dir(out_dir: Path, name: str) -> Path:
    """Where fold ``name`` (from :func:`vocalab.splits.fold_names`) keeps its model."""
    return Path(out_dir) if name == "split" else Path(out_dir) / f"fold_{fold_index(name)}"


def split_data(store: FeatureStore, manifest: pd.DataFrame, view: pd.DataFrame, split: str, *,
               layer_pooling: str, normalize: str, sequences: bool, vectors: bool = False) -> SplitData:
    """The rows of ``split`` in a fold ``view`` (utt_id, speaker, split), looked up in ``store`` by utt_id.

    Utterances the store records as absent (an extractor gave them no frames, e.g.
    VGGish with ``short_clips: drop``) are left out and listed in ``absent_utt_ids``.
    With ``normalize="speaker"`` each speaker is standardised with their own statistics.
    ``vectors`` (with ``sequences``): each utterance's pooled row as a one-step sequence.
    """
    table = manifest[["utt_id", "speaker", "label"]].merge(view[["utt_id", "split"]], on="utt_id",
                                                           validate="one_to_one")
    table = table[table["split"] == split]
    is_absent = table["utt_id"].isin(set(store.meta.absent_utt_ids))
    absent = table.loc[is_absent, "utt_id"].tolist()
    table = table[~is_absent]
    utt_ids, speakers = table["utt_id"].tolist(), table["speaker"].tolist()
    labels = table["label"].to_numpy(dtype=str)
    rows = store.index_of(utt_ids)
    if sequences and not vectors:
        if not store.has_frames:
            raise VocalabError(
                f"feature set '{store.meta.feature_set}' is a fusion of pooled statistics and has no frames, "
                f"so a sequence model cannot use it. Use a pooled train.model, or leave the fusion out of "
                f"train.feature_sets."
            )
        frames = [np.asarray(store.sequence(u), dtype=np.float32) for u in utt_ids]
        _check_finite(store, utt_ids, [np.isfinite(f).all() for f in frames])
        if normalize == "speaker" and frames:
            frames = speaker_standardise_frames(frames, speakers)
        return SplitData(labels, utt_ids, speakers, sequences=frames, absent_utt_ids=absent)
    features = store.pooled_matrix(rows, layer_pooling)
    _check_finite(store, utt_ids, np.isfinite(features).all(axis=1))
    if normalize == "speaker" and len(features):
        features = speaker_standardise(features, speakers)
    if sequences:
        return SplitData(labels, utt_ids, speakers, sequences=[row[None, :].astype(np.float32) for row in features],
                         absent_utt_ids=absent)
    return SplitData(labels, utt_ids, speakers, features=features, absent_utt_ids=absent,
                     column_weights=block_weights(store.meta), pooled_names=tuple(store.meta.pooled_names))


def _check_finite(store: FeatureStore, utt_ids: list[str], finite: Any) -> None:
    finite = np.asarray(finite, dtype=bool)
    if not finite.all():
        bad = utt_ids[int(np.flatnonzero(~finite)[0])]
        raise FeatureStoreError(
            f"feature store '{store.root}' holds NaN/inf for utterance '{bad}'. Check that file's audio."
        )


class FittedModel:
    """A fitted pooled pipeline or sequence head behind ``predict_proba`` and ``decision_scores`` of SplitData."""

    def __init__(self, model: Any, kind: str, device: Any = None) -> None:
        self.model, self.kind, self.device = model, kind, device

    def predict_proba(self, data: SplitData) -> np.ndarray:
        """Class probabilities (calibrated for the SVM), ``[shape=(n, n_classes)]``."""
        if self.kind == "sequence":
            from vocalab.models import sequence as seq

            return seq.predict_proba(self.model, data.sequences or [], self.device)
        if len(data.labels) == 0:
            return np.zeros((0, len(self.model.classes_)))
        return self.model.predict_proba(data.features)

    def decision_scores(self, data: SplitData) -> np.ndarray:
        """Per-class scores whose argmax is the model's own decision: the label it predicts."""
        if self.kind != "pooled" or len(data.labels) == 0:
            return self.predict_proba(data)
        return decision_scores(self.model, data.features)

    def decide(self, data: SplitData) -> np.ndarray:
        """The index of the predicted class of each row."""
        return self.decision_scores(data).argmax(axis=1)


def _device(config: TrainConfig) -> Any:
    from vocalab.features.torch_runtime import resolve_device

    return resolve_device(config.sequence.device, "train.sequence")


def fit_candidate(config: TrainConfig, train_data: SplitData, validation: SplitData, classes: list[str],
                  n_layers: int) -> tuple[FittedModel, list[dict[str, Any]], dict[str, Any]]:
    """Fit one candidate; returns the model, its training curve and what to record about it."""
    index = {c: i for i, c in enumerate(classes)}
    if config.model == "checkpoint":
        return _checkpoint_model(config, train_data, classes)
    if not config.is_sequence_model:
        pipeline = build_classifier(config)
        if config.model == "svm":  # Platt scaling's internal folds: at most one per utterance of the rarest class
            rarest = int(min(np.unique(train_data.labels, return_counts=True)[1]))
            if rarest < 2:
                raise VocalabError("train.model: svm calibrates its probabilities on internal folds and needs "
                                   "at least 2 training utterances of every class. Use train.model: logreg, "
                                   "or a split that leaves more of the rare class in train.")
            pipeline.set_params(classify__cv=min(5, rarest))
        fit_pooled(pipeline, train_data.features, train_data.labels, train_data.column_weights)
        settle_calibration(pipeline)
        if list(pipeline.classes_) != classes:
            raise VocalabError(f"the model learned classes {list(pipeline.classes_)}, expected {classes}.")
        return FittedModel(pipeline, "pooled"), [], {}
    import torch  # sequence heads only: pooled models never load torch

    from vocalab.models import sequence as seq

    device = _device(config)
    sequences = train_data.sequences or []
    frames = np.concatenate(sequences)
    dim = frames.shape[1]
    encoder, weights = None, None
    if config.model == "finetune":
        from vocalab.models.finetune import load_encoder

        encoder, weights = load_encoder(config.finetune, config.seed)
    arch = seq.architecture(config.sequence, config.model, dim=dim, n_classes=len(classes),
                            n_layers=1 if config.reads_vectors else n_layers, encoder=encoder)
    torch.manual_seed(config.seed)  # the initial weights too
    module = seq.build(arch)
    if weights is not None:  # the pretrained weights (or the seeded random ones) in place of from_config's
        module.head.encoder.load_state_dict(weights.state_dict())
    if config.normalize == "global":  # training frames' statistics; speaker mode standardised already
        std = frames.std(axis=0)
        module.mean.copy_(torch.from_numpy(frames.mean(axis=0).astype(np.float32)))
        module.std.copy_(torch.from_numpy(np.where(std < 1e-8, 1.0, std).astype(np.float32)))
    y_train = np.array([index[c] for c in train_data.labels])
    val = (validation.sequences or [], np.array([index[c] for c in validation.labels], dtype=np.int64))
    training = config.sequence
    if config.model in ("m5", "finetune"):  # crops of a waveform are counted in samples
        training = dataclasses.replace(training, max_frames=training.waveform_crop)
    module, curve, best_epoch = seq.fit(module, (sequences, y_train), val if len(val[1]) else None,
                                        training, seed=config.seed, device=device)
    return FittedModel(module.cpu(), "sequence", torch.device("cpu")), curve, {
        "architecture": arch, "best_epoch": best_epoch, "epochs_run": len(curve),
        "layer_weights": module.layer_weights()}


def _checkpoint_model(config: TrainConfig, train_data: SplitData, classes: list[str]
                      ) -> tuple[FittedModel, list[dict[str, Any]], dict[str, Any]]:
    """The ready-made classifier's probabilities mapped to the corpus's labels: nothing is fitted."""
    from vocalab.models.checkpoint import CheckpointMapping, label_mapping

    labels = list(train_data.pooled_names)
    mapping = CheckpointMapping(labels, label_mapping(labels, classes, config.checkpoint.label_map), classes)
    return FittedModel(mapping, "checkpoint"), [], {"architecture": mapping.architecture()}


def _n_layers(store: FeatureStore) -> int:
    return len(store.meta.layers) if len(store.meta.layers) > 1 else 1


def fold_inputs(store: FeatureStore, manifest: pd.DataFrame, splits: pd.DataFrame, name: str,
                config: TrainConfig, classes: list[str]) -> tuple[SplitData, SplitData]:
    """Training and validation data of fold ``name``, refused when no model could learn from them."""
    view = fold_view(splits, name)
    options = dict(layer_pooling=config.layer_pooling, normalize=config.normalize,
                   sequences=config.is_sequence_model, vectors=config.reads_vectors)
    train_data = split_data(store, manifest, view, "train", **options)
    validation = split_data(store, manifest, view, "validation", **options)
    where = "" if name == "split" else f" of fold {fold_index(name)}"
    if len(train_data.labels) == 0:
        hint = (f" ({len(train_data.absent_utt_ids)} of its utterances have no features in this store, "
                f"e.g. VGGish short_clips: drop)" if train_data.absent_utt_ids else "")
        raise VocalabError(f"the training split{where} is empty{hint}. "
                           f"Check the 'split' params and metrics/split.json.")
    missing = sorted(set(classes) - set(train_data.labels))
    if missing:
        raise VocalabError(
            f"label(s) {missing} have no training utterance{where}, so no model can learn them. "
            f"Change split.seed, split.folds or the split fractions so every label is in train."
        )
    return train_data, validation


def choose_candidate(config: TrainConfig, grid: list[dict[str, Any]], train_data: SplitData,
                     validation: SplitData, classes: list[str], n_layers: int
                     ) -> tuple[int, FittedModel, list[CandidateInfo], list[dict[str, Any]]]:
    """Fit every candidate of ``grid``; the best by validation UAR (the first when there are no validation speakers).

    Returns the chosen index and model, every candidate's record and the curve rows
    (one per epoch, or one per candidate for pooled models).
    """
    if len(grid) > 1 and len(validation.labels) == 0:
        raise VocalabError("train.search compares candidates on validation speakers, but there are none "
                           "(split.validation_fraction: 0). Raise it, or empty train.search.")
    index = {c: i for i, c in enumerate(classes)}
    y_val = np.array([index[c] for c in validation.labels], dtype=np.int64)
    best, candidates, curves = None, [], []
    for k, override in enumerate(grid):
        model, curve, extra = fit_candidate(with_override(config, override), train_data, validation, classes,
                                            n_layers)
        score = uar(y_val, model.decide(validation)) if len(y_val) else None
        candidates.append(CandidateInfo(params=override, validation_uar=None if score is None else round(score, 4),
                                        **extra))
        rows = curve or [{"validation_uar": None if score is None else round(score, 5)}]
        curves += [{"candidate": k, **row} for row in rows]
        if best is None or (score is not None and score > best[0]):
            best = (score if score is not None else -np.inf, k, model)
    _, chosen, model = best
    return chosen, model, candidates, curves


def joined(a: SplitData, b: SplitData) -> SplitData:
    """Two splits' pooled rows as one (each speaker was standardised on their own already)."""
    return SplitData(np.concatenate([a.labels, b.labels]), a.utt_ids + b.utt_ids, a.speakers + b.speakers,
                     features=np.concatenate([a.features, b.features]),
                     absent_utt_ids=a.absent_utt_ids + b.absent_utt_ids, column_weights=a.column_weights,
                     pooled_names=a.pooled_names)


def curves_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """``fold, candidate, step, epoch, train_loss, validation_loss, validation_uar``, one row per step."""
    columns = ["fold", "candidate", "epoch", "train_loss", "validation_loss", "validation_uar"]
    table = pd.DataFrame(rows).reindex(columns=columns)
    table.insert(2, "step", table.groupby("fold").cumcount() + 1)
    return table


SPEAKERS_UNKNOWN = ("the corpus names no speakers, so features are standardised with the training "
                    "statistics (as train.normalize: global), not per speaker")


def effective_config(config: TrainConfig, manifest: pd.DataFrame) -> TrainConfig:
    """``config``, with per-speaker normalisation replaced by global where the corpus names no speakers, or
    where the model reads a ready-made classifier's probabilities (``checkpoint``: nothing is standardised)."""
    if config.normalize == "speaker" and (config.model == "checkpoint" or not speakers_known(manifest)):
        return dataclasses.replace(config, normalize="global")
    return config


def fit_unknown_speaker_model(store: FeatureStore, manifest: pd.DataFrame, splits: pd.DataFrame, name: str,
                              config: TrainConfig, override: dict[str, Any], classes: list[str]) -> FittedModel:
    """Fold ``name``'s chosen candidate fitted under global normalisation, on the same speakers."""
    config = dataclasses.replace(with_override(config, override), normalize="global")
    train_data, validation = fold_inputs(store, manifest, splits, name, config, classes)
    data = joined(train_data, validation) if config.refits(len(validation.labels)) else train_data
    return fit_candidate(config, data, validation, classes, _n_layers(store))[0]


def train(store: FeatureStore, manifest: pd.DataFrame, splits: pd.DataFrame, config: TrainConfig,
          out_dir: Path) -> tuple[ModelInfo, pd.DataFrame]:
    """Fit every fold and write ``model.json`` plus one saved model per fold to ``out_dir``.

    Returns the model info (its ``train`` is the config as applied: see
    :func:`effective_config`) and the training curves (see :func:`curves_table`).
    """
    config = effective_config(config, manifest)
    if config.model == "checkpoint" and store.meta.feature_set != "checkpoint":
        raise VocalabError(f"train.model: checkpoint maps a ready-made classifier's probabilities (the checkpoint "
                           f"set), but '{store.meta.feature_set}' holds features. Give the checkpoint set its own "
                           f"model instead: train.models: {{checkpoint: checkpoint}}.")
    classes = sorted(str(c) for c in set(manifest["label"]))
    if len(classes) < 2:
        raise VocalabError(f"the manifest holds one label ({classes[0]!r}), and a classifier needs at least two. "
                           f"Check data.target, data.label_map and the corpus's layout (data.layout).")
    grid = search_grid(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folds, curves = [], []
    for name in fold_names(splits):
        train_data, validation = fold_inputs(store, manifest, splits, name, config, classes)
        chosen, model, candidates, rows = choose_candidate(config, grid, train_data, validation, classes,
                                                           _n_layers(store))
        if config.refits(len(validation.labels)):
            model = fit_candidate(with_override(config, grid[chosen]), joined(train_data, validation), validation,
                                  classes, _n_layers(store))[0]
        save_fold_model(model, fold_dir(out_dir, name))
        if config.normalize == "speaker":  # for recordings of speakers too rarely heard for statistics
            unknown = fit_unknown_speaker_model(store, manifest, splits, name, config, grid[chosen], classes)
            save_fold_model(unknown, fold_dir(out_dir, name) / UNKNOWN_SPEAKER_DIR)
        curves += [{"fold": fold_index(name), **row} for row in rows]
        folds.append(FoldInfo(name=name, n_train=len(train_data.labels), n_validation=len(validation.labels),
                              n_train_absent=len(train_data.absent_utt_ids),
                              n_train_speakers=len(set(train_data.speakers)), chosen=chosen,
                              candidates=tuple(candidates)))
    # every fold reads the same columns: the last fold's training data gives the width
    n_features = (train_data.sequences[0].shape[1] if config.reads_vectors and train_data.sequences
                  else store.meta.dim if config.is_sequence_model else train_data.features.shape[1])
    kind = "sequence" if config.is_sequence_model else "checkpoint" if config.model == "checkpoint" else "pooled"
    info = ModelInfo(feature_set=store.meta.feature_set, kind=kind,
                     classes=tuple(classes), train=config, features=store.meta, folds=tuple(folds),
                     n_features=int(n_features), unknown_speaker_model=config.normalize == "speaker")
    info.write(out_dir)
    return info, curves_table(curves)


def load_model(model_dir: Path) -> tuple[list[tuple[str, FittedModel]], ModelInfo]:
    """The ``(fold name, model)`` pairs and the info saved by :func:`train`."""
    model_dir = Path(model_dir)
    info = ModelInfo.read(model_dir)
    models = []
    for fold in info.folds:
        folder = fold_dir(model_dir, fold.name)
        model = load_fold_model(folder, info.kind, fold.chosen_candidate.architecture, info.labels)
        models.append((fold.name, FittedModel(_checked_width(model, info, folder), info.kind, "cpu")))
    return models, info


def _checked_width(model: Any, info: ModelInfo, folder: Path) -> Any:
    """A pooled model whose input width is the one model.json records: a mismatch is named, never shifted."""
    width = getattr(model, "n_features_in_", None)  # scikit-learn's own record of what it was fitted on
    if info.kind == "pooled" and width is not None and int(width) != info.n_features:
        raise VocalabError(f"'{folder}' holds a model fitted on {int(width)} features, but its model.json says "
                           f"{info.n_features}. The folder is mixed up; retrain it with: dvc repro train")
    return model


def load_unknown_speaker_models(model_dir: Path, info: ModelInfo) -> list[tuple[str, FittedModel]]:
    """Each fold's unknown-speaker model (see the module docstring); an error naming the fix where there is none."""
    if not info.unknown_speaker_model:
        raise VocalabError(f"'{model_dir}' has no model for speakers it cannot standardise on their own: it was "
                           f"trained before there was one. Retrain it with: dvc repro train")
    models = []
    for fold in info.folds:
        folder = fold_dir(Path(model_dir), fold.name) / UNKNOWN_SPEAKER_DIR
        model = load_fold_model(folder, info.kind, fold.chosen_candidate.architecture, info.labels)
        models.append((fold.name, FittedModel(_checked_width(model, info, folder), info.kind, "cpu")))
    return models
