"""Synthetic faces: action units and clips."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mtl.synthetic import faces

UPPER_FACE_AUS = (1, 2, 4, 5, 7)
LOWER_FACE_AUS = (12, 15, 16, 20, 23, 26)


def test_action_unit_tables():
    assert faces.AU_NAMES == [f"AU{n}" for n in faces.AU_NUMBERS]
    assert set(faces.EXPRESSION_AUS) == {"anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"}
    assert faces.EXPRESSION_AUS["happiness"] == (6, 12)
    assert faces.EXPRESSION_AUS["neutral"] == ()
    # classes overlap, so the emotion is not readable from one AU
    assert set(faces.EXPRESSION_AUS["surprise"]) < set(faces.EXPRESSION_AUS["fear"])
    for aus in faces.EXPRESSION_AUS.values():
        assert set(aus) <= set(faces.AU_NUMBERS)


def test_render_is_deterministic_and_sized():
    identity = faces.random_identity(np.random.default_rng(3))
    first = faces.render_face(identity, {12: 0.7}, np.random.default_rng(5), size=(96, 160))
    again = faces.render_face(identity, {12: 0.7}, np.random.default_rng(5), size=(96, 160))
    assert first.shape == (96, 160, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    assert faces.random_identity(np.random.default_rng(3)) == identity


def test_bad_arguments_are_refused():
    rng = np.random.default_rng(0)
    identity = faces.random_identity(rng)
    with pytest.raises(ValueError, match="unknown action unit"):
        faces.render_face(identity, {3: 1.0}, rng)
    with pytest.raises(ValueError, match="unknown emotion"):
        faces.render_clip(identity, "contempt", 4, rng)


@pytest.mark.parametrize("emotion", sorted(faces.EXPRESSION_AUS))
def test_clip_labels_rise_monotonically_to_the_expression(emotion):
    rng = np.random.default_rng(11)
    frames, au, names = faces.render_clip(faces.random_identity(rng), emotion, 12, rng, size=(64, 64))
    assert frames.shape == (12, 64, 64, 3) and frames.dtype == np.uint8
    assert au.shape == (12, len(faces.AU_NAMES)) and au.dtype == np.float32 and names == faces.AU_NAMES
    assert np.all(au[0] == 0), "a clip starts from a neutral face"
    assert np.all(np.diff(au, axis=0) >= 0), "onset: intensities never fall"
    apex = dict(zip(faces.AU_NUMBERS, au[-1]))
    for number, value in apex.items():
        if number in faces.EXPRESSION_AUS[emotion]:
            assert value >= faces.APEX_RANGE[0] * 0.65, f"AU{number} should be active in {emotion}"
        else:
            assert value <= faces.LEAK_MAX, f"AU{number} should be (nearly) absent in {emotion}"


@pytest.mark.parametrize("number", UPPER_FACE_AUS + LOWER_FACE_AUS + (6, 9))
def test_each_action_unit_moves_its_part_of_the_face(number):
    identity = dataclasses.replace(faces.random_identity(np.random.default_rng(2)), roll=0.0, shift=(0.0, 0.0))
    neutral = faces.render_face(identity, {}, np.random.default_rng(0)).astype(int)
    moved = faces.render_face(identity, {number: 1.0}, np.random.default_rng(0)).astype(int)
    changed = np.abs(moved - neutral).sum(axis=2) > 30
    assert changed.sum() > 20, f"AU{number} at full intensity should change the picture"
    rows = np.nonzero(changed)[0]
    eye_row = 64 + 0.06 * identity.face_width * identity.scale * 64  # face centre in pixels, eyes just above
    if number in UPPER_FACE_AUS:
        assert np.median(rows) < eye_row
    elif number in LOWER_FACE_AUS:
        assert np.median(rows) > eye_row + 10
