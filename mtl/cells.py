"""Cells: one unit of work each, its key, and the spelling of a run (``"enterface+savee->emodb"``).

A *cell* (:class:`Cell`) is one method (``scratch``, ``finetune`` or
``transfer``), its source corpora, one target corpus, one modality, one class
set, one evaluation protocol, one seed and one fold, under one
:class:`~mtl.config.Config`. Everything a cell needs is in the cell; its only
output is its record file (plus caches), so cells run in any order, in
parallel processes, and a rerun finds the stored record instead of computing.

Keys. :attr:`Cell.key` hashes everything that defines the computation:
method, sources, target, modality, classes, which data (real or synthetic,
per corpus), fold, and the fields of the configuration that differ from the
paper's (:func:`config_key`), which hold the seed, the protocol and the
number of folds. The fields of :data:`mtl.config.RESULT_NEUTRAL_FIELDS` are
left out (they change no number), and so is anything at the paper's default:
a field added to :class:`~mtl.config.Config` later leaves every key as it was.
The experiment id is a *label*, not an input: the same computation asked for
by two experiments runs once. :attr:`Cell.source_key` keys the source model a
transfer or fine-tuning cell trains on (no folds, no protocol:
:data:`SOURCE_NEUTRAL_FIELDS`).

Cell kinds. The runner (:mod:`mtl.runner`) and the sweep (:mod:`mtl.sweep`)
run any object that implements :class:`CellKind`; :class:`Cell` is one kind,
the ablation's inner-fold runs another. A kind is registered with
:func:`mtl.runner.register_kind` together with the function that computes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mtl.config import (DATA_MODES, METHODS, MODALITIES, PROTOCOLS, RESULT_NEUTRAL_FIELDS, Config, check_choice,
                        differences_from_defaults, get_profile)
from mtl.corpora import CORPORA, corpus_card, resolve_corpus
from mtl.corpora.labels import LabelError, canonical_order
from mtl.corpora.registry import shared_classes
from mtl.datasets import resolve_data_kind
from mtl.errors import ConfigError
from mtl.io import stable_hash
from mtl.paths import results_dir

KEY_SCHEMA = 1
"""Version of the key layout, hashed into every key (a new one would give every cell a new key)."""
SOURCE_NEUTRAL_FIELDS: frozenset[str] = RESULT_NEUTRAL_FIELDS | {"protocol", "folds"}
"""Fields that change no source model (trained on all the source data: no folds, no protocol)."""
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def delegate_attributes(kind: type, inner: str, names: Iterable[str]) -> None:
    """Give the cell kind ``kind`` read-only properties ``names`` that read the cell it wraps.

    A kind that runs on another cell's split (an inner-fold run, a reference
    method, a multi-task run) is a wrapper: ``kind(...).fold`` is
    ``kind(...).<inner>.fold``, so the runner and the sweep read it as they
    read the wrapped cell.
    """
    for name in names:
        setattr(kind, name, property(lambda self, name=name: getattr(getattr(self, inner), name),
                                     doc=f"The wrapped cell's ``{name}`` (``{inner}.{name}``)."))


@runtime_checkable
class CellKind(Protocol):
    """What the runner and the sweep need from a unit of work of any kind.

    ``key``
        Hash of everything that defines the computation (str); two cells with
        the same key compute the same record.
    ``experiment``
        The label its record is filed under (``results_dir()/runs/<experiment>/``).
    ``record_path``
        Where its record goes (a :class:`~pathlib.Path`); the cell counts as
        done when this file exists.
    ``source_key``
        Key of the source model it needs first (trained once by a task of its
        own, see :func:`mtl.runner.source_model`, which reads ``sources``,
        ``source_classes``, ``modality``, ``data`` and ``source_training_config``
        from the cell), or None.
    ``datasets``
        The ``(corpus, modality, kind, config)`` copies whose features it reads;
        the sweep builds them once before any task starts (may be empty).
    ``describe()``
        One line for progress bars and failure reports.

    The function that computes a kind is registered with
    :func:`mtl.runner.register_kind`; it writes the record with
    :func:`mtl.records.write_record` (built by :func:`mtl.records.build_record`)
    and returns it, or returns the stored record when it exists.
    """

    @property
    def key(self) -> str: ...

    @property
    def experiment(self) -> str: ...

    @property
    def record_path(self) -> Path: ...

    @property
    def source_key(self) -> str | None: ...

    @property
    def datasets(self) -> tuple[tuple[str, str, str, Config], ...]: ...

    def describe(self) -> str: ...


def config_key(config: Config, drop: Iterable[str] = RESULT_NEUTRAL_FIELDS) -> dict[str, Any]:
    """The fields of ``config`` that differ from the paper's defaults, ``drop`` left out (what a key hashes)."""
    return differences_from_defaults(config.to_dict(), drop)


