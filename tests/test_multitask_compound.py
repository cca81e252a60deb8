"""Compound expressions: signatures, renders, nearest-prototype prediction."""

from __future__ import annotations

import numpy as np
import pytest

from mtl.errors import ConfigError
from mtl.multitask import compound
from mtl.multitask.compound import (COMPOUNDS, CORRECTED, NOT_RENDERED, compound_apex, compound_faces,
                                    predict_compounds, prototypes, rendered_aus, signature_hash)
from mtl.synthetic.faces import AU_NAMES, AU_NUMBERS


def test_signatures_and_what_the_synthetic_faces_can_show():
    assert len(COMPOUNDS) == 15 and {"happily surprised", "happily disgusted", "sadly angry",
                                     "fearfully surprised"} <= set(COMPOUNDS)
    assert NOT_RENDERED == (10, 11, 17, 24, 25)
    assert rendered_aus("happily surprised") == ((1, 2, 12), (5, 26))
    apex = compound_apex("sadly angry", np.random.default_rng(0))
    drawn = {AU_NUMBERS[i] for i in np.flatnonzero(apex)}
    assert drawn == {4, 15, 6, 7}
    assert apex[AU_NUMBERS.index(6)] < apex[AU_NUMBERS.index(4)]  # a secondary AU at half the level
    with pytest.raises(ConfigError, match="unknown compound expression 'gleeful'"):
        rendered_aus("gleeful")


def test_the_two_signatures_the_source_contradicted_follow_it_and_the_hash_sees_any_change(monkeypatch):
    assert CORRECTED == ("sadly fearful", "sadly angry")
    assert COMPOUNDS["sadly fearful"].aus == (1, 4, 15, 25) and COMPOUNDS["sadly angry"].aus == (4, 7, 15)
    for name, signature in COMPOUNDS.items():
        assert not set(signature.aus) & set(signature.secondary), name  # an AU is prototype or secondary
        assert "secondary AUs unverified" in signature.verified, name
    before = signature_hash()
    changed = dict(COMPOUNDS, awed=compound.Compound("awed", ("fear", "surprise"), (1, 2, 5, 25), (4, 26)))
    monkeypatch.setattr(compound, "COMPOUNDS", changed)
    assert signature_hash() != before


def test_prototypes_are_distinct_and_the_nearest_one_is_found():
    names = list(COMPOUNDS)
    table = prototypes(names, AU_NAMES)
    assert len({tuple(row) for row in table}) == len(names)
    np.testing.assert_array_equal(predict_compounds(table, AU_NAMES), np.arange(len(names)))
    noisy = np.clip(table + np.random.default_rng(0).normal(0, 0.1, table.shape), 0, 1)
    assert (predict_compounds(noisy, AU_NAMES) == np.arange(len(names))).mean() > 0.8


def test_emotion_outputs_break_a_tie_between_two_prototypes():
    names = ["happily surprised", "fearfully surprised"]
    middle = prototypes(names, AU_NAMES).mean(axis=0, keepdims=True)
    emotions = np.array([[0.1, 0.9]])  # fear 0.1, happiness 0.9
    assert predict_compounds(middle, AU_NAMES, names, emotions, ["fear", "happiness"], 1.0)[0] == 0
    assert predict_compounds(middle, AU_NAMES, names, emotions[:, ::-1], ["fear", "happiness"], 1.0)[0] == 1


def test_compound_faces_are_face_crops_of_every_compound():
    X, labels, names = compound_faces(["sadly angry", "awed"], n_identities=2)
    assert X.shape == (4, 64, 64, 3) and X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    assert labels.tolist() == [0, 1, 0, 1] and names == ["sadly angry", "awed"]
    again, _, _ = compound_faces(["sadly angry", "awed"], n_identities=2)
    np.testing.assert_array_equal(X, again)
