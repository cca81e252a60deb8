"""Result records: the one layout every cell kind writes, built, checked, written and read here.

A record is a JSON file, one per cell, at the cell's ``record_path``
(``results_dir()/runs/<experiment>/<key>.json``). :func:`build_record` makes it
from a cell and a :class:`RunResult` (what one training run measured), for
every kind of cell: the paper's experiments, the ablation and its inner-fold
runs. The fields (:data:`RECORD_FIELDS`):

``schema`` ``cell_key`` ``experiment``
    Layout version (:data:`RECORD_SCHEMA`), the key of the cell, the label it is filed under.
``method`` ``sources`` ``target`` ``modality`` ``classes`` ``source_classes`` ``protocol`` ``seed`` ``fold``
    What was run (``fold`` is the outer fold).
``n_folds`` ``n_folds_requested``
    Folds the protocol gave, and the configuration's ``folds``.
``config`` ``config_differences``
    The whole configuration but ``device`` (where it ran, in ``timings``), and
    ``{field: [paper value, this value]}``.
``data``
    ``kinds`` (``{corpus: "real" | "synthetic"}``) and ``provenance`` per corpus
    (:func:`mtl.datasets.corpus_provenance`; ``root`` as :func:`mtl.paths.portable_path` writes it).
``code``
    Package version, git commit and dirty flag (:func:`code_version`).
``n_train`` ``n_test`` ``test_speakers`` ``metrics``
    Sizes of the two parts, the speakers scored, and :func:`mtl.evaluation.evaluate`'s metrics.
``learning_curve`` ``pathways`` ``source``
    Per generation ``generation``, ``best_fitness``, ``val_accuracy``, elapsed
    seconds; the target's (and source's) populations and best pathways; the
    source model's key, classes, size, fitness, curve and settings (None for scratch).
``notes`` ``timings`` ``created``
    Remarks on the run; seconds spent and the device the target (``device``) and
    source (``source_device``) trained on, ``"cpu"`` or ``"cuda:0 (<GPU name>)"``
    (records made before the device setting lack both: the CPU); the UTC time the record was made.

Kinds add their own fields through ``extra`` (the ablation's inner-fold runs:
``stage``, ``inner_fold``, ``n_inner_folds``, ``outer_cell_key``). NaN and
infinities are stored as null (standard JSON). Records of the first layout
(schema 1: absolute corpus paths) are read as they are and upgraded on read
(:func:`upgrade_record`); :func:`migrate_folder` rewrites them once.

Integrity. A record file is complete or absent (written atomically) and
carries ``digest``, the hash of the rest of its content
(:func:`record_digest`), added by :func:`write_record` and checked and
removed by :func:`validate_record`: the records a program sees never hold it,
and those written before it existed (every committed one) are read without
it. A file that does not parse, lacks fields of its layout or fails its
digest is unusable: :func:`read_record` raises :class:`RecordError` naming
the file, and the lookups that decide whether a cell is done
(:func:`usable_record`, :func:`stored_record`) report it, set the cell's own
file aside as ``<key>.json.invalid`` and let the cell be computed again.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

import mtl
from mtl.cells import SOURCE_NEUTRAL_FIELDS, Cell, config_key
from mtl.config import Config
from mtl.corpora import CORPORA
from mtl.errors import MtlError
from mtl.io import as_json, read_json, stable_hash, write_json
from mtl.paths import project_root

log = logging.getLogger(__name__)

RECORD_SCHEMA = 2
"""Version of the record layout: 2 stores corpus folders symbolically (1 stored absolute paths)."""
KNOWN_SCHEMAS = (1, 2)
RECORD_FIELDS: tuple[str, ...] = (
    "schema", "cell_key", "experiment", "method", "sources", "target", "modality", "classes", "source_classes",
    "protocol", "seed", "fold", "n_folds", "n_folds_requested", "config", "config_differences", "data", "code",
    "n_train", "n_test", "test_speakers", "metrics", "learning_curve", "pathways", "source", "notes", "timings",
    "created")
"""Fields every record of :data:`RECORD_SCHEMA` has, in this order."""
_SYMBOLIC_FOLDERS = {"real": "$MTL_DATA_ROOT", "synthetic": "$MTL_CACHE_DIR/synthetic"}
DIGEST_FIELD = "digest"
"""The field of a record file holding :func:`record_digest` (absent from records written before it existed)."""


class RecordError(MtlError, ValueError):
    """A record lacks fields of its layout, or has a layout this version cannot read."""


@dataclass(frozen=True)
class RunResult:
    """What one training run measured: the part of a record that is not the cell's description."""

    metrics: dict[str, Any]
    """:func:`mtl.evaluation.evaluate` on the held-out part."""
    n_train: int
    n_test: int
    n_folds: int
    """Folds the protocol gave for the target (the speaker protocol may give fewer than requested)."""
    provenance: dict[str, Any]
    """The target's :func:`mtl.datasets.load_dataset` provenance."""
    target_seconds: float
    test_speakers: list[str] | None = None
    learning_curve: list[dict[str, Any]] = field(default_factory=list)
    target_pathways: dict[str, Any] | None = None
    source: dict[str, Any] | None = None
    """The source model's sidecar (:func:`mtl.runner.source_model`); None for scratch."""
    notes: Sequence[str] = ()
    device: str = "cpu"
    """Where the target was trained (:func:`mtl.pathnet.checks.describe_device`)."""
    ga: dict[str, Any] | None = None
    """:func:`mtl.pathnet.ga_diagnostics` of the target's evolution (None without one). :func:`build_record`
    leaves it out, so that a record computed again is the record committed; a kind that records it
    (:mod:`mtl.reference.diagnosed`) passes it as an extra field."""


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """Package version, and the git commit and dirty flag when running from a checkout."""
    version: dict[str, Any] = {"package": mtl.__version__, "commit": None, "dirty": None}
    root = project_root()
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
        version.update(commit=commit, dirty=bool(status.strip()))
    except (OSError, subprocess.SubprocessError):
        pass
    return version