@dataclass(frozen=True)
class Cell:
    """One method x sources x target x classes x protocol x seed x fold under one config.

    ``protocol`` and ``seed`` are copied into ``config`` (the single source of
    truth the classifier sees). ``data`` names the copy of every corpus used,
    ``(("emodb", "real"), ...)``; :func:`make_cell` resolves it.
    ``source_config``, when given, trains the source model of a transfer or
    fine-tuning cell instead of ``config`` (e.g. one source model shared by
    target settings that differ only in how the target trains).
    """

    experiment: str
    method: str
    target: str
    sources: tuple[str, ...]
    modality: str
    classes: tuple[str, ...]
    source_classes: tuple[str, ...]
    protocol: str
    seed: int
    fold: int
    config: Config
    data: tuple[tuple[str, str], ...]
    source_config: Config | None = None

    def __post_init__(self) -> None:
        if not _SAFE_ID.match(self.experiment):
            raise ConfigError(f"experiment id {self.experiment!r} must be letters, digits, '_', '-', '.'")
        check_choice(self.method, METHODS, "method")
        check_choice(self.protocol, PROTOCOLS, "protocol")
        check_choice(self.modality, MODALITIES, "modality")
        for corpus in (self.target, *self.sources):
            corpus_card(corpus, self.modality)
        if self.method == "scratch" and self.sources:
            raise ConfigError("method 'scratch' uses no source corpus; pass sources=()")
        if self.method != "scratch" and not self.sources:
            raise ConfigError(f"method {self.method!r} needs at least one source corpus")
        if self.target in self.sources:
            raise ConfigError(f"the target {self.target} cannot also be a source")
        if self.fold < 0:
            raise ConfigError(f"fold must be >= 0, got {self.fold}")
        object.__setattr__(self, "sources", tuple(sorted(self.sources)))
        object.__setattr__(self, "config", self.config.replace(protocol=self.protocol, seed=int(self.seed)))
        if self.source_config is not None:
            if not self.sources:
                raise ConfigError("source_config needs a source corpus (method 'scratch' has none)")
            source_config = self.source_config.replace(protocol=self.protocol, seed=int(self.seed))
            # A source configuration equal to the cell's is no choice: one spelling, one key.
            object.__setattr__(self, "source_config", None if source_config == self.config else source_config)
        kinds = dict(self.data)
        for corpus in (self.target, *self.sources):
            if kinds.get(corpus) not in ("real", "synthetic"):
                raise ConfigError(f"cell data must name the copy (real/synthetic) of {corpus}")

    @property
    def n_folds(self) -> int:
        """Requested number of folds (the speaker protocol may use fewer, see :func:`make_folds`)."""
        return self.config.folds

    @property
    def key(self) -> str:
        """Hash of everything that defines the computation (see the module docstring)."""
        return stable_hash({
            "schema": KEY_SCHEMA, "method": self.method, "target": self.target, "sources": list(self.sources),
            "modality": self.modality, "classes": list(self.classes), "source_classes": list(self.source_classes),
            "fold": self.fold, "data": sorted(map(list, self.data)),
            "config": config_key(self.config),
            **({} if self.source_config is None else
               {"source_config": config_key(self.source_config, SOURCE_NEUTRAL_FIELDS)}),
        })

    @property
    def source_training_config(self) -> Config:
        """The configuration the source model is trained with: ``source_config`` (on the cell's device), or the
        cell's own."""
        if self.source_config is None:
            return self.config
        return self.source_config.replace(device=self.config.device)

    @property
    def source_key(self) -> str | None:
        """Key of the source model this cell uses (None for scratch)."""
        if not self.sources:
            return None
        kinds = dict(self.data)
        return stable_hash({
            "schema": KEY_SCHEMA, "sources": list(self.sources), "modality": self.modality,
            "classes": list(self.source_classes), "data": [[s, kinds[s]] for s in self.sources],
            "config": config_key(self.source_training_config, SOURCE_NEUTRAL_FIELDS),
        })

    @property
    def record_path(self) -> Path:
        return results_dir() / "runs" / self.experiment / f"{self.key}.json"

    @property
    def datasets(self) -> tuple[tuple[str, str, str, Config], ...]:
        """The corpus copies this cell reads: its target's and its sources'."""
        kinds = dict(self.data)
        return tuple((corpus, self.modality, kinds[corpus], self.config) for corpus in (self.target, *self.sources))

    @property
    def spec(self) -> RunSpec:
        """Its sources and target as a :class:`RunSpec`."""
        return RunSpec(self.target, self.sources)

    def describe(self) -> str:
        return (f"{self.experiment}: {self.method} {self.spec} ({self.modality}, {self.protocol}, "
                f"seed {self.seed}, fold {self.fold})")


