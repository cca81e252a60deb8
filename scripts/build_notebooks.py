"""Write notebooks/*.ipynb, the book's parameterised notebooks, from the definitions below.

The notebooks are narrative over library calls: every computation lives in
:mod:`mtl`; a notebook states what the paper reports, checks its parameters
through :func:`mtl.chapters.plan_notebook`, runs the experiment and shows tables and
figures. Edit the definitions here and rerun this script (outputs stay empty):

    .venv/bin/python scripts/build_notebooks.py           # write notebooks/
    .venv/bin/python scripts/build_notebooks.py --check   # exit 1 if notebooks/ is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

PARAMETERS_TAG = "parameters"
VALIDATION_TAG = "validate-parameters"

# ----------------------------------------------------------------------------
# building blocks
# ----------------------------------------------------------------------------
_PARAMETER_LINES = {
    "data_root": 'data_root = None  # folder holding emodb/, ravdess-speech-16k/ ...; None: $MTL_DATA_ROOT',
    "corpora": 'corpora = None    # runs, e.g. ["enterface->savee"]; None: the paper\'s',
    "corpus_names": 'corpora = None    # corpus names, e.g. ["emodb", "savee"]; None: all available',
    "modality": 'modality = None   # "audio" or "video"; None: the experiment\'s',
    "classes": 'classes = None    # "shared", "target" or a list of emotions; None: the rule',
    "data": 'data = None       # "auto" (real when present), "real" or "synthetic"',
    "profile": 'profile = "default"  # "smoke" (seconds), "default" (make book), "paper" (hours)',
    "seeds": 'seeds = None      # one seed or a list of seeds',
    "folds": 'folds = None      # k of k-fold cross-validation',
    "protocol": 'protocol = None   # "paper" (random folds), "utterance" or "speaker"',
    "S": 'S = None          # population size (paper: 20)',
    "G": 'G = None          # generations (paper: 200)',
    "T": 'T = None          # SGD steps per pathway (None: one pass over the training set)',
    "lr": 'lr = None         # learning rate (paper: 0.02)',
    "batch": 'batch = None      # mini-batch size (paper: 64)',
}
EXPERIMENT_PARAMETERS = ("data_root", "corpora", "modality", "classes", "data", "profile", "seeds", "folds",
                         "protocol", "S", "G", "T", "lr", "batch")


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text.strip("\n"))


def code(text: str, *tags: str) -> nbformat.NotebookNode:
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def parameters(*names: str) -> nbformat.NotebookNode:
    lines = ["# Parameters: papermill injects new values after this cell.",
             "# None means the profile's or the experiment's default."]
    lines += [_PARAMETER_LINES[n] for n in names]
    return code("\n".join(lines), PARAMETERS_TAG, "remove-cell")


def plan_cell(experiment: str | None, names: tuple[str, ...]) -> nbformat.NotebookNode:
    arguments = [n if n != "corpus_names" else "corpora" for n in names]
    target = f'"{experiment}"' if experiment else "None"
    calls = ", ".join(f"{a}={a}" for a in arguments)
    call = _wrap(f"plan = plan_notebook({target}, {calls})")
    text = (f"from mtl.chapters import plan_notebook\n\n"
            f"# Check the parameters (a bad one stops here, saying why); show the settings.\n"
            f"{call}\nplan")
    return code(text, VALIDATION_TAG)


def _wrap(call: str, width: int = 88) -> str:
    """Break a long one-line call after commas, aligned under its opening parenthesis."""
    if len(call) <= width:
        return call
    head, _, rest = call.partition("(")
    indent = " " * (len(head) + 1)
    lines, current = [], head + "("
    for part in rest.split(", "):
        if len(current) + len(part) + 2 > width and current.strip():
            lines.append(current.rstrip())
            current = indent
        current += part + ", "
    lines.append(current[:-2])
    return "\n".join(lines)


def notebook(name: str, cells: list[nbformat.NotebookNode], paper: str = "",
             experiments: tuple[str, ...] = ()) -> tuple[str, nbformat.NotebookNode]:
    nb = new_notebook(cells=cells)
    for index, cell in enumerate(nb.cells):
        cell.id = f"{name[:50]}-{index:02d}"  # stable ids: rebuilding gives identical files
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["mtl"] = {"paper": paper, "experiments": list(experiments)}
    return name, nb


IMPORTS = code("from mtl import plots, results\nfrom mtl.chapters import compare_with_paper\n\n%matplotlib inline")
PLOT_IMPORTS = code("from mtl import plots, results\n\n%matplotlib inline")

DATA_NOTE = """
:::{{note}}
**Data.** {what} eNTERFACE and SAVEE are not available to this project, so
unless real copies lie under the data root they are the synthetic corpora of
`mtl.synthetic`, written in the real corpora's layouts. The *Data* and
*Corpus copy* columns of every table say which copy each number comes from.
Numbers on synthetic data test the pipeline and compare the methods on that
synthetic task only: they say nothing about the paper's claims.
:::
"""

CACHE_NOTE = """
Each *cell* of the experiment (one method, one pair of corpora, one protocol,
one seed, one fold) is computed once and stored as a JSON record under
`results/runs/`; a rebuild with the same settings loads the records instead
of training again, and chapters share cells (Table 2 reuses Table 1's transfer
runs). Source models are trained once on all the source data and cached too.
"""


# ----------------------------------------------------------------------------
# the notebooks
# ----------------------------------------------------------------------------
def pathnet_evolution() -> tuple[str, nbformat.NotebookNode]:
    names = ("profile", "seeds", "S", "G", "T", "lr", "batch")
    return notebook("pathnet_evolution", [
        md("""
