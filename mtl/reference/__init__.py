"""Reference methods beside PathNet, on the same folds and into the same records.

``ReferenceCell`` (:mod:`mtl.reference.cells`) runs one of
``REFERENCE_METHODS`` -- linear SVM and logistic regression on utterance
functionals (:mod:`~mtl.reference.linear`, :mod:`~mtl.features.functionals`),
1-nearest-neighbour (:mod:`~mtl.reference.neighbours`) and a compact CNN
(:mod:`~mtl.reference.cnn`) on the segments -- on the folds of a PathNet
scratch cell; ``mtl sweep --reference ...`` runs a grid of them.
``DiagnosedCell`` (:mod:`mtl.reference.diagnosed`) is a PathNet cell whose
record keeps the genetic algorithm's diagnostics (``mtl sweep --ga-diagnostics``).
"""

from mtl.reference.cells import REFERENCE_METHODS, ReferenceCell, reference_cells, run_reference_cell
from mtl.reference.diagnosed import DiagnosedCell
from mtl.features.functionals import FUNCTIONAL_NAMES, functionals_for, utterance_functionals

__all__ = ["DiagnosedCell", "REFERENCE_METHODS", "ReferenceCell", "reference_cells", "run_reference_cell", "FUNCTIONAL_NAMES",
           "functionals_for", "utterance_functionals"]
