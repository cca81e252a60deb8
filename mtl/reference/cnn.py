"""A compact CNN on the 64 x 64 x 3 segments, early-stopped on an inner validation split.

The network (:class:`CompactCNN`, about 25 k weights): 2 x 2 average pooling of
the input (64 x 64 -> 32 x 32), then three blocks of 3 x 3 convolution +
batch normalisation + ReLU with 16, 32 and 64 channels, the first two
followed by 2 x 2 max pooling, global average pooling, dropout 0.3 and a
linear layer to the classes. Adam (learning rate 1e-3), mini-batches of 64,
cross-entropy weighted by inverse class frequency.

Early stopping. The training part of the outer fold is split once more by
the outer protocol (:func:`mtl.reference.base.inner_folds`, inner fold 0
validates); the network trains on the rest for at most :data:`MAX_EPOCHS`
epochs and keeps the weights of the epoch with the best validation UAR,
stopping after :data:`PATIENCE` epochs without improvement. The held-out
fold is predicted once, at the end; the record pools its segment
probabilities per utterance as PathNet's are.

Inputs are standardised per element on the fitting rows. Everything runs
on ``config.device`` (:func:`mtl.pathnet.checks.torch_device`); weights and
batch order come from generators seeded by ``config.seed``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from mtl.config import Config
from mtl.evaluation import Standardizer, uar
from mtl.pathnet.checks import derived_seed, torch_device, torch_generator
from mtl.reference.base import ReferenceFit, inner_folds

__all__ = ["MAX_EPOCHS", "PATIENCE", "BATCH_SIZE", "CompactCNN", "fit_cnn"]

MAX_EPOCHS = 30
"""Most passes over the fitting rows."""
PATIENCE = 5
"""Epochs without a better validation UAR before training stops."""
BATCH_SIZE = 64
LEARNING_RATE = 1e-3


class CompactCNN(nn.Module):
    """Three convolution blocks and a linear classifier (module docstring); input ``(n, C, H, W)``."""

    def __init__(self, in_channels: int, n_classes: int):
        super().__init__()

        def block(a: int, b: int) -> list[nn.Module]:
            return [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU()]

        self.layers = nn.Sequential(nn.AvgPool2d(2), *block(in_channels, 16), nn.MaxPool2d(2),
                                    *block(16, 32), nn.MaxPool2d(2), *block(32, 64),
                                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _tensor(X: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2))).to(device)  # NHWC -> NCHW


@torch.no_grad()
def _proba(net: nn.Module, X: torch.Tensor) -> np.ndarray:
    net.eval()
    return torch.cat([torch.softmax(net(X[i:i + 512]), dim=1) for i in range(0, len(X), 512)]).cpu().numpy()


def fit_cnn(split: Any, config: Config, fold: int, n_classes: int) -> ReferenceFit:
    """Train :class:`CompactCNN` on ``split.train`` with early stopping; predict ``split.held_out``."""
    device = torch_device(config)
    part = split.samples.iloc[split.train]
    folds, notes = inner_folds(part, split.y[split.train], config.protocol, config.seed)
    fit_pos, val_pos = folds[0]
    fit_rows, val_rows = split.train[fit_pos], split.train[val_pos]
    scaler = Standardizer().fit(split.features.X, fit_rows)
    X_fit, X_val, X_test = (_tensor(scaler.transform(split.features.X, rows), device)
                            for rows in (fit_rows, val_rows, split.held_out))
    y_fit = torch.from_numpy(split.y[fit_rows]).to(device)
    torch.manual_seed(derived_seed(config.seed, "reference-cnn", "weights"))  # nn.Module init reads the global one
    net = CompactCNN(X_fit.shape[1], n_classes).to(device)
    counts = np.bincount(split.y[fit_rows], minlength=n_classes).astype(np.float32)
    weight = torch.from_numpy(np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / n_classes, 0.0)).float()
    loss_fn = nn.CrossEntropyLoss(weight=weight.to(device))
    optimiser = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    batches = torch_generator(config.seed, "reference-cnn", "batches")
    best, best_state, curve, stale = -1.0, None, [], 0
    for epoch in range(1, MAX_EPOCHS + 1):
        net.train()
        for batch in torch.randperm(len(y_fit), generator=batches).split(BATCH_SIZE):
            batch = batch.to(device)
            optimiser.zero_grad()
            loss_fn(net(X_fit[batch]), y_fit[batch]).backward()
            optimiser.step()
        score = uar(split.y[val_rows], _proba(net, X_val).argmax(axis=1))
        curve.append({"epoch": epoch, "val_uar": score})
        if score > best:
            best, stale = score, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= PATIENCE:
                break
    net.load_state_dict(best_state)
    details = {"best_epoch": max(curve, key=lambda p: p["val_uar"])["epoch"], "epochs": len(curve),
               "val_uar": best, "curve": curve, "n_fit": int(len(fit_rows)), "n_val": int(len(val_rows)),
               "n_weights": int(sum(p.numel() for p in net.parameters())), "input": "log-Mel segments"}
    return ReferenceFit(proba=_proba(net, X_test), y=split.y[split.held_out],
                        scored=split.samples.iloc[split.held_out], n_train=len(fit_rows), details=details,
                        notes=notes)