# PathNet and its evolution

Before any transfer, the machinery itself: a PathNet of $L = 3$ layers of
$M = 20$ modules, a population of random pathways, and the microbial genetic
algorithm of §3.3.2 evolving them on one small task. The chapter shows the
fitness over generations, the population after evolution and the best
pathway (compare the paper's Figs. 3 and 5).
"""),
        parameters(*names),
        plan_cell(None, names),
        PLOT_IMPORTS,
        md("""
## A small task

Synthetic EMO-DB speech (generated by `mtl.synthetic` in the corpus's layout,
never the real recordings), turned into 64 × 64 × 3 log-Mel images as in
§3.2. Half of the utterances train, the other half are held out (folds
grouped by utterance, so no utterance is on both sides).
"""),
        code("""
from mtl.evaluation import Standardizer, make_folds
from mtl.experiments import class_indices, load_dataset

features, provenance = load_dataset("emodb", "audio", plan.config, data="synthetic")
classes = provenance["classes"]
y = class_indices(features.samples, classes)
train, test = make_folds(features.samples, y, "utterance", 2, plan.seeds[0])[0]
scaler = Standardizer().fit(features.X, train)
X_train = scaler.transform(features.X, train)
X_test = scaler.transform(features.X, test)
print(f"{provenance['copy']}: {len(train)} training and {len(test)} held-out segments")
"""),
        md("""
## Evolving the population

`PathNetClassifier.fit` draws $S$ random pathways and runs $G$ binary
tournaments: in each, two pathways are trained for $T$ SGD steps, the fitter
one's genotype overwrites the other's, which is then mutated. The held-out
segments only record the learning curve; they play no part in the evolution.
"""),
        code("""
from mtl.pathnet import PathNetClassifier

config = plan.config.replace(seed=plan.seeds[0])
model = PathNetClassifier(config, n_classes=len(classes))
model.fit(X_train, y[train], X_val=X_test, y_val=y[test])
history = model.history_.to_frame()
shown = ["generation", "picked", "fitness", "winner", "best_fitness", "val_accuracy"]
results.style_table(history[shown].tail())
"""),
        md("## Fitness over generations"),
        code("""
plots.fitness_over_generations(model.history_, title="Fitness and held-out accuracy")
"""),
        md("""
## The population after evolution, and the best pathway

Each box is a module (20 ReLU units), each row a layer; grey lines are the
pathways of the final population, the thick red line the best pathway, which
predicts the held-out data.
"""),
        code("""
plots.draw_pathways(config.n_layers, config.n_modules,
                    population_genotypes=model.result_.population,
                    best=model.best_genotype_,
                    title="Population after evolution, and the best pathway")
"""),
        md("Held-out accuracy of the best pathway:"),
        code("""
model.score(X_test, y[test])
"""),
    ], paper="Figs. 3-5 (§3.3)")


def data() -> tuple[str, nbformat.NotebookNode]:
    names = ("data_root", "corpus_names", "data", "profile", "seeds")
    return notebook("data", [
        md("""
# Data and preprocessing

The paper uses three corpora: eNTERFACE'05 (audio-visual, 44 subjects, six
emotions), SAVEE (audio-visual, four male speakers, seven emotions) and
EMO-DB (speech, ten actors, seven emotions). This chapter shows the corpora
this build used, their class distributions, and the two preprocessing
pipelines of §3: three-channel log-Mel images for speech and Viola–Jones face
crops for video, including what happens when the detector finds no face.
"""),
        md("""
