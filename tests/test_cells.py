"""Cells: validation, keys (stable when Config grows), class rules and run specs."""

import pytest

from mtl.cells import CellKind, RunSpec, make_cell, parse_run_spec, resolve_classes
from mtl.config import get_profile
from mtl.corpora.labels import LabelError
from mtl.errors import ConfigError

SMOKE = get_profile("smoke")
SIX = ("anger", "disgust", "fear", "happiness", "sadness", "surprise")


@pytest.fixture(autouse=True)
def _no_real_data(tmp_path, monkeypatch):
    monkeypatch.setenv("MTL_DATA_ROOT", str(tmp_path / "no-data"))


def test_cell_key_ignores_housekeeping_but_not_settings():
    base = make_cell("unit", "scratch", "savee", (), "audio", SMOKE)
    housekeeping = make_cell("unit", "scratch", "savee", (), "audio", SMOKE.replace(checkpoint_every=7,
                                                                                     profile="default"))
    assert base.key == housekeeping.key
    for changed in (dict(config=SMOKE.replace(generations=4)), dict(seed=1), dict(fold=1),
                    dict(protocol="utterance"), dict(classes=["anger", "fear"])):
        args = dict(experiment="unit", method="scratch", target="savee", config=SMOKE) | changed
        assert make_cell(**args).key != base.key, changed


def test_cell_key_holds_only_what_differs_from_the_paper(monkeypatch):
    """A Config field added later, at a default that keeps the old behaviour, leaves every key as it was."""
    from mtl import config as config_module

    cell = make_cell("unit", "scratch", "savee", (), "audio", SMOKE)
    key = cell.key
    grown = {**config_module.paper_defaults(), "a_later_option": "off"}
    monkeypatch.setattr(config_module, "paper_defaults", lambda: grown)
    monkeypatch.setattr(type(SMOKE), "to_dict", lambda self, _old=type(SMOKE).to_dict: {**_old(self),
                                                                                        "a_later_option": "off"})
    assert cell.key == key
    monkeypatch.setattr(type(SMOKE), "to_dict", lambda self, _old=type(SMOKE).to_dict: {**_old(self),
                                                                                        "a_later_option": "on"})
    assert cell.key != key


def test_resolve_classes_rules():
    assert resolve_classes("savee", ("enterface",)) == (SIX, SIX)
    assert resolve_classes("savee", (), partners=("enterface",)) == (SIX, ())
    assert resolve_classes("savee")[0] == ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
    target, source = resolve_classes("emodb", ("ravdess",), "target")
    assert "boredom" in target and "calm" in source and "boredom" not in source
    assert resolve_classes("emodb", ("savee",), ["anger", "boredom"]) == (("anger", "boredom"), ("anger",))
    with pytest.raises(LabelError, match="emodb has no class surprise"):
        resolve_classes("emodb", (), ["surprise"])
    with pytest.raises(LabelError, match="share no emotion class"):
        resolve_classes("emodb", ("savee",), ["boredom"])
    with pytest.raises(ConfigError, match="'shared' or 'target'"):
        resolve_classes("emodb", (), "all")


def test_run_specs_parse_once_for_the_sweep_and_the_chapters():
    assert parse_run_spec("savee") == RunSpec("savee")
    assert parse_run_spec(" savee+enterface -> emodb ") == RunSpec("emodb", ("enterface", "savee"))
    assert parse_run_spec("enterface→savee") == RunSpec("savee", ("enterface",))
    assert str(RunSpec("emodb", ("savee", "enterface"))) == "enterface+savee->emodb"
    assert str(RunSpec("savee")) == "savee"
    for text, message in (("enterface->", "not a corpus"), ("->emodb", "no source corpus"),
                          ("emo db!", "not a corpus")):
        with pytest.raises(ConfigError, match=message):
            parse_run_spec(text)
    cell = make_cell("unit", "transfer", "savee", ("enterface",), "audio", SMOKE)
    assert parse_run_spec("enterface->savee").matches(cell) and parse_run_spec("savee").matches(cell)
    assert not parse_run_spec("emodb->savee").matches(cell)


def test_a_cell_is_a_cell_kind_and_names_the_data_it_reads():
    cell = make_cell("unit", "transfer", "savee", ("enterface",), "audio", SMOKE)
    assert isinstance(cell, CellKind)
    assert [d[:3] for d in cell.datasets] == [("savee", "audio", "synthetic"), ("enterface", "audio", "synthetic")]
    assert cell.describe() == "unit: transfer enterface->savee (audio, paper, seed 0, fold 0)"
