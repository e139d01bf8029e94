"""Classifiers on frame sequences (PyTorch): small heads that train on CPU in seconds.

* ``attentive``: attentive statistics pooling (Okabe et al., 2018): a learned
  attention over frames gives a weighted mean and standard deviation, then a
  small MLP classifies them.
* ``m5``: the raw-waveform M5 of Dai et al. (2017), for the ``waveform`` set's samples,
  trained on random crops of ``waveform_crop`` samples and evaluated on whole clips.
* ``vector_cnn``: the classic notebook's 1-D CNN over one pooled vector per clip (the
  ``notebook180`` set's 180 values, or any pooled set's), convolving along the features.
* ``finetune``: a pretrained speech encoder fine-tuned end to end on the ``waveform`` set's
  samples, with a mean-pooling head (:mod:`vocalab.models.finetune`).
* ``cnn1d``: the 1-D CNN of the RAVDESS/TESS recipe (conv 128 -> conv 64, batch
  norm, max-pool, dropout, global average, dense 64) applied along time, with the
  feature dimensions as channels.

A store of several wav2vec2 layers first goes through a learned softmax-weighted
sum of its layers, as in SUPERB. Frames are standardised inside the module (its
``mean``/``std`` buffers), so a saved state dict is the whole model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from vocalab.metrics import uar
from vocalab.models.config import SequenceConfig


class LayerWeights(nn.Module):
    """Softmax-weighted sum of ``n_layers`` stacked along the feature axis."""

    def __init__(self, n_layers: int, layer_dim: int) -> None:
        super().__init__()
        self.n_layers, self.layer_dim = n_layers, layer_dim
        self.logits = nn.Parameter(torch.zeros(n_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stacked = x.reshape(*x.shape[:-1], self.n_layers, self.layer_dim)
        return (stacked * torch.softmax(self.logits, 0)[:, None]).sum(-2)


class AttentiveStatsHead(nn.Module):
    def __init__(self, dim: int, n_classes: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU())
        self.attention = nn.Sequential(nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.classify = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, hidden), nn.ReLU(),
                                      nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.project(x)  # (B, T, H)
        scores = self.attention(h).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1).unsqueeze(-1)
        mean = (weights * h).sum(1)
        var = (weights * (h - mean.unsqueeze(1)) ** 2).sum(1)
        return self.classify(torch.cat([mean, torch.sqrt(var.clamp_min(1e-6))], dim=1))


class CNN1DHead(nn.Module):
    def __init__(self, dim: int, n_classes: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv1d(dim, 128, 5, padding=2), nn.BatchNorm1d(128), nn.ReLU(), nn.MaxPool1d(2, ceil_mode=True),
            nn.Dropout(dropout),
            nn.Conv1d(128, 64, 5, padding=2), nn.BatchNorm1d(64), nn.ReLU(), nn.MaxPool1d(2, ceil_mode=True),
            nn.Dropout(dropout),
        )
        self.classify = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.convs((x * mask.unsqueeze(-1)).transpose(1, 2))  # (B, 64, ceil(T / 4))
        keep = mask.float().unsqueeze(1)
        for _ in range(2):  # the mask follows the two poolings
            keep = nn.functional.max_pool1d(keep, 2, ceil_mode=True)
        pooled = (h * keep).sum(-1) / keep.sum(-1).clamp_min(1.0)
        return self.classify(pooled)


class M5Head(nn.Module):
    """M5 (Dai et al., ICASSP 2017), a raw-waveform CNN: a 80-sample convolution of stride 4, then three
    3-tap convolutions (128, 128, 256, 512 channels), each with batch norm and a max-pool of 4, then the
    global average over the real samples and a linear layer. ``dim`` is the input's channels (1 for a
    waveform store)."""

    SHORTEST = 80 + 4 * (4 ** 4 - 1)  # samples that survive the convolution and the four poolings

    def __init__(self, dim: int, n_classes: int, hidden: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(dim, 128, 80, stride=4), nn.BatchNorm1d(128), nn.ReLU(), nn.MaxPool1d(4)]
        for before, after in ((128, 128), (128, 256), (256, 512)):
            layers += [nn.Conv1d(before, after, 3, padding=1), nn.BatchNorm1d(after), nn.ReLU(), nn.MaxPool1d(4)]
        self.convs = nn.Sequential(*layers)
        self.classify = nn.Sequential(nn.Dropout(dropout), nn.Linear(512, n_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if x.shape[1] < self.SHORTEST:  # a clip shorter than the network's reach: zeros after it, masked
            pad = self.SHORTEST - x.shape[1]
            x = nn.functional.pad(x, (0, 0, 0, pad))
            mask = nn.functional.pad(mask, (0, pad))
        h = self.convs((x * mask.unsqueeze(-1)).transpose(1, 2))
        keep = nn.functional.max_pool1d(mask.float().unsqueeze(1), 80, stride=4)
        for _ in range(4):  # the mask follows the poolings
            keep = nn.functional.max_pool1d(keep, 4)
        pooled = (h * keep).sum(-1) / keep.sum(-1).clamp_min(1.0)
        return self.classify(pooled)


class VectorCNNHead(nn.Module):
    """The classic notebook's 1-D CNN over a clip's pooled vector: the ``dim`` features are the length, one
    channel. Three 5-tap convolutions (256, 128, 64 channels), each with ReLU and a max-pool of 5, stride 2
    (dropout after the second), then flatten, a dense layer and the classes. Input: ``(B, 1, dim)``."""

    def __init__(self, dim: int, n_classes: int, hidden: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        length = dim
        for k, (before, after) in enumerate(((1, 256), (256, 128), (128, 64))):
            layers += [nn.Conv1d(before, after, 5, padding=2), nn.ReLU(), nn.MaxPool1d(5, stride=2, padding=2)]
            if k == 1:
                layers.append(nn.Dropout(dropout))
            length = (length - 1) // 2 + 1
        self.convs = nn.Sequential(*layers)
        self.classify = nn.Sequential(nn.Flatten(), nn.Linear(64 * length, hidden), nn.ReLU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, n_classes))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.classify(self.convs(x[:, :1, :]))  # one step: the utterance's vector


def _finetune_head(dim: int, n_classes: int, hidden: int, dropout: float, **encoder: Any) -> nn.Module:
    from vocalab.models.finetune import FinetuneHead

    return FinetuneHead(dim, n_classes, hidden, dropout, **encoder)


HEADS = {"attentive": AttentiveStatsHead, "cnn1d": CNN1DHead, "m5": M5Head, "vector_cnn": VectorCNNHead,
         "finetune": _finetune_head}


class SequenceClassifier(nn.Module):
    """Standardise frames, combine layers, classify: ``(B, T, dim) -> (B, n_classes)`` logits."""

    def __init__(self, *, kind: Literal["attentive", "cnn1d", "m5", "vector_cnn", "finetune"], dim: int,
                 n_classes: int, hidden: int, dropout: float, n_layers: int = 1,
                 encoder: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.layers = LayerWeights(n_layers, dim // n_layers) if n_layers > 1 else None
        self.head = HEADS[kind](dim // n_layers, n_classes, hidden, dropout, **(encoder or {}))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        if self.layers is not None:
            x = self.layers(x)
        return self.head(x, mask)

    def parameter_groups(self, learning_rate: float) -> list[dict[str, Any]]:
        """The optimiser's groups: the head's own (a pretrained encoder learns at its own rate), else one."""
        groups = getattr(self.head, "parameter_groups", None)
        if groups is None:
            return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": learning_rate}]
        head = groups(learning_rate)
        own = {id(p) for group in head for p in group["params"]}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in own]
        return head + ([{"params": rest, "lr": learning_rate}] if rest else [])

    def layer_weights(self) -> list[float] | None:
        if self.layers is None:
            return None
        return [round(float(w), 4) for w in torch.softmax(self.layers.logits.detach().cpu(), 0)]


def architecture(config: SequenceConfig, kind: str, *, dim: int, n_classes: int, n_layers: int,
                 encoder: dict[str, Any] | None = None) -> dict[str, Any]:
    """What :func:`build` needs, as JSON for ``model.json`` (a fine-tuned encoder's config included)."""
    arch = {"kind": kind, "dim": dim, "n_classes": n_classes, "hidden": config.hidden, "dropout": config.dropout,
            "n_layers": n_layers if (n_layers > 1 and config.layer_weights) else 1}
    if encoder is not None:
        arch["encoder"] = encoder
    return arch


def build(arch: dict[str, Any]) -> SequenceClassifier:
    return SequenceClassifier(kind=arch["kind"], dim=arch["dim"], n_classes=arch["n_classes"],
                              hidden=arch["hidden"], dropout=arch["dropout"], n_layers=arch["n_layers"],
                              encoder=arch.get("encoder"))


def pad_batch(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-padded ``(B, T_max, dim)`` float32 batch and its ``(B, T_max)`` mask of real frames."""
    t_max = max(len(s) for s in sequences)
    batch = np.zeros((len(sequences), t_max, sequences[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(sequences), t_max), dtype=bool)
    for i, s in enumerate(sequences):
        batch[i, :len(s)] = s
        mask[i, :len(s)] = True
    return torch.from_numpy(batch), torch.from_numpy(mask)


@torch.no_grad()
def predict_proba(model: SequenceClassifier, sequences: list[np.ndarray], device: torch.device) -> np.ndarray:
    """Class probabilities ``[shape=(n, n_classes)]``, one whole utterance at a time (no padding)."""
    model.eval()
    out = []
    for s in sequences:
        x, mask = pad_batch([s])
        out.append(torch.softmax(model(x.to(device), mask.to(device)), dim=1).cpu().numpy()[0])
    return np.asarray(out, dtype=np.float64).reshape(len(sequences), -1)


def crop(sequence: np.ndarray, max_frames: int, rng: np.random.Generator) -> np.ndarray:
    if len(sequence) <= max_frames:
        return sequence
    start = int(rng.integers(0, len(sequence) - max_frames + 1))
    return sequence[start:start + max_frames]


def fit(model: SequenceClassifier, train: tuple[list[np.ndarray], np.ndarray],
        validation: tuple[list[np.ndarray], np.ndarray] | None, config: SequenceConfig, *, seed: int,
        device: torch.device) -> tuple[SequenceClassifier, list[dict[str, Any]], int]:
    """Train with Adam and class-balanced cross-entropy; keep the epoch with the best validation score.

    ``train``/``validation`` are ``(sequences, class indices)``; a validation epoch is
    rated by UAR. Without validation utterances every epoch runs and the last is kept.

    Returns the model (best state loaded), the curve (one row per epoch) and the best epoch.
    """
    torch.manual_seed(seed)
    np.random.seed(seed)  # transformers draws SpecAugment's masks (finetune) from numpy's global generator
    rng = np.random.default_rng(seed)
    sequences, targets = train
    counts = np.bincount(targets, minlength=model.head.classify[-1].out_features).astype(np.float64)
    weights = torch.tensor(len(targets) / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=weights.to(device))
    model.to(device)
    optimiser = torch.optim.Adam(model.parameter_groups(config.learning_rate), lr=config.learning_rate,
                                 weight_decay=config.weight_decay)
    best_score, best_epoch, best_state, curve = -np.inf, 0, None, []
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = rng.permutation(len(sequences))
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            idx = order[start:start + config.batch_size]
            if len(idx) < 2 and len(order) > 1:
                continue  # batch norm needs two examples; the next epoch's order covers it
            x, mask = pad_batch([crop(sequences[i], config.max_frames, rng) for i in idx])
            y = torch.from_numpy(targets[idx]).long().to(device)
            optimiser.zero_grad()
            loss = loss_fn(model(x.to(device), mask.to(device)), y)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
        row: dict[str, Any] = {"epoch": epoch, "train_loss": round(total / len(order), 5)}
        if validation is not None and len(validation[1]):
            proba = predict_proba(model, validation[0], device)
            val_loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(proba)), validation[1]], 1e-12, None))))
            row.update(validation_loss=round(val_loss, 5), validation_uar=round(uar(validation[1], proba.argmax(axis=1)), 5))
            if row["validation_uar"] > best_score:
                best_score, best_epoch = row["validation_uar"], epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        curve.append(row)
        if validation is not None and len(validation[1]) and epoch - best_epoch >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        best_epoch = len(curve)
    return model, curve, best_epoch
