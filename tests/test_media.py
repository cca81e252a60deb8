"""mtl.media: AVI clips written and read back (frames, sound track), and unusable files named with the reason."""

from __future__ import annotations

import os

import av
import cv2
import numpy as np
import pytest

from mtl import media
from mtl.errors import BadInputError
from mtl.synthetic import faces


def test_avi_round_trip_with_sound(tmp_path):
    rng = np.random.default_rng(0)
    frames, _, _ = faces.render_clip(faces.random_identity(rng), "happiness", 10, rng)
    rate = 16000
    sound = (0.4 * np.sin(2 * np.pi * 220 * np.arange(rate // 2) / rate)).astype(np.float32)
    path = media.write_avi(tmp_path / "clip.avi", frames, fps=25, audio=sound, sample_rate=rate)
    assert [p.name for p in tmp_path.iterdir()] == ["clip.avi"], "no temporary file is left behind"

    back = media.read_video_frames(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames).mean() < 8  # MJPEG is lossy, but close
    assert media.read_video_frames(path, step=4).shape[0] == 3  # frames 0, 4, 8
    assert [i for i, _ in media.iter_video_frames(path, step=3)] == [0, 3, 6, 9]

    samples, sample_rate = media.read_audio_track(path)
    assert sample_rate == rate and samples.dtype == np.float32 and samples.shape == sound.shape
    np.testing.assert_allclose(samples, sound, atol=1e-3)

    capture = cv2.VideoCapture(str(path))  # OpenCV reads the same file
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == len(frames)


def test_unusable_videos_name_the_file_and_the_reason(tmp_path):
    silent = media.write_avi(tmp_path / "silent.avi", np.zeros((2, 32, 32, 3), np.uint8))
    with pytest.raises(BadInputError, match="silent.avi: no audio track"):
        media.read_audio_track(silent)
    with pytest.raises(BadInputError, match="missing.avi: file not found"):
        media.read_video_frames(tmp_path / "missing.avi")
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(BadInputError, match="empty.avi: empty file"):
        media.read_video_frames(tmp_path / "empty.avi")
    (tmp_path / "junk.avi").write_bytes(b"not a video" * 100)
    with pytest.raises(BadInputError, match="junk.avi: cannot decode video"):
        media.read_video_frames(tmp_path / "junk.avi")

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
        media.read_video_frames(sound_and_declared_video(tmp_path / "sound_only.avi", False))
    with pytest.raises(BadInputError, match="no_frames.avi: no video frames"):
        media.read_video_frames(sound_and_declared_video(tmp_path / "no_frames.avi", True))

    with pytest.raises(ValueError, match="frames_rgb"):
        media.write_avi(tmp_path / "bad.avi", np.zeros((0, 8, 8, 3), np.uint8))


def test_a_truncated_clip_is_rejected_for_its_frames_and_its_sound(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (50, 32, 32, 3), dtype=np.uint8)
    sound = (0.3 * np.sin(np.arange(32000) / 10)).astype(np.float32)
    whole = media.write_avi(tmp_path / "whole.avi", frames, 25, sound, 16000).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole[:int(len(whole) * 0.9)])
    with pytest.raises(BadInputError, match="cut.avi: truncated: the header declares 50 video frames, the file holds"):
        media.read_video_frames(cut)
    with pytest.raises(BadInputError, match="cut.avi: truncated"):
        media.read_audio_track(cut)
    intact = tmp_path / "no_index.avi"  # only the index at the end is lost: every frame and sample is there
    intact.write_bytes(whole[:int(len(whole) * 0.995)])
    assert len(media.read_video_frames(intact)) == 50 and len(media.read_audio_track(intact)[0]) == 32000


def test_a_sound_track_outside_the_sanity_bounds_is_rejected(tmp_path, monkeypatch):
    frames = np.zeros((5, 32, 32, 3), np.uint8)
    sound = np.full(8000, 0.1, np.float32)
    low = media.write_avi(tmp_path / "low.avi", frames, 25, sound, 2000)
    with pytest.raises(BadInputError, match="low.avi: sample rate 2000 Hz outside 4000-192000 Hz"):
        media.read_audio_track(low)
    clip = media.write_avi(tmp_path / "clip.avi", frames, 25, sound, 8000)
    monkeypatch.setattr(media, "MAX_SECONDS", 0.5)  # the clip holds 1 s
    with pytest.raises(BadInputError, match=r"clip.avi: audio track longer than 0.5 s \(MAX_SECONDS\)"):
        media.read_audio_track(clip)


def test_non_regular_files_are_named_without_being_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.avi")  # opening it would block until a writer comes
    with pytest.raises(BadInputError, match="pipe.avi: not a regular file but a FIFO"):
        media.read_audio_track(tmp_path / "pipe.avi")
    os.symlink(tmp_path / "gone.avi", tmp_path / "dangling.avi")
    with pytest.raises(BadInputError, match="dangling.avi: dangling symlink"):
        media.read_video_frames(tmp_path / "dangling.avi")
