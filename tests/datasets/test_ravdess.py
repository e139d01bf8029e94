import pytest

from tests.conftest import tone, write_wav
from vocalab.datasets.ravdess import format_name, parse_name, scan


def test_parse_name_reads_every_field():
    fields = parse_name("03-01-06-02-01-02-13")
    assert fields == {
        "emotion": "fearful", "intensity": "strong", "statement": "Kids are talking by the door",
        "repetition": 2, "actor": 13, "gender": "male", "vocal_channel": "speech",
    }
    assert parse_name("03-01-01-01-02-01-24")["gender"] == "female"


def test_format_and_parse_round_trip():
    name = format_name(emotion=8, intensity=1, statement=2, repetition=1, actor=7)
    assert name == "03-01-08-01-02-01-07.wav"
    assert parse_name(name[:-4])["emotion"] == "surprised"


@pytest.mark.parametrize("stem, message", [
    ("03-01-09-01-01-01-01", r"emotion code 09"),
    ("03-01-01-03-01-01-01", r"intensity code 03"),
    ("03-01-01-01-01-03-01", r"repetition code 03"),
    ("03-01-01-01-01-01", r"seven two-digit fields"),
    ("OAF_back_angry", r"does not follow the RAVDESS convention"),
])
def test_bad_names_give_a_reason(stem, message):
    with pytest.raises(ValueError, match=message):
        parse_name(stem)


def test_scan_parses_good_files_and_keeps_bad_ones_with_a_reason(tmp_path):
    write_wav(tmp_path / "Actor_01" / "03-01-05-01-01-01-01.wav", tone(200), 16000)
    write_wav(tmp_path / "Actor_01" / "notes.wav", tone(200), 16000)
    (tmp_path / "Actor_01" / "README.txt").write_text("not audio")
    candidates = scan(tmp_path, dataset="ravdess")
    assert len(candidates) == 2
    good = next(c for c in candidates if c.reason is None)
    assert (good.utt_id, good.speaker, good.label) == ("ravdess_03-01-05-01-01-01-01", "ravdess_01", "angry")
    bad = next(c for c in candidates if c.reason is not None)
    assert bad.path.name == "notes.wav"
