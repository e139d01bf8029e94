"""The ``train`` params section: which feature sets get a model, which model, and how it is chosen.

Plain dataclasses (no scikit-learn or torch), so reading the section costs nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vocalab.errors import ParamsError
from vocalab.params import bounded, check_device_param, from_mapping, nested

SEQUENCE_MODELS = ("attentive", "cnn1d", "m5", "vector_cnn", "finetune")
#: every ``train.model``: the pooled classifiers, the sequence heads and the ready-made checkpoint
MODELS = ("svm", "logreg", "random_forest", "hist_gb", "mlp", *SEQUENCE_MODELS, "checkpoint")


@dataclass(frozen=True)
class SequenceConfig:
    """``train.sequence``: the sequence heads and their training."""

    epochs: int = bounded(40, ge=1, le=10000)
    batch_size: int = bounded(16, ge=1, le=4096)
    learning_rate: float = bounded(1e-3, gt=0.0, le=1.0)
    weight_decay: float = bounded(1e-4, ge=0.0)
    patience: int = bounded(8, ge=1)  # epochs without a better validation UAR before stopping
    max_frames: int = bounded(400, ge=8)  # training crops (random, seeded); evaluation sees whole clips
    waveform_crop: int = bounded(16000, ge=2000)  # m5: training crops in samples (2 s at 8 kHz)
    hidden: int = bounded(128, ge=4, le=8192)
    dropout: float = bounded(0.2, ge=0.0, lt=1.0)
    layer_weights: bool = True  # multi-layer stores: learned softmax weights over layers (SUPERB)
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda | cuda:N

    def check(self, section: str) -> None:
        check_device_param(self.device, section)



@dataclass(frozen=True)
class FinetuneConfig:
    """``train.finetune``: the pretrained encoder fine-tuned end to end with a pooling head (``train.model: finetune``).

    It reads the ``waveform`` set's samples (``waveform.sample_rate: 16000`` for the encoders of this field);
    epochs, batch size, crops, the head's learning rate and early stopping are ``train.sequence``'s.
    """

    model: str = "facebook/wav2vec2-base"  # hub id | local dir | weights file, as embeddings.encoder.model
    init: Literal["pretrained", "random"] = "pretrained"  # random: the architecture untrained (tests, plumbing)
    learning_rate: float = bounded(5e-5, gt=0.0, le=1.0)  # the encoder's; the head's is train.sequence's
    freeze_feature_encoder: bool = True  # keep the convolutional front end fixed, as is usual


@dataclass(frozen=True)
class CheckpointConfig:
    """``train.checkpoint``: how a ready-made classifier's labels (the ``checkpoint`` set) become the corpus's.

    ``label_map`` maps each checkpoint label to a corpus label, or to null to leave it out; a checkpoint
    label spelled as a corpus label maps to it unless listed. Checked against both label sets in training.
    """

    label_map: dict[str, str | None] = dataclasses.field(default_factory=dict)


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
    """One early-fusion set: the pooled statistics of ``sets``, joined by utt_id.

    weighting: ``equal`` scales each set's columns, after standardisation, so that every set counts
    the same in the classifier's distance whatever its width; ``none`` leaves every column at unit variance.
    """

    sets: tuple[str, ...] = ()
    weighting: Literal["equal", "none"] = "equal"


@dataclass(frozen=True)
class TrainConfig:
    """``train``: which feature sets get a model, which model, and how it is chosen."""

    feature_sets: tuple[str, ...] = ("handcrafted",)
    # early fusion: name -> {sets: [...], weighting}; a fusion is built only when feature_sets lists it
    fusions: dict[str, FusionConfig] = dataclasses.field(default_factory=dict)
    model: Literal["svm", "logreg", "random_forest", "hist_gb", "mlp", "attentive", "cnn1d", "m5", "vector_cnn",
                   "finetune", "checkpoint"] = "svm"
    # a feature set's own model, in place of ``model`` for that set, e.g. {waveform: m5, checkpoint: checkpoint}
    models: dict[str, str] = dataclasses.field(default_factory=dict)
    # each speaker standardised with their own statistics (speaker; global where the corpus names no
    # speakers), or every utterance with the training statistics (global)
    normalize: Literal["global", "speaker"] = "speaker"
    # a grid per model over its own keys, e.g. {logreg: {C: [0.1, 1, 10]}}, scored on validation speakers;
    # the grid of train.model is searched, so switching models needs no edit of the grid
    search: dict[str, Any] = dataclasses.field(default_factory=dict)  # checked by search_grid
    # pooled models: once chosen, fit the candidate again on training + validation speakers (more voices
    # to learn from; test speakers stay unheard). Sequence heads keep the model stopped on validation.
    refit: bool = True
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
    finetune: FinetuneConfig = nested(FinetuneConfig)
    checkpoint: CheckpointConfig = nested(CheckpointConfig)

    def check(self, section: str) -> None:
        if not self.feature_sets:
            raise ParamsError(f"params key '{section}.feature_sets' is empty: list at least one feature set.")
        if len(set(self.feature_sets)) != len(self.feature_sets):
            raise ParamsError(f"params key '{section}.feature_sets' lists a feature set twice: {list(self.feature_sets)}.")
        for name, fusion in self.fusions.items():
            key = f"params key '{section}.fusions.{name}.sets'"
            if len(fusion.sets) < 2:
                raise ParamsError(f"{key} = {list(fusion.sets)}: a fusion joins at least two feature sets.")
            if len(set(fusion.sets)) != len(fusion.sets):
                raise ParamsError(f"{key} = {list(fusion.sets)} lists a set twice.")
            nested = [s for s in fusion.sets if s == name or s in self.fusions]
            if nested:
                raise ParamsError(f"{key} joins '{nested[0]}', a fusion: list the extracted sets it joins instead "
                                  f"(a fusion joins any number of them).")
        for name, model in self.models.items():
            if model not in MODELS:
                hint = difflib.get_close_matches(str(model), MODELS, n=1)
                raise ParamsError(f"params key '{section}.models.{name}' = {model!r} is not a model"
                                  + (f" (did you mean '{hint[0]}'?)" if hint else "")
                                  + f"; models: {', '.join(MODELS)}.")
            if name not in self.feature_sets:
                raise ParamsError(f"params key '{section}.models.{name}' gives a model to '{name}', which "
                                  f"'{section}.feature_sets' does not list. Add the set there, or remove the entry.")
        search_grid(self, section)  # refuses unknown keys and bad values now, not after training

    def for_set(self, feature_set: str) -> TrainConfig:
        """The config that trains ``feature_set``: ``models``' entry for it, if any, as ``model``."""
        model = self.models.get(feature_set)
        return self if model is None or model == self.model else dataclasses.replace(self, model=model)

    @property
    def is_sequence_model(self) -> bool:
        return self.model in SEQUENCE_MODELS

    @property
    def reads_vectors(self) -> bool:
        """A sequence head over each utterance's pooled vector (one step, the features along it)."""
        return self.model == "vector_cnn"

    @property
    def reads_frames(self) -> bool:
        """Whether the model reads a store's frames (else its pooled rows)."""
        return self.is_sequence_model and not self.reads_vectors

    def refits(self, n_validation: int) -> bool:
        """Whether a fold's chosen candidate is fitted again on training + validation speakers."""
        return self.refit and not self.is_sequence_model and self.model != "checkpoint" and n_validation > 0

    @property
    def model_key(self) -> str:
        """The params section of ``model``: ``sequence`` for the sequence heads, else the model's own."""
        return "sequence" if self.is_sequence_model else self.model

    def model_section(self) -> Any:
        return getattr(self, self.model_key)


