"""Figures of the corpora and their features, for the data chapter: recordings per emotion, log-Mel images,
face crops and the face detector's fallback.

Like :mod:`mtl.plots` (which re-exports them), every function returns a
:class:`~matplotlib.figure.Figure` that pyplot does not track. Inputs are the
corpus tables of :func:`mtl.chapters.corpus_tables` (keyed by corpus and
modality) and a :class:`~mtl.config.Config` for the feature settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from mtl.corpora import CORPORA
from mtl.corpora.labels import paper_order
from mtl.errors import BadInputError, ConfigError
from mtl.features.audio import utterance_segments
from mtl.features.faces import clip_face_crops, face_track, score_threshold
from mtl.synthetic.faces import random_identity, render_blank_face, render_clip

__all__ = ["class_distribution", "logmel_examples", "face_crop_examples", "face_fallback_example"]

log = logging.getLogger(__name__)


def _draw_readable(paths: pd.Series, read: Callable[[str], Any], rng: np.random.Generator) -> tuple[str, Any] | None:
    """A file of ``paths`` drawn at random and what ``read`` makes of it; None when no file can be read.

    The experiments skip a bad file, so a figure does too: the draw moves on
    to the next file (in table order, wrapping round) and says which it passed over.
    """
    first = int(rng.integers(len(paths)))
    for offset in range(len(paths)):
        path = paths.iloc[(first + offset) % len(paths)]
        try:
            return path, read(path)
        except BadInputError as error:
            log.warning("left out of the figure: %s", error)
    return None


def class_distribution(tables: Mapping[tuple[str, str], Any]) -> Figure:
    """Files per emotion of each corpus (one panel per corpus and modality), in the paper's class order."""
    n = len(tables)
    columns = min(n, 3)
    rows = -(-n // columns)
    fig = Figure(figsize=(3.3 * columns, 2.9 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, ((name, modality), table) in zip(axes.flat, tables.items()):
        counts = table["emotion"].value_counts()
        order = paper_order(counts.index)
        ax.barh(range(len(order)), [counts[c] for c in order], color="tab:blue")
        ax.set_yticks(range(len(order)), order)
        ax.invert_yaxis()
        ax.set_xlabel("files")
        ax.set_title(f"{CORPORA[name].title}, {modality}\n({table.attrs.get('kind', '?')})", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Recordings per emotion")
    return fig


def logmel_examples(tables: Mapping[tuple[str, str], Any], config: Any, corpus: str = "emodb",
                    emotions: Sequence[str] = ("anger", "sadness", "neutral"), seed: int = 0) -> Figure:
    """The 3-channel log-Mel image (static, delta, delta-delta) of one segment per emotion of ``corpus``.

    One utterance per emotion is drawn at random (``seed``) from the corpus's
    audio table; its middle segment is shown. Rows are emotions, columns
    channels; the title says whether the recordings are real or synthetic.
    """
    if (corpus, "audio") not in tables:
        raise ConfigError(f"{corpus} (audio) is not among this run's corpora: "
                          f"{', '.join(f'{n} ({m})' for n, m in tables)}")
    table = tables[(corpus, "audio")]
    kind = table.attrs.get("kind", "?")
    rng = np.random.default_rng(seed)
    emotions = [e for e in emotions if (table["emotion"] == e).any()]
    if not emotions:
        raise ConfigError("none of the requested emotions is in the table")
    fig = Figure(figsize=(8.4, 2.5 * len(emotions)), layout="constrained")
    axes = fig.subplots(len(emotions), 3, squeeze=False)
    for row, emotion in zip(axes, emotions):
        drawn = _draw_readable(table.loc[table["emotion"] == emotion, "path"],
                               lambda path: utterance_segments(path, config), rng)
        if drawn is None:
            row[0].set_title(f"{emotion}: no readable recording", fontsize=9)
            continue
        path, segments = drawn
        image = segments[len(segments) // 2]
        for ax, channel, name in zip(row, range(3), ("static (dB)", "delta", "delta-delta")):
            shown = ax.imshow(image[..., channel], origin="lower", aspect="auto",
                              cmap="magma" if channel == 0 else "coolwarm")
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
            ax.set_title(f"{emotion}: {name}", fontsize=9)
            ax.set_xlabel("frame (10 ms)")
            ax.set_ylabel("Mel band")
        row[0].text(0.0, -0.38, Path(path).name, transform=row[0].transAxes, fontsize=7, color="0.4")
    what = ("real recordings" if kind == "real" else
            "synthetic speech: the real corpus is not under the data root")
    fig.suptitle(f"{CORPORA[corpus].title} ({what}): the middle 655 ms segment of one utterance per emotion")
    return fig


def face_crop_examples(tables: Mapping[tuple[str, str], Any], config: Any, seed: int = 0) -> Figure:
    """One 64 x 64 face crop per emotion (the last kept frame of a random clip) for every video corpus.

    Rows are corpora, columns emotions in the paper's order; crops come from
    :func:`mtl.features.faces.clip_face_crops` exactly as the experiments see them.
    """
    videos = {name: table for (name, modality), table in tables.items() if modality == "video"}
    if not videos:
        raise ConfigError("no video corpus among the tables (eNTERFACE and SAVEE have video)")
    emotions = paper_order({e for table in videos.values() for e in table["emotion"].unique()})
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(1.45 * len(emotions) + 0.6, 1.75 * len(videos)), layout="constrained")
    axes = fig.subplots(len(videos), len(emotions), squeeze=False)
    for r, (row, (name, table)) in enumerate(zip(axes, videos.items())):
        for ax, emotion in zip(row, emotions):
            ax.set_xticks([])
            ax.set_yticks([])
            clips = table.loc[table["emotion"] == emotion, "path"]
            drawn = None if clips.empty else _draw_readable(clips, lambda path: clip_face_crops(path, config)[0], rng)
            if drawn is None:
                ax.set_facecolor("0.93")
            else:
                ax.imshow(drawn[1][-1])
            if r == 0:
                ax.set_title(emotion, fontsize=9)
        row[0].set_ylabel(f"{CORPORA[name].title}\n({table.attrs.get('kind', '?')})", fontsize=9)
    fig.suptitle("Face crops (64 × 64) per emotion, at the apex of a clip")
    return fig


def face_fallback_example(config: Any, seed: int = 0, n_frames: int = 10,
                          featureless: Sequence[int] = (0, 1, 5, 6)) -> tuple[Figure, pd.DataFrame]:
    """The detector's fallback (§3.1) on a synthetic clip whose ``featureless`` frames show no face.

    A synthetic person moves towards a happy expression over ``n_frames``
    frames; the frames listed in ``featureless`` are replaced by the same head
    drawn without eyes, brows, nose or mouth, which the detector (almost
    always) rejects. :func:`mtl.features.faces.face_track` then backfills the
    frames before the first detection from it and carries the last box
    forward over later misses. Returns the figure (frames with their boxes,
    and the crops) and the per-frame table.
    """
    rng = np.random.default_rng(seed)
    identity = random_identity(rng)
    frames, _, _ = render_clip(identity, "happiness", n_frames, rng)
    for index in featureless:
        if 0 <= index < n_frames:
            frames[index] = render_blank_face(identity, rng, size=frames.shape[1:3])
    crops, info = face_track(frames, size=config.face_size, min_score=score_threshold(config))
    colours = {"detected": "tab:green", "carried": "tab:orange", "backfilled": "tab:purple"}
    fig = Figure(figsize=(1.35 * n_frames, 3.1), layout="constrained")
    axes = fig.subplots(2, n_frames, squeeze=False)
    for k, row in info.iterrows():
        top, bottom = axes[0, k], axes[1, k]
        top.imshow(frames[k])
        colour = colours[row["status"]]
        top.add_patch(Rectangle((row["x"], row["y"]), row["width"], row["height"], fill=False, edgecolor=colour,
                                linewidth=1.6, linestyle="-" if row["status"] == "detected" else "--"))
        top.set_title(f"frame {row['frame']}\n{row['status']}", fontsize=8, color=colour)
        bottom.imshow(crops[k])
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("frame + box", fontsize=8)
    axes[1, 0].set_ylabel("crop", fontsize=8)
    fig.suptitle("Face detection with the paper's fallback: frames without a face reuse the last detected box")
    return fig, info