def now() -> str:
    """The current UTC time, to the second, ISO 8601."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def json_safe(value: Any) -> Any:
    """NaN and infinities as None (standard JSON; e.g. the accuracy of a class absent from a fold)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def build_record(cell: Any, result: RunResult, *, key: str | None = None, experiment: str | None = None,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The record of one run, in the one layout (:data:`RECORD_FIELDS`).

    Parameters
    ----------
    cell : Cell
        The computation that was run (for an inner-fold run, its outer cell).
    result : RunResult
        What the run measured.
    key, experiment : str, optional
        The record's own key and label when they are not the cell's (a kind
        that wraps a cell, such as an inner-fold run).
    extra : mapping, optional
        Fields of the kind (they may not replace a field of the layout).
    """
    clash = sorted(set(extra or ()) & set(RECORD_FIELDS))
    if clash:
        raise RecordError(f"extra record fields {', '.join(clash)} would replace fields of the layout")
    source = result.source
    provenance = {cell.target: result.provenance, **(source["provenance"] if source else {})}
    record = {
        "schema": RECORD_SCHEMA,
        "cell_key": key or cell.key,
        "experiment": experiment or cell.experiment,
        "method": cell.method,
        "sources": list(cell.sources),
        "target": cell.target,
        "modality": cell.modality,
        "classes": list(cell.classes),
        "source_classes": list(cell.source_classes),
        "protocol": cell.protocol,
        "seed": cell.seed,
        "fold": cell.fold,
        "n_folds": result.n_folds,
        "n_folds_requested": cell.config.folds,
        "config": {k: v for k, v in cell.config.recorded_dict().items() if k != "device"},
        "config_differences": {k: list(v) for k, v in cell.config.differences_from_paper().items()},
        "data": {"kinds": dict(cell.data), "provenance": portable_provenance(provenance)},
        "code": code_version(),
        "n_train": int(result.n_train),
        "n_test": int(result.n_test),
        "test_speakers": result.test_speakers,
        "metrics": result.metrics,
        "learning_curve": result.learning_curve,
        "pathways": {"target": result.target_pathways, "source": source["pathways"] if source else None},
        "source": None if source is None else {
            "key": source["key"], "classes": source["classes"], "n_samples": source["n_samples"],
            "best_fitness": source.get("best_fitness"), "learning_curve": source["learning_curve"],
            "cached": source["cached"], "config_differences": source.get("config"),
        },
        "notes": list(result.notes),
        "timings": {"source_seconds": source["seconds"] if source else None,
                    "source_cached": source["cached"] if source else None,
                    "target_seconds": result.target_seconds, "device": result.device,
                    "source_device": source.get("device", "cpu") if source else None},
        "created": now(),
        **dict(extra or {}),
    }
    return json_safe(record)


def record_digest(record: Mapping[str, Any]) -> str:
    """SHA-1 (hex) of a record's content as JSON, its own :data:`DIGEST_FIELD` left out."""
    return stable_hash({k: v for k, v in record.items() if k != DIGEST_FIELD}, length=40)


def validate_record(record: Any) -> dict[str, Any]:
    """``record`` without its digest if it is a record this version reads, else :class:`RecordError`.

    Checked: the layout's fields, and the digest when the record has one
    (:func:`record_digest`; a mismatch means the file changed after it was written).
    """
    if not isinstance(record, dict) or "schema" not in record or "cell_key" not in record:
        raise RecordError("not a result record (no 'schema' and 'cell_key')")
    if DIGEST_FIELD in record:
        if record[DIGEST_FIELD] != record_digest(record):
            raise RecordError(f"record {record['cell_key']}: content digest mismatch (changed after it was written)")
        record = {k: v for k, v in record.items() if k != DIGEST_FIELD}
    if record["schema"] not in KNOWN_SCHEMAS:
        raise RecordError(f"record {record['cell_key']}: unknown layout {record['schema']!r} "
                          f"(this version reads {', '.join(map(str, KNOWN_SCHEMAS))})")
    if record["schema"] == RECORD_SCHEMA:
        missing = [f for f in RECORD_FIELDS if f not in record]
        if missing:
            raise RecordError(f"record {record['cell_key']} lacks {', '.join(missing)}")
    return record


def write_record(path: str | Path, record: dict[str, Any]) -> dict[str, Any]:
    """Check ``record`` and write it atomically to ``path`` with its digest (:func:`record_digest`); return it."""
    # The digest of the content as it will read back, so that reading it checks out whatever the types here.
    content = as_json(validate_record({k: v for k, v in record.items() if k != DIGEST_FIELD}))
    write_json(path, {**content, DIGEST_FIELD: record_digest(content)})
    return record


def read_record(path: str | Path) -> dict[str, Any]:
    """The record at ``path``, checked and in the current layout (:func:`upgrade_record`).

    Raises :class:`RecordError` naming the file when it cannot be read, does
    not parse or fails :func:`validate_record`; ``FileNotFoundError`` when it is absent.
    """
    try:
        content = read_json(path)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:  # a JSONDecodeError or UnicodeDecodeError is a ValueError
        raise RecordError(f"{path}: not a readable record ({type(error).__name__}: {error})") from error
    try:
        return upgrade_record(validate_record(content))
    except RecordError as error:
        raise RecordError(f"{path}: {error}") from error


def usable_record(path: str | Path, discard: bool = False) -> dict[str, Any] | None:
    """The record at ``path`` (:func:`read_record`), or None when it is absent or unusable.

    An unusable file is reported (a warning naming it and the reason); with
    ``discard`` it is also renamed to ``<name>.invalid`` beside it, so that the
    cell it belonged to is computed again and the damaged file stays for inspection.
    """
    path = Path(path)
    try:
        return read_record(path)
    except FileNotFoundError:
        return None
    except RecordError as error:
        if discard:
            aside = path.with_name(path.name + ".invalid")
            with contextlib.suppress(FileNotFoundError):  # another process set it aside first
                os.replace(path, aside)
            log.warning("unusable result record, set aside as %s to be computed again: %s", aside.name, error)
        else:
            log.warning("unusable result record, ignored: %s", error)
        return None


COMMITTED_FOLDERS: tuple[str, ...] = ("real", "default")
"""Folders of ``<project>/results`` whose records are committed to the repository: ``real`` (runs on
the real corpora) and ``default`` (the records the default profile's book shows, so that ``make book``
recomputes nothing a reader has not changed)."""


def committed_folders() -> list[Path]:
    """The committed record folders of :data:`COMMITTED_FOLDERS` that exist, in that order."""
    base = project_root() / "results"
    return [base / name for name in COMMITTED_FOLDERS if (base / name).is_dir()]


def stored_record(cell: Any, discard: bool = False) -> Path | None:
    """Where a usable record of ``cell``'s computation already is, or None.

    Its own ``record_path`` first; then the same key filed under another
    experiment in ``results_dir()/runs`` (Table 2 reuses Table 1's transfer
    cells); then the committed folders (:func:`committed_folders`). Each
    candidate is read and checked (:func:`usable_record`): an unusable one is
    reported and passed over; with ``discard`` the cell's own file, when
    unusable, is also set aside (the caller is about to compute it again).
    """
    found = _find_stored(cell, discard)
    return found[0] if found else None


def _find_stored(cell: Any, discard: bool) -> tuple[Path, dict[str, Any]] | None:
    """``(path, record)`` of :func:`stored_record`, or None."""
    own = usable_record(cell.record_path, discard=discard)
    if own is not None:
        return cell.record_path, own
    runs = cell.record_path.parent.parent
    for folder in (runs, *committed_folders()):
        for path in sorted(folder.glob(f"*/{cell.key}.json")) if folder.is_dir() else []:
            record = usable_record(path) if path != cell.record_path else None  # the own file: read above
            if record is not None:
                return path, record
    return None


def reuse_stored(cell: Any) -> dict[str, Any] | None:
    """The record of ``cell``'s computation if one is stored anywhere (:func:`stored_record`), else None.

    The cell's own file, when unusable, is set aside (:func:`usable_record`).
    A record found elsewhere is copied to the cell's own ``record_path``,
    filed under the cell's experiment, with ``reused_from`` saying where it
    came from (the experiment, or ``results/<folder>/<experiment>`` for a
    committed one), so that every later lookup finds it in its own place.
    """
    found = _find_stored(cell, discard=True)
    if found is None:
        return None
    path, record = found
    if path != cell.record_path:
        committed = path.parent.parent in committed_folders()
        origin = f"results/{path.parent.parent.name}/{path.parent.name}" if committed else path.parent.name
        record.update(experiment=cell.experiment, reused_from=record.get("reused_from") or origin)
        write_record(cell.record_path, record)
    return record


def record_cell(record: Mapping[str, Any]) -> Cell:
    """The :class:`~mtl.cells.Cell` a record describes: its key is the record's ``cell_key``.

    For a record of a kind that wraps a cell (an inner-fold run, a reference
    method, a run with its GA diagnostics) this is the wrapped cell, whose
    key is the record's ``outer_cell_key``; a reference method's record
    names the method (``svm``), its wrapped cell is PathNet's scratch cell. A source model
    trained with settings of its own (``Cell.source_config``) is recognised by
    the source settings the record keeps (``source.config_differences``).
    """
    config = Config.from_dict(record["config"])
    source = record.get("source") or {}
    trained = source.get("config_differences")
    source_config = None
    if record["sources"] and trained is not None and trained != config_key(config, SOURCE_NEUTRAL_FIELDS):
        source_config = Config.from_dict(trained)
    method = "scratch" if record.get("stage") == "reference" else record["method"]
    return Cell(experiment=record["experiment"], method=method, target=record["target"],
                sources=tuple(record["sources"]), modality=record["modality"], classes=tuple(record["classes"]),
                source_classes=tuple(record["source_classes"]), protocol=record["protocol"], seed=record["seed"],
                fold=record["fold"], config=config, data=tuple(sorted(record["data"]["kinds"].items())),
                source_config=source_config)


# ---------------------------------------------------------------------------
# no machine paths: the layout of schema 2, and the upgrade from schema 1
# ---------------------------------------------------------------------------
def portable_root(corpus: str, kind: str, root: str) -> str:
    """A corpus copy's folder without the machine's part: ``$MTL_DATA_ROOT/emodb``, ``$MTL_CACHE_DIR/synthetic/...``.

    A folder already written symbolically is kept. An absolute one (layout 1)
    is named by where :func:`mtl.datasets.corpus_root` puts that copy: a real
    corpus in its card's folder under the data root, a synthetic one in its
    own folder under ``cache_dir()/synthetic``.
    """
    if root.startswith("$") or not PurePosixPath(root).is_absolute():
        return root
    folder = CORPORA[corpus].folder if kind == "real" and corpus in CORPORA else PurePosixPath(root).name
    return f"{_SYMBOLIC_FOLDERS.get(kind, '$MTL_DATA_ROOT')}/{folder}"


def portable_provenance(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """``{corpus: provenance}`` with every ``root`` (and a copy text that names it) made portable."""
    out = {}
    for corpus, entry in provenance.items():
        entry = dict(entry)
        if isinstance(entry.get("root"), str):
            old = entry["root"]
            entry["root"] = portable_root(corpus, entry.get("kind", "real"), old)
            if isinstance(entry.get("copy"), str):
                entry["copy"] = entry["copy"].replace(old, entry["root"])
        out[corpus] = entry
    return out


def upgrade_record(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` in the current layout: numbers, keys and every other field unchanged.

    Layout 1 -> 2: the corpus folders of ``data.provenance`` become symbolic
    (:func:`portable_root`), and the fields layout 1 let some kinds leave out
    (the ablation's inner-fold runs had no ``notes``, ``pathways`` or
    ``n_folds_requested``) are added, empty.
    """
    if record.get("schema") == RECORD_SCHEMA:
        return record
    data = dict(record.get("data") or {})
    data["provenance"] = portable_provenance(data.get("provenance") or {})
    absent = {"notes": [], "pathways": None, "source": None, "test_speakers": None,
              "n_folds_requested": (record.get("config") or {}).get("folds")}
    return {**absent, **record, "schema": RECORD_SCHEMA, "data": data}


def migrate_folder(folder: str | Path) -> list[Path]:
    """Rewrite every record under ``folder`` in the current layout, once; return the files written.

    Each record is upgraded (:func:`upgrade_record`) and, when the key its
    cell has today (:func:`record_cell`) is not the stored one -- records
    written before keys held only the differences from the paper's defaults
    -- re-keyed: ``cell_key`` becomes today's key, the old one is kept as
    ``former_cell_key`` and the file is renamed to ``<key>.json``; likewise
    ``source.key`` (the old one in ``source.former_key``). Nothing else
    changes. A record that wraps a cell (``outer_cell_key``: an inner-fold
    run) keeps its key, which its own kind computes. Files that are not
    records (saved selections, notes) are left alone; a second run changes
    nothing.
    """
    written = []
    for path in sorted(Path(folder).rglob("*.json")):
        try:
            content = validate_record(read_json(path))
        except RecordError:
            continue
        upgraded = dict(upgrade_record(content))
        if "outer_cell_key" not in upgraded:
            cell = record_cell(upgraded)
            if cell.key != upgraded["cell_key"]:
                upgraded = {**upgraded, "cell_key": cell.key, "former_cell_key": upgraded["cell_key"]}
            source = upgraded.get("source")
            if source and source.get("key") not in (None, cell.source_key):
                upgraded["source"] = {**source, "key": cell.source_key, "former_key": source["key"]}
        if upgraded == content:
            continue
        target = path.with_name(f"{upgraded['cell_key']}.json")
        if target != path and target.exists():
            raise RecordError(f"{path}: its key {upgraded['cell_key']} is also the key of {target}")
        write_record(target, upgraded)
        if target != path:
            path.unlink()
        written.append(target)
    return written
