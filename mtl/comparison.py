"""The paper's numbers beside ours, as a chapter shows them: a figure, a "what this shows" box, two tables.

:func:`compare_with_paper` turns records (or their :func:`mtl.results.summarise`)
into a :class:`Comparison` of one of the paper's tables. Displayed in a
notebook it is the accuracy table -- the paper's number and ours side by side,
each row saying what our number ran on (the data and the profile; a
demonstration profile is marked, and what differs from the paper is said in a
note under the table) -- followed by the provenance table ("what each number
ran on") in a collapsible section. A long caveat (the processed EMO-DB copy,
a note of the paper's) is given once per table as a numbered note, its marker
in every row it applies to. Both tables sit in boxes that scroll sideways, so
a wide table never widens the page.

:meth:`Comparison.figure` draws the chapter's key figure
(:func:`mtl.plots.accuracy_beside_paper`) and :meth:`Comparison.finding` the
short box that opens a chapter, every number in it computed from the records.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from mtl.config import RESULT_NEUTRAL_FIELDS, differences_from_defaults, get_profile
from mtl.corpora import CORPORA
from mtl.plots import accuracy_beside_paper
from mtl.results import config_id, format_mean_sd, paper_comparison, style_table, summarise

__all__ = ["Comparison", "Finding", "compare_with_paper", "method_order", "settings_note"]

METHOD_NAMES = {"transfer": "transfer", "finetune": "fine-tuning", "scratch": "scratch"}

# Fields that are no setting of the run (the seed and protocol have columns of their own), and fields that
# only one modality reads: a speech run at the default profile has the paper's settings.
_NOT_SETTINGS = RESULT_NEUTRAL_FIELDS | {"seed", "protocol"}
_VIDEO_ONLY = frozenset({"frame_step", "face_size", "face_min_score"})
_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_LONG = 48
"""Characters beyond which a provenance text becomes a numbered note (its head stays in the cell)."""


def _changed(config: Mapping[str, Any], modality: str | None) -> dict[str, Any]:
    ignored = _NOT_SETTINGS | (_VIDEO_ONLY if modality == "audio" else frozenset())
    return differences_from_defaults(config, ignored)


def settings_note(config: Mapping[str, Any], modality: str | None = None, short: bool = False) -> str:
    """What a run's settings change from the paper's, in words; ``""`` when nothing does.

    ``config`` is a record's ``config`` (:meth:`mtl.config.Config.to_dict`).
    Result-neutral fields, the seed and the protocol are left out, and so are
    the face-detection fields for a speech run (``modality="audio"``).
    ``short`` names the changed fields without their values.
    """
    changed = _changed(config, modality)
    if not changed:
        return ""
    profile = config.get("profile", "?")
    if set(changed) == {"frame_step"}:
        return (f"the {profile} profile has the paper's settings except that faces are cropped from every "
                f"{changed['frame_step']}th video frame (frame_step={changed['frame_step']}; the paper: every frame)")
    if short:
        listed = ", ".join(changed)
        where = "the note under the table gives the values"
    else:
        paper = get_profile("paper").to_dict()
        listed = ", ".join(f"{name}={value!r} (paper {paper.get(name)!r})" for name, value in changed.items())
        where = "they show the method running, not the accuracy it reaches"
    return f"demonstration numbers: the {profile} profile differs from the paper in {listed}; {where}"


class _Notes:
    """Numbered notes of one comparison: each distinct text gets one number, shown once under a table."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        number = self.texts.index(text) + 1
        return "".join(_SUPERSCRIPTS[int(d)] for d in str(number))

    def html(self, used: Iterable[str]) -> str:
        items = "".join(f"<li value=\"{self.texts.index(t) + 1}\">{html.escape(t)}</li>"
                        for t in dict.fromkeys(used))
        return f'<ol class="mtl-notes">{items}</ol>' if items else ""


