"""Every corpus layout on generated files named as the real corpora name them.

Each test writes a small tree, scans it through the manifest builder (every file
is decoded) and checks speakers, labels, extras and the rejects with their reasons.
"""

import pandas as pd
import pytest

from tests.conftest import speech_like, write_wav
from vocalab.datasets.config import DataConfig
from vocalab.datasets.layouts import scan_corpus
from vocalab.datasets.folders import FoldersConfig
from vocalab.errors import ParamsError
from vocalab.manifest_build import build_manifest
from vocalab.params import from_mapping


def tree(root, names):
    for i, name in enumerate(names):
        write_wav(root / name, speech_like(i, duration_s=0.4), 16000)
    return root


def manifest_of(root, layout, **kwargs):
    candidates = scan_corpus(root, layout=layout, dataset=layout, **kwargs)
    manifest, rejects = build_manifest(candidates, dataset=layout, progress=False)
    return manifest.set_index("utt_id"), rejects


def test_crema_d(tmp_path):
    root = tree(tmp_path / "raw", ["AudioWAV/1001_DFA_ANG_XX.wav", "AudioWAV/1001_IEO_HAP_HI.wav",
                                   "AudioWAV/1091_TSI_SAD_LO.wav", "AudioWAV/1002_DFA_BOR_XX.wav",
                                   "AudioWAV/1002_DFA_ANG.wav"])
    manifest, rejects = manifest_of(root, "crema_d")
    row = manifest.loc["crema_d_1001_IEO_HAP_HI"]
    assert (row.speaker, row.label, row.intensity, row.statement) == ("crema_d_1001", "happy", "high",
                                                                       "It's eleven o'clock")
    assert manifest.loc["crema_d_1091_TSI_SAD_LO"].intensity == "low"
    assert manifest.loc["crema_d_1001_DFA_ANG_XX"].intensity == "unspecified"
    reasons = dict(zip(rejects["path"].map(lambda p: p.split("/")[-1]), rejects["detail"]))
    assert "emotion code BOR" in reasons["1002_DFA_BOR_XX.wav"]
    assert "CREMA-D convention" in reasons["1002_DFA_ANG.wav"]


def test_tess_two_speakers(tmp_path):
    root = tree(tmp_path / "raw", ["OAF_angry/OAF_back_angry.wav", "YAF_angry/YAF_back_angry.wav",
                                   "OAF_Pleasant_surprise/OAF_bath_ps.wav", "YAF_fear/YAF_chair_fear.wav",
                                   "YAF_fear/YAF_chair_bored.wav"])
    manifest, rejects = manifest_of(root, "tess")
    assert set(manifest["speaker"]) == {"tess_OAF", "tess_YAF"}
    row = manifest.loc["tess_OAF_bath_ps"]
    assert (row.label, row.word, row.age_group, row.gender) == ("pleasant_surprise", "bath", "older", "female")
    assert manifest.loc["tess_YAF_back_angry"].label == "angry"  # not the same utt_id as OAF's
    assert "TESS emotion 'bored'" in rejects["detail"].iloc[0]


def test_emodb(tmp_path):
    root = tree(tmp_path / "raw", ["wav/03a01Fa.wav", "wav/08b02Wc.wav", "wav/16a05Lb.wav", "wav/04a01Fa.wav",
                                   "wav/03a01Xa.wav"])
    manifest, rejects = manifest_of(root, "emodb")
    assert manifest.loc["emodb_03a01Fa"][["speaker", "label", "gender", "text"]].tolist() == [
        "emodb_03", "happiness", "male", "a01"]
    assert manifest.loc["emodb_08b02Wc"][["label", "gender", "version"]].tolist() == ["anger", "female", "c"]
    assert manifest.loc["emodb_16a05Lb"].label == "boredom"
    assert sorted(rejects["detail"].str.extract(r"(speaker 04|EmoDB convention)")[0]) == [
        "EmoDB convention", "speaker 04"]


