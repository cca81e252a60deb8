"""Corpus cards: a small YAML file declares one corpus of your own, and its name works everywhere.

A card (``my_faces.yaml``)::

    name: my_faces                 # lower-case letters, digits, '_'; used in cells, records, tables
    title: My faces                # optional; how tables write it (default: the name)
    root: images                   # the corpus folder, relative to the card's folder (default: the card's folder);
                                   # ${VAR} is an environment variable (${MTL_DATA_ROOT}: the data root)
    modality: image                # audio, video or image
    pattern:                       # exactly one of manifest, folders, pattern
      glob: "*/*.png"
      regex: '(?P<speaker>S\\d+)/(?P<emotion>[A-Z]{2})(?P<utterance>\\d+)_\\d+\\.png'
    labels: {AN: anger, HA: happiness, CO: contempt}   # codes or folder names -> emotion names
    faces: cropped                 # image/video: detect (default) or cropped (resize only)
    attributes: [au12]             # optional extra per-sample columns (manifest columns, regex groups)
    synthetic: false               # optional; true: generated stand-ins, not recordings (runs are marked synthetic)

The sources of samples (:mod:`mtl.corpora.custom`): ``manifest: list.csv``
(a CSV under ``root``), ``folders: <emotion>/<speaker>/<file>`` (a tree
layout), or ``pattern: {glob, regex}`` (named groups ``emotion``, optional
``speaker``, ``utterance`` and any other field). ``labels`` values outside
the nine canonical names are declared and kept (:func:`~mtl.corpora.labels.declare_emotion`).
Quote numeric codes (``"01": neutral``): YAML reads ``01`` as the number 1.

``root`` may name environment variables as ``${NAME}``, so that a card
reaches shared data without a copy (``root: ${MTL_DATA_ROOT}/ravdess-speech-16k``).
The package's own folders, ``${MTL_DATA_ROOT}``, ``${MTL_CACHE_DIR}`` and
``${MTL_RESULTS_DIR}``, stand for what :mod:`mtl.paths` resolves (their
defaults when unset); any other variable must be set.

:func:`register_card` reads a card, lists its files once (its classes are
the emotions found) and registers it (:func:`~mtl.corpora.registry.register_corpus`;
its folder is the absolute root). :func:`resolve_corpus` turns any corpus
spec into a registered name: a registered name as it is, a card path, or a
manifest CSV or a folder (whose card is inferred and printed). Every card
registered is also recorded in the environment variable :data:`CARDS_ENV`,
which :mod:`mtl.corpora` reads at import: worker processes (spawned, Dask)
register the same cards. Every error names the card, the key and the reason
(:class:`CardError`).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mtl.corpora.base import COLUMNS, OPTIONAL_COLUMNS, modality_of
from mtl.corpora.custom import SUFFIXES, layout_fields, load_folder_tree, load_manifest, load_pattern
from mtl.corpora.labels import LabelError, declare_emotion
from mtl.corpora.registry import CORPORA, CorpusCard, on_unknown_corpus, register_corpus
from mtl.errors import ConfigError, MtlError
from mtl.io import file_digest, stable_hash
from mtl.paths import cache_dir, data_root, portable_path, results_dir

log = logging.getLogger("mtl.corpora")

CARDS_ENV = "MTL_CORPUS_CARDS"
"""Environment variable listing every card path (or inferred manifest/folder) registered, ``os.pathsep``-separated."""
KEYS = ("name", "title", "root", "modality", "manifest", "folders", "pattern", "labels", "faces", "attributes",
        "synthetic")
"""The keys a card may have; any other is an error."""
SOURCES = ("manifest", "folders", "pattern")
"""The keys that say where samples come from; a card has exactly one."""
CARD_MODALITIES = ("audio", "video", "image")
FACES = ("detect", "cropped")
_CARD_SUFFIXES = (".yaml", ".yml")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
PACKAGE_FOLDERS = {"MTL_DATA_ROOT": data_root, "MTL_CACHE_DIR": cache_dir, "MTL_RESULTS_DIR": results_dir}
"""The variables a card's ``root`` may use unset: :mod:`mtl.paths` gives their folders (defaults included)."""


