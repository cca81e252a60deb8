"""Synthetic face image sequences, in a tree of coded names no built-in loader reads.

:func:`make_face_sequences` writes one take per subject, emotion and take
number as a folder of PNG frames::

    S01/AN1/00.png  S01/AN1/01.png ...  S01/AN2/00.png ...  S04/SU2/05.png

``S01`` is the subject, ``AN`` a two-letter emotion code (:data:`CODES`:
AN DI FE HA SA SU, eNTERFACE's six classes), ``1`` the take and ``00`` the
frame. A take is one clip of :func:`mtl.synthetic.faces.render_clip`: the
subject's face (one identity per subject) moving from neutral to the apex of
the emotion, so its first frames are close to neutral, as in real
sequence corpora. Frames are 128 x 128 RGB, the face not cropped.

=====  ========  =======  ==============  =================================
size   subjects  takes    frames a take   images
=====  ========  =======  ==============  =================================
full   4         2        6               4 x 6 emotions x 2 x 6 = 288
tiny   2         1        3               2 x 6 x 1 x 3 = 36
=====  ========  =======  ==============  =================================

Nothing reads this layout unless told how: the corpus card
``data/cards/face_sequences.yaml`` declares it with a pattern (subject,
code and take from each path; the frames of a take are one sequence) and a
``labels`` map of the codes. Writing is atomic as :func:`~mtl.synthetic.make_corpus`'s
(a hidden staging folder renamed at the end, ``synthetic.json`` with the
parameters, a ``.complete`` marker); a second call returns the folder at once.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mtl import paths
from mtl.errors import ConfigError
from mtl.io import write_json
from mtl.synthetic import faces
from mtl.synthetic.corpora import FRAME_SIZE, GENERATOR_VERSION, MANIFEST, MARKER, _install, _is_current

log = logging.getLogger("mtl.synthetic")

LAYOUT = "<subject>/<CODE><take>/<frame>.png"
CODES: dict[str, str] = {"AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happiness", "SA": "sadness",
                         "SU": "surprise"}
"""The two-letter emotion codes of the file names, and the emotions they stand for."""
SIZES: dict[str, tuple[int, int, int]] = {"full": (4, 2, 6), "tiny": (2, 1, 3)}
"""Size -> (subjects, takes per emotion, frames per take)."""
_LAYOUT_ID = 3  # seeds this layout's random streams (make_corpus's layouts use 0-2)


def default_root(size: str = "full", seed: int = 0) -> Path:
    """``cache_dir()/synthetic/face-sequences-<size>-seed<seed>``."""
    return paths.cache_dir() / "synthetic" / f"face-sequences-{size}-seed{seed}"


def make_face_sequences(root: str | Path | None = None, size: str = "full", seed: int = 0) -> Path:
    """Write (once) the synthetic face sequences and return their folder.

    Parameters
    ----------
    root : target folder; default :func:`default_root` (under ``MTL_CACHE_DIR``).
    size : ``"full"`` (288 frames, what the demonstration card reads) or ``"tiny"`` (36, for tests).
    seed : everything drawn follows from it; same seed, same pixels.
    """
    if size not in SIZES:
        raise ConfigError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    root = Path(root).expanduser().resolve() if root is not None else default_root(size, seed)
    if _is_current(root):
        return root
    started = time.perf_counter()
    subjects, takes, frames = SIZES[size]
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        for subject in range(1, subjects + 1):
            identity = faces.random_identity(np.random.default_rng([seed, _LAYOUT_ID, subject]))
            for index, (code, emotion) in enumerate(CODES.items()):
                for take in range(1, takes + 1):
                    rng = np.random.default_rng([seed, _LAYOUT_ID, subject, index, take])
                    clip, _, _ = faces.render_clip(identity, emotion, frames, rng, size=FRAME_SIZE)
                    folder = staging / f"S{subject:02d}" / f"{code}{take}"
                    folder.mkdir(parents=True)
                    for number, frame in enumerate(clip):
                        cv2.imwrite(str(folder / f"{number:02d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        write_json(staging / MANIFEST, dict(
            generator="mtl.synthetic", version=GENERATOR_VERSION, corpus="face_sequences", size=size, seed=seed,
            layout=LAYOUT, codes=CODES, subjects=subjects, takes=takes, frames_per_take=frames,
            n_sequences=subjects * len(CODES) * takes, n_images=subjects * len(CODES) * takes * frames,
            frame_size=list(FRAME_SIZE)))
        (staging / MARKER).write_text(f"{GENERATOR_VERSION}\n")
        _install(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("synthetic face sequences (%s, seed %d) in %.1f s at %s", size, seed, time.perf_counter() - started, root)
    return root
