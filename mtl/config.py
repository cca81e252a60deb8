"""The paper's hyperparameters in one object, and the profiles derived from it.

:class:`Config` defaults are the settings of Nguyen et al. (2023), §3 and §4.2.
Where the paper is ambiguous or contradicts itself the choice is a parameter,
documented here and in the book's "Reproduction notes" chapter:

* ``training_budget`` -- §4.2 says each pathway is trained "for T epochs; T was
  set to the number of training samples divided by mini-batch size". We read
  this as T *steps* (one pass over the training set, ``"one_pass"``, default);
  ``"literal_epochs"`` trains T epochs of T steps each.
* ``boundary`` -- mutation can push a gene out of ``[0, M-1]``. PathNet's author
  clips (``"clip"``, default); a popular port wraps modulo M (``"wrap"``).
* ``frozen_counts_toward_n`` -- in transfer the frozen source pathway is always
  active. ``False`` (default): each layer may have up to N evolving modules
  *besides* the frozen ones; ``True``: frozen and evolving modules together are
  at most N distinct modules per layer.
* Module outputs of a layer are averaged (§3.3.1), not summed as in the original
  PathNet; ``combine`` makes this a parameter.

Profiles (:data:`PROFILES`): ``paper`` is :class:`Config` itself; ``default``
(what ``make book`` uses) is the paper's settings with faces cropped from every
5th video frame, and the records of every cell of the book at that profile are
committed under ``results/default``, so the book reads them instead of
computing them;
``classroom`` is for teaching live: every notebook in about a minute on two
cores (the "Teaching with this book" chapter gives the times and what each
one shows, and does not); ``smoke`` is for tests. Each profile only *replaces* fields of the paper
configuration, so every difference from the paper is visible in one place.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mtl.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

PROTOCOLS = ("paper", "utterance", "speaker")
MODULE_TYPES = ("linear", "conv")
BOUNDARIES = ("clip", "wrap")
TRAINING_BUDGETS = ("one_pass", "literal_epochs")
COMBINES = ("mean", "sum")
INPUT_KINDS = ("segments", "functionals")
"""What PathNet reads of a speech corpus: the paper's log-Mel segments, or one vector of utterance functionals."""
FUNCTIONALS_SHAPE = (1, 1, 96)
"""``input_shape`` of the utterance functionals (:mod:`mtl.features.functionals`: 96 statistics)."""
FITNESS_ON = ("train", "validation")
"""What a pathway's fitness is measured on: the samples it trained on (the paper), or a held-out part of them."""
METHODS = ("scratch", "finetune", "transfer")
"""How a run trains the target: from scratch, fine-tuning a source model, or PathNet transfer."""
MODALITIES = ("audio", "video")
"""What a run reads of a corpus: its speech, or its faces (a corpus card names the ones it has)."""
DEVICES = ("cpu", "cuda", "auto")
"""Where PathNet trains: the CPU, the (first) CUDA GPU, or the GPU when torch finds one and else the CPU."""
DATA_MODES = ("auto", "real", "synthetic")
"""Which copy of a corpus a run reads: the real one when present else the synthetic one, or either insisted on."""


