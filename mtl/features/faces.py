"""Face crops from video frames and still images, as in the paper's §3.1.

The paper detects faces with the Viola-Jones algorithm; here that is OpenCV's
Haar frontal-face cascade (``haarcascade_frontalface_default.xml``, loaded once
per process), run on the grey-level, histogram-equalised frame:

1. Every ``config.frame_step``-th frame of a clip is kept (1 = every frame, as
   in the paper). The detector runs on each kept frame with OpenCV's usual
   settings (scale step 1.1, 3 neighbours, windows from 24 x 24 pixels).
2. Each detection's score is its *level weight* -- the sum of the last
   cascade stage's weak classifiers (``detectMultiScale3`` with
   ``outputRejectLevels=True``). Detections scoring below :data:`MIN_SCORE`
   are discarded; of the rest the highest-scoring one is the frame's face.
3. A kept frame without a face uses the most recently detected box of the
   clip ("carried"); frames before the first detection use the first
   detection ("backfilled"). A clip without any detection raises
   :class:`~mtl.errors.BadInputError` ``"no face detected in N frames"``, so
   batch jobs report the clip and skip it.
4. The box is cut out and resized to ``config.face_size`` squared (64 x 64),
   RGB uint8 (area interpolation when shrinking, bilinear when enlarging).

Choosing :data:`MIN_SCORE`. The cascade also fires on featureless shapes: a
plain skin-coloured ellipse on a plain background
(:func:`mtl.synthetic.faces.render_blank_ellipse`) is "detected" in about 45 %
of images with level weights up to about 6, a synthetic head drawn without
eyes, brows, nose and mouth (:func:`mtl.synthetic.faces.render_blank_face`) in
about 11 %, mostly below 3; synthetic faces score a median of about 8.
Measured with ``benchmarks/bench_features.py`` (2,240 frames of 280 synthetic
clips over all seven expressions, 800 controls of each kind), the share that
reaches each threshold:

=========  ===========  =============  ================
threshold  face frames  plain ellipse  featureless head
=========  ===========  =============  ================
3.0        99.6 %       6.4 %          0.9 %
3.5        99.0 %       4.0 %          0.4 %
**4.0**    **97.9 %**   **2.0 %**      **0.1 %**
4.5        96.3 %       0.9 %          0 %
5.0        93.5 %       0.4 %          0 %
=========  ===========  =============  ================

4.0 keeps nearly every face frame while rejecting all but a few percent of
the harshest control; the carry-forward rule of step 3 covers the face
frames that fall below it. Noise images never produce a detection.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
import pandas as pd

from mtl.config import Config
from mtl.errors import BadInputError
from mtl.media import check_file, iter_video_frames

CASCADE_FILE = "haarcascade_frontalface_default.xml"
SCALE_FACTOR = 1.1
"""Image pyramid step of the detector (OpenCV's default)."""
MIN_NEIGHBORS = 3
"""Overlapping raw detections needed to accept a face (OpenCV's default)."""
MIN_SIZE = 24
"""Smallest face searched for, pixels (the cascade's training window)."""
MIN_SCORE = 4.0
"""Smallest level weight accepted as a face; see the module docstring for how it was chosen."""

Box = tuple[int, int, int, int]
"""``(x, y, width, height)`` in pixels."""
STATUSES = ("detected", "carried", "backfilled", "given")
"""How a crop's box was found: detected in its frame, carried forward from the last
detection, backfilled from the first detection, or given (the image is already a face crop)."""


@functools.lru_cache(maxsize=1)
def _cascade() -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / CASCADE_FILE
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"cannot load OpenCV's face cascade from {path}")
    return cascade


def score_threshold(config: Config | None = None) -> float:
    """The detection threshold: ``config.face_min_score``, or :data:`MIN_SCORE` without a configuration."""
    return MIN_SCORE if config is None else float(config.face_min_score)


def detect_faces(frame_rgb: np.ndarray, min_score: float = MIN_SCORE) -> list[tuple[Box, float]]:
    """Faces in one frame as ``[(box, score), ...]``, highest score first.

    Parameters
    ----------
    frame_rgb : uint8 ``(height, width, 3)`` RGB, or ``(height, width)`` grey.
    min_score : detections with a level weight below this are dropped
        (default :data:`MIN_SCORE`; ``-inf`` keeps every detection).
    """
    frame = np.asarray(frame_rgb)
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] != 3):
        raise ValueError(f"expected a uint8 (height, width, 3) RGB or (height, width) grey frame, "
                         f"got {frame.dtype} {frame.shape}")
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    grey = cv2.equalizeHist(grey)
    boxes, _, weights = _cascade().detectMultiScale3(
        grey, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS, minSize=(MIN_SIZE, MIN_SIZE),
        outputRejectLevels=True)
    found = [(tuple(int(v) for v in box), float(score)) for box, score in zip(boxes, np.ravel(weights))
             if score >= min_score]
    return sorted(found, key=lambda item: -item[1])