class CardError(ConfigError):
    """A corpus card cannot be used; the message names the card, the key and the reason."""

    def __init__(self, card: str | Path, key: str | None, reason: str):
        self.card, self.key, self.reason = str(card), key, reason
        super().__init__(f"corpus card {card}: {key + ': ' if key else ''}{reason}")


def read_card(path: str | Path) -> dict[str, Any]:
    """The checked content of the card at ``path``: its keys, ``root`` made absolute, ``labels`` canonical.

    Raises :class:`CardError` for an unreadable file, a missing or unknown
    key, a bad value, or a root that is not a folder.
    """
    path = Path(path).expanduser().resolve()
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CardError(path, None, f"cannot be read ({error})") from error
    if not isinstance(content, dict):
        raise CardError(path, None, "must be a YAML mapping of keys (name, root, modality, ...)")
    return _check(path, content)


def _check(path: Path, content: Mapping[str, Any]) -> dict[str, Any]:
    unknown = [str(k) for k in content if k not in KEYS]
    if unknown:
        raise CardError(path, unknown[0], f"unknown key (a card has {', '.join(KEYS)})")
    card = dict(content)
    for key in ("name", "modality"):
        if not isinstance(card.get(key), str) or not card[key].strip():
            raise CardError(path, key, "missing (required: name, modality and one of manifest, folders, pattern)")
    if not _IDENTIFIER.match(card["name"]):
        raise CardError(path, "name", f"{card['name']!r} must be lower-case letters, digits and '_'")
    if card["modality"] not in CARD_MODALITIES:
        raise CardError(path, "modality", f"{card['modality']!r} is not one of {', '.join(CARD_MODALITIES)}")
    card.setdefault("title", card["name"])
    written = str(card.get("root", "."))
    root = path.parent / Path(expand_variables(written, path, "root")).expanduser()
    if not root.is_dir():
        shown = f"{root}" + (f" (written {written})" if "$" in written else "")
        raise CardError(path, "root", f"{shown} is not a folder (root is relative to the card's folder)")
    card["root"] = root.resolve()
    sources = [k for k in SOURCES if k in card]
    if len(sources) != 1:
        raise CardError(path, "/".join(sources) or "manifest", "a card needs exactly one of manifest, folders, "
                                                                f"pattern (found {len(sources)})")
    card["source"] = sources[0]
    _check_source(path, card)
    card["labels"] = _labels(path, card.get("labels"))
    faces = card.setdefault("faces", "detect")
    if faces not in FACES:
        raise CardError(path, "faces", f"{faces!r} is not one of {', '.join(FACES)}")
    if faces == "cropped" and card["modality"] == "audio":
        raise CardError(path, "faces", "an audio corpus has no faces")
    card["attributes"] = _attributes(path, card)
    if not isinstance(card.setdefault("synthetic", False), bool):
        raise CardError(path, "synthetic", f"{card['synthetic']!r} must be true or false")
    return card


def expand_variables(text: str, card: str | Path, key: str) -> str:
    """``text`` with every ``${NAME}`` replaced by that environment variable (see the module docstring).

    :data:`PACKAGE_FOLDERS` are the folders :mod:`mtl.paths` resolves; any
    other variable unset (or empty) is a :class:`CardError` naming the card,
    the key and the variable.
    """
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in PACKAGE_FOLDERS:
            return str(PACKAGE_FOLDERS[name]())
        if not os.environ.get(name):
            raise CardError(card, key, f"the environment variable {name} (written ${{{name}}}) is not set")
        return os.environ[name]

    return _VARIABLE.sub(value, text)


def _check_source(path: Path, card: dict[str, Any]) -> None:
    """Check the card's one source key (its value's type, the manifest's existence, the regex)."""
    source, value = card["source"], card[card["source"]]
    if source == "manifest":
        if not isinstance(value, str) or not (card["root"] / value).is_file():
            raise CardError(path, "manifest", f"{value!r} is not a CSV file under the root {card['root']}")
    elif source == "folders":  # empty: <emotion>/<file> or <emotion>/<speaker>/<file>
        try:
            layout_fields(value if value is None else str(value))
        except ConfigError as error:
            raise CardError(path, "folders", str(error)) from error
    else:
        if not isinstance(value, dict) or set(value) != {"glob", "regex"}:
            raise CardError(path, "pattern", "must be a mapping with exactly the keys glob and regex")
        try:
            regex = re.compile(str(value["regex"]))
        except re.error as error:
            raise CardError(path, "pattern.regex", f"not a regular expression ({error})") from error
        if "emotion" not in regex.groupindex:
            raise CardError(path, "pattern.regex", "needs a named group (?P<emotion>...)")


