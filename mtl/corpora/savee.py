"""SAVEE (Surrey Audio-Visual Expressed Emotion).

Audio as distributed, ``AudioData/<speaker>/<code><nn>.wav``, or the popular flat
re-packaging ``<speaker>_<code><nn>.wav``; video ``AudioVisualClip/<speaker>/<code><nn>.avi``.
Speakers DC JE JK KL (all male); codes a d f h n sa su; 15 clips per emotion
and 30 neutral per speaker, 480 per modality.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from mtl.corpora.base import TableBuilder, require_root
from mtl.errors import ConfigError

CORPUS = "savee"
FOLDER = "savee"
CODES: dict[str, str] = {
    "a": "anger", "d": "disgust", "f": "fear", "h": "happiness", "n": "neutral", "sa": "sadness", "su": "surprise",
}
SPEAKERS: tuple[str, ...] = ("DC", "JE", "JK", "KL")
AUDIO_FOLDER = "AudioData"
VIDEO_FOLDER = "AudioVisualClip"

_FLAT = re.compile(r"^(?P<speaker>[A-Za-z]{2})_(?P<code>[A-Za-z]{1,2})(?P<number>\d{2})$")
_NESTED = re.compile(r"^(?P<code>[A-Za-z]{1,2})(?P<number>\d{2})$")
_SPEAKER = re.compile(r"^[A-Za-z]{2}$")


def load_savee(root: str | Path, modality: str = "audio", strict: bool = False) -> pd.DataFrame:
    """The SAVEE table of one modality.

    ``modality="audio"`` reads ``root/AudioData/<speaker>/*.wav`` (or, without
    that folder, the flat ``<speaker>_<code><nn>.wav`` files anywhere under
    ``root``); ``"video"`` reads ``root/AudioVisualClip/<speaker>/*.avi``.
    Utterance ids are ``<speaker>_<code><nn>`` in both layouts.
    """
    if modality not in ("audio", "video"):
        raise ConfigError(f"SAVEE has modality 'audio' or 'video', got {modality!r}")
    root = require_root(root, CORPUS)
    folder, suffix = (AUDIO_FOLDER, ".wav") if modality == "audio" else (VIDEO_FOLDER, ".avi")
    base = root / folder if (root / folder).is_dir() else root
    table = TableBuilder(CORPUS, strict)
    for path in table.media_files(base, {suffix}):
        flat = _FLAT.match(path.stem)
        nested = _NESTED.match(path.stem)
        if flat is not None:
            speaker, code, number = flat["speaker"], flat["code"], flat["number"]
        elif nested is not None and _SPEAKER.match(path.parent.name):
            speaker, code, number = path.parent.name, nested["code"], nested["number"]
        else:
            table.skip(path, f"name does not follow SAVEE's <speaker>/<code><nn>{suffix} or "
                             f"<speaker>_<code><nn>{suffix} (speaker two letters, e.g. DC/sa03{suffix})")
            continue
        code = code.lower()
        if code not in CODES:
            table.skip(path, f"unknown SAVEE emotion code {code!r} (known: {' '.join(CODES)})")
            continue
        speaker = speaker.upper()
        table.add(path, modality, speaker, f"{speaker}_{code}{number}", CODES[code], code, gender="m")
    return table.build()
