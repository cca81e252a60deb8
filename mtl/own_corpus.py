"""The chapter "Your own corpus": its demonstration runs, its plan, and its views of the records.

The chapter runs the paper's comparison of Tables 2 and 4 -- PathNet
transfer from a source corpus, fine-tuning of the source network, and
training from scratch -- on ``source->target`` runs whose corpora are corpus
cards (:mod:`mtl.corpora.cards`), manifests, folders or built-in corpora.

* :func:`demo_runs` -- what the default book runs: eNTERFACE'05 (the paper's
  source corpus; the synthetic stand-in here) to each of two bundled cards,
  ``data/cards/face_sequences.yaml`` (synthetic face image sequences) and a
  speech card: ``ravdess_speech.yaml`` (real RAVDESS, 4 actors) where RAVDESS
  is under the data root, else ``emodb_speech_synthetic.yaml`` (the synthetic
  EMO-DB stand-in, 2 speakers);
* :func:`plan_own_corpus` -- the chapter's parameter check: each run in its
  modality, planned as the Table 2 (video) or Table 4 (audio) chapter plans a
  pair of its own choosing, its cells filed under :data:`EXPERIMENT`;
* :func:`corpora_table`, :class:`MethodsTable`, :func:`own_corpus_finding`
  -- the chapter's tables and its "what this shows" box.

Why the cards are the targets: a target is trained once per fold and method
(5 folds x 3 methods at the paper's settings), a source model once on all its
data. A corpus of your own is the target you want a model for; and the source
model of eNTERFACE to a target with eNTERFACE's six classes is the one the
Table 2 and Table 4 chapters train (same key), so the chapter adds only the
training on the targets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mtl.cells import RunSpec, parse_run_spec
from mtl.chapters import NotebookPlan, plan_notebook
from mtl.comparison import METHOD_NAMES, Finding, compute_cost, method_order
from mtl.config import MODALITIES
from mtl.corpora import CORPORA, corpus_card, load_corpus
from mtl.corpora.labels import ABBREVIATIONS, paper_order
from mtl.datasets import corpus_root
from mtl.errors import ConfigError, MissingDataError
from mtl.paths import data_root as current_data_root
from mtl.paths import project_root
from mtl.results import PAPER_VALUES, format_mean_sd, style_table, summarise
from mtl.synthetic import make_corpus
from mtl.synthetic.sequences import make_face_sequences

__all__ = ["EXPERIMENT", "CARDS", "demo_speech_card", "demo_runs", "run_modality", "plan_own_corpus",
           "corpora_table", "MethodsTable", "own_corpus_finding", "first_transfer_records"]

EXPERIMENT = "own_corpus"
"""The label the chapter's cells and records are filed under (``results/runs/own_corpus/``)."""
CARDS = project_root() / "data" / "cards"
"""The bundled demonstration cards."""
DEMO_SOURCE = "enterface"
BASELINES = {"video": "table2_visual_baselines", "audio": "table4_speech_baselines"}
"""The chapter of the paper whose three methods a run of each modality is planned like."""
METHOD_ORDER = ("finetune", "scratch", "transfer")
"""The paper's row order in Tables 2 and 4."""


# ----------------------------------------------------------------------------
# the demonstration and the plan
# ----------------------------------------------------------------------------
def demo_speech_card(data: str | None = None) -> Path:
    """The speech card of the demonstration: real RAVDESS where it is under the data root, else the stand-in.

    ``data="real"`` insists on RAVDESS (:class:`~mtl.errors.MissingDataError`
    when absent); ``"synthetic"`` takes the synthetic EMO-DB stand-in
    (generated on first use); ``"auto"`` or None, whichever is here.
    """
    ravdess = current_data_root() / corpus_card("ravdess").folder
    if data == "real" and not ravdess.is_dir():
        raise MissingDataError(f"data='real' needs real RAVDESS at {ravdess} for the demonstration's speech "
                               "card: set MTL_DATA_ROOT to the folder holding ravdess-speech-16k/")
    if data != "synthetic" and ravdess.is_dir():
        return CARDS / "ravdess_speech.yaml"
    make_corpus("emodb", size="full")
    return CARDS / "emodb_speech_synthetic.yaml"


def demo_runs(data: str | None = None) -> list[str]:
    """The default book's runs: eNTERFACE'05 to the face-sequence card and to the speech card.

    Writes the synthetic face sequences (:func:`~mtl.synthetic.sequences.make_face_sequences`)
    into the cache on first use; the speech card is :func:`demo_speech_card`'s.
    """
    make_face_sequences()
    return [f"{DEMO_SOURCE}->{CARDS / 'face_sequences.yaml'}", f"{DEMO_SOURCE}->{demo_speech_card(data)}"]