class Finding:
    """The short "what this shows" box that opens a chapter (an admonition in the book and in Jupyter)."""

    def __init__(self, sentences: Sequence[str], title: str = "What this shows"):
        self.sentences = list(sentences)
        self.title = title

    def __str__(self) -> str:
        return " ".join(self.sentences)

    def __repr__(self) -> str:
        return f"{self.title}: {self}"

    def _repr_html_(self) -> str:
        body = " ".join(html.escape(s) for s in self.sentences)
        return (f'<div class="admonition tip mtl-finding"><p class="admonition-title">{html.escape(self.title)}'
                f"</p><p>{body}</p></div>")


class Comparison:
    """The paper's numbers beside the reproduced ones, for one of the paper's tables.

    ``frame`` is :func:`mtl.results.paper_comparison`; ``configs`` maps its
    ``Config id`` to a record's configuration (what :func:`settings_note`
    reads); a group without one is described by its profile's settings.
    ``cpu_seconds`` is what computing the records cost (:func:`compute_cost`),
    when they are known.
    """

    def __init__(self, frame: pd.DataFrame, table: str, configs: Mapping[str, Mapping[str, Any]] | None = None,
                 cpu_seconds: float | None = None):
        self.frame = frame.reset_index(drop=True)
        self.table = table
        self.configs = dict(configs or {})
        self.cpu_seconds = cpu_seconds
        self._notes = _Notes()

    @property
    def name(self) -> str:
        """``"Table 1"``."""
        return self.table.replace("table", "Table ")

    def runs(self) -> list[str]:
        """``"transfer ravdess → emodb (speaker)"``: method, corpora and protocol of each row."""
        frame = self.frame
        return [f"{m} {s + ' → ' if s not in ('', '—') else ''}{t}" + (f" ({p} protocol)" if p not in ("", "—") else "")
                for m, s, t, p in zip(frame["Method"], frame["Sources"], frame["Target"], frame["Protocol"])]

    def run_only(self) -> "Comparison":
        """The same comparison without the paper's rows that no record matches."""
        return Comparison(self.frame[self.frame["Records"] > 0], self.table, self.configs)

    def _config(self, row: pd.Series) -> Mapping[str, Any]:
        return self.configs.get(row["Config id"]) or get_profile(row["Profile"]).to_dict()

    # -- the two tables ------------------------------------------------------
    def _ran_on(self) -> tuple[list[str], list[str]]:
        """Per row: "synthetic, smoke profile ¹" and the note behind the marker."""
        cells, notes = [], []
        for _, row in self.frame.iterrows():
            if not row["Records"]:
                cells.append("—")
                notes.append("")
                continue
            note = settings_note(self._config(row), row["Modality"])
            if note:
                cells.append(f"{row['Data']}, {row['Profile']} profile {self._notes.mark(note)}")
            else:
                cells.append(f"{row['Data']}, the paper's settings")
            notes.append(note)
        return cells, notes

    def accuracy(self) -> pd.DataFrame:
        """Model, run, what ours ran on, then (paper, ours) for overall and every class of the paper's table.

        A model with a note (the paper's own, "not run", a stand-in) carries
        its marker; the notes are in :meth:`notes`.
        """
        frame = self.frame
        models = [f"{m} {self._notes.mark(n)}" if n else m for m, n in zip(frame["Model"], frame["Note"])]
        ran_on, _ = self._ran_on()
        columns: list[tuple[str, str]] = [("", "Model"), ("", "Run"), ("", "Ours ran on")]
        data: dict[tuple[str, str], Any] = {columns[0]: models, columns[1]: self.runs(), columns[2]: ran_on}
        groups = [c[: -len(" (paper)")] for c in frame.columns if str(c).endswith(" (paper)")]
        for group in groups:
            for side in ("paper", "ours"):
                columns.append((group, side))
                data[(group, side)] = frame[f"{group} ({side})"]
            if group == "Overall":
                columns.append((group, "Δ"))
                data[(group, "Δ")] = frame["Δ overall"]
        out = pd.DataFrame({c: data[c] for c in columns})
        out.columns = pd.MultiIndex.from_tuples(columns)
        return out

    def provenance(self) -> pd.DataFrame:
        """Model, run, data, corpus copy, protocol, profile, seeds, folds; a long corpus copy as a note."""
        frame = self.frame.copy()
        frame.insert(1, "Run", self.runs())
        frame["Corpus copy"] = [self._short(text) for text in frame["Corpus copy"]]
        keep = ["Model", "Run", "Data", "Corpus copy", "Protocol", "Profile", "Seeds", "Folds"]
        return frame[[c for c in keep if c in frame.columns]]

    def _short(self, text: Any) -> Any:
        if not isinstance(text, str) or len(text) <= _LONG:
            return text
        head = text.split(":")[0] if ":" in text[:_LONG] else "see note"
        return f"{head} {self._notes.mark(text)}"

    def notes(self) -> list[str]:
        """Every note the two tables mark, in marker order."""
        self.accuracy(), self.provenance()
        return list(self._notes.texts)

    def _repr_html_(self) -> str:
        accuracy = self.accuracy()
        accuracy_notes = [n for n in (*self.frame["Note"], *self._ran_on()[1]) if n]
        provenance = self.provenance()
        provenance_notes = [t for t in self.frame["Corpus copy"] if isinstance(t, str) and len(t) > _LONG]
        numbers = (style_table(accuracy)
                   .set_caption(f"{self.name}: accuracy, the paper's and ours (mean ± sd)")
                   .set_table_attributes('class="mtl-table"'))
        ran_on = (style_table(provenance)
                  .set_caption(f"{self.name}: what each reproduced number ran on")
                  .set_table_attributes('class="mtl-table"'))
        return (f'<div class="mtl-comparison"><div class="mtl-scroll">{numbers.to_html()}</div>'
                f"{self._notes.html(accuracy_notes)}"
                f'<details class="mtl-provenance"><summary>What each number ran on: data, corpus copy, '
                f"protocol, profile, seeds, folds</summary>"
                f'<div class="mtl-scroll">{ran_on.to_html()}</div>{self._notes.html(provenance_notes)}'
                f"</details></div>")

    # -- the figure and the box ----------------------------------------------
    def figure(self, title: str | None = None) -> Any:
        """:func:`mtl.plots.accuracy_beside_paper` of the rows that were run."""
        return accuracy_beside_paper(self.frame, labels=self.runs(),
                                     title=title or f"{self.name}: overall accuracy, ours beside the paper's")

    def finding(self) -> Finding:
        """The chapter's "what this shows" box: ours against the paper's per target, chance, folds, data, profile."""
        done = self.frame[self.frame["Records"] > 0]
        if done.empty:
            return Finding([f"No record of {self.name} has been computed yet, so there is nothing to show."])
        sentences = []
        several_protocols = done["Protocol"].nunique() > 1
        for (target, protocol), group in done.groupby(["Target", "Protocol"], sort=False):
            sentences.append(_target_sentence(group, CORPORA[target].title if target in CORPORA else target,
                                              protocol if several_protocols else None))
        folds = sorted(set(done["Folds"]))
        complete = {f.split("/")[1] for f in folds if f.split("/")[0] == f.split("/")[1]}
        folds_text = (f"{complete.pop()} folds" if len(complete) == 1 and len(folds) == 1
                      else f"the folds done ({', '.join(folds)})")
        seeds = sorted(set(done["Seeds"]))
        if len(seeds) == 1:
            seeds_text = f"seed{'s' if ',' in seeds[0] else ''} {seeds[0]}"
        else:  # methods run at different seeds: name each method's
            methods = {s: sorted({METHOD_NAMES.get(m, m) for m in done.loc[done["Seeds"] == s, "Method"]})
                       for s in seeds}
            seeds_text = "seeds " + "; ".join(f"{s} ({', '.join(methods[s])})" for s in seeds)
        sentences.append(f"Each of our numbers is the mean ± sd over {folds_text} and {seeds_text}.")
        kinds = set(done["Data"])
        if kinds == {"real"}:
            sentences.append("Data: real recordings (the corpus copy of each number is under the table).")
        elif kinds & {"synthetic", "mixed"}:
            sentences.append("Data: synthetic stand-ins for corpora this project does not have"
                             + (" (real target where marked mixed)" if "mixed" in kinds else "")
                             + ", so these numbers test the pipeline and compare the methods on that synthetic "
                               "task, not the paper's claims.")
        for _, row in done.drop_duplicates(["Config id", "Modality"]).iterrows():
            note = settings_note(self._config(row), row["Modality"], short=True)
            if note and note[0].upper() + note[1:] + "." not in sentences:
                sentences.append(note[0].upper() + note[1:] + ".")
        if self.cpu_seconds:
            sentences.append(f"Computing these records took {self.cpu_seconds / 3600:.1f} core-hours "
                             f"({self.cpu_seconds / 60:.0f} core-minutes: training, one thread per cell, source "
                             "models included; feature extraction not counted), as the records say.")
        return Finding(sentences)