def crop_face(frame_rgb: np.ndarray, box: Box, size: int = 64) -> np.ndarray:
    """The ``box`` region of a frame resized to ``size`` x ``size`` x 3, uint8 RGB."""
    frame = np.asarray(frame_rgb)
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(frame.shape[1], x + w), min(frame.shape[0], y + h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {box} lies outside the {frame.shape[1]}x{frame.shape[0]} frame")
    region = frame[y0:y1, x0:x1]
    shrinking = region.shape[0] >= size and region.shape[1] >= size
    return cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def face_track(frames: Iterable[np.ndarray], frame_indices: Sequence[int] | None = None, size: int = 64,
               min_score: float = MIN_SCORE, source: str = "<frames>") -> tuple[np.ndarray, pd.DataFrame]:
    """One face crop per frame, with the paper's fallback when a frame has no face.

    Parameters
    ----------
    frames : RGB uint8 frames (an array or any iterable; consumed once, so a
        clip can be streamed: only the frames before the first detection are held).
    frame_indices : the frames' indices in their clip (default 0, 1, 2, ...), copied into ``info``.
    size : side of the square crops, pixels (default 64).
    min_score : detection threshold, see :func:`detect_faces`.
    source : what to name in the error message (the clip's path).

    Returns
    -------
    crops : uint8 ``(n_frames, size, size, 3)``.
    info : one row per frame: ``frame``, ``status`` (``"detected"``, ``"carried"``
        or ``"backfilled"``), ``x y width height`` (the box used) and ``score``
        (the detection's level weight; NaN when the box was carried or backfilled).

    Raises :class:`BadInputError` ``(source, "no face detected in N frames")``
    when no frame has a face, and for an empty frame sequence.
    """
    crops: list[np.ndarray | None] = []
    rows: list[dict] = []
    waiting: list[tuple[int, np.ndarray]] = []  # frames before the first detection
    last: Box | None = None
    for position, frame in enumerate(frames):
        index = position if frame_indices is None else int(frame_indices[position])
        found = detect_faces(frame, min_score)
        if found:
            box, score = found[0]
            status = "detected"
        elif last is not None:
            box, score, status = last, float("nan"), "carried"
        else:
            waiting.append((position, frame))
            crops.append(None)
            rows.append({"frame": index, "status": "backfilled", "score": float("nan")})
            continue
        if last is None:
            for waiting_position, waiting_frame in waiting:
                crops[waiting_position] = crop_face(waiting_frame, box, size)
                rows[waiting_position].update(zip(("x", "y", "width", "height"), box))
            waiting.clear()
        last = box
        crops.append(crop_face(frame, box, size))
        rows.append({"frame": index, "status": status, "score": score, **dict(zip(("x", "y", "width", "height"), box))})
    if not rows:
        raise BadInputError(source, "no frames")
    if last is None:
        raise BadInputError(source, f"no face detected in {len(rows)} frame{'' if len(rows) == 1 else 's'}")
    info = pd.DataFrame(rows, columns=["frame", "status", "x", "y", "width", "height", "score"])
    info[["x", "y", "width", "height"]] = info[["x", "y", "width", "height"]].astype(int)
    return np.stack(crops), info


def clip_face_crops(path: str | Path, config: Config) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Face crops of every ``config.frame_step``-th frame of a video clip.

    Parameters
    ----------
    path : a video file PyAV can decode (AVI/MJPEG for the synthetic corpora).
    config : uses ``face_size`` (64) and ``frame_step`` (1 = every frame);
        ``face_min_score`` (default :data:`MIN_SCORE`).

    Returns
    -------
    crops : uint8 ``(n_kept, face_size, face_size, 3)`` RGB.
    frame_indices : int64 ``(n_kept,)``, each crop's frame in the clip (0, step, 2 step, ...).
    info : :func:`face_track`'s per-frame table.

    Raises :class:`BadInputError` for a missing, empty or undecodable clip, a
    clip without frames, and a clip in which no kept frame shows a face.
    """
    indices: list[int] = []

    def frames() -> Iterable[np.ndarray]:
        for index, frame in iter_video_frames(path, config.frame_step):
            indices.append(index)
            yield frame

    # ``indices`` fills as the frames stream, so it is complete up to each frame face_track sees
    crops, info = face_track(frames(), indices, size=config.face_size, min_score=score_threshold(config),
                             source=str(path))
    return crops, np.asarray(indices, dtype=np.int64), info


def image_face_crop(path: str | Path, config: Config, already_cropped: bool = False) -> np.ndarray:
    """The face of a still image as uint8 ``(face_size, face_size, 3)`` RGB.

    ``already_cropped=True`` skips detection and resizes the whole image (for
    corpora distributed as face crops). Otherwise the highest-scoring face is
    cut out; an image without one raises :class:`BadInputError`.
    """
    path = Path(path)
    check_file(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise BadInputError(path, "cannot decode image")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if already_cropped:
        return crop_face(image, (0, 0, image.shape[1], image.shape[0]), config.face_size)
    found = detect_faces(image, score_threshold(config))
    if not found:
        raise BadInputError(path, "no face detected in 1 frame")
    return crop_face(image, found[0][0], config.face_size)