def _labels(path: Path, labels: Any) -> dict[str, str]:
    """The card's code -> emotion map, each name canonical or declared."""
    if labels is None:
        return {}
    if not isinstance(labels, dict):
        raise CardError(path, "labels", "must be a mapping of codes to emotion names")
    out = {}
    for code, name in labels.items():
        if not isinstance(code, str):
            raise CardError(path, "labels", f"code {code!r} was read as a {type(code).__name__}: quote it ('{code}')")
        try:
            out[code] = declare_emotion(str(name))
        except LabelError as error:
            raise CardError(path, f"labels.{code}", str(error)) from error
    return out


def _attributes(path: Path, card: dict[str, Any]) -> tuple[str, ...]:
    attributes = card.get("attributes") or []
    if not isinstance(attributes, list) or not all(isinstance(a, str) and _IDENTIFIER.match(a) for a in attributes):
        raise CardError(path, "attributes", "must be a list of column names (lower-case letters, digits, '_')")
    clash = [a for a in attributes if a in (*COLUMNS, *OPTIONAL_COLUMNS, "recording")]
    if clash:
        raise CardError(path, "attributes", f"{', '.join(clash)} is a column every table has already")
    if attributes and card["source"] == "folders":
        raise CardError(path, "attributes", "a folder tree has no per-sample columns (use a manifest or a pattern)")
    if card["source"] == "pattern":
        groups = re.compile(str(card["pattern"]["regex"])).groupindex
        absent = [a for a in attributes if a not in groups]
        if absent:
            raise CardError(path, "attributes", f"{', '.join(absent)} is no named group of pattern.regex")
    return tuple(attributes)


def load_card_table(card: Mapping[str, Any], root: str | Path | None = None, strict: bool = False) -> pd.DataFrame:
    """The corpus table of a checked card (:func:`read_card`), read from ``root`` (default: the card's)."""
    root = Path(root) if root is not None else card["root"]
    modality, labels, name = card["modality"], card["labels"], card["name"]
    if card["source"] == "manifest":
        return load_manifest(root / card["manifest"], corpus=name, strict=strict, labels=labels,
                             attributes=card["attributes"], modality=modality)
    if card["source"] == "folders":
        return load_folder_tree(root, card["folders"], modality, corpus=name, strict=strict, labels=labels)
    return load_pattern(root, str(card["pattern"]["glob"]), str(card["pattern"]["regex"]), modality, corpus=name,
                        strict=strict, labels=labels)


def _loader(card: Mapping[str, Any], root: Path, modality: str, strict: bool) -> pd.DataFrame:
    return load_card_table(card, root, strict)  # a card has one modality: the registry has checked it


def register_card(path: str | Path, card: Mapping[str, Any] | None = None, digest: str | None = None) -> CorpusCard:
    """Read (or take the checked ``card`` of) the card at ``path``, list its files and register it.

    Its classes are the emotions its files have; a card that finds no usable
    file is a :class:`CardError` (with the first reasons files were
    skipped). Registering the same card again replaces it; another card
    (or a built-in corpus) of the same name is an error.
    """
    path = Path(path).expanduser().resolve()
    card = dict(card) if card is not None else read_card(path)
    where = card.get("_spec", path)
    known = CORPORA.get(card["name"])
    if known is not None and known.card != portable_path(where):
        raise CardError(path, "name", f"{card['name']!r} is already the name of "
                                      f"{known.card or 'a built-in corpus'}; choose another")
    try:
        table = load_card_table(card)
    except (MtlError, re.error) as error:
        raise CardError(path, card["source"], str(error)) from error
    if table.empty:
        skipped = table.attrs.get("skipped", [])
        reasons = "; ".join(f"{Path(p).name}: {r}" for p, r in skipped[:3]) or "no file found"
        raise CardError(path, card["source"], f"no usable file under {card['root']} ({len(skipped)} skipped: {reasons})")
    visual = card["modality"] != "audio"  # images feed the visual (face) stream, as video frames do
    registered = register_corpus(CorpusCard(
        card["name"], str(card["root"]), ("video",) if visual else ("audio",), tuple(table["emotion"].unique()),
        str(card["title"]), partial(_loader, card), faces_cropped=card["faces"] == "cropped",
        card=portable_path(where), card_digest=digest or file_digest(path), generated=card["synthetic"]),
        replace=True)
    _remember(str(where))
    return registered


