"""Synthetic corpora in the real corpora's layouts: speech, faces, audio-visual clips.

* :mod:`mtl.synthetic.speech`  -- source-filter speech whose prosody carries emotion
* :mod:`mtl.synthetic.faces`   -- faces whose action units carry emotion
* :mod:`mtl.synthetic.video`   -- AVI clips (MJPEG + PCM sound track)
* :mod:`mtl.synthetic.corpora` -- :func:`make_corpus`: eNTERFACE'05, SAVEE, EMO-DB stand-ins
"""

from __future__ import annotations

from pathlib import Path

from mtl.config import Config
from mtl.synthetic.corpora import CORPORA, SIZES, default_root, make_corpus


def ensure_corpus(name: str, config: Config) -> Path:
    """The synthetic corpus ``name`` at ``config.synthetic_size`` (seed 0), generated on first use."""
    return make_corpus(name, size=config.synthetic_size, seed=0)


__all__ = ["CORPORA", "SIZES", "default_root", "ensure_corpus", "make_corpus"]
