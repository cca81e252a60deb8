"""Where data, caches and results live.

Every location can be overridden by an environment variable, so that a
notebook, a test or CI can point the same code at other folders:

=====================  ==============================================  ==========================
variable               meaning                                         default
=====================  ==============================================  ==========================
``MTL_DATA_ROOT``      folder holding real corpora (``emodb/`` ...)    ``<project>/data``
``MTL_CACHE_DIR``      synthetic corpora and feature caches            ``<project>/.cache``
``MTL_RESULTS_DIR``    result records written by experiment runs       ``<project>/results``
=====================  ==============================================  ==========================

``<project>`` is the checkout that holds this package (the folder with
``pyproject.toml``); for an installed copy outside a checkout it is the
current working directory.

What the package writes for others to read (records, the book) names these
folders symbolically, never by a path of the machine: :func:`portable_path`
turns ``<data root>/emodb`` into ``$MTL_DATA_ROOT/emodb``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout holding this package, else the current directory."""
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").is_file():
        return candidate
    return Path.cwd()


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def data_root() -> Path:
    """Folder of the real corpora (``MTL_DATA_ROOT``); it may not exist."""
    return _env_path("MTL_DATA_ROOT", project_root() / "data")


def cache_dir() -> Path:
    """Folder for synthetic corpora and feature caches (``MTL_CACHE_DIR``)."""
    return _env_path("MTL_CACHE_DIR", project_root() / ".cache")


def results_dir() -> Path:
    """Folder of result records (``MTL_RESULTS_DIR``)."""
    return _env_path("MTL_RESULTS_DIR", project_root() / "results")


_SYMBOLS = (("$MTL_DATA_ROOT", data_root), ("$MTL_CACHE_DIR", cache_dir), ("$MTL_RESULTS_DIR", results_dir),
            ("$PROJECT", project_root))


def portable_path(path: str | Path) -> str:
    """``path`` relative to the first folder of this table that holds it, named by its variable.

    ``$MTL_DATA_ROOT`` (:func:`data_root`), ``$MTL_CACHE_DIR``, ``$MTL_RESULTS_DIR``, then
    ``$PROJECT`` (:func:`project_root`); a path outside all of them keeps only its last
    part, so that no folder of the machine is ever written down.

    >>> portable_path(data_root() / "emodb")
    '$MTL_DATA_ROOT/emodb'
    """
    path = Path(path).expanduser().resolve()
    for symbol, folder in _SYMBOLS:
        with contextlib.suppress(ValueError):
            return "/".join((symbol, *path.relative_to(folder()).parts))
    return path.name
