"""Checkpoints and saved models that load without unpickling arbitrary objects.

A state file is ``torch.save`` of ``{"format": str, "meta": str, "tensors":
{name: Tensor}, "digest": str, "nonfinite": [name, ...]}``: metadata as one
JSON string, tensors in a flat dict. It is written atomically
(:func:`mtl.io.atomic_write`) and read with ``torch.load(weights_only=True)``,
which refuses anything but tensors and plain containers.

Integrity. ``digest`` is the SHA-1 of the format, the metadata and every
tensor's name, dtype, shape and bytes (:func:`state_digest`); ``nonfinite``
names the floating tensors that held NaN or infinities when saved (a run
that diverged). :func:`load_state` recomputes the digest and checks that
every other floating tensor is finite, so a file changed since it was
written -- damaged bytes, weights overwritten with NaN -- raises
:class:`StateFileError` instead of resuming a run or transferring from it.
Files written before the digest existed (no ``digest`` key) get the finite
check only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtl.errors import MtlError
from mtl.io import atomic_write


class StateFileError(MtlError, ValueError):
    """A checkpoint or model file cannot be used (says which file and why)."""


def save_state(path: str | Path, kind: str, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    """Write ``meta`` (JSON-serialisable) and ``tensors`` to ``path`` atomically.

    Parameters
    ----------
    path : str or Path
        Destination file (parent folders are created).
    kind : str
        Format tag checked by :func:`load_state`, e.g. ``"mtl.pathnet.evolve/1"``.
    meta : dict
        Plain JSON data (numpy scalars and arrays are converted).
    tensors : dict of str to torch.Tensor
    """
    payload = {"format": kind, "meta": json.dumps(meta, default=_plain, sort_keys=True),
               "tensors": {name: t.detach().cpu().clone() for name, t in tensors.items()}}
    payload["digest"] = state_digest(kind, payload["meta"], payload["tensors"])
    payload["nonfinite"] = sorted(name for name, t in payload["tensors"].items() if not _finite(t))
    with atomic_write(path, "wb") as handle:
        torch.save(payload, handle)


def load_state(path: str | Path, kind: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(meta, tensors)`` from a file written by :func:`save_state` with the same ``kind``.

    Raises :class:`StateFileError` (naming the file and the reason) for a file
    that cannot be read, is of another kind, or fails the integrity checks of
    the module docstring.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable files
        raise StateFileError(f"{path}: not a readable state file ({type(error).__name__}: {error})") from error
    if not isinstance(payload, dict) or payload.get("format") != kind:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise StateFileError(f"{path}: expected a {kind!r} file, found {found!r}")
    tensors = payload.get("tensors")
    if not isinstance(payload.get("meta"), str) or not isinstance(tensors, dict) or not all(
            isinstance(t, torch.Tensor) for t in tensors.values()):
        raise StateFileError(f"{path}: a {kind!r} file without its metadata or tensors")
    if "digest" in payload and payload["digest"] != state_digest(kind, payload["meta"], tensors):
        raise StateFileError(f"{path}: content digest mismatch (the file changed after it was written)")
    expected_nonfinite = set(payload.get("nonfinite", ()))
    damaged = sorted(name for name, t in tensors.items() if name not in expected_nonfinite and not _finite(t))
    if damaged:
        raise StateFileError(f"{path}: NaN or infinite values in tensor(s) {', '.join(damaged[:5])}"
                             f"{' ...' if len(damaged) > 5 else ''}")
    try:
        return json.loads(payload["meta"]), tensors
    except json.JSONDecodeError as error:
        raise StateFileError(f"{path}: its metadata is not JSON ({error})") from error


def state_digest(kind: str, meta: str, tensors: dict[str, torch.Tensor]) -> str:
    """SHA-1 (hex) of a state file's format tag, metadata string and tensors (names, dtypes, shapes, bytes)."""
    digest = hashlib.sha1(kind.encode())
    digest.update(meta.encode())
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _finite(tensor: torch.Tensor) -> bool:
    """True unless ``tensor`` is floating point and holds a NaN or an infinity."""
    return not tensor.is_floating_point() or bool(torch.isfinite(tensor).all())


def net_tensors(state_dict: dict[str, torch.Tensor], prefix: str = "net.") -> dict[str, torch.Tensor]:
    """A network's ``state_dict`` with names prefixed, to store beside other tensors."""
    return {prefix + name: tensor for name, tensor in state_dict.items()}


def strip_prefix(tensors: dict[str, torch.Tensor], prefix: str = "net.") -> dict[str, torch.Tensor]:
    """The tensors whose names start with ``prefix``, without it."""
    return {name[len(prefix):]: tensor for name, tensor in tensors.items() if name.startswith(prefix)}


def data_fingerprint(X: torch.Tensor, y: torch.Tensor) -> str:
    """A short hash identifying a training set: shape, all labels, 16 spread-out samples."""
    digest = hashlib.sha1(str(tuple(X.shape)).encode())
    digest.update(y.cpu().numpy().tobytes())
    rows = np.unique(np.linspace(0, X.shape[0] - 1, 16).astype(np.int64))
    digest.update(X[torch.from_numpy(rows).to(X.device)].cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
