"""The ``mtl`` command: list the experiments, run one notebook, build the book, run a grid.

::

    mtl list                                          experiments and notebooks, the paper's tables/figures
    mtl run table1_visual_transfer -p generations 20  one notebook (by name or experiment) with parameters
    mtl book --profile smoke                          execute every notebook, then build _build/html
    mtl sweep --experiments real_recordings ...       a grid on all cores or a Dask cluster (mtl.sweep)
    mtl sweep --experiments related_method ...        the multi-task cells of "A related method", the same way
    mtl corpus check my_faces.yaml                    a corpus card's counts, skips and face detection, in seconds

Parameters are named by their :class:`~mtl.config.Config` fields
(``generations``), beside a notebook's own (``seeds``, ``corpora`` ...); the
paper's symbols (:data:`mtl.config.PAPER_SYMBOLS`: ``-p G 20``) are aliases.
Values are read as YAML: ``-p seeds "[0, 1, 2]"``,
``-p corpora "[enterface->savee]"``, ``-p lr 0.01``, ``-p steps_per_pathway None``;
a Config field's value is checked against the field's type before anything
runs (:func:`mtl.config.check_type`: ``-p G true`` and ``-p G 1.5`` are
errors, not G=1).
Exit status: 0 on success, 1 when a notebook or the build fails, 2 for a bad
command line (unknown name, unknown parameter, bad value), with a one-line
message saying which.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from mtl.config import (DATA_MODES, METHODS, MODALITIES, PROFILES, PROTOCOLS, canonical_names, check_seeds,
                        check_types, get_profile, paper_defaults, parse_value)
from mtl.errors import ConfigError, MtlError

EXIT_FAILED = 1
EXIT_USAGE = 2
RELATED = "related_method"
"""The sweep's one experiment of another cell kind: its cells come from :func:`mtl.multitask.chapter.sweep_cells`."""


