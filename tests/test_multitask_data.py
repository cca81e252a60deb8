"""AU occurrence labels: from the synthetic corpora's au_labels.csv or a card's AU columns; bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mtl.config import get_profile
from mtl.errors import BadInputError, ConfigError
from mtl.multitask.data import AU_TABLE, au_occurrence, check_same_aus, load_au_faces


def _au_table(root, rows):
    pd.DataFrame(rows, columns=["path", "frame", "AU1", "AU12"]).to_csv(root / AU_TABLE, index=False)


def test_occurrence_is_the_thresholded_intensity_of_the_crops_frame(tmp_path):
    _au_table(tmp_path, [("a/x.avi", 0, 0.0, 0.1), ("a/x.avi", 5, 0.5, 0.25), ("b/y.avi", 0, 0.9, 1.0)])
    samples = pd.DataFrame({"path": [str(tmp_path / "a/x.avi"), str(tmp_path / "a/x.avi"), str(tmp_path / "b/y.avi"),
                                     str(tmp_path / "b/y.avi")], "frame": [0, 5, 0, 3]})
    au, names, source = au_occurrence(samples, tmp_path)
    assert names == ["AU1", "AU12"] and source == AU_TABLE
    np.testing.assert_array_equal(au[:3], [[0, 0], [1, 0], [1, 1]])
    assert np.isnan(au[3]).all()  # frame 3 is not in the table: unknown
    low, _, _ = au_occurrence(samples, tmp_path, threshold=0.2)
    np.testing.assert_array_equal(low[1], [1, 1])
    with pytest.raises(ConfigError, match="threshold"):
        au_occurrence(samples, tmp_path, threshold=0)


def test_a_cards_au_columns_are_used_and_must_be_binary(tmp_path):
    samples = pd.DataFrame({"path": ["p1", "p2", "p3"], "frame": [0, 0, 0], "au12": [1, 0, None], "AU4": [0, 1, 1]})
    au, names, source = au_occurrence(samples, tmp_path)
    assert names == ["AU4", "AU12"] and source == "table columns"
    np.testing.assert_array_equal(au[:2], [[0, 1], [1, 0]])
    assert np.isnan(au[2, 1])
    for bad in (0.5, 2, "yes"):
        with pytest.raises(BadInputError, match="p2: au12 is .*0 .absent., 1 .present. or nothing"):
            au_occurrence(samples.assign(au12=[1, bad, None]), tmp_path)


def test_no_au_source_and_a_damaged_au_table_are_bad_inputs(tmp_path):
    samples = pd.DataFrame({"path": [str(tmp_path / "x.avi")], "frame": [0]})
    with pytest.raises(BadInputError, match="no AU labels"):
        au_occurrence(samples, tmp_path)
    _au_table(tmp_path, [("x.avi", 0, 1.7, 0.0)])
    with pytest.raises(BadInputError, match=f"{AU_TABLE}: AU intensities must be numbers in"):
        au_occurrence(samples, tmp_path)


def test_corpora_with_different_au_lists_are_refused():
    assert check_same_aus({"savee": ["AU1", "AU2"], "enterface": ["AU1", "AU2"]}) == ["AU1", "AU2"]
    with pytest.raises(ConfigError, match="AU lists of savee and mine differ .savee only: .'AU2'.; mine only: .'AU9'"):
        check_same_aus({"savee": ["AU1", "AU2"], "mine": ["AU1", "AU9"]})
    with pytest.raises(ConfigError, match="same AUs in another order"):
        check_same_aus({"savee": ["AU1", "AU2"], "mine": ["AU2", "AU1"]})


def test_synthetic_faces_carry_the_au_of_their_expression():
    faces = load_au_faces("savee", get_profile("smoke"))
    samples = faces.features.samples
    assert len(faces.au) == len(samples) and faces.au_names[0] == "AU1" and not np.isnan(faces.au).any()
    late = samples["frame"].to_numpy() >= 16  # the apex is reached by 80 % of a tiny clip's 20 frames
    happy = late & (samples["emotion"] == "happiness").to_numpy()
    assert faces.au[happy, faces.au_names.index("AU12")].mean() > 0.9
    assert faces.au[late & (samples["emotion"] == "neutral").to_numpy()].sum() == 0
    assert faces.provenance["au_threshold"] == 0.3 and faces.provenance["au_source"] == AU_TABLE
