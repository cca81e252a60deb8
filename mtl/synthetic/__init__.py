"""Synthetic corpora in the real corpora's layouts: speech, faces, audio-visual clips.

* :mod:`mtl.synthetic.speech`  -- source-filter speech whose prosody carries emotion
* :mod:`mtl.synthetic.faces`   -- faces whose action units carry emotion (clips written by :mod:`mtl.media`)
* :mod:`mtl.synthetic.corpora` -- :func:`make_corpus`: eNTERFACE'05, SAVEE, EMO-DB stand-ins

Which corpora have a stand-in is on their cards (:mod:`mtl.corpora.registry`).
"""

from __future__ import annotations

from mtl.synthetic.corpora import SIZES, default_root, make_corpus

__all__ = ["SIZES", "default_root", "make_corpus"]