def _parameters(pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    """``-p NAME VALUE`` pairs as values (YAML), those of Config fields type-checked (:class:`ConfigError`)."""
    values = {name: parse_value(value) for name, value in (pairs or [])}
    check_types(values)
    return values


# ----------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------
def _list(args: argparse.Namespace) -> int:
    from mtl.notebooks import list_notebooks

    notebooks = list_notebooks()
    try:
        from mtl.experiments import EXPERIMENTS
    except ImportError:  # the experiments module is optional for listing notebooks
        EXPERIMENTS = {}
    by_notebook = {Path(e.notebook).stem: e for e in EXPERIMENTS.values()}
    width = max([len(n.name) for n in notebooks] + [len(e) for e in EXPERIMENTS] + [8])
    print("Notebooks, in book order (`mtl run <name>`):")
    for info in notebooks:
        entry = by_notebook.get(info.name)
        paper = (entry.paper_ref if entry else info.paper) or "-"
        print(f"  {info.name.ljust(width)}  {info.title}\n  {''.ljust(width)}  paper: {paper}")
    if EXPERIMENTS:
        print("\nExperiments (`mtl run <experiment>` runs its notebook):")
        for entry in EXPERIMENTS.values():
            runs = ", ".join(f"{r.method} {'+'.join(r.sources) + '->' if r.sources else ''}{r.target}"
                             for r in entry.runs)
            print(f"  {entry.id.ljust(width)}  {entry.paper_ref} ({entry.modality}; notebook "
                  f"{Path(entry.notebook).stem})\n  {''.ljust(width)}  runs: {runs}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from mtl.notebooks import PROJECT_DIR, check_parameter_names, find_notebook, run_notebook

    info = find_notebook(args.name)
    parameters = _parameters(args.parameter)
    if args.profile is not None:
        parameters["profile"] = args.profile
    if "profile" in info.parameters:
        # The configuration the notebook's first cell will build (its profile, then the Config fields
        # given; None keeps the profile's): a value out of range is a usage error now, not a failed notebook.
        values = check_parameter_names(info, parameters)
        fields = {k: v for k, v in values.items() if k in paper_defaults() and k != "profile" and v is not None}
        get_profile(values.get("profile") or info.parameters["profile"], **fields)
        if values.get("seeds") is not None:  # None: the profile's seed
            check_seeds(values["seeds"])  # as the notebook's plan checks them
    output = Path(args.output) if args.output else PROJECT_DIR / "_build" / "notebooks" / f"{info.name}.ipynb"
    print(f">> {info.name}: executing with {parameters or 'its default parameters'}")
    run = run_notebook(args.name, output, parameters, log_output=args.log_output)
    print(f"   ok in {run.seconds:.1f} s -> {run.output}")
    return 0


def _book(args: argparse.Namespace) -> int:
    from mtl.book import build_book

    build_book(args.profile, only=args.only, skip_execution=args.skip_execution,
               output_dir=Path(args.output_dir) if args.output_dir else None,
               parameters=_parameters(args.parameter),
               data_root=Path(args.data_root) if args.data_root else None)
    return 0


# ----------------------------------------------------------------------------
# `mtl sweep`: a grid on all cores or a Dask cluster
# ----------------------------------------------------------------------------
def _add_sweep_parser(subparsers: Any) -> argparse.ArgumentParser:
    """The ``sweep`` command; its handler is :func:`_sweep`."""
    sweep = subparsers.add_parser(
        "sweep", help="run an experiment grid in parallel (all cores, or a Dask cluster), resumably",
        description="Run every cell of a grid (experiments x corpora x protocols x seeds x folds) as an "
                    "independent task, writing one record per cell to results_dir()/runs. Cells already done "
                    "are skipped, so rerunning after an interruption finishes the grid.",
        epilog="Example: mtl sweep --experiments table4_speech_baselines --profile smoke --data synthetic "
               "--seeds 0 1 2 --scheduler dask-local")
    sweep.add_argument("--experiments", nargs="+", required=True, metavar="ID",
                       help="experiment ids (`mtl list`), related_method (the multi-task cells of the chapter "
                            "'A related method'; -p takes its settings, e.g. -p steps 600), or custom ids with "
                            "--methods and --corpora")
    sweep.add_argument("--corpora", nargs="+", metavar="SPEC",
                       help="only these targets ('savee') or runs ('enterface+savee->emodb')")
    sweep.add_argument("--methods", nargs="+", choices=METHODS,
                       help="only these methods")
    sweep.add_argument("--modality", choices=MODALITIES, help="modality of a custom experiment")
    sweep.add_argument("--profile", choices=PROFILES, default="default",
                       help="configuration profile (default: %(default)s)")
    sweep.add_argument("--protocols", nargs="+", choices=PROTOCOLS, help="default: each experiment's own")
    sweep.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="SEED",
                       help="integers from 0 to 2**32 - 1 (default: 0)")
    sweep.add_argument("--folds", nargs="+", type=int, metavar="FOLD",
                       help="fold indices, 0 to the protocol's folds - 1 (default: every fold)")
    sweep.add_argument("--data", choices=DATA_MODES, help="which copy of the corpora (default: each experiment's)")
    sweep.add_argument("--scheduler", default="pool", metavar="WHERE",
                       help="'pool' (local processes, default), 'inline' (this process, one cell after the other), "
                            "'dask-local' (a Dask LocalCluster) or a Dask scheduler address such as "
                            "tcp://10.0.0.1:8786")
    sweep.add_argument("--workers", type=int, help="worker processes (default: cores // threads per task)")
    sweep.add_argument("--threads-per-task", type=int, help="torch + BLAS + OpenMP threads per task (default: 1)")
    sweep.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       help="a Config field and its value (YAML: 50, 0.01, None), on top of the profile; repeatable")
    sweep.add_argument("--reference", nargs="+", metavar="METHOD",
                       help="instead of PathNet, run these reference methods (mtl.reference: svm logreg knn1 cnn) "
                            "on the folds of the grid's scratch cells")
    sweep.add_argument("--ga-diagnostics", action="store_true",
                       help="record the genetic algorithm's diagnostics of every PathNet cell (mtl.reference.diagnosed;"
                            " computes the cells, records of their own)")
    sweep.add_argument("--dry-run", action="store_true", help="list the cells and whether each is done; run nothing")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=_sweep)
    return sweep


