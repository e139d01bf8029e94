from dataclasses import dataclass
from typing import Literal

import pytest

from vocalab.datasets.config import DataConfig
from vocalab.errors import ParamsError
from vocalab.features.handcrafted import HandcraftedConfig
from vocalab.models.config import TrainConfig
from vocalab.params import bounded, from_mapping, load_params, load_section, nested
from vocalab.splits import SplitConfig
from vocalab.vad import VADConfig


@dataclass(frozen=True)
class Inner:
    depth: int = bounded(3, ge=1)


@dataclass(frozen=True)
class Outer:
    rate: float = bounded(0.5, gt=0.0, lt=1.0)
    count: int = bounded(2, ge=1, le=10)
    mode: Literal["fast", "slow"] = "fast"
    name: str | None = None
    items: tuple[str, ...] = ("a",)
    inner: Inner = nested(Inner)


def test_defaults_fill_missing_keys():
    config = from_mapping(Outer, {"count": 4}, section="outer")
    assert config == Outer(count=4)


def test_unknown_key_is_named_with_a_suggestion():
    with pytest.raises(ParamsError, match=r"unknown params key 'outer\.cout'.*Did you mean 'outer\.count'"):
        from_mapping(Outer, {"cout": 3}, section="outer")


def test_out_of_range_names_key_value_and_range():
    with pytest.raises(ParamsError, match=r"'outer\.count' = 11 is out of range: it must be >= 1 and <= 10"):
        from_mapping(Outer, {"count": 11}, section="outer")
    with pytest.raises(ParamsError, match=r"'outer\.rate' = 1\.0 is out of range"):
        from_mapping(Outer, {"rate": 1.0}, section="outer")


def test_wrong_types_are_refused():
    with pytest.raises(ParamsError, match=r"'outer\.count' = 'three'.*expected an integer"):
        from_mapping(Outer, {"count": "three"}, section="outer")
    with pytest.raises(ParamsError, match=r"'outer\.count' = True"):
        from_mapping(Outer, {"count": True}, section="outer")
    with pytest.raises(ParamsError, match=r"'outer\.items'.*YAML list"):
        from_mapping(Outer, {"items": "a"}, section="outer")
    with pytest.raises(ParamsError, match=r"section 'outer' must be a mapping"):
        from_mapping(Outer, [1, 2], section="outer")


def test_choice_and_nested_sections():
    with pytest.raises(ParamsError, match=r"'outer\.mode' = 'fats' is not allowed.*Did you mean 'fast'"):
        from_mapping(Outer, {"mode": "fats"}, section="outer")
    with pytest.raises(ParamsError, match=r"'outer\.inner\.depth' = 0 is out of range"):
        from_mapping(Outer, {"inner": {"depth": 0}}, section="outer")
    with pytest.raises(ParamsError, match=r"unknown params key 'outer\.inner\.width'"):
        from_mapping(Outer, {"inner": {"width": 1}}, section="outer")


def test_integral_float_is_accepted_as_int():
    assert from_mapping(Outer, {"count": 4.0}, section="outer").count == 4


def test_handcrafted_cross_checks():
    with pytest.raises(ParamsError, match=r"features\.n_mfcc' = 40 exceeds 'features\.n_mels' = 20"):
        from_mapping(HandcraftedConfig, {"n_mfcc": 40, "n_mels": 20}, section="features")
    with pytest.raises(ParamsError, match=r"features\.fmax' = 9000\.0 exceeds the Nyquist frequency"):
        from_mapping(HandcraftedConfig, {"fmax": 9000}, section="features")
    with pytest.raises(ParamsError, match=r"features\.hop_length' = 4096 is larger than"):
        from_mapping(HandcraftedConfig, {"hop_length": 4096}, section="features")


def test_split_fractions_must_leave_training_data():
    with pytest.raises(ParamsError, match=r"leave nothing to train on"):
        from_mapping(SplitConfig, {"test_fraction": 0.6, "validation_fraction": 0.4}, section="split")


def test_local_source_needs_an_existing_path(tmp_path):
    # download depends on the content of data.path, so DVC needs a folder there whatever the source
    with pytest.raises(ParamsError, match=r"'data\.path' is empty: 'download' depends on the content"):
        from_mapping(DataConfig, {"source": "local", "path": None}, section="data")
    with pytest.raises(ParamsError, match=r"'data\.path' = '~/corpora/x' starts with '~', which DVC does not expand"):
        from_mapping(DataConfig, {"path": "~/corpora/x"}, section="data")
    with pytest.raises(ParamsError, match=r"'data\.path' = .* is not a folder"):
        from_mapping(DataConfig, {"source": "local", "path": str(tmp_path / "nope")}, section="data")
    config = from_mapping(DataConfig, {"source": "local", "path": str(tmp_path)}, section="data")
    assert config.dataset == "ravdess"


