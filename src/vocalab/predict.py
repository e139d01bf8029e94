"""Prediction on new audio with a trained model and the exact extractor it was trained on.

The extractor is rebuilt from the parameters recorded in the model's feature
store meta (``model.json``), not from the current params.yaml, so a model keeps
predicting as it was evaluated even after the params move on. For
``speaker_kfold`` models the fold models' probabilities are averaged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from vocalab.audio import VIDEO_EXTENSIONS
from vocalab.datasets.base import AUDIO_EXTENSIONS
from vocalab.errors import VocalabError
from vocalab.evaluation import argmax_labels
from vocalab.features.extraction import extract_files
from vocalab.features.fusion import join_pooled
from vocalab.features.store import pool_layers
from vocalab.models.normalize import speaker_standardise, speaker_standardise_frames
from vocalab.params import from_mapping
from vocalab.training import SplitData, load_model


def audio_files(inputs: Sequence[str | Path]) -> list[Path]:
    """Files given, and the audio files under folders given (sorted); unknown inputs are errors."""
    files: list[Path] = []
    suffixes = AUDIO_EXTENSIONS | VIDEO_EXTENSIONS
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise VocalabError(f"folder '{item}' holds no audio files ({', '.join(sorted(suffixes))}).")
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise VocalabError(f"'{item}' does not exist. Give an audio file or a folder of them.")
    return files


def extractor_for(meta: dict[str, Any]) -> tuple[Any, str]:
    """The extractor (and its output name) that wrote a store with this ``meta``."""
    name, params = meta["feature_set"], dict(meta.get("params") or {})
    if name == "handcrafted":
        from vocalab.features.handcrafted import HandcraftedConfig, HandcraftedExtractor

        return HandcraftedExtractor(from_mapping(HandcraftedConfig, params, section="features")), name
    if name == "wav2vec2":
        from vocalab.features.wav2vec2 import Wav2Vec2Extractor, Wav2Vec2ExtractorConfig

        return Wav2Vec2Extractor(from_mapping(Wav2Vec2ExtractorConfig, params,
                                              section="embeddings.wav2vec2")), name
    if name in ("vggish", "logmel"):
        from vocalab.features.vggish import VGGishExtractor, VGGishExtractorConfig

        if name == "logmel":  # the log-mel front end does not depend on the network's weights
            params = {"frames_dtype": params.get("frames_dtype", "float32"), "init": "random"}
        return VGGishExtractor(from_mapping(VGGishExtractorConfig, params, section="embeddings.vggish")), name
    raise VocalabError(f"model.json names feature set {name!r}, which this version cannot extract.")


def _features(meta: dict[str, Any], paths: list[Path], layer_pooling: str, sequences: bool,
              cache: dict[str, Any]) -> Any:
    """Pooled rows ``[shape=(n, 2 * dim)]`` or frame sequences of ``paths``, as the store held them."""
    if meta.get("components"):
        parts = [_features(meta["components"][k], paths, layer_pooling, False, cache) for k in ("a", "b")]
        return join_pooled([p.astype(np.float32).astype(np.float64) for p in parts])
    extractor, output = extractor_for(meta)
    key = repr((meta["feature_set"], meta.get("params")))
    if key not in cache:
        cache[key] = extract_files(extractor, [str(p) for p in paths])[output]
    frames, lengths, pooled = cache[key]
    empty = [str(p) for p, n in zip(paths, lengths) if n == 0]
    if empty:
        raise VocalabError(f"{meta['feature_set']} gives no features for {empty[0]}"
                           f"{f' and {len(empty) - 1} more' if len(empty) > 1 else ''} "
                           f"(too short for this extractor). Give longer clips.")
    if sequences:
        return [np.asarray(f, dtype=np.float32) for f in np.split(frames, np.cumsum(lengths)[:-1])]
    return pool_layers(pooled, meta, layer_pooling)


def predict(inputs: Sequence[str | Path], model_dir: str | Path) -> pd.DataFrame:
    """``file, label, p_<class>...`` for every audio file in ``inputs``.

    With ``train.normalize: speaker`` the given files are standardised together,
    as the utterances of one speaker: give several files of the same speaker.
    """
    models, info = load_model(Path(model_dir))
    paths = audio_files(inputs)
    labels = [str(c) for c in info["classes"]]
    train = info["train"]
    is_sequence = info["kind"] == "sequence"
    values = _features(info["features"], paths, train.get("layer_pooling", "concat"), is_sequence, {})
    speakers = ["given files"] * len(paths)
    if train.get("normalize") == "speaker":
        values = speaker_standardise_frames(values, speakers) if is_sequence else speaker_standardise(values, speakers)
    data = SplitData(np.array([""] * len(paths)), [str(p) for p in paths], speakers,
                     features=None if is_sequence else values, sequences=values if is_sequence else None)
    proba = np.mean([model.predict_proba(data) for _, model in models], axis=0)
    table = pd.DataFrame({"file": [str(p) for p in paths], "label": argmax_labels(proba, labels)})
    for k, label in enumerate(labels):
        table[f"p_{label}"] = np.round(proba[:, k], 4)
    return table
