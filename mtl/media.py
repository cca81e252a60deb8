"""Media files: video frames and audio tracks of clips, read and written with PyAV.

eNTERFACE'05 and SAVEE distribute their clips as AVI files with the sound
inside. Feature extraction (:mod:`mtl.features`) reads frames and sound tracks
here; the synthetic generator (:mod:`mtl.synthetic`) writes its clips here the
same way, so that the loaders and feature extractors read synthetic and real
clips with the same code. MJPEG
(full-range YUV 4:2:0, fixed quantiser :data:`MJPEG_QSCALE`) keeps every frame independently decodable
and is read by both PyAV and ``cv2.VideoCapture``; the sound is 16-bit PCM.

Unusable files raise :class:`~mtl.errors.BadInputError` naming the file and
the reason (missing, not a regular file, empty, undecodable, no video frames,
no audio track, truncated, audio outside the sanity bounds).

Sanity bounds of audio, checked from the header *before* decoding (so a
damaged header cannot make decoding or resampling run away) and again while
decoding: a sample rate from :data:`MIN_SAMPLE_RATE` to :data:`MAX_SAMPLE_RATE`
and at most :data:`MAX_SECONDS` of sound, i.e. at most
``MAX_SECONDS * MAX_SAMPLE_RATE`` samples per channel in memory. They apply to
every audio file the features read (:func:`mtl.features.audio.load_audio`).

Truncation. A clip whose video stream decodes fewer frames than its header
declares, by more than :data:`TRUNCATION_SLACK`, is truncated (a copy cut
short) and rejected, whether its frames or its sound track are read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from mtl.corpora.base import file_problem
from mtl.errors import BadInputError

MIN_SAMPLE_RATE = 4000
"""Lowest audio sample rate accepted, Hz: below it speech has no usable band (a header claiming 1 Hz is damaged)."""
MAX_SAMPLE_RATE = 192000
"""Highest audio sample rate accepted, Hz (the highest in common use)."""
MAX_SECONDS = 600.0
"""Longest audio accepted, seconds (10 minutes; emotion corpora hold utterances of a few seconds)."""
TRUNCATION_SLACK = 0.02
"""Share of a clip's declared video frames that may be missing before it counts as truncated: the slack
absorbs decoders that drop a frame or two of a complete file (empty AVI chunks)."""
MJPEG_QSCALE = 4
"""Fixed MJPEG quantiser (2 best .. 31 worst). At 4 a 128 x 128 frame takes about 3.8 KB and the
face detector's scores on decoded synthetic frames match those on the raw frames (checked at 2, 4, 8)."""