def _sweep(args: argparse.Namespace) -> int:
    """``mtl sweep``: 0 when every cell has its record, 1 when some failed (bad input raises ConfigError)."""
    from mtl.experiments import cells_table, grid_cells
    from mtl.paths import results_dir
    from mtl.sweep import run_sweep

    pathnet = [e for e in args.experiments if e != RELATED]
    cells = []
    if pathnet:
        overrides = canonical_names(_parameters(args.parameter))
        cells = grid_cells(pathnet, profile=args.profile, protocols=args.protocols, seeds=args.seeds,
                           folds=args.folds, data=args.data, overrides=overrides, corpora=args.corpora,
                           methods=args.methods, modality=args.modality)
    if RELATED in args.experiments:  # not PathNet cells: the chapter's plan lists them (mtl.multitask.chapter)
        from mtl.multitask.chapter import sweep_cells

        if args.methods or args.reference or args.ga_diagnostics or args.modality:
            raise ConfigError(f"{RELATED} takes none of --methods, --reference, --ga-diagnostics, --modality; "
                              "sweep it on its own")
        cells += sweep_cells(args.profile, protocols=args.protocols, seeds=args.seeds, folds=args.folds,
                             data=args.data, corpora=args.corpora, parameters=_parameters(args.parameter))
    if args.reference:
        from mtl.reference import reference_cells

        cells = reference_cells(cells, args.reference)
    elif args.ga_diagnostics:
        from mtl.reference.diagnosed import DiagnosedCell

        cells = [DiagnosedCell(cell) for cell in cells]
    if args.dry_run:
        table = cells_table(cells)
        print(table.drop(columns="key").to_string(index=False))
        print(f"{len(table)} cells, {int(table['done'].sum())} done; records in {results_dir() / 'runs'}")
        return 0
    report = run_sweep(cells, scheduler=args.scheduler, workers=args.workers,
                       threads_per_task=args.threads_per_task, progress=not args.no_progress)
    print(report.summary())
    print(f"records in {results_dir() / 'runs'}")
    return 0 if report.ok else 1


# ----------------------------------------------------------------------------
# `mtl corpus check`: what a card reads, in seconds
# ----------------------------------------------------------------------------
FACE_SAMPLE = 48
"""Images (or first frames of clips) `mtl corpus check` runs the face detector on; their crops fill a 6 x 8 sheet."""


def _corpus_check(args: argparse.Namespace) -> int:
    """``mtl corpus check``: counts per class and speaker, skip reasons, the face detector's hit rate."""
    import pandas as pd

    from mtl.corpora import corpus_card, load_corpus, resolve_corpus
    from mtl.paths import results_dir

    name = resolve_corpus(args.card)
    card = corpus_card(name)
    table = load_corpus(name)
    recordings = table["recording"] if "recording" in table else table["utterance"]  # a sequence is one
    print(f"{card.title} ({name}): {len(table)} files, {table['speaker'].nunique()} speakers, "
          f"{recordings.nunique()} recordings; root {card.folder}")
    print(pd.crosstab(table["emotion"], table["speaker"], margins=True, margins_name="all").to_string())
    skipped = table.attrs.get("skipped", [])
    # "list.csv line 7: file not found" and "line 9: file not found" are one reason.
    reasons = pd.Series([reason.split(": ", 1)[-1] if " line " in reason else reason for _, reason in skipped])
    print(f"skipped {len(skipped)} file(s)" + (":" if skipped else ""))
    for reason, count in reasons.value_counts().head(10).items():
        print(f"  {count:5d}  {reason}")
    visual = table[table["modality"].isin(["image", "video"])]
    if len(visual):
        output = Path(args.output) if args.output else results_dir() / "corpus-check" / f"{name}-faces.png"
        hits, total = _face_sheet(visual, output)
        print(f"face detector: a face in {hits} of {total} sampled files ({100 * hits / total:.0f} %)"
              + ("; the card says faces: cropped, so runs resize whole images" if card.faces_cropped else "")
              + f"; contact sheet of the crops: {output}")
    return 0


