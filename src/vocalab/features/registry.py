"""The registry of extractors and the feature sets they write.

An extractor module under ``vocalab/features/`` makes itself known with one
decorator on its :class:`~vocalab.features.base.Extractor` subclass::

    @register_extractor(section="embeddings.vggish", config=VGGishExtractorConfig, outputs=("vggish", "logmel"))
    class VGGishExtractor(TorchExtractor): ...

The module's name is the extractor's name and its stage's (``extract_<name>``,
run by ``stages/extract.py --extractor <name>``). Everything that lists or builds
extractors reads this registry: the extraction stage (which imports only its own
module, so its DVC dependencies stay exact), ``vocalab predict`` (which rebuilds
the extractor that wrote a store from the store's recorded params), the params
check (which knows each extractor's section), the generator of ``dvc.yaml``
(:mod:`vocalab.pipeline`) and the tests.

Which modules are extractors, and their sections, is read from their source
(:mod:`.discovery`); only modules that carry the decorator are ever imported.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from vocalab.errors import ParamsError
from vocalab.features.base import Extractor
from vocalab.features.discovery import DECORATOR, PACKAGE, sections
from vocalab.params import from_mapping


@dataclass(frozen=True)
class ExtractorSpec:
    """What the registry knows of one extractor."""

    name: str  # its module under vocalab.features, and its stage: extract_<name>
    section: str  # its params section, e.g. "features" or "embeddings.vggish"
    config: type  # the config dataclass built from that section
    outputs: tuple[str, ...]  # the feature sets (stores) it writes, data/features/<output>
    build: Callable[[Any], Any]  # config -> extractor

    def from_params(self, params: Any) -> Extractor:
        """The extractor built from a params mapping (validated like params.yaml)."""
        return self.build(from_mapping(self.config, params, section=self.section))


_REGISTRY: dict[str, ExtractorSpec] = {}


def register_extractor(*, section: str, config: type, outputs: tuple[str, ...] | None = None) -> Callable[[type], type]:
    """Class decorator: register an extractor under its module's name (``outputs`` default to that name)."""

    def decorate(cls: type) -> type:
        name = cls.__module__.rsplit(".", 1)[-1]
        if not issubclass(cls, Extractor):
            raise TypeError(f"{cls.__qualname__} must subclass vocalab.features.base.Extractor")
        if getattr(cls, "name", name) != name:  # a class may restate its module's name; never another
            raise TypeError(f"{cls.__qualname__}.name = {cls.name!r}, but its module is {name!r}")
        cls.name = name
        _REGISTRY[name] = ExtractorSpec(name=name, section=section, config=config,
                                        outputs=tuple(outputs or (name,)), build=cls)
        return cls

    return decorate


def extractor(name: str) -> ExtractorSpec:
    """The extractor ``name``, importing only its own module."""
    if name not in sections():
        raise ParamsError(f"no extractor named {name!r}; registered: {', '.join(sorted(sections()))}. "
                          f"An extractor is a module in vocalab/features with @{DECORATOR}.")
    importlib.import_module(f"{PACKAGE}.{name}")
    return _REGISTRY[name]


def all_extractors() -> dict[str, ExtractorSpec]:
    """Every registered extractor (imports each extractor module, and no other)."""
    return {name: extractor(name) for name in sorted(sections())}


def feature_sets() -> dict[str, ExtractorSpec]:
    """Feature set name -> the extractor that writes it."""
    return {output: spec for spec in all_extractors().values() for output in spec.outputs}


def writer_of(feature_set: str) -> ExtractorSpec:
    """The extractor that writes ``feature_set``; a clear error for a set none writes."""
    sets = feature_sets()
    if feature_set not in sets:
        raise ParamsError(f"no extractor writes feature set {feature_set!r}; extracted sets: "
                          f"{', '.join(sorted(sets))} (fusions are declared under train.fusions).")
    return sets[feature_set]
