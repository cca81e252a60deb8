"""Face detection and cropping (paper §3.1) on synthetic faces and negative controls."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mtl.config import get_profile
from mtl.errors import BadInputError
from mtl.features import faces as face_features
from mtl.features.faces import MIN_SCORE, clip_face_crops, detect_faces, face_track, image_face_crop
from mtl import media
from mtl.synthetic import faces


@pytest.fixture(scope="module")
def clips():
    """Four identities x seven expressions x eight frames, neutral to apex."""
    rng = np.random.default_rng(2024)
    identities = [faces.random_identity(rng) for _ in range(4)]
    return [faces.render_clip(identity, emotion, 8, rng)[0] for identity in identities for emotion in faces.EMOTIONS]


def _noise(rng, n=1):
    return rng.integers(0, 256, (n, 128, 128, 3), dtype=np.uint8)


def test_synthetic_faces_are_detected(clips):
    detected = np.array([[bool(detect_faces(frame)) for frame in clip] for clip in clips])
    assert detected.mean() >= 0.95, f"detected in {detected.mean():.1%} of {detected.size} frames"
    assert detected.mean(axis=1).min() >= 0.5, "every expression of every identity is mostly detected"


def test_featureless_controls_do_not_pass_the_threshold():
    rng = np.random.default_rng(7)
    ellipses = [faces.render_blank_ellipse(rng) for _ in range(12)]
    heads = [faces.render_blank_face(faces.random_identity(rng), rng) for _ in range(12)]
    raw = [detect_faces(image, min_score=-np.inf) for image in ellipses + heads]
    assert any(raw), "the cascade alone fires on blank shapes: the reason for the threshold"
    for found in raw:
        assert all(score < MIN_SCORE for _, score in found)
    for image in _noise(rng, 6):
        assert detect_faces(image, min_score=-np.inf) == []


def test_detections_are_sorted_and_in_the_frame(clips):
    frame = clips[0][-1]
    found = detect_faces(frame)
    assert found, "apex frame of the first clip shows a face"
    scores = [score for _, score in found]
    assert scores == sorted(scores, reverse=True)
    x, y, w, h = found[0][0]
    assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128 and w >= face_features.MIN_SIZE
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    assert detect_faces(grey)[0][0] == found[0][0]


def test_fallback_backfills_the_start_and_carries_the_last_face(clips):
    rng = np.random.default_rng(1)
    face = [f for f in clips[3] if detect_faces(f)][:3]
    blank = _noise(rng, 3)
    sequence = [blank[0], blank[1], face[0], face[1], blank[2], face[2]]
    crops, info = face_track(sequence, frame_indices=[0, 2, 4, 6, 8, 10], size=64)
    assert crops.shape == (6, 64, 64, 3) and crops.dtype == np.uint8
    assert info["frame"].tolist() == [0, 2, 4, 6, 8, 10]
    assert info["status"].tolist() == ["backfilled", "backfilled", "detected", "detected", "carried", "detected"]
    boxes = info[["x", "y", "width", "height"]].apply(tuple, axis=1).tolist()
    assert boxes[0] == boxes[1] == boxes[2], "backfill uses the first detection"
    assert boxes[4] == boxes[3], "carry-forward uses the most recent detection"
    assert info["score"].isna().tolist() == [True, True, False, False, True, False]
    np.testing.assert_array_equal(crops[4], face_features.crop_face(blank[2], boxes[3], 64))


def test_clip_without_a_face_is_reported(tmp_path):
    path = media.write_avi(tmp_path / "nobody.avi", _noise(np.random.default_rng(3), 5))
    with pytest.raises(BadInputError, match=r"nobody.avi: no face detected in 5 frames"):
        clip_face_crops(path, get_profile("paper"))


def test_clip_crops_follow_frame_step(tmp_path, clips):
    path = media.write_avi(tmp_path / "clip.avi", np.concatenate([clips[5], clips[5][:2]]))  # 10 frames
    crops, indices, info = clip_face_crops(path, get_profile("paper", frame_step=3))
    assert indices.tolist() == [0, 3, 6, 9] and info["frame"].tolist() == [0, 3, 6, 9]
    assert crops.shape == (4, 64, 64, 3) and crops.dtype == np.uint8
    crops16, indices16, _ = clip_face_crops(path, get_profile("paper", face_size=16))
    assert crops16.shape == (10, 16, 16, 3) and indices16.tolist() == list(range(10))


def test_still_images(tmp_path, clips):
    config = get_profile("paper")
    face_png = tmp_path / "face.png"
    cv2.imwrite(str(face_png), cv2.cvtColor(clips[2][-1], cv2.COLOR_RGB2BGR))
    crop = image_face_crop(face_png, config)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8

    given = tmp_path / "crop.png"
    cv2.imwrite(str(given), np.full((40, 30, 3), 200, np.uint8))
    resized = image_face_crop(given, config, already_cropped=True)
    assert resized.shape == (64, 64, 3) and np.all(resized == 200)

    noise_png = tmp_path / "noise.png"
    cv2.imwrite(str(noise_png), _noise(np.random.default_rng(4))[0])
    with pytest.raises(BadInputError, match="noise.png: no face detected in 1 frame"):
        image_face_crop(noise_png, config)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(BadInputError, match="broken.png: cannot decode image"):
        image_face_crop(tmp_path / "broken.png", config)
    with pytest.raises(BadInputError, match="absent.png: file not found"):
        image_face_crop(tmp_path / "absent.png", config)