def _target_sentence(group: pd.DataFrame, target: str, protocol: str | None) -> str:
    """"On SAVEE: transfer 0.62 ± 0.03 (the paper 0.94), ...; chance 0.17 (6 classes)." and the order."""
    where = f"On {target}" + (f" ({protocol} protocol)" if protocol else "")
    values = [(METHOD_NAMES.get(r["Method"], r["Method"]), r["Overall mean"], r["Overall (paper)"],
               format_mean_sd(r["Overall mean"], r["Overall sd"])) for _, r in group.iterrows()]
    listed = ", ".join(f"{name} {text} (the paper: {paper:.2f})" for name, _, paper, text in values)
    classes = group["Classes"].iloc[0].split(",")
    sentence = f"{where}: {listed}; chance is {1 / len(classes):.2f} ({len(classes)} classes)."
    if len({name for name, *_ in values}) > 1:
        ours, papers = method_order([(n, m) for n, m, _, _ in values]), method_order([(n, p) for n, _, p, _ in values])
        sentence += (f" The paper's order, {papers}, holds here." if ours == papers
                     else f" The paper's order is {papers}; here it is {ours}.")
    return sentence


def method_order(values: Sequence[tuple[str, float]]) -> str:
    """``"transfer > scratch > fine-tuning"`` (two decimals equal: "=")."""
    ranked = sorted(values, key=lambda v: -v[1])
    text = ranked[0][0]
    for (_, previous), (name, value) in zip(ranked, ranked[1:]):
        text += f" {'=' if round(previous, 2) == round(value, 2) else '>'} {name}"
    return text