def test_savee_in_speaker_folders_and_flattened(tmp_path):
    root = tree(tmp_path / "raw", ["AudioData/DC/a01.wav", "AudioData/JE/a01.wav", "AudioData/KL/sa15.wav",
                                   "AudioData/JK/su03.wav", "flat/DC_n02.wav", "AudioData/XY/a01.wav",
                                   "AudioData/DC/info.wav"])
    manifest, rejects = manifest_of(root, "savee")
    assert manifest.loc["savee_DC_a01"].label == manifest.loc["savee_JE_a01"].label == "anger"
    assert manifest.loc["savee_KL_sa15"][["speaker", "label", "sentence"]].tolist() == ["savee_KL", "sadness", 15]
    assert manifest.loc["savee_JK_su03"].label == "surprise"
    assert manifest.loc["savee_DC_n02"].speaker == "savee_DC"
    assert len(rejects) == 2 and any("speaker 'XY'" in r for r in rejects["detail"])


def test_mesd_voice_type_is_the_speaker_group(tmp_path):
    root = tree(tmp_path / "raw", ["Anger_C_A_abajo.wav", "Sadness_F_B_mesa.wav", "Neutral_M_A_abajo.wav",
                                   "Boredom_M_A_abajo.wav"])
    manifest, rejects = manifest_of(root, "mesd")
    assert manifest.loc["mesd_Anger_C_A_abajo"][["speaker", "label", "word"]].tolist() == [
        "mesd_child", "anger", "abajo"]
    assert manifest.loc["mesd_Sadness_F_B_mesa"][["speaker", "word_corpus"]].tolist() == ["mesd_female", "B"]
    assert "MESD emotion 'Boredom'" in rejects["detail"].iloc[0]


def test_folders_with_nested_task_folders(tmp_path):
    root = tree(tmp_path / "raw", [
        "vowels/A/hc/AVPEPUDEAC0001a1.wav", "vowels/A/pd/AVPEPUDEA0001a1.wav",
        "read-text/hc/AVPEPUDEAC0001_readtext.wav", "read-text/pd/AVPEPUDEA0001_readtext.wav",
        "loose.wav", "read-text/pd/notes-123.wav",
    ])
    config = DataConfig(folders=FoldersConfig(speaker_regex=r"^(?P<speaker>AVPEPUDEAC?\d{4})"))
    manifest, rejects = manifest_of(root, "folders", config=config)
    assert set(manifest["label"]) == {"hc", "pd"}
    row = manifest.loc["folders_vowels__A__hc__AVPEPUDEAC0001a1"]
    assert (row.speaker, row.task) == ("folders_AVPEPUDEAC0001", "vowels/A")
    # the same speaker across tasks
    assert manifest.loc["folders_read-text__hc__AVPEPUDEAC0001_readtext"].speaker == row.speaker
    reasons = sorted(rejects["detail"])
    assert "not inside a class folder" in reasons[0] and "does not match 'notes-123'" in reasons[1]


def test_folders_default_regex_takes_the_name_up_to_the_first_separator(tmp_path):
    root = tree(tmp_path / "raw", ["angry/spk1_001.wav", "calm/spk1-002.wav", "calm/spk2_003.wav"])
    manifest, _ = manifest_of(root, "folders")
    assert manifest["speaker"].tolist() == ["folders_spk1", "folders_spk1", "folders_spk2"]
    assert manifest["task"].tolist() == ["", "", ""]


@pytest.mark.parametrize("regex,message", [
    (r"^(\w+)_", "has no group named 'speaker'"),
    (r"^(?P<speaker>[a-z", "is not a valid regular expression"),
])
def test_bad_speaker_regex_names_the_key(regex, message):
    with pytest.raises(ParamsError, match=rf"'data\.folders\.speaker_regex'.*{message}"):
        from_mapping(DataConfig, {"folders": {"speaker_regex": regex}}, section="data")


def test_unknown_layout_lists_the_known_ones():
    with pytest.raises(ParamsError, match=r"'data\.layout' = 'iemocap' is not allowed: choose one of 'ravdess', "
                                          r"'crema_d', 'tess', 'emodb', 'savee', 'mesd', 'folders'"):
        from_mapping(DataConfig, {"layout": "iemocap"}, section="data")


def test_speakers_never_collide_across_corpora(tmp_path):
    a = scan_corpus(tree(tmp_path / "a", ["Actor_01/03-01-01-01-01-01-01.wav"]), layout="ravdess", dataset="ravdess")
    b = scan_corpus(tree(tmp_path / "b", ["AudioWAV/1001_DFA_ANG_XX.wav"]), layout="crema_d", dataset="crema_d")
    assert pd.Series([c.speaker for c in a + b]).is_unique
