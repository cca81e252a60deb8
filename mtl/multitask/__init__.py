"""Beside PathNet: multi-task emotion and facial action units with a residual CNN (Pons & Masip, 2018).

``network.py`` the residual CNN and its heads; ``loss.py`` the masked loss for
heterogeneous labels; ``estimator.py`` :class:`MultiTaskClassifier`;
``compound.py`` compound expressions (Du, Tao & Martinez, 2014); ``data.py``
AU occurrence labels of a corpus; ``experiment.py`` the cell kind on
PathNet's folds; ``chapter.py`` the chapter's plan and tables. The last
three import from later layers than the rest, so they are imported by
name, not from here.
"""

from mtl.multitask.estimator import DEFAULT_HEAD, MultiTaskClassifier
from mtl.multitask.loss import TASKS, multitask_loss
from mtl.multitask.network import ResidualBlock, ResidualNet

__all__ = ["DEFAULT_HEAD", "MultiTaskClassifier", "TASKS", "multitask_loss", "ResidualBlock", "ResidualNet"]
