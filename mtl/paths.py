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

import os
import re
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


def _symbolic_folders() -> list[tuple[str, Path]]:
    """(label, folder) of the data root, the cache, the results and the project (label ""), deepest first."""
    folders = [("$MTL_DATA_ROOT", data_root()), ("$MTL_CACHE_DIR", cache_dir()),
               ("$MTL_RESULTS_DIR", results_dir()), ("", project_root())]
    return sorted(folders, key=lambda item: len(item[1].parts), reverse=True)


def portable_path(path: str | Path) -> str:
    """``path`` written without any folder of this machine, for records and the book.

    Inside the data root, the cache or the results folder it is written from
    that folder's variable (``$MTL_DATA_ROOT/emodb``, whether the variable is
    set or the default applies); elsewhere inside the project, relative to it
    (``notebooks/data.md``); outside all of them, as its last two parts after
    ``…/``. The deepest folder that holds ``path`` wins.

    >>> portable_path(data_root() / "emodb")
    '$MTL_DATA_ROOT/emodb'
    """
    try:
        path = Path(path).expanduser().resolve()
    except (RuntimeError, OSError):  # a symlink loop (RuntimeError before Python 3.13): named as given, made absolute
        path = Path(os.path.abspath(Path(path).expanduser()))
    for label, folder in _symbolic_folders():
        if path == folder or folder in path.parents:
            relative = path.relative_to(folder).as_posix()
            if not label:
                return relative
            return label if relative == "." else f"{label}/{relative}"
    return "…/" + "/".join(path.parts[-2:])


def portable_paths_in(text: str) -> str:
    """``text`` (a log line, a warning, a table) with every folder of :func:`portable_path` written as it does.

    ``<cache>/synthetic/savee/a.wav`` becomes ``$MTL_CACHE_DIR/synthetic/savee/a.wav``;
    :mod:`mtl.notebooks` passes every output of an executed notebook through this.
    """
    for label, folder in _symbolic_folders():
        pattern = re.compile(re.escape(str(folder)) + r"(/|(?![\w.-]))")
        text = pattern.sub(lambda m: (f"{label}/" if label else "") if m.group(1) else (label or "."), text)
    return text