def check_choice(value: Any, allowed: Iterable[Any], what: str) -> Any:
    """``value`` if it is one of ``allowed``, else :class:`ConfigError` naming ``what`` and the choices."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(f"unknown {what} {value!r}; choose one of {', '.join(map(str, allowed))}")
    return value


@dataclass(frozen=True)
class Config:
    """Hyperparameters of the paper (defaults) and of this reproduction.

    Parameters are grouped as in the paper. All validation happens in one
    place, :meth:`validate`, called on construction: each value's type
    (:func:`check_type`), then its range.
    """

    # --- input (§3.1, §3.2) -------------------------------------------------
    input_shape: tuple[int, int, int] = (64, 64, 3)
    """Height x width x channels of one sample (Mel bands x frames x {static, delta, delta-delta}, or a face crop)."""
    sample_rate: int = 16000
    """Audio is resampled to this rate, Hz (EMO-DB's native rate)."""
    n_mels: int = 64
    """Mel bands F."""
    fmin: float = 20.0
    """Lowest Mel band edge, Hz."""
    fmax: float = 8000.0
    """Highest Mel band edge, Hz."""
    win_ms: float = 25.0
    """Analysis window (Hamming), milliseconds."""
    hop_ms: float = 10.0
    """Frame hop, milliseconds."""
    segment_frames: int = 64
    """Context window T, frames (64 frames = 10 ms x 63 + 25 ms = 655 ms)."""
    segment_overlap: int = 30
    """Overlap between consecutive windows, frames (hop 34 frames)."""
    face_size: int = 64
    """Face crops are resized to face_size x face_size x 3."""
    frame_step: int = 1
    """Run face detection on every ``frame_step``-th video frame (1 = every frame, the paper)."""
    face_min_score: float = 4.0
    """Minimum Haar-cascade level weight of a face (rejects featureless skin-coloured blobs; see mtl.features.faces)."""
    input_kind: str = "segments"
    """Beyond the paper, speech only. ``"segments"`` (the paper): 64 x 64 x 3 log-Mel segments, folds over
    segments. ``"functionals"``: one sample per utterance, its 96 functionals (mtl.features.functionals;
    ``input_shape`` must then be ``FUNCTIONALS_SHAPE``, (1, 1, 96)), folds over utterances."""

    # --- PathNet (§3.3.1) ---------------------------------------------------
    n_layers: int = 3
    """L, layers."""
    n_modules: int = 20
    """M, modules per layer."""
    units: int = 20
    """Neurons per (linear) module."""
    max_active: int = 4
    """N, distinct active modules per layer in a pathway."""
    module_type: str = "linear"
    """``"linear"`` (the paper's) or ``"conv"`` (small convolution blocks, as the original PathNet used for images)."""
    conv_channels: int = 8
    """Output channels of one convolutional module (``module_type="conv"`` only)."""
    combine: str = "mean"
    """How a layer merges its active modules' outputs: ``"mean"`` (paper) or ``"sum"`` (original PathNet)."""

    # --- evolution (§3.3.2, §4.2) -------------------------------------------
    population: int = 20
    """S, genotypes in the population."""
    tournament: int = 2
    """K, pathways picked per generation (binary tournament)."""
    generations: int = 200
    """G, tournaments."""
    training_budget: str = "one_pass"
    """What "T epochs" means, see the module docstring."""
    steps_per_pathway: int | None = None
    """Explicit T in SGD steps; overrides ``training_budget`` when set."""
    lr: float = 0.02
    """SGD learning rate."""
    batch_size: int = 64
    """Mini-batch size."""
    momentum: float = 0.0
    """SGD momentum (the paper: plain SGD)."""
    weight_decay: float = 0.0
    """SGD weight decay (the paper: none)."""
    dropout: float = 0.0
    """Beyond the paper: probability that a module's output unit (a conv module's output value) is set to 0
    in each training step of a pathway, the kept ones scaled by 1/(1 - dropout) (inverted dropout; every
    active module, frozen ones too; evaluation sees no dropout). 0 = none, the paper."""
    mutation_range: int = 2
    """Mutation adds a uniform integer in [-mutation_range, mutation_range]."""
    mutation_rate: float | None = None
    """Per-gene mutation probability; ``None`` means 1/(N*L) as in the paper."""
    boundary: str = "clip"
    """Genes leaving [0, M-1] after mutation are clipped or wrapped."""
    frozen_counts_toward_n: bool = False
    """Whether the frozen source modules count toward the N-per-layer limit in transfer."""
    fitness_on: str = "train"
    """Beyond the paper. ``"train"`` (the paper): a pathway's fitness is its accuracy on the samples it
    trains on, which reaches 1.0 and then decides tournaments by ties. ``"validation"``: a stratified random
    ``fitness_fraction`` of the training samples is held out of training and the fitness (and the choice of
    the best pathway) is the accuracy on it."""
    fitness_fraction: float = 0.2
    """Share of the training samples held out for the fitness when ``fitness_on="validation"``."""
    time_masks: int = 0
    """Beyond the paper: SpecAugment-style bands of frames set to 0 per training sample of an evolution
    (mtl.pathnet.augment; 0 = none, the paper)."""
    freq_masks: int = 0
    """Beyond the paper: bands of Mel bands set to 0 per training sample (0 = none, the paper)."""
    mask_width: int = 8
    """Widest band of a time or frequency mask, frames or Mel bands."""

    # --- evaluation (§4.2) --------------------------------------------------
    folds: int = 5
    """k of k-fold cross-validation."""
    protocol: str = "paper"
    """``"paper"`` random folds over segments/frames; ``"utterance"`` grouped by utterance/clip; ``"speaker"`` speaker-independent."""

    # --- this reproduction --------------------------------------------------
    synthetic_size: str = "full"
    """Size of generated synthetic corpora: ``"full"`` (about the real corpora's sizes) or ``"tiny"``."""
    checkpoint_every: int = 10
    """Write an evolution checkpoint every this many generations (0 = never)."""
    eval_every: int = 10
    """Record held-out accuracy of the best pathway every this many generations (for learning curves)."""
    seed: int = 0
    """Seed of every random choice in one run (genotypes, initial weights, batches, folds)."""
    profile: str = "paper"
    """Name of the profile this configuration came from (provenance only)."""
    device: str = "cpu"
    """Where networks train and are evaluated: ``"cpu"`` (default), ``"cuda"`` (the first GPU; an error
    when torch finds none) or ``"auto"`` (the GPU when there is one, else the CPU). Result-neutral like
    the thread count (:data:`RESULT_NEUTRAL_FIELDS`): a record says in ``timings.device`` where it ran, and
    a GPU's numbers differ from the CPU's only by rounding."""
    workers: int = 1
    """Processes that compute a chapter's or an experiment's missing cells: 1 computes them one after the
    other in this process (with its threads); more run them on a process pool of that many workers, one
    thread each, never more than the machine's cores (``mtl sweep --workers`` sets the same for a grid).
    Result-neutral (:data:`RESULT_NEUTRAL_FIELDS`): a cell's record is the same either way."""

    def __post_init__(self) -> None:
        self.validate()
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))  # a list, numpy ints

    # ------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`~mtl.errors.ConfigError` naming the first bad parameter."""

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        for name in _FIELD_TYPES:
            check_type(name, getattr(self, name))
        need(len(self.input_shape) == 3 and all(int(s) >= 1 for s in self.input_shape),
             f"input_shape must be three positive sizes, got {self.input_shape!r}")
        need(self.n_layers >= 1, f"n_layers (L) must be >= 1, got {self.n_layers}")
        need(self.n_modules >= 1, f"n_modules (M) must be >= 1, got {self.n_modules}")
        need(self.units >= 1, f"units must be >= 1, got {self.units}")
        need(1 <= self.max_active <= self.n_modules,
             f"max_active (N) must be between 1 and n_modules (M={self.n_modules}), got {self.max_active}")
        need(self.module_type in MODULE_TYPES, f"module_type must be one of {MODULE_TYPES}, got {self.module_type!r}")
        need(self.conv_channels >= 1, f"conv_channels must be >= 1, got {self.conv_channels}")
        need(self.combine in COMBINES, f"combine must be one of {COMBINES}, got {self.combine!r}")
        need(self.population >= 2, f"population (S) must be >= 2, got {self.population}")
        need(2 <= self.tournament <= self.population,
             f"tournament (K) must be between 2 and population (S={self.population}), got {self.tournament}")
        need(self.generations >= 0, f"generations (G) must be >= 0, got {self.generations}")
        need(self.training_budget in TRAINING_BUDGETS,
             f"training_budget must be one of {TRAINING_BUDGETS}, got {self.training_budget!r}")
        need(self.steps_per_pathway is None or self.steps_per_pathway >= 1,
             f"steps_per_pathway must be None or >= 1, got {self.steps_per_pathway}")
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.momentum >= 0, f"momentum must be >= 0, got {self.momentum}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        need(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        need(self.mutation_range >= 1, f"mutation_range must be >= 1, got {self.mutation_range}")
        need(self.mutation_rate is None or 0 <= self.mutation_rate <= 1,
             f"mutation_rate must be None or in [0, 1], got {self.mutation_rate}")
        need(self.boundary in BOUNDARIES, f"boundary must be one of {BOUNDARIES}, got {self.boundary!r}")
        need(self.input_kind in INPUT_KINDS, f"input_kind must be one of {INPUT_KINDS}, got {self.input_kind!r}")
        need(self.input_kind != "functionals" or tuple(self.input_shape) == FUNCTIONALS_SHAPE,
             f"input_kind='functionals' needs input_shape={list(FUNCTIONALS_SHAPE)}, got {list(self.input_shape)}")
        need(self.time_masks >= 0 and self.freq_masks >= 0,
             f"time_masks and freq_masks must be >= 0, got {self.time_masks} and {self.freq_masks}")
        need(self.mask_width >= 1, f"mask_width must be >= 1, got {self.mask_width}")
        need(self.input_kind == "segments" or not (self.time_masks or self.freq_masks),
             "time_masks and freq_masks mask log-Mel segments: they need input_kind='segments'")
        need(self.fitness_on in FITNESS_ON, f"fitness_on must be one of {FITNESS_ON}, got {self.fitness_on!r}")
        need(0 < self.fitness_fraction < 1, f"fitness_fraction must be in (0, 1), got {self.fitness_fraction}")
        need(self.folds >= 2, f"folds must be >= 2, got {self.folds}")
        need(self.protocol in PROTOCOLS, f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        need(self.sample_rate >= 8000, f"sample_rate must be >= 8000 Hz, got {self.sample_rate}")
        need(0 <= self.fmin < self.fmax <= self.sample_rate / 2,
             f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={self.fmax}, sample_rate={self.sample_rate}")
        need(self.win_ms > 0 and self.hop_ms > 0, "win_ms and hop_ms must be > 0")
        need(0 <= self.segment_overlap < self.segment_frames,
             f"segment_overlap must be in [0, segment_frames), got {self.segment_overlap}")
        need(self.frame_step >= 1, f"frame_step must be >= 1, got {self.frame_step}")
        need(self.synthetic_size in ("full", "tiny"), f"synthetic_size must be 'full' or 'tiny', got {self.synthetic_size!r}")
        need(self.checkpoint_every >= 0, f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        need(self.eval_every >= 0, f"eval_every must be >= 0, got {self.eval_every}")
        need(self.device in DEVICES, f"device must be one of {DEVICES}, got {self.device!r}")
        need(isinstance(self.workers, int) and self.workers >= 1, f"workers must be an integer >= 1, got {self.workers!r}")
        check_seeds(self.seed)

    # ------------------------------------------------------------------
    @property
    def input_dim(self) -> int:
        """Length of one flattened sample (12288 for 64x64x3)."""
        h, w, c = self.input_shape
        return int(h) * int(w) * int(c)

    @property
    def per_gene_mutation_rate(self) -> float:
        """1/(N*L) unless ``mutation_rate`` is set."""
        if self.mutation_rate is not None:
            return float(self.mutation_rate)
        return 1.0 / (self.max_active * self.n_layers)

    @property
    def segment_hop(self) -> int:
        """Frames between the starts of consecutive segments (64 - 30 = 34)."""
        return self.segment_frames - self.segment_overlap

    def steps_for(self, n_train: int) -> int:
        """T for a training set of ``n_train`` samples (SGD steps per pathway training).

        ``one_pass``: ceil(n_train / batch_size) steps; ``literal_epochs``: that many
        *epochs* of that many steps. ``steps_per_pathway`` overrides both.
        """
        if n_train < 1:
            raise ConfigError("the training set is empty: cannot compute T (steps per pathway)")
        if self.steps_per_pathway is not None:
            return int(self.steps_per_pathway)
        per_pass = max(1, -(-n_train // self.batch_size))
        return per_pass if self.training_budget == "one_pass" else per_pass * per_pass

    def replace(self, **changes: Any) -> "Config":
        """A copy with some fields changed (validated); unknown names are an error."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown Config parameter(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data

    def recorded_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the :data:`LATER_FIELDS` at their defaults: what a record or a checkpoint
        stores, so that one made before such a field existed is the one made now (:meth:`from_dict` fills
        them in)."""
        defaults = paper_defaults()
        return {k: v for k, v in self.to_dict().items() if k not in LATER_FIELDS or v != defaults[k]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown Config parameter(s): {', '.join(unknown)}")
        return cls(**data)

    def differences_from_paper(self) -> dict[str, tuple[Any, Any]]:
        """``{name: (paper value, this value)}`` for every field that differs from the paper."""
        paper = PAPER.to_dict()
        mine = self.to_dict()
        return {k: (paper[k], mine[k]) for k in mine if k != "profile" and mine[k] != paper[k]}


_FIELD_TYPES: dict[str, Any] = typing.get_type_hints(Config)
"""Each Config field's annotated type (``int``, ``float | None`` ...), evaluated once."""
_MAX_SEED = 2**32 - 1


def check_type(name: str, value: Any) -> None:
    """Raise :class:`~mtl.errors.ConfigError` unless ``value`` has the type of the Config field ``name``.

    ``name`` is a field name or a paper symbol (:data:`PAPER_SYMBOLS`: ``G``).
    An integer field takes an ``int`` (numpy's too) but never a ``bool``, so
    ``G=true`` is not G=1; a number field (``float``) takes any finite real
    number but a ``bool``, so ``lr=1`` stays as given; ``input_shape`` takes
    three integers (a list or a tuple). :meth:`Config.validate` calls this for
    every field, and the command line for each ``-p`` before anything runs:
    the message names the parameter, the value and the type expected.

    >>> check_type("G", 20)
    >>> check_type("G", 1.5)
    Traceback (most recent call last):
    ...
    mtl.errors.ConfigError: G (generations) must be an integer, got 1.5 (float)
    """
    field = PAPER_SYMBOLS.get(name, name)
    if field not in _FIELD_TYPES:
        canonical_names({name: value})  # the message for an unknown name
    expected = _FIELD_TYPES[field]
    if not _fits(value, expected):
        symbol = next((s for s, f in PAPER_SYMBOLS.items() if f == field), None)
        label = f"{name} ({field})" if name != field else f"{field} ({symbol})" if symbol else field
        raise ConfigError(f"{label} must be {_describe(expected)}, got {value!r} ({type(value).__name__})")


def check_seeds(seeds: Any) -> tuple[int, ...]:
    """One seed or a list of them as a tuple of ints, each checked as :attr:`Config.seed` is.

    A seed is an integer (never a ``bool``) from 0 to 2**32 - 1, the range the
    fold shuffling takes; an empty list, or any other value, raises
    :class:`~mtl.errors.ConfigError` naming it. Notebooks (their ``seeds``
    parameter), the ablation, ``mtl run`` and :class:`Config` itself check
    seeds here.
    """
    seeds = (seeds,) if isinstance(seeds, (numbers.Integral, str)) else tuple(seeds)
    if not seeds:
        raise ConfigError("seeds is empty: give one seed or a list of them")
    for seed in seeds:
        check_type("seed", seed)
        if not 0 <= seed <= _MAX_SEED:
            raise ConfigError(f"seed must be between 0 and 2**32 - 1 (what the fold shuffling takes), got {seed}")
    return tuple(int(seed) for seed in seeds)


def check_types(values: Mapping[str, Any]) -> None:
    """:func:`check_type` for every entry of ``values`` named by a Config field or a paper symbol.

    Other names (a notebook's own parameters, such as ``seeds``) are left to
    the caller, which knows them.
    """
    for name, value in values.items():
        if PAPER_SYMBOLS.get(name, name) in _FIELD_TYPES:
            check_type(name, value)


def _fits(value: Any, expected: Any) -> bool:
    """Whether ``value`` is of the annotated type ``expected`` (a Config field's, see :func:`check_type`)."""
    if typing.get_origin(expected) in (types.UnionType, typing.Union):
        return any(_fits(value, option) for option in typing.get_args(expected))
    if typing.get_origin(expected) is tuple:
        shape = typing.get_args(expected)
        return (isinstance(value, (tuple, list)) and len(value) == len(shape)
                and all(_fits(item, kind) for item, kind in zip(value, shape)))
    if expected is type(None) or expected is str:
        return isinstance(value, expected)
    if expected is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):  # True is an int to Python, never a count or a rate here
        return False
    if expected is int:
        return isinstance(value, numbers.Integral)
    return isinstance(value, numbers.Real) and math.isfinite(value)  # float


def _describe(expected: Any) -> str:
    if typing.get_origin(expected) in (types.UnionType, typing.Union):
        return " or ".join(_describe(option) for option in typing.get_args(expected))
    if typing.get_origin(expected) is tuple:
        return f"{len(typing.get_args(expected))} integers, e.g. [64, 64, 3]"
    return {int: "an integer", float: "a finite number", str: "a string", bool: "true or false",
            type(None): "None"}[expected]


# ---------------------------------------------------------------------------
# one name per setting
# ---------------------------------------------------------------------------
PAPER_SYMBOLS: dict[str, str] = {
    "S": "population",
    "G": "generations",
    "T": "steps_per_pathway",
    "K": "tournament",
    "L": "n_layers",
    "M": "n_modules",
    "N": "max_active",
}
"""The paper's symbols, accepted wherever a Config field name is (notebook
parameters, ``mtl run -p``, ``mtl sweep -p``, the ablation script). The field
name is the one name of a setting; a symbol is only an alias for it."""

RESULT_NEUTRAL_FIELDS: frozenset[str] = frozenset({"profile", "checkpoint_every", "device", "workers"})
"""Config fields that change no number of a run: ``profile`` is a name,
``checkpoint_every`` how often a run saves its progress, ``device`` where
it computes (a GPU rounds differently from the CPU, as two thread counts
may) and ``workers`` how many processes share a chapter's cells. Cell keys, record keys and the grouping of records in summaries all
leave exactly these out."""


LATER_FIELDS: frozenset[str] = frozenset({"workers", "input_kind", "fitness_on", "fitness_fraction", "time_masks",
                                          "freq_masks", "mask_width", "dropout"})
"""Fields added after records were committed (``workers``, and the options beyond the paper). A record's
``config`` holds one only when it is not at its default (:meth:`Config.recorded_dict`), so that a
committed cell computed again gives back its committed record field for field."""


def canonical_names(values: Mapping[str, Any], also: Iterable[str] = ()) -> dict[str, Any]:
    """``values`` with every paper symbol (:data:`PAPER_SYMBOLS`) replaced by its Config field name.

    Names that are neither Config fields, symbols nor listed in ``also`` (a
    caller's own parameters, such as a notebook's ``seeds``) are an error, and
    so is a setting given twice under two names (``G`` and ``generations``).

    >>> canonical_names({"G": 50, "lr": 0.01})
    {'generations': 50, 'lr': 0.01}
    """
    fields, extra = {f.name for f in dataclasses.fields(Config)}, set(also)
    result: dict[str, Any] = {}
    for name, value in values.items():
        field_name = PAPER_SYMBOLS.get(name, name)
        if field_name not in fields and field_name not in extra:
            raise ConfigError(f"unknown parameter {name!r}: not a Config field"
                              + (f" nor one of {', '.join(sorted(extra))}" if extra else "")
                              + f"; the paper's symbols {', '.join(PAPER_SYMBOLS)} stand for "
                              + ", ".join(PAPER_SYMBOLS.values()))
        if field_name in result:
            raise ConfigError(f"parameter {field_name!r} is given twice (as {field_name!r} and as its symbol)")
        result[field_name] = value
    return result


PAPER = Config(profile="paper")


def parameter_names() -> "pd.DataFrame":
    """The paper's symbols, their Config field names and the paper's values, as a table (for the book)."""
    import pandas as pd

    paper = PAPER.to_dict()
    return pd.DataFrame([{"symbol": symbol, "Config field": name, "paper": paper[name]}
                         for symbol, name in PAPER_SYMBOLS.items()], dtype=object)


def parse_value(text: str) -> Any:
    """A parameter value given on a command line as the Python value it spells.

    YAML syntax: ``3`` -> int, ``0.02`` -> float, ``true`` -> bool,
    ``[0, 1, 2]`` -> list, ``None``/``null`` -> None, anything else -> str;
    and ``1e-3`` -> float, which YAML 1.1 would read as a string.
    """
    import yaml

    if text.strip() in ("None", "none", "null", "~", ""):
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return float(value) if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()) else value


_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
"""A number in scientific notation without the dot YAML 1.1 requires (``1e-3``)."""


def paper_defaults() -> dict[str, Any]:
    """The paper's configuration as a plain dict (:meth:`Config.to_dict` of :data:`PAPER`)."""
    return PAPER.to_dict()


def differences_from_defaults(values: Mapping[str, Any], drop: Iterable[str] = ()) -> dict[str, Any]:
    """The entries of ``values`` (a :meth:`Config.to_dict`, perhaps stored by an older version) that
    differ from the paper's defaults, ``drop`` left out.

    A field today's :class:`Config` lacks counts as a difference; a field a
    stored dict lacks is simply absent. So a field added later, at a default
    that keeps the old behaviour, changes nothing that is keyed on this.
    """
    paper, dropped = paper_defaults(), set(drop)
    return {k: v for k, v in values.items() if k not in dropped and (k not in paper or v != paper[k])}

# Each profile is the paper configuration with a few fields replaced.
_PROFILE_CHANGES: dict[str, dict[str, Any]] = {
    "paper": {},
    # What `make book` shows: the paper's settings (S=20, G=200, one pass per pathway,
    # 5 folds), with faces cropped from every 5th video frame (about 6,400 eNTERFACE
    # and 1,800 SAVEE crops instead of 5 times as many). Every cell of the book at
    # this profile is committed under results/default (results/default/README.md:
    # how, and what it cost), so the book reads records and computes none of them.
    "default": dict(frame_step=5),
    # Live teaching: each notebook in about a minute on 2 cores (measured times,
    # and what each chapter still shows, in book/teaching.md). The full-size
    # synthetic corpora, because the tiny ones hold a dozen training windows per
    # fold. A chapter's cost is its cells x G x 2 pathways x T SGD steps (the
    # steps dominate), so G, T and the folds are what is cut; every generation
    # is evaluated so that the learning curves have points. At 400 SGD steps per
    # training the paper's lr (0.02) hardly moves the weights: lr=0.1 was chosen
    # among 0.02, 0.05, 0.1 and 0.2 on inner folds of outer fold 0's training part
    # (Tables 2 and 4, every method and target), never on a test fold
    # (scripts/choose_classroom.py; scores in results/classroom-selection.json;
    # G was cut from 10 to 8 for time and the rate chosen again at G = 8).
    # Two workers: a lesson's laptop has two cores or more, and one process per core
    # computes a chapter's cells 1.2x faster than one process on both.
    "classroom": dict(generations=8, folds=2, steps_per_pathway=25, lr=0.1, frame_step=10, checkpoint_every=0,
                      eval_every=1, workers=2),
    # Seconds per run: for tests and for trying a notebook quickly.
    "smoke": dict(population=4, generations=3, folds=2, frame_step=4, synthetic_size="tiny",
                  steps_per_pathway=2, checkpoint_every=5, eval_every=1),
}

PROFILES: tuple[str, ...] = tuple(_PROFILE_CHANGES)


def get_profile(name: str = "paper", **overrides: Any) -> Config:
    """The named profile's configuration, with ``overrides`` applied on top.

    >>> get_profile("smoke").generations
    3
    >>> get_profile("paper", generations=10).generations
    10
    """
    if name not in _PROFILE_CHANGES:
        raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PAPER.replace(profile=name, **_PROFILE_CHANGES[name]).replace(**overrides)