def run_modality(spec: RunSpec, modality: str | None = None) -> str:
    """The modality a run trains in: ``modality`` when given, else the one its corpora share (audio if both).

    A run transfers within one modality; corpora with none in common are a
    :class:`~mtl.errors.ConfigError` that names each one's.
    """
    corpora = (*(spec.sources or ()), spec.target)
    if modality is not None:
        for corpus in corpora:
            corpus_card(corpus, modality)
        return modality
    shared = [m for m in MODALITIES if all(m in corpus_card(c).modalities for c in corpora)]
    if not shared:
        each = "; ".join(f"{c}: {', '.join(corpus_card(c).modalities)}" for c in corpora)
        raise ConfigError(f"run {spec}: its corpora have no modality in common ({each}); a run transfers within "
                          "one modality, so pair each card with a corpus of its own modality")
    return shared[0]


def plan_own_corpus(corpora: Sequence[str] | str | None = None, *, data_root: str | Path | None = None,
                    modality: str | None = None, classes: Sequence[str] | str | None = None,
                    data: str | None = None, profile: str = "default", seeds: Sequence[int] | int | None = None,
                    folds: int | None = None, protocol: str | Sequence[str] | None = None,
                    population: int | None = None, generations: int | None = None,
                    steps_per_pathway: int | None = None, lr: float | None = None,
                    batch_size: int | None = None) -> NotebookPlan:
    """Check the chapter's parameters and plan its cells: three methods on every ``source->target`` run.

    ``corpora`` are runs whose names may be paths of corpus cards, manifests
    or folders (``"enterface->data/cards/face_sequences.yaml"``); None: the
    demonstration (:func:`demo_runs`). Each run trains in the modality its
    corpora share (``modality`` forces one) and is planned as the chapter of
    Table 2 (video) or Table 4 (audio) plans a pair of the reader's choosing
    (:func:`mtl.chapters.plan_notebook`): fine-tuning, scratch and transfer on
    the classes the target shares with its sources, every fold. The other
    parameters are :func:`~mtl.chapters.plan_notebook`'s; ``data`` also
    chooses the demonstration's speech card (:func:`demo_speech_card`).
    """
    common = dict(data=data, profile=profile, seeds=seeds, folds=folds, protocol=protocol, population=population,
                  generations=generations, steps_per_pathway=steps_per_pathway, lr=lr, batch_size=batch_size)
    plan_notebook(None, data_root=data_root, corpora=(), modality=modality, **common)  # checks, sets the data root
    runs = demo_runs(data) if corpora is None else [corpora] if isinstance(corpora, str) else list(corpora)
    if not runs:
        raise ConfigError("corpora is empty: give 'source->target' runs (card paths allowed), or None for the "
                          "demonstration")
    by_modality: dict[str, list[str]] = {}
    for run in runs:
        spec = parse_run_spec(run)
        if not spec.sources:
            raise ConfigError(f"corpora: {run!r} names no source; write 'source->target' (e.g. "
                              "'enterface->my_card.yaml')")
        by_modality.setdefault(run_modality(spec, modality), []).append(str(spec))
    plans = [plan_notebook(BASELINES[m], corpora=pairs, modality=m, classes=classes, **common)
             for m, pairs in by_modality.items()]
    first = plans[0]
    return NotebookPlan(EXPERIMENT, "Tables 2 and 4 on corpora of your own", profile, first.config, first.seeds,
                        first.protocols, first.modality if len(plans) == 1 else None,
                        tuple(c for p in plans for c in p.corpora), tuple(pair for p in plans for pair in p.pairs),
                        first.data, first.data_root, {k: v for p in plans for k, v in p.data_kinds.items()},
                        [dataclasses.replace(cell, experiment=EXPERIMENT) for p in plans for cell in p.cells])


# ----------------------------------------------------------------------------
# views
# ----------------------------------------------------------------------------
def _title(name: str) -> str:
    return CORPORA[name].title if name in CORPORA else name