def test_feature_set_lists_are_checked():
    from vocalab.features.registry import writer_of

    with pytest.raises(ParamsError,
                       match=r"no extractor writes feature set 'mfcc'; extracted sets: checkpoint, compare, egemaps, encoder, handcrafted"):
        writer_of("mfcc")
    assert writer_of("logmel").name == "vggish" and writer_of("handcrafted").section == "features"
    with pytest.raises(ParamsError, match=r"'train\.fusions\.x\.sets' joins 'x', a fusion"):
        from_mapping(TrainConfig, {"feature_sets": ["x"], "fusions": {"x": {"sets": ["x", "handcrafted"]}}},
                     section="train")
    with pytest.raises(ParamsError, match=r"lists a feature set twice"):
        from_mapping(TrainConfig, {"feature_sets": ["handcrafted", "handcrafted"]}, section="train")


def test_params_file_errors(tmp_path):
    with pytest.raises(ParamsError, match=r"params file .* not found"):
        load_params(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("features: [unclosed\n")
    with pytest.raises(ParamsError, match=r"is not valid YAML"):
        load_params(bad)
    partial = tmp_path / "partial.yaml"
    partial.write_text("data: {}\n")
    with pytest.raises(ParamsError, match=r"section 'features' is missing"):
        load_section(HandcraftedConfig, "features", partial)


def test_project_params_file_is_valid():
    from tests.conftest import REPO_ROOT
    from vocalab.features.registry import all_extractors

    sections = [(DataConfig, "data"), (SplitConfig, "split"), (TrainConfig, "train"), (VADConfig, "vad")]
    sections += [(spec.config, spec.section) for spec in all_extractors().values()]
    for cls, section in sections:
        config = load_section(cls, section, REPO_ROOT / "params.yaml")
        if section != "train":  # train.feature_sets lists this project's sets, not a default
            assert config == cls(), f"params.yaml's '{section}' differs from the documented defaults"
    assert {"features", "embeddings.wav2vec2", "embeddings.vggish"} <= {section for _, section in sections}


def test_every_params_key_a_stage_reads_reruns_it():
    import dataclasses

    import yaml

    from tests.conftest import REPO_ROOT
    from vocalab.features.registry import all_extractors

    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    # feature_sets and fusions choose which train@ stages exist, not what one of them does
    keys = {f"train.{f.name}" for f in dataclasses.fields(TrainConfig)} - {"train.feature_sets", "train.fusions"}
    assert set(stages["train"]["params"]) == keys
    for name, spec in all_extractors().items():  # its section; which sets are used; vad if it reads regions
        regions = ["vad"] if spec.build.reads_speech_region else []
        assert stages[f"extract_{name}"]["params"] == [spec.section, "train.feature_sets", "train.fusions",
                                                       *regions], name
    assert stages["vad"]["params"] == ["vad"]


def test_a_misspelled_section_is_named_with_a_suggestion(tmp_path):
    from tests.conftest import REPO_ROOT

    text = (REPO_ROOT / "params.yaml").read_text()
    bad = tmp_path / "params.yaml"
    bad.write_text(text.replace("\nfeatures:", "\nfeaturs:", 1))
    with pytest.raises(ParamsError, match=r"unknown params section 'featurs'.*Did you mean 'features'"):
        load_section(TrainConfig, "train", bad)
    bad.write_text(text.replace("\n  wav2vec2:", "\n  wav2vc2:", 1))
    with pytest.raises(ParamsError, match=r"unknown params section 'embeddings\.wav2vc2'.*'embeddings\.wav2vec2'"):
        load_section(TrainConfig, "train", bad)


def test_the_known_sections_are_those_the_stages_read():
    """The sections read from the extractors' source are those their imported registry declares."""
    from vocalab.features.registry import all_extractors
    from vocalab.params import known_sections

    sections = {"data", "split", "vad", "train", "parallel"} | {spec.section for spec in all_extractors().values()}
    known = known_sections()
    assert {s.split(".")[0] for s in sections} == set(known)
    assert {top: tuple(sorted(s.split(".")[1] for s in sections if s.startswith(f"{top}."))) for top in known
            if known[top]} == {top: tuple(sorted(subs)) for top, subs in known.items() if subs}
    assert known["embeddings"] is not None and {"wav2vec2", "vggish"} <= set(known["embeddings"])


def test_a_bad_worker_count_is_one_line_naming_the_variable(monkeypatch):
    from vocalab.parallel import default_workers

    for value in ("abc", "0", "-2", "1.5"):
        monkeypatch.setenv("VOCALAB_WORKERS", value)
        with pytest.raises(ParamsError, match=r"VOCALAB_WORKERS=.* is not a positive integer.*unset it"):
            default_workers()
    monkeypatch.setenv("VOCALAB_WORKERS", "3")
    assert default_workers() == 3


def test_the_parallel_section():
    from vocalab.parallel import ParallelConfig

    assert from_mapping(ParallelConfig, None, section="parallel") == ParallelConfig("local", None)
    with pytest.raises(ParamsError, match=r"'parallel\.backend' = 'ray'"):
        from_mapping(ParallelConfig, {"backend": "ray"}, section="parallel")
    with pytest.raises(ParamsError, match=r"'parallel\.scheduler' is set but 'parallel\.backend' is 'local'"):
        from_mapping(ParallelConfig, {"scheduler": "tcp://10.0.0.5:8786"}, section="parallel")
