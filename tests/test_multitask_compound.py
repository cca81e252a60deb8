"""Compound expressions: signatures, renders, nearest-prototype prediction."""

from __future__ import annotations

import numpy as np
import pytest

from mtl.errors import ConfigError
from mtl.multitask import compound
from mtl.multitask.compound import (COMPOUNDS, NOT_RENDERED, RENDERED_TWINS, Compound, compound_apex,
                                    compound_faces, predict_compounds, prototypes, rendered_aus, signature_hash)
from mtl.synthetic.faces import AU_NAMES, AU_NUMBERS


def test_signatures_and_what_the_synthetic_faces_can_show():
    assert len(COMPOUNDS) == 15 and {"happily surprised", "happily disgusted", "sadly angry",
                                     "fearfully surprised"} <= set(COMPOUNDS)
    assert NOT_RENDERED == (10, 11, 17, 24, 25)
    assert rendered_aus("happily surprised") == ((1, 2, 12), (5, 26))
    apex = compound_apex("sadly angry", np.random.default_rng(0))
    drawn = {AU_NUMBERS[i] for i in np.flatnonzero(apex)}
    assert drawn == {4, 15, 6, 7}  # 4, 15 [6, 7, 11, 17]: AU11 and AU17 are not drawn
    assert apex[AU_NUMBERS.index(6)] < apex[AU_NUMBERS.index(4)]  # a secondary AU at half the level
    with pytest.raises(ConfigError, match="unknown compound expression 'gleeful'"):
        rendered_aus("gleeful")


def test_signatures_follow_table_1_and_the_hash_sees_any_change(monkeypatch):
    # Rows of Du, Tao & Martinez (2014), Table 1, as both transcriptions of SIGNATURE_SOURCE give them.
    assert COMPOUNDS["sadly fearful"].aus == (1, 4, 20, 25) and COMPOUNDS["sadly fearful"].secondary == (2, 5, 6, 15)
    assert COMPOUNDS["sadly angry"].aus == (4, 15) and COMPOUNDS["sadly angry"].secondary == (6, 7, 11, 17)
    assert COMPOUNDS["hatred"].aus == (4, 10) and COMPOUNDS["hatred"].secondary == (7, 9, 17, 24)
    assert COMPOUNDS["disgustedly surprised"].secondary_percent == (45, 37, 66, 33)
    for name, signature in COMPOUNDS.items():
        assert not set(signature.aus) & set(signature.secondary), name  # an AU is prototype or secondary
        assert len(signature.secondary_percent) == len(signature.secondary), name
        assert all(0 < p <= 70 for p in signature.secondary_percent), name  # above 70 % an AU is a prototype one
    before = signature_hash()
    changed = dict(COMPOUNDS, awed=Compound("awed", ("fear", "surprise"), (1, 2, 5, 25), (4, 26), (21, 56)))
    monkeypatch.setattr(compound, "COMPOUNDS", changed)
    assert signature_hash() != before


def test_a_malformed_signature_is_refused():
    with pytest.raises(ConfigError, match="'odd': 2 secondary AUs but 1 percentages"):
        Compound("odd", ("fear", "surprise"), (1, 2), (4, 5), (30,))
    with pytest.raises(ConfigError, match=r"'odd': AU\(s\) \[2\] are both prototype and secondary"):
        Compound("odd", ("fear", "surprise"), (1, 2), (2,), (30,))


def test_prototypes_are_distinct_but_for_the_twins_and_the_nearest_one_is_found():
    names = list(COMPOUNDS)
    table = prototypes(names, AU_NAMES)
    # Without AU10, AU17 and AU24 the faces draw angrily disgusted and hatred alike: one pair of equal rows.
    assert RENDERED_TWINS == (("angrily disgusted", "hatred"),)
    assert len({tuple(row) for row in table}) == len(names) - 1
    first, second = names.index("angrily disgusted"), names.index("hatred")
    expected = np.arange(len(names))
    expected[second] = first  # a tie goes to the compound listed first
    np.testing.assert_array_equal(predict_compounds(table, AU_NAMES), expected)
    noisy = np.clip(table + np.random.default_rng(0).normal(0, 0.1, table.shape), 0, 1)
    assert (predict_compounds(noisy, AU_NAMES) == np.arange(len(names))).mean() > 0.75


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