:::{note}
**Data.** eNTERFACE and SAVEE are not available to this project: they are
always the synthetic corpora of `mtl.synthetic` here, written in the real
corpora's layouts (the loaders cannot tell them apart). EMO-DB and RAVDESS
are the real recordings when they lie under the data root; EMO-DB is
synthetic otherwise, and RAVDESS (real only) is then absent. The *copy*
column of the first table says which is which.
:::
"""),
        parameters(*names),
        plan_cell(None, names),
        code("""
from mtl import results
from mtl.chapters import (class_distribution_figure, corpus_overview, corpus_tables,
                      face_crop_examples, face_fallback_example, logmel_examples)

%matplotlib inline
"""),
        md("""
## How the synthetic corpora are made

The synthetic corpora stand in for eNTERFACE'05 and SAVEE (and for EMO-DB when
the real recordings are absent). They are written file by file in the real
layouts by `mtl.synthetic.make_corpus`, deterministically from a seed.

*Speech* comes from a source-filter synthesiser (`mtl.synthetic.speech`): a
glottal pulse train with jitter and shimmer plus breath noise excites formant
resonators for vowel-like phones, with noise bursts for consonants. Emotion
sets the prosody: F0 level, range and contour shape, syllable rate, energy,
jitter and spectral tilt, each drawn around an emotion-specific mean with
within-class spread. Speakers differ in F0 baseline, vocal-tract length
(formant scaling) and speaking rate; corpora differ in phone content,
recording rate (16, 44.1 or 48 kHz), channel colouring, noise level and how
strongly emotion is acted. A classifier tells the three synthetic corpora
apart almost perfectly, so transfer between them meets a real domain shift.

*Faces* are drawn with OpenCV primitives (`mtl.synthetic.faces`) and move
through facial action units: happiness AU6+12; sadness 1+4+15; surprise
1+2+5+26; fear 1+2+4+5+7+20+26; anger 4+5+7+23; disgust 9+15+16; neutral
none. Each clip goes from a neutral face to an apex of random intensity;
subjects differ in face shape, skin tone, features, lighting and small head
pose. The per-frame AU intensities are stored beside each corpus
(`au_labels.csv`).

Neither modality is trivially separable: no single log-Mel band or pixel
decides the emotion (the test suite checks that a one-feature classifier stays
far below a multi-feature one).
"""),
        md("## The corpora"),
        code("""
tables = corpus_tables(plan)
results.style_table(corpus_overview(tables))
"""),
        md("## Class distributions"),
        code("class_distribution_figure(tables)"),
        md("""
## Speech: three-channel log-Mel images (§3.2)

Each utterance is resampled to 16 kHz; 64 Mel bands (20–8000 Hz) are computed
over 25 ms Hamming windows every 10 ms; the log-Mel spectrogram and its first
and second time derivatives are cut into 64-frame (655 ms) windows every 34
frames. Each window is one 64 × 64 × 3 training image. The figure's title
says whether the EMO-DB recordings shown are real.
"""),
        code("logmel_examples(tables, plan.config, seed=plan.seeds[0])"),
        md("""
