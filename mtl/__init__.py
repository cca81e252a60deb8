"""mtl: a reproducible companion to "Meta-transfer learning for emotion recognition".

The package reads in the order the data flows:

    corpora  ->  features  ->  pathnet  ->  (evolution / transfer)  ->  experiments  ->  results  ->  book

* :mod:`mtl.corpora`     tidy tables of the emotion corpora (real layouts, or your own manifest)
* :mod:`mtl.synthetic`   synthetic corpora written in the real layouts (the embedded default data)
* :mod:`mtl.features`    log-Mel segments and Viola-Jones face crops, cached on disk
* :mod:`mtl.pathnet`     PathNet, the microbial genetic algorithm, transfer and baselines
* :mod:`mtl.evaluation`  cross-validation protocols and metrics
* :mod:`mtl.experiments` the paper's experiments as functions that write result records
* :mod:`mtl.results`     result records, the paper's reported numbers, tables
* :mod:`mtl.plots`       learning curves, pathway drawings, confusion matrices

One configuration object, :class:`mtl.config.Config`, holds the paper's
hyperparameters; :func:`mtl.config.get_profile` derives the ``smoke``,
``default`` and ``paper`` profiles from it.
"""

from mtl.config import Config, get_profile, PROFILES

__version__ = "0.1.0"
__all__ = ["Config", "get_profile", "PROFILES", "__version__"]
