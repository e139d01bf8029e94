"""The registry of extractors and the feature sets they write.

An extractor module under ``vocalab/features/`` makes itself known with one
decorator on its extractor class::

    @register_extractor(section="embeddings.vggish", config=VGGishExtractorConfig, outputs=("vggish", "logmel"))
    class VGGishExtractor: ...

The module's name is the extractor's name and its stage's (``extract_<name>``,
run by ``stages/extract.py --extractor <name>``). Everything that lists or builds
extractors reads this registry: the extraction stage (which imports only its own
module, so its DVC dependencies stay exact), ``vocalab predict`` (which rebuilds
the extractor that wrote a store from the store's recorded params) and the tests.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable

from vocalab.errors import ParamsError

PACKAGE = "vocalab.features"


@dataclass(frozen=True)
class ExtractorSpec:
    """What the registry knows of one extractor."""

    name: str  # its module under vocalab.features, and its stage: extract_<name>
    section: str  # its params section, e.g. "features" or "embeddings.vggish"
    config: type  # the config dataclass built from that section
    outputs: tuple[str, ...]  # the feature sets (stores) it writes, data/features/<output>
    build: Callable[[Any], Any]  # config -> extractor

    def from_params(self, params: Any) -> Any:
        """The extractor built from a params mapping (validated like params.yaml)."""
        from vocalab.params import from_mapping

        return self.build(from_mapping(self.config, params, section=self.section))


_REGISTRY: dict[str, ExtractorSpec] = {}


def register_extractor(*, section: str, config: type, outputs: tuple[str, ...] | None = None) -> Callable[[type], type]:
    """Class decorator: register an extractor under its module's name (``outputs`` default to that name)."""

    def decorate(cls: type) -> type:
        name = cls.__module__.rsplit(".", 1)[-1]
        _REGISTRY[name] = ExtractorSpec(name=name, section=section, config=config,
                                        outputs=tuple(outputs or (name,)), build=cls)
        return cls

    return decorate


def extractor(name: str) -> ExtractorSpec:
    """The extractor ``name``, importing only its own module."""
    module = f"{PACKAGE}.{name}"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
    if name not in _REGISTRY:
        raise ParamsError(f"no extractor named {name!r}; registered: {', '.join(sorted(all_extractors()))}. "
                          f"An extractor is a module in vocalab/features with @register_extractor.")
    return _REGISTRY[name]


def all_extractors() -> dict[str, ExtractorSpec]:
    """Every registered extractor (imports each module of the features package)."""
    package = importlib.import_module(PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{PACKAGE}.{module.name}")
    return dict(sorted(_REGISTRY.items()))


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