def write_avi(path: str | Path, frames_rgb: np.ndarray, fps: int = 25, audio: np.ndarray | None = None,
              sample_rate: int | None = None) -> Path:
    """Write an AVI atomically: MJPEG video and, if ``audio`` is given, a PCM s16le track.

    Parameters
    ----------
    path : target file; its folder is created. The clip is written to a
        temporary file in the same folder and renamed over ``path``.
    frames_rgb : uint8 ``(n_frames, height, width, 3)``, RGB, ``n_frames >= 1``.
    fps : frames per second, default 25.
    audio : mono ``(n_samples,)`` or ``(n_samples, channels)`` samples, float in
        [-1, 1] (clipped) or int16.
    sample_rate : audio rate in Hz; required with ``audio``.

    Returns the path written.
    """
    import av

    path = Path(path)
    frames = np.asarray(frames_rgb)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames_rgb must be uint8 (n_frames >= 1, height, width, 3), got {frames.dtype} "
                         f"{frames.shape}")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    pcm = None if audio is None else _to_int16(audio)
    if pcm is not None and (not sample_rate or sample_rate <= 0):
        raise ValueError("sample_rate (Hz) is required with audio")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".avi.tmp", dir=path.parent)
    os.close(fd)
    try:
        with av.open(tmp, mode="w", format="avi") as container:
            video = container.add_stream("mjpeg", rate=int(fps))
            video.width, video.height = frames.shape[2], frames.shape[1]
            video.pix_fmt = "yuvj420p"
            video.codec_context.qmin = video.codec_context.qmax = MJPEG_QSCALE
            sound = None
            if pcm is not None:
                layout = "mono" if pcm.shape[1] == 1 else "stereo" if pcm.shape[1] == 2 else None
                if layout is None:
                    raise ValueError(f"audio must have 1 or 2 channels, got {pcm.shape[1]}")
                sound = container.add_stream("pcm_s16le", rate=int(sample_rate), layout=layout)
            for image in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
            if sound is not None:
                block = 4096
                for start in range(0, len(pcm), block):
                    chunk = np.ascontiguousarray(pcm[start:start + block].T.reshape(1, -1))
                    audio_frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout=sound.layout.name)
                    audio_frame.sample_rate = int(sample_rate)
                    audio_frame.pts = start
                    container.mux(sound.encode(audio_frame))
                container.mux(sound.encode(None))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def iter_video_frames(path: str | Path, step: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame index, uint8 RGB frame (height, width, 3))`` for every ``step``-th frame.

    Frames are counted from 0 in decoding order; frames between the kept ones
    are decoded (MJPEG is cheap) but not converted. Raises
    :class:`BadInputError` for a missing, empty or undecodable file or one
    without a video stream; a file that decodes to no frame at all raises
    ``BadInputError(path, "no video frames")`` after the last packet, one that
    decodes fewer frames than its header declares ``"truncated: ..."`` (see
    :data:`TRUNCATION_SLACK`).
    """
    import av

    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    path = Path(path)
    check_file(path)
    count = declared = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise BadInputError(path, "no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            declared = int(stream.frames or 0)
            for index, frame in enumerate(container.decode(stream)):
                count += 1
                if index % step == 0:
                    yield index, frame.to_ndarray(format="rgb24")
    except BadInputError:
        raise
    except (av.error.FFmpegError, ValueError) as error:
        raise BadInputError(path, f"cannot decode video ({error})") from error
    if count == 0:
        raise BadInputError(path, "no video frames")
    _check_complete(path, declared, count)


def read_video_frames(path: str | Path, step: int = 1) -> np.ndarray:
    """Every ``step``-th frame of a video as uint8 ``(n, height, width, 3)`` RGB (frames 0, step, 2 step, ...)."""
    frames = [image for _, image in iter_video_frames(path, step)]
    return np.stack(frames)


def read_audio_track(path: str | Path) -> tuple[np.ndarray, int]:
    """The first audio stream of a container as ``(float32 mono samples in [-1, 1], sample rate in Hz)``.

    Channels are averaged. Raises :class:`BadInputError` for a missing or
    undecodable file, ``"no audio track"``, ``"empty audio track"``, a sample
    rate or a length outside the sanity bounds (:func:`check_audio_header`,
    from the header and again while decoding) and a truncated clip (its video
    stream, if any, holds fewer frames than its header declares).
    """
    import av

    path = Path(path)
    check_file(path)
    blocks: list[np.ndarray] = []
    n_samples = video_packets = declared = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise BadInputError(path, "no audio track")
            stream = container.streams.audio[0]
            rate = int(stream.codec_context.sample_rate or stream.rate or 0)
            seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
            check_audio_header(path, rate, None if seconds is None else round(seconds * rate))
            video = container.streams.video[0] if container.streams.video else None
            declared = int(video.frames or 0) if video is not None else 0
            to_float = av.AudioResampler(format="fltp")  # planar float: one row per channel
            for packet in container.demux(*(s for s in (stream, video) if s is not None)):
                if packet.stream is video:  # counted, not decoded: only to tell a truncated clip
                    video_packets += packet.size > 0
                    continue
                for frame in packet.decode():
                    for out in to_float.resample(frame):
                        blocks.append(out.to_ndarray())
                        n_samples += blocks[-1].shape[1]
                if n_samples > MAX_SECONDS * rate:  # the header understated the length
                    raise BadInputError(path, f"audio track longer than {MAX_SECONDS:g} s (MAX_SECONDS)")
            blocks += [out.to_ndarray() for out in to_float.resample(None)]
    except BadInputError:
        raise
    except (av.error.FFmpegError, ValueError) as error:
        raise BadInputError(path, f"cannot decode the audio track ({error})") from error
    if sum(b.shape[1] for b in blocks) == 0:
        raise BadInputError(path, "empty audio track")
    _check_complete(path, declared, video_packets)
    return np.concatenate(blocks, axis=1).mean(axis=0).astype(np.float32), rate


def check_audio_header(path: str | Path, rate: int, n_frames: int | None = None) -> None:
    """:class:`BadInputError` unless ``rate`` (Hz) and ``n_frames`` (samples per channel) are within the bounds.

    The bounds are :data:`MIN_SAMPLE_RATE` <= ``rate`` <= :data:`MAX_SAMPLE_RATE`
    and ``n_frames / rate`` <= :data:`MAX_SECONDS`; ``n_frames=None`` (a
    header that does not say) checks the rate only.
    """
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise BadInputError(path, f"sample rate {rate} Hz outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz "
                                  "(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE): a damaged header or not speech audio")
    if n_frames is not None and n_frames > MAX_SECONDS * rate:
        raise BadInputError(path, f"audio of {n_frames / rate:.0f} s is longer than {MAX_SECONDS:g} s (MAX_SECONDS)")


def check_file(path: str | Path) -> None:
    """:class:`BadInputError` unless ``path`` is a non-empty regular file (checked with ``stat``, never opened)."""
    problem = file_problem(path)
    if problem is not None:
        raise BadInputError(path, problem)
    if Path(path).stat().st_size == 0:
        raise BadInputError(path, "empty file (0 bytes)")


def _check_complete(path: Path, declared: int, found: int) -> None:
    """``"truncated"`` unless ``found`` video frames reach the header's ``declared`` (0: unknown), within the slack."""
    if declared and found < declared * (1.0 - TRUNCATION_SLACK):
        raise BadInputError(path, f"truncated: the header declares {declared} video frames, the file holds {found}")


def _to_int16(audio: np.ndarray) -> np.ndarray:
    """``(n_samples, channels)`` int16 from float in [-1, 1] (clipped) or int16 samples."""
    samples = np.asarray(audio)
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2 or len(samples) == 0:
        raise ValueError(f"audio must be (n_samples,) or (n_samples, channels) with n_samples >= 1, "
                         f"got {samples.shape}")
    if samples.dtype == np.int16:
        return samples
    if not np.issubdtype(samples.dtype, np.floating):
        raise ValueError(f"audio must be float in [-1, 1] or int16, got {samples.dtype}")
    return np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
