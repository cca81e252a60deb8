"""Synthetic faces (action units, clips) and AVI clip I/O."""

from __future__ import annotations

import dataclasses

import av
import cv2
import numpy as np
import pytest

from mtl.errors import BadInputError
from mtl.synthetic import faces, video

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


def test_avi_round_trip_with_sound(tmp_path):
    rng = np.random.default_rng(0)
    frames, _, _ = faces.render_clip(faces.random_identity(rng), "happiness", 10, rng)
    rate = 16000
    sound = (0.4 * np.sin(2 * np.pi * 220 * np.arange(rate // 2) / rate)).astype(np.float32)
    path = video.write_avi(tmp_path / "clip.avi", frames, fps=25, audio=sound, sample_rate=rate)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.avi"], "no temporary file is left behind"

    back = video.read_video_frames(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames).mean() < 8  # MJPEG is lossy, but close
    assert video.read_video_frames(path, step=4).shape[0] == 3  # frames 0, 4, 8
    assert [i for i, _ in video.iter_video_frames(path, step=3)] == [0, 3, 6, 9]

    samples, sample_rate = video.read_audio_track(path)
    assert sample_rate == rate and samples.dtype == np.float32 and samples.shape == sound.shape
    np.testing.assert_allclose(samples, sound, atol=1e-3)

    capture = cv2.VideoCapture(str(path))  # OpenCV reads the same file
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == len(frames)


def test_unusable_videos_name_the_file_and_the_reason(tmp_path):
    silent = video.write_avi(tmp_path / "silent.avi", np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(BadInputError, match="silent.avi: no audio track"):
        video.read_audio_track(silent)
    with pytest.raises(BadInputError, match="missing.avi: file not found"):
        video.read_video_frames(tmp_path / "missing.avi")
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(BadInputError, match="empty.avi: empty file"):
        video.read_video_frames(tmp_path / "empty.avi")
    (tmp_path / "junk.avi").write_bytes(b"not a video" * 100)
    with pytest.raises(BadInputError, match="junk.avi: cannot decode video"):
        video.read_video_frames(tmp_path / "junk.avi")

    def sound_and_declared_video(path, with_video_stream):
        with av.open(str(path), "w", format="avi") as container:
            if with_video_stream:  # declared, but no frame is ever written
                stream = container.add_stream("mjpeg", rate=25)
                stream.width, stream.height, stream.pix_fmt = 32, 32, "yuvj420p"
            sound = container.add_stream("pcm_s16le", rate=8000, layout="mono")
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
            frame.sample_rate, frame.pts = 8000, 0
            container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
        return path

    with pytest.raises(BadInputError, match="sound_only.avi: no video stream"):
        video.read_video_frames(sound_and_declared_video(tmp_path / "sound_only.avi", False))
    with pytest.raises(BadInputError, match="no_frames.avi: no video frames"):
        video.read_video_frames(sound_and_declared_video(tmp_path / "no_frames.avi", True))

    with pytest.raises(ValueError, match="frames_rgb"):
        video.write_avi(tmp_path / "bad.avi", np.zeros((0, 8, 8, 3), np.uint8))
