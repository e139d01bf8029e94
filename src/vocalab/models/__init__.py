"""Classifiers and the ``train`` params section."""

from vocalab.models.classifiers import TrainConfig, build_classifier

__all__ = ["TrainConfig", "build_classifier"]