#: the sections of train a search grid may name: each pooled model's, and the sequence heads'
MODEL_SECTIONS = ("svm", "logreg", "random_forest", "hist_gb", "mlp", "sequence")


def _model_grid(config: TrainConfig, model_key: str, section: str) -> list[dict[str, Any]]:
    """Every combination of ``train.search.<model_key>``, each a validated override of that model's section."""
    spec = config.search.get(model_key) or {}
    if not isinstance(spec, dict):
        raise ParamsError(f"params key '{section}.search.{model_key}' = {spec!r} is not a grid: give "
                          f"{{key: [values]}} of '{section}.{model_key}'.")
    model_section = getattr(config, model_key)
    fields = {f.name for f in dataclasses.fields(model_section)}
    where = f"{section}.search.{model_key}"
    for key, values in spec.items():
        if key not in fields:
            raise ParamsError(f"params key '{where}.{key}' is not a key of '{section}.{model_key}'; searchable: "
                              f"{', '.join(sorted(fields))}.")
        if not isinstance(values, (list, tuple)):
            raise ParamsError(f"params key '{where}.{key}' = {values!r} is not a list: give the values to try.")
        if not values:
            raise ParamsError(f"params key '{where}.{key}' is an empty list: give the values to try.")
    keys = sorted(spec)
    grid = []
    for values in itertools.product(*(spec[k] for k in keys)):
        # validated like the section itself: a bad value names the search key; kept as typed there (C: 1 -> 1.0)
        checked = from_mapping(type(model_section), {**dataclasses.asdict(model_section), **dict(zip(keys, values))},
                               section=where)
        grid.append({key: getattr(checked, key) for key in keys})
    return grid