def infer_card(path: str | Path) -> dict[str, Any]:
    """The card a manifest CSV or a class folder implies: name from the file or folder (lower-case, sanitised),
    modality from its files; a folder is ``<emotion>/<file>`` or ``<emotion>/<speaker>/<file>``."""
    path = Path(path).expanduser().resolve()
    name = re.sub(r"[^a-z0-9_]+", "_", (path.stem if path.suffix.lower() == ".csv" else path.name).lower()).strip("_")
    card: dict[str, Any] = {"name": name or "corpus", "root": ".", "modality": "image"}
    if path.suffix.lower() == ".csv":
        card["manifest"] = path.name
        rows = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=lambda c: c.strip().lower() == "path")
        kinds = [modality_of(p) for p in rows.iloc[:, 0]] if rows.shape[1] else []
        base = path.parent
    else:
        card["folders"] = None  # <emotion>/<file> or <emotion>/<speaker>/<file>
        kinds = [modality_of(p) for p in path.rglob("*") if p.suffix.lower() in set().union(*SUFFIXES.values())]
        base = path
    found = [k for k in kinds if k]
    card["modality"] = max(set(found), key=found.count) if found else "image"
    return {**_check(base / f"{card['name']}.yaml", card), "_spec": path}


def resolve_corpus(spec: str | Path) -> str:
    """The registered name of ``spec``: a registered name; a card (.yaml/.yml); a manifest (.csv) or folder.

    A card is registered on first use (:func:`register_card`); a manifest or
    folder gets an inferred card (:func:`infer_card`), printed on stderr.
    Raises :class:`~mtl.errors.ConfigError` for anything else.
    """
    text = str(spec).strip()
    if text in CORPORA:
        return text
    path = Path(text).expanduser()
    if path.suffix.lower() in _CARD_SUFFIXES and path.is_file():
        return register_card(path).name
    if (path.suffix.lower() == ".csv" and path.is_file()) or path.is_dir():
        return _register_inferred(path, announce=True).name
    raise ConfigError(f"unknown corpus {text!r}: use one of {', '.join(CORPORA)}, or the path of a corpus card "
                      "(.yaml), a manifest (.csv) or a class folder")


def _register_inferred(path: Path, announce: bool) -> CorpusCard:
    card = infer_card(path)
    shown = {k: (str(v) if k == "root" else v) for k, v in card.items()
             if k in KEYS and v not in ({}, ()) and (k != "synthetic" or v)}  # synthetic: false goes unsaid
    if announce:
        print(f"mtl: {path} read with the inferred corpus card:\n"
              + yaml.safe_dump(shown, sort_keys=False).rstrip(), file=sys.stderr)
    return register_card(path, card, digest=stable_hash(shown))


def _remember(spec: str) -> None:
    """Add ``spec`` to :data:`CARDS_ENV`, which spawned workers inherit and re-register from."""
    known = [s for s in os.environ.get(CARDS_ENV, "").split(os.pathsep) if s]
    if spec not in known:
        os.environ[CARDS_ENV] = os.pathsep.join([*known, spec])


def register_from_environment() -> None:
    """Register every card :data:`CARDS_ENV` lists that is not registered yet (what :mod:`mtl.corpora` does
    at import, and :func:`~mtl.corpora.registry.corpus_card` before it calls a name unknown)."""
    registered = {card.card for card in CORPORA.values()}
    for spec in filter(None, os.environ.get(CARDS_ENV, "").split(os.pathsep)):
        path = Path(spec)
        if portable_path(path) in registered:
            continue
        try:
            if path.suffix.lower() in _CARD_SUFFIXES:
                register_card(path)
            else:
                _register_inferred(path, announce=False)
        except MtlError as error:  # a card removed since: its corpus is unknown here, with the reason logged
            log.warning("%s lists %s, which cannot be registered: %s", CARDS_ENV, spec, error)


on_unknown_corpus(register_from_environment)