def compare_with_paper(data: Any, table: str, digits: int = 2,
                       experiments: Sequence[str] | str | None = None) -> Comparison:
    """The paper's ``table`` beside ours, as a :class:`Comparison`.

    ``data`` is records (a list of record dicts, or the DataFrame of
    :func:`mtl.results.load_records`) or their :func:`mtl.results.summarise`;
    from records the settings each row ran with are read from the records
    themselves, from a summary they are its profile's. ``experiments`` as for
    :func:`mtl.results.paper_comparison` (default: the table's own).
    """
    configs: dict[str, Mapping[str, Any]] = {}
    cpu_seconds = None
    if isinstance(data, pd.DataFrame) and "record" not in data.columns:
        summary = data
    else:
        items = data["record"].tolist() if isinstance(data, pd.DataFrame) else list(data)
        summary = summarise(items)
        configs = {config_id(r.get("config", {})): r.get("config", {}) for r in items}
        cpu_seconds = compute_cost(items)
    frame = paper_comparison(summary, table, digits=digits, experiments=experiments)
    return Comparison(frame, table, configs, cpu_seconds)


def compute_cost(records: Iterable[Mapping[str, Any]]) -> float:
    """Seconds of training the records cost: each distinct cell's target training, each source model once.

    Read from the records' ``timings`` (the cell's training, and the time its
    source model took when it was trained, whichever cell first needed it); a
    cell filed under two experiments, or a source model shared by several
    cells, counts once.
    """
    targets: dict[str, float] = {}
    sources: dict[str, float] = {}
    for record in records:
        timings = record.get("timings") or {}
        targets[record["cell_key"]] = float(timings.get("target_seconds") or 0.0)
        source = record.get("source") or {}
        if source.get("key") and timings.get("source_seconds"):  # its training time, however often reused
            sources[source["key"]] = float(timings["source_seconds"])
    return sum(targets.values()) + sum(sources.values())