## Faces: one crop per emotion (§3.1)

OpenCV's Haar cascade (the Viola–Jones detector) runs on every kept frame;
the highest-scoring face is cut out and resized to 64 × 64 × 3.
"""),
        code("face_crop_examples(tables, plan.config, seed=plan.seeds[0])"),
        md("""
## When the detector finds no face

§3.1: "In case where the face detection algorithm detects no faces, the face
that has been most recently detected in previous frames in the video stream
is used." Below, four frames of a synthetic clip show a head without eyes,
brows, nose or mouth, which the detector rejects (almost always: each frame's title says
what happened to it). The first two take the box
of the first detection (*backfilled*: there is no earlier one), the later two
carry the last box forward (*carried*).
"""),
        code("""
fig, track = face_fallback_example(plan.config, seed=plan.seeds[0])
display(fig)
results.style_table(track)
"""),
    ], paper="§3.1-3.2, §4.1")


def experiment_notebook(name: str, experiment: str, title: str, intro: str, data_what: str,
                        body: list[nbformat.NotebookNode], paper: str) -> tuple[str, nbformat.NotebookNode]:
    return notebook(name, [
        md(f"# {title}\n\n{intro.strip()}"),
        md(DATA_NOTE.format(what=data_what.strip())),
        parameters(*EXPERIMENT_PARAMETERS),
        plan_cell(experiment, EXPERIMENT_PARAMETERS),
        IMPORTS,
        md("## Running the experiment\n" + CACHE_NOTE),
        code("records = plan.run()\nsummary = results.summarise(records)"),
        *body,
    ], paper=paper, experiments=(experiment,))


def confusion_cells(method: str, caption: str) -> list[nbformat.NotebookNode]:
    return [code(f"""
from mtl.results import pooled_confusion

for sources, target in plan.pairs:
    cm, labels = pooled_confusion(records, method="{method}", target=target, sources=sources)
    title = f"{caption}: {{'+'.join(sources)}} → {{target}}"
    display(plots.confusion_matrix_plot(cm, labels, title=title))
""")]


def table1() -> tuple[str, nbformat.NotebookNode]:
    return experiment_notebook(
        "table1_visual_transfer", "table1_visual_transfer",
        "Table 1 and Fig. 7: visual transfer between eNTERFACE and SAVEE",
        """
The paper evolves PathNet on visual eNTERFACE and transfers it to visual SAVEE
($V_{\\text{eNTER}\\to\\text{SAV}}$), and the other way round
($V_{\\text{SAV}\\to\\text{eNTER}}$), on the six emotions the two corpora
share. It reports an overall accuracy of 0.94 in both directions, per-class
accuracy between 0.81 (disgust, SAVEE → eNTERFACE) and 0.97 (Table 1), and the
confusion matrices of Fig. 7.
""",
        "Faces are cropped from every video frame (every few frames at the `smoke` and `default` profiles).",
        [
            md("""
## Table 1: per-class and overall accuracy

Each reproduced number is the mean ± standard deviation over folds and seeds,
beside the paper's. The last columns name the data, the protocol, the profile,
the seeds and the folds behind it.
"""),
            code('compare_with_paper(summary, "table1")'),
            md("""
## Fig. 7: confusion matrices

Counts summed over the folds and seeds, each row normalised by its total, so
that the diagonal is the per-class accuracy of the table.
"""),
            *confusion_cells("transfer", "Transfer"),
        ],
        paper="Table 1, Fig. 7")


def table2() -> tuple[str, nbformat.NotebookNode]:
    return experiment_notebook(
        "table2_visual_baselines", "table2_visual_baselines",
        "Table 2: visual transfer against fine-tuning and training from scratch",
        """