def search_grid(config: TrainConfig, section: str = "train") -> list[dict[str, Any]]:
    """The candidates of ``train.model``: every combination of its grid in ``train.search``, each a validated
    override of the model's own section. Every model's grid is checked, searched or not.

    Returns ``[{}]`` when there is nothing to search.
    """
    for model_key in config.search:
        if model_key not in MODEL_SECTIONS:
            raise ParamsError(f"params key '{section}.search.{model_key}' is not a model: a grid is given per "
                              f"model, e.g. search: {{logreg: {{C: [0.1, 1]}}}}; models: {', '.join(MODEL_SECTIONS)}.")
    grids = {model_key: _model_grid(config, model_key, section) for model_key in config.search}
    return grids.get(config.model_key) or [{}]


def with_override(config: TrainConfig, override: dict[str, Any]) -> TrainConfig:
    """``config`` with one :func:`search_grid` candidate applied to the model's section."""
    if not override:
        return config
    section = config.model_section()
    updated = from_mapping(type(section), {**dataclasses.asdict(section), **override}, section="train.search")
    return dataclasses.replace(config, **{config.model_key: updated})


def needed_sets(config: TrainConfig) -> set[str]:
    """The sets a run builds: those ``feature_sets`` lists, and the sets its fusions join."""
    needed = set(config.feature_sets)
    for name in config.feature_sets:
        if name in config.fusions:
            needed |= set(config.fusions[name].sets)
    return needed


def check_feature_sets(config: TrainConfig, pipeline: Path = Path("dvc.yaml")) -> None:
    """Every name in ``train.feature_sets`` (and each fusion's parts) is a set the pipeline makes.

    The sets the pipeline extracts are the ``data/features/<set>`` outputs of its stages
    in ``pipeline``; the others are ``train.fusions``. Run by the split stage, which every
    ``train@`` stage follows, so a misspelled set is named here instead of DVC stopping on
    a missing folder.
    """
    import yaml

    try:
        stages = (yaml.safe_load(Path(pipeline).read_text(encoding="utf-8")) or {}).get("stages", {})
    except (OSError, yaml.YAMLError):
        return  # not run from a project: nothing to check against
    extracted = {Path(out).name for stage in stages.values() if isinstance(stage, dict)
                 for out in stage.get("outs", []) if isinstance(out, str) and out.startswith("data/features/")}
    known = extracted | set(config.fusions)
    for name, fusion in config.fusions.items():
        for part in fusion.sets:
            if part not in extracted:
                hint = difflib.get_close_matches(part, sorted(extracted), n=1)
                raise ParamsError(f"params key 'train.fusions.{name}.sets' joins '{part}', which no stage of "
                                  f"{pipeline} extracts." + (f" Did you mean '{hint[0]}'?" if hint else "")
                                  + f" Extracted sets: {', '.join(sorted(extracted))}.")
    for name in config.feature_sets:
        if name not in known:
            hint = difflib.get_close_matches(name, sorted(known), n=1)
            raise ParamsError(
                f"params key 'train.feature_sets' lists '{name}', which no stage of {pipeline} extracts and "
                f"train.fusions does not define." + (f" Did you mean '{hint[0]}'?" if hint else "")
                + f" Sets: {', '.join(sorted(known))}.")
