"""Features of the paper's §3.1-3.2, cached on disk.

* :mod:`mtl.features.audio` -- log-Mel segment images (64 Mel bands x 64 frames x static/delta/delta-delta)
* :mod:`mtl.features.faces` -- Viola-Jones (OpenCV Haar cascade) face crops, 64 x 64 x 3
* :mod:`mtl.features.cache` -- :func:`build_features`: a corpus table -> :class:`FeatureSet`,
  extracted in parallel once, memory-mapped afterwards
"""

from __future__ import annotations

from mtl.features.cache import FeatureSet, build_features, feature_key

__all__ = ["FeatureSet", "build_features", "feature_key"]