Table 2 of the paper compares the transferred PathNets of Table 1 with a
PathNet trained from scratch on the target corpus ($V_{\\text{SAV}}$,
$V_{\\text{eNTER}}$) and with fine-tuning a network pre-trained on the source
corpus (Zhang et al., 2018). The paper reports transfer 0.94 on both targets,
scratch 0.89 (SAVEE) and 0.88 (eNTERFACE), fine-tuning 0.85 and 0.88.
""",
        "The transfer rows are the very cells of Table 1, loaded from their records.",
        [
            md("## Table 2: overall accuracy"),
            code('compare_with_paper(summary, "table2")'),
            md("## Per-class accuracy of the three methods"),
            code("plots.per_class_bars(summary)"),
        ],
        paper="Table 2")


def table3() -> tuple[str, nbformat.NotebookNode]:
    return experiment_notebook(
        "table3_speech_transfer", "table3_speech_transfer",
        "Table 3 and Fig. 8: speech transfer to SAVEE and to EMO-DB",
        """
For speech, the paper transfers PathNet from audio eNTERFACE to audio SAVEE
($A_{\\text{eNTER}\\to\\text{SAV}}$, overall 0.71) and from audio eNTERFACE and
SAVEE together to EMO-DB ($A_{\\text{eNTER+SAV}\\to\\text{EMO}}$, overall 0.97;
Table 3), with the confusion matrices of Fig. 8. Inputs are 64 × 64 × 3
log-Mel images of 655 ms windows.
""",
        "EMO-DB is the real corpus when it lies under the data root (then its row is marked *mixed*: "
        "synthetic sources, real target), else synthetic too.",
        [
            md("""
## Table 3: per-class and overall accuracy

The paper prints a surprise column for EMO-DB, which has no surprise class
(see the reproduction notes); our EMO-DB runs use EMO-DB's own seven classes,
so that cell stays empty, and the per-class figure below shows all of them.
"""),
            code('compare_with_paper(summary, "table3")'),
            code("plots.per_class_bars(summary)"),
            md("## Fig. 8: confusion matrices"),
            *confusion_cells("transfer", "Transfer"),
        ],
        paper="Table 3, Fig. 8")


def table4() -> tuple[str, nbformat.NotebookNode]:
    return experiment_notebook(
        "table4_speech_baselines", "table4_speech_baselines",
        "Table 4: speech transfer against fine-tuning and training from scratch",
        """
Table 4 of the paper compares speech transfer with training from scratch
($A_{\\text{SAV}}$ 0.81, $A_{\\text{EMO}}$ 0.89) and fine-tuning (0.69 on
SAVEE, 0.83 on EMO-DB); it gives 0.85 for $A_{\\text{eNTER}\\to\\text{SAV}}$,
where Table 3 gives 0.71 for the same model, and 0.97 for
$A_{\\text{eNTER+SAV}\\to\\text{EMO}}$.
""",
        "EMO-DB is the real corpus when it lies under the data root, else synthetic.",
        [
            md("## Table 4: overall accuracy"),
            code('compare_with_paper(summary, "table4")'),
            md("## Per-class accuracy of the three methods"),
            code("plots.per_class_bars(summary)"),
        ],
        paper="Table 4")


def pathways() -> tuple[str, nbformat.NotebookNode]:
    stages = [
        ("source_initial", "Fig. 9a: random population on the source",
         "A population of random pathways is drawn on the source corpus (audio eNTERFACE)."),
        ("source_final", "Fig. 9b: optimal pathway on the source",
         "After evolution on the source, the best pathway (thick red) and the final population."),
        ("target_initial", "Fig. 10a-b: new population on the target, source path frozen",
         "On the target (audio SAVEE) a new population is drawn; the source's best pathway is frozen "
         "(red modules) and always active, the other modules are re-initialised."),
        ("target_final", "Fig. 10c: new optimal pathway on the target",
         "After evolution on the target, the new best pathway (thick blue) beside the frozen one."),
    ]
    body: list[nbformat.NotebookNode] = [md("## The pathways of one transfer run"), code("record = records[0]")]
    for stage, caption, text in stages:
        body.append(md(text))
        body.append(code(f'plots.draw_pathways(**plots.record_pathways(record, "{stage}"),\n'
                         f'                    title="{caption}")'))
    return experiment_notebook(
        "fig9_10_pathways", "fig9_10_pathways",
        "Figs. 9 and 10: pathways on the source and on the target",
        """