def _face_sheet(table: Any, output: Path) -> tuple[int, int]:
    """Detect faces in up to :data:`FACE_SAMPLE` files of ``table``; write their crops as one PNG (misses red)."""
    import cv2
    import numpy as np

    from mtl.config import get_profile
    from mtl.features import faces
    from mtl.media import iter_video_frames

    config = get_profile("default")
    chosen = table.sample(min(FACE_SAMPLE, len(table)), random_state=0).sort_values("path")
    tiles, hits = [], 0
    for path, modality in zip(chosen["path"], chosen["modality"]):
        try:
            if modality == "video":
                frame = next(iter(iter_video_frames(path)))[1]
            else:
                frame = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            found = faces.detect_faces(frame, faces.score_threshold(config))
        except (MtlError, cv2.error, StopIteration, ValueError):
            frame, found = np.zeros((64, 64, 3), np.uint8), []
        box = found[0][0] if found else (0, 0, frame.shape[1], frame.shape[0])
        tile = faces.crop_face(frame, box, 64)
        if found:
            hits += 1
        else:
            tile = cv2.rectangle(tile.copy(), (0, 0), (63, 63), (255, 0, 0), 3)
        tiles.append(tile)
    tiles += [np.full((64, 64, 3), 255, np.uint8)] * (-len(tiles) % 8)
    sheet = np.vstack([np.hstack(tiles[i:i + 8]) for i in range(0, len(tiles), 8)])
    output.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(output), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return hits, len(chosen)


# ----------------------------------------------------------------------------
# parser
# ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtl", description="Meta-transfer learning for emotion recognition: experiments, notebooks, book.",
        epilog="`mtl <command> -h` describes a command.")
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)

    listing = commands.add_parser("list", help="the experiments and notebooks, with the paper's tables/figures")
    listing.set_defaults(handler=_list)

    param_help = ("a notebook parameter (a Config field such as generations, or its symbol G) and its value "
                  "(YAML: 3, 0.02, [0, 1], None); repeatable")
    run = commands.add_parser("run", help="execute one notebook with papermill, with parameters")
    run.add_argument("name", help="notebook name, experiment id, or path of a .md or .ipynb notebook")
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), help=param_help)
    run.add_argument("--profile", choices=PROFILES, help="configuration profile (default: the notebook's)")
    run.add_argument("--output", help="executed notebook to write (default: _build/notebooks/<name>.ipynb)")
    run.add_argument("--log-output", action="store_true", help="stream the notebook's output while it runs")
    run.set_defaults(handler=_run)

    book = commands.add_parser("book", help="execute every notebook, then build the HTML book")
    book.add_argument("--profile", choices=PROFILES, default="default",
                      help="configuration profile for every notebook (default: %(default)s)")
    book.add_argument("--only", nargs="+", metavar="NAME",
                      help="execute only these notebooks; the others keep their previous executed copies")
    book.add_argument("--skip-execution", action="store_true", help="execute nothing; render the executed copies")
    book.add_argument("--output-dir", metavar="DIR",
                      help="build in DIR (executed copies in DIR/book/executed, HTML in DIR/_build/html) "
                           "instead of book/executed and _build/html")
    book.add_argument("--data-root", metavar="DIR", help="folder of the real corpora (default: $MTL_DATA_ROOT)")
    book.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                      help="a parameter for every notebook that declares it; repeatable")
    book.set_defaults(handler=_book)
    _add_sweep_parser(commands)
    corpus = commands.add_parser("corpus", help="check a corpus of your own (a card, a manifest or a folder)")
    checks = corpus.add_subparsers(dest="action", metavar="action", required=True)
    check = checks.add_parser("check", help="counts per class and speaker, skipped files and why, face detection")
    check.add_argument("card", help="a corpus card (.yaml), a manifest (.csv), a class folder or a corpus name")
    check.add_argument("--output", metavar="PNG",
                       help="contact sheet of face crops (default: <results dir>/corpus-check/<name>-faces.png)")
    check.set_defaults(handler=_corpus_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mtl`` console script; returns the exit status."""
    from mtl.notebooks import NotebookFailed

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except NotebookFailed as error:
        print(f"mtl {args.command}: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except MtlError as error:
        print(f"mtl {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `mtl list | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"mtl {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
