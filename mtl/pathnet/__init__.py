"""PathNet, the microbial genetic algorithm, transfer and baselines (§3.3, §4.2).

Most users need :func:`train_source` and :class:`PathNetClassifier`::

    from mtl.config import get_profile
    from mtl.pathnet import PathNetClassifier, train_source

    config = get_profile("default")
    source = train_source(X_src, y_src, config)          # evolve on the source corpus (or a union)
    clf = PathNetClassifier(config, method="transfer", source=source).fit(X_tgt, y_tgt, X_val, y_val)
    clf.predict(X_test); clf.history_.to_frame()

``method`` is ``"scratch"``, ``"transfer"`` or ``"finetune"``. Inputs are
float32 ``(n, 64, 64, 3)`` or ``(n, 12288)`` arrays, already standardised by
the caller; labels are ints 0..C-1.

Lower level: :class:`PathNet` (the network, its batched forward and training
sessions), :func:`evolve` (the GA on one task), :func:`finetune`,
:func:`transfer_network`, the genotype helpers :func:`random_genotype`,
:func:`mutate`, :func:`active_modules`, :func:`frozen_modules`.
"""

from mtl.pathnet.checks import BadArgumentError
from mtl.pathnet.evolution import (BatchStream, EvolutionResult, History, best_individual, evolve, finetune,
                                  ga_diagnostics)
from mtl.pathnet.genotype import (Frozen, active_modules, check_frozen, check_genotype, frozen_modules, mutate,
                                  random_genotype)
from mtl.pathnet.model import PathNet
from mtl.pathnet.sessions import ConvSession, LinearSession, PathwaySession
from mtl.pathnet.state import StateFileError
from mtl.pathnet.transfer import PathNetClassifier, SourceModel, train_source, transfer_network

__all__ = [
    "PathNet", "PathwaySession", "LinearSession", "ConvSession",
    "PathNetClassifier", "SourceModel", "train_source", "transfer_network",
    "evolve", "finetune", "EvolutionResult", "History", "BatchStream", "best_individual", "ga_diagnostics",
    "random_genotype", "mutate", "active_modules", "frozen_modules", "check_genotype", "check_frozen", "Frozen",
    "BadArgumentError", "StateFileError",
]