def corpora_table(plan: NotebookPlan) -> pd.DataFrame:
    """One row per corpus of the plan's runs: role, modality, copy, card, files, speakers, recordings, classes.

    A corpus declared by a card is listed from its files (a sequence of frames
    is one recording); a built-in corpus by its registry entry (the data
    chapter counts its files).
    """
    roles: dict[tuple[str, str], set[str]] = {}
    modalities = {(tuple(cell.sources), cell.target): cell.modality for cell in plan.cells}
    for sources, target in plan.pairs:
        modality = modalities.get((tuple(sorted(sources)), target), plan.modality or "audio")
        for corpus in sources:
            roles.setdefault((corpus, modality), set()).add("source")
        roles.setdefault((target, modality), set()).add("target")
    rows = []
    for (name, modality), role in roles.items():
        card = corpus_card(name)
        row = {"corpus": card.title, "role": " and ".join(sorted(role)), "modality": modality,
               "data": plan.data_kinds.get(name, "?"), "card": card.card or "built-in"}
        if card.card:
            table = load_corpus(name, root=corpus_root(name, plan.data_kinds[name], plan.config), modality=modality)
            recordings = table["recording"] if "recording" in table else table["utterance"]
            row.update(files=len(table), speakers=table["speaker"].nunique(), recordings=recordings.nunique(),
                       skipped=len(table.attrs.get("skipped", [])))
        else:
            row.update(files="—", speakers="—", recordings="—", skipped="—")
        row["classes"] = ", ".join(card.classes)
        rows.append(row)
    return pd.DataFrame(rows)


def _items(records: Any) -> list[dict[str, Any]]:
    return records["record"].tolist() if isinstance(records, pd.DataFrame) else list(records)


