"""Exceptions with messages that name the file and the reason."""

from __future__ import annotations

from pathlib import Path


class MtlError(Exception):
    """Base class of every error raised on purpose by :mod:`mtl`."""


class ConfigError(MtlError, ValueError):
    """A parameter is out of range or inconsistent with another one."""


class BadInputError(MtlError):
    """One input file cannot be used.

    The message always names the file and says why, e.g.
    ``"wav/03a01Fa.wav: zero-length audio"``. Batch jobs catch it, record the
    file in their skip report and go on with the next file.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MissingDataError(MtlError, FileNotFoundError):
    """A corpus root or data root does not exist (says which, and how to set it)."""