def resolve_classes(target: str, sources: Sequence[str] = (), classes: str | Iterable[str] | None = None,
                    source_classes: Iterable[str] | None = None,
                    partners: Sequence[str] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Target and source class sets of one run.

    ``classes`` is a list of names, or a rule:

    ``"shared"`` (default)
        The classes shared by the target, its sources and ``partners`` (the
        other corpora an experiment pairs with this target, so that a
        scratch baseline uses the same classes as the transfer it is compared
        with); sources use the same classes. The paper's six common classes
        of eNTERFACE and SAVEE (§4.3.1).
    ``"target"``
        Every class of the target; the sources use every class of any source
        (a union: PathNet's output layer is task-specific, so source and
        target class sets may differ).

    With an explicit list, the sources use those of its classes they have.
    Either way the target and the sources must share at least one class.
    """
    sources = tuple(sources)
    if classes is None or classes == "shared":
        wanted = tuple(shared_classes(target, *sources, *partners))
        source_wanted = wanted if sources else ()
    elif classes == "target":
        wanted = corpus_card(target).classes
        source_wanted = tuple(canonical_order({c for s in sources for c in corpus_card(s).classes})) if sources else ()
    elif isinstance(classes, str):
        raise ConfigError(f"classes must be a list of emotion names, 'shared' or 'target', got {classes!r}")
    else:
        wanted = corpus_card(target).check_classes(classes)
        available = {c for s in sources for c in corpus_card(s).classes}
        source_wanted = tuple(c for c in wanted if c in available) if sources else ()
    if source_classes is not None and sources:
        available = {c for s in sources for c in corpus_card(s).classes}
        source_wanted = tuple(canonical_order(source_classes))
        missing = [c for c in source_wanted if c not in available]
        if missing:
            raise LabelError(f"no source among {', '.join(sources)} has class {', '.join(missing)}")
    if sources and not set(wanted) & set(source_wanted):
        raise LabelError(f"{'+'.join(sources)} and {target} share no emotion class "
                         f"(target classes: {', '.join(wanted)}; source classes: {', '.join(source_wanted) or 'none'})")
    return wanted, source_wanted


def make_cell(experiment: str, method: str, target: str, sources: Sequence[str] = (), modality: str = "audio",
              config: Config | None = None, classes: str | Iterable[str] | None = None,
              source_classes: Iterable[str] | None = None, protocol: str | None = None, seed: int = 0,
              fold: int = 0, data: str = "auto", partners: Sequence[str] = ()) -> Cell:
    """A validated :class:`Cell`, with classes and data copies resolved (see :func:`resolve_classes`)."""
    config = config or get_profile("default")
    check_choice(method, METHODS, "method")
    check_choice(modality, MODALITIES, "modality")
    protocol = protocol or config.protocol
    check_choice(protocol, PROTOCOLS, "protocol")
    check_choice(data, DATA_MODES, "data mode")
    sources = tuple(sources) if method != "scratch" else ()
    for corpus in (target, *sources, *partners):
        corpus_card(corpus, modality)
    wanted, source_wanted = resolve_classes(target, sources, classes, source_classes, partners)
    kinds = tuple((c, resolve_data_kind(c, data)) for c in (target, *sorted(sources)))
    return Cell(experiment=experiment, method=method, target=target, sources=sources, modality=modality,
                classes=wanted, source_classes=source_wanted, protocol=protocol, seed=int(seed), fold=int(fold),
                config=config, data=kinds)


# ---------------------------------------------------------------------------
# run specs: "savee", "enterface+savee->emodb"
# ---------------------------------------------------------------------------
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class RunSpec:
    """A target corpus, optionally with its sources, as written ``savee`` or ``enterface+savee->emodb``."""

    target: str
    sources: tuple[str, ...] | None = None
    """Sorted source corpora; None when the text named no sources (``"savee"``)."""

    def __post_init__(self) -> None:
        if self.sources is not None:
            object.__setattr__(self, "sources", tuple(sorted(self.sources)))

    def matches(self, cell: Any) -> bool:
        """Whether ``cell`` (a cell, or an experiment's run) has this target and (when given) these sources."""
        return cell.target == self.target and (self.sources is None or self.sources == tuple(sorted(cell.sources)))

    def __str__(self) -> str:
        return f"{'+'.join(self.sources)}->{self.target}" if self.sources else self.target


def parse_run_spec(text: str) -> RunSpec:
    """``"savee"`` -> target only; ``"enterface+savee->emodb"`` (or ``→``) -> sources and target.

    Spaces around names are ignored; the sources come out sorted. Each name
    may also be the path of a corpus card, a manifest CSV or a class folder
    (``"cards/a.yaml->cards/b.yaml"``): it is registered and replaced by its
    corpus's name (:func:`mtl.corpora.resolve_corpus`).

    >>> parse_run_spec("savee+enterface -> emodb")
    RunSpec(target='emodb', sources=('enterface', 'savee'))
    """
    text = str(text).strip()
    sources, arrow, target = text.replace("→", "->").rpartition("->")
    names = [s.strip() for s in sources.split("+")] if arrow else []
    if arrow and not any(names):
        raise ConfigError(f"bad corpus spec {text!r}: no source corpus before '->' (write e.g. 'enterface->savee')")
    resolved = []
    for name in (target.strip(), *names):
        if name and name not in CORPORA and Path(name).expanduser().exists():
            name = resolve_corpus(name)
        elif not _NAME.match(name):  # an unknown plain name goes on: the cell's check names the known corpora
            raise ConfigError(f"bad corpus spec {text!r}: {name!r} is not a corpus nor the path of a corpus card, "
                              "manifest or folder; write a target ('savee') or a 'source+source->target' pair "
                              "(e.g. 'enterface+savee->emodb')")
        resolved.append(name)
    return RunSpec(resolved[0], tuple(resolved[1:]) if arrow else None)