def _ordered(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows target by target (in the records' order), the methods in the paper's order."""
    targets = list(dict.fromkeys(summary["target"]))
    return summary.assign(_t=summary["target"].map(targets.index),
                          _m=summary["method"].map(lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else 9)
                          ).sort_values(["_t", "protocol", "_m"]).drop(columns=["_t", "_m"]).reset_index(drop=True)


class MethodsTable:
    """Scratch, fine-tuning and transfer on each target: accuracy, UAR, per recording and per class (mean ± sd).

    Displayed in a notebook: the accuracy table, then what each number ran on
    (data, the target's copy and card, protocol, profile, seeds, folds) in a
    collapsible section. ``records`` as for :func:`mtl.results.summarise`.
    """

    def __init__(self, records: Any, digits: int = 2):
        self.records = _items(records)
        self.summary = _ordered(summarise(self.records))
        self.digits = digits

    def classes(self) -> list[str]:
        """Every class of any target, in the paper's order."""
        return paper_order({c for text in self.summary["classes"] for c in text.split(",")})

    def accuracy(self) -> pd.DataFrame:
        """Target, method, sources, protocol, overall, UAR, per recording, then one column per class."""
        rows, d = [], self.digits
        for _, row in self.summary.iterrows():
            out = {"Target": _title(row["target"]), "Method": METHOD_NAMES.get(row["method"], row["method"]),
                   "Sources": " + ".join(_title(s) for s in row["sources"].split("+")) if row["sources"] else "—",
                   "Protocol": row["protocol"],
                   "Overall": format_mean_sd(row["accuracy_mean"], row["accuracy_sd"], d),
                   "UAR": format_mean_sd(row["uar_mean"], row["uar_sd"], d),
                   "Per recording": format_mean_sd(row["utt_accuracy_mean_prob_mean"],
                                                   row["utt_accuracy_mean_prob_sd"], d)}
            for name in self.classes():
                mean, sd = row.get(f"acc_{name}_mean"), row.get(f"acc_{name}_sd")
                out[ABBREVIATIONS.get(name, name)] = format_mean_sd(mean, sd, d) if mean is not None else "—"
            rows.append(out)
        return pd.DataFrame(rows)

    def provenance(self) -> pd.DataFrame:
        """Per row: data kind, the target's copy, its card (and digest), protocol, profile, seeds, folds."""
        cards = {}
        for record in self.records:
            entry = (record.get("data") or {}).get("provenance", {}).get(record["target"], {})
            cards[record["target"]] = (f"{entry['card']} (sha1 {entry['card_digest'][:10]})"
                                       if entry.get("card") else "built-in")
        return pd.DataFrame([{"Target": _title(r["target"]), "Method": METHOD_NAMES.get(r["method"], r["method"]),
                              "Data": r["data_kind"], "Target copy": r["corpus_copy"], "Card": cards[r["target"]],
                              "Protocol": r["protocol"], "Profile": r["profile"],
                              "Seeds": ", ".join(map(str, r["seeds"])), "Folds": f"{r['folds_done']}/{r['n_folds']}"}
                             for _, r in self.summary.iterrows()])

    def __repr__(self) -> str:
        return self.accuracy().to_string(index=False)

    def _repr_html_(self) -> str:
        numbers = (style_table(self.accuracy()).set_caption("Your corpora: accuracy of the three methods "
                                                            "(mean ± sd over folds and seeds)")
                   .set_table_attributes('class="mtl-table"'))
        ran_on = (style_table(self.provenance()).set_caption("What each number ran on")
                  .set_table_attributes('class="mtl-table"'))
        return (f'<div class="mtl-comparison"><div class="mtl-scroll">{numbers.to_html()}</div>'
                '<details class="mtl-provenance"><summary>What each number ran on: data, the target\'s copy and '
                f'card, protocol, profile, seeds, folds</summary><div class="mtl-scroll">{ran_on.to_html()}</div>'
                "</details></div>")


def _paper_reference(modality: str) -> str:
    """The paper's three methods on eNTERFACE -> SAVEE in ``modality`` (Table 2 or 4), as an order."""
    table = "table2" if modality == "video" else "table4"
    values = [(METHOD_NAMES[e["method"]], e["overall"]) for e in PAPER_VALUES[table]
              if e["target"] == "savee" and e["modality"] == modality]
    listed = ", ".join(f"{name} {value:.2f}" for name, value in values)
    return (f"the paper's order on eNTERFACE → SAVEE ({table.replace('table', 'Table ')}: {listed}) "
            f"is {method_order(values)}")


def own_corpus_finding(records: Any) -> Finding:
    """The chapter's box: each target's three methods, their order beside the paper's, the data, the cost.

    Every number comes from ``records`` (a list of records or the frame of
    :func:`mtl.results.load_records`).
    """
    items = _items(records)
    summary = _ordered(summarise(items))
    if summary.empty:
        return Finding(["No record of these runs has been computed yet, so there is nothing to show."])
    kinds: dict[str, dict[str, set[str]]] = {}  # target -> its own kind, and its sources' kinds
    for record in items:
        for corpus, kind in record["data"]["kinds"].items():
            role = "target" if corpus == record["target"] else "sources"
            kinds.setdefault(record["target"], {"target": set(), "sources": set()})[role].add(kind)
    sentences = []
    for (target, protocol), group in summary.groupby(["target", "protocol"], sort=False):
        values = [(METHOD_NAMES.get(r["method"], r["method"]), r["accuracy_mean"]) for _, r in group.iterrows()]
        listed = ", ".join(f"{name} {format_mean_sd(r['accuracy_mean'], r['accuracy_sd'])}"
                           for (name, _), (_, r) in zip(values, group.iterrows()))
        n = len(group["classes"].iloc[0].split(","))
        own, sources = sorted(kinds[target]["target"]), kinds[target]["sources"]
        notes = [] if all(kind in _title(target) for kind in own) else [", ".join(own)]  # a title may say it
        notes += [f"source {', '.join(sorted(sources))}"] if sources - set(own) else []
        notes += [f"{protocol} protocol"] if summary["protocol"].nunique() > 1 else []
        where = f"On {_title(target)}" + (f" ({'; '.join(notes)})" if notes else "")
        sentence = f"{where}: {listed}; chance is {1 / n:.2f} ({n} classes)."
        if len(values) > 1:
            sentence += (f" The order here is {method_order(values)}; "
                         f"{_paper_reference(group['modality'].iloc[0])}.")
        sentences.append(sentence)
    folds = sorted({f"{r['folds_done']}/{r['n_folds']}" for _, r in summary.iterrows()})
    seeds = sorted({s for seeds in summary["seeds"] for s in seeds})
    sentences.append(f"Each number is the mean ± sd over {' or '.join(folds)} folds and seed"
                     f"{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}; the records say which data "
                     "each ran on (synthetic stand-ins test the pipeline, not the paper's claims).")
    seconds = compute_cost(items)
    if seconds:
        spent = f"{seconds / 60:.0f} core-minutes" if seconds >= 90 else f"{seconds:.0f} core-seconds"
        sentences.append(f"Computing these records took {spent} of training (one thread per cell, each source "
                         "model once, feature extraction not counted).")
    return Finding(sentences)


def first_transfer_records(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One transfer record per run (its lowest fold and seed): the one whose pathways the chapter draws."""
    chosen: dict[tuple[str, str, str], Mapping[str, Any]] = {}
    for record in sorted(_items(records), key=lambda r: (r.get("seed", 0), r.get("fold", 0))):
        if record.get("method") == "transfer" and record.get("pathways"):
            chosen.setdefault(("+".join(record["sources"]), record["target"], record["protocol"]), record)
    return list(chosen.values())