Figs. 9 and 10 of the paper draw the PathNet during transfer from audio
eNTERFACE to audio SAVEE: the random initial population and the optimal
pathway on the source (Fig. 9), then the new population on the target with
the transferred pathway frozen and always active, and the new optimal pathway
(Fig. 10). This chapter draws the same stages from one transfer run (the
first fold).
""",
        "",
        body,
        paper="Figs. 9-10")


def convergence() -> tuple[str, nbformat.NotebookNode]:
    return experiment_notebook(
        "convergence", "convergence",
        "Convergence: transfer, fine-tuning and scratch against generation",
        """
The paper's claim (§3.3.2) is that with transfer "the emotion recognition
system can learn new emotional knowledge from the target domain faster than
learning from scratch or using fine-tuning". This chapter follows the
held-out accuracy of the best pathway on audio SAVEE, generation by
generation, for the three methods.
""",
        "",
        [
            md("## Held-out accuracy against generation"),
            code('plots.learning_curves(records, title="Audio SAVEE: held-out accuracy")'),
            md("## Best training fitness against generation"),
            code('plots.learning_curves(records, metric="best_fitness",\n'
                 '                     title="Audio SAVEE: best training fitness")'),
            md("## Final accuracy"),
            code('compare_with_paper(summary, "table4")'),
        ],
        paper="§3.3.2")


def real_recordings() -> tuple[str, nbformat.NotebookNode]:
    return notebook("real_recordings", [
        md("""
# Reproduction on real recordings

The only corpora of the paper available to this project are EMO-DB (a
processed copy: 22 050 Hz, every file exactly 2 s) and, as a stand-in for the
paper's eNTERFACE + SAVEE speech sources, RAVDESS speech (16 kHz FLAC). This
chapter shows the runs on these real recordings that are committed to the
repository under `results/real/`: EMO-DB from scratch, fine-tuned from
RAVDESS and transferred from RAVDESS, under the paper's random folds and
speaker-independent folds.
"""),
        code("""
# Parameters (papermill injects new values after this cell). None: the default.
records_dir = None  # folder of committed real-data records; None: results/real
""", PARAMETERS_TAG, "remove-cell"),
        code("""
from mtl.chapters import committed_real_records

# Committed records of runs on real recordings (nothing is computed here).
real = committed_real_records(records_dir)
real
""", VALIDATION_TAG),
        PLOT_IMPORTS,
        md("""
## Table 4(b) on real audio

Each row names its data copy (with the processed-copy caveat for EMO-DB), its
protocol and its seeds. RAVDESS stands in for the paper's eNTERFACE + SAVEE
sources.
"""),
        code('real.comparison("table4")'),
        md("## Held-out accuracy against generation"),
        code("real.learning_curves()"),
    ], paper="Table 4(b) on real audio", experiments=("real_recordings",))


BUILDERS = (pathnet_evolution, data, table1, table2, table3, table4, pathways, convergence, real_recordings)


# ----------------------------------------------------------------------------
def build() -> dict[str, str]:
    """Every notebook as JSON text, by file name."""
    out = {}
    for builder in BUILDERS:
        name, nb = builder()
        nbformat.validate(nb)
        out[f"{name}.ipynb"] = nbformat.writes(nb) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if notebooks/ differs from the definitions")
    args = parser.parse_args(argv)
    wanted = build()
    if args.check:
        stale = [name for name, text in wanted.items()
                 if not (NOTEBOOKS / name).is_file() or (NOTEBOOKS / name).read_text(encoding="utf-8") != text]
        if stale:
            print(f"out of date (run scripts/build_notebooks.py): {', '.join(stale)}")
            return 1
        return 0
    NOTEBOOKS.mkdir(exist_ok=True)
    for name, text in wanted.items():
        (NOTEBOOKS / name).write_text(text, encoding="utf-8")
        print(f"wrote notebooks/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
