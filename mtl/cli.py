"""The ``mtl`` command: list the experiments, run one notebook, build the book.

::

    mtl list                                          experiments and notebooks, the paper's tables/figures
    mtl run table1_visual_transfer -p generations 20  one notebook (by name or experiment) with parameters
    mtl book --profile smoke                          execute every notebook, then build _build/html

Parameters are named by their :class:`~mtl.config.Config` fields
(``generations``), beside a notebook's own (``seeds``, ``corpora`` ...); the
paper's symbols (:data:`mtl.config.PAPER_SYMBOLS`: ``-p G 20``) are aliases.
Values are read as YAML: ``-p seeds "[0, 1, 2]"``,
``-p corpora "[enterface->savee]"``, ``-p lr 0.01``, ``-p steps_per_pathway None``.
Exit status: 0 on success, 1 when a notebook or the build fails, 2 for a bad
command line (unknown name, unknown parameter, bad value).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from mtl.config import PROFILES
from mtl.errors import MtlError

EXIT_FAILED = 1
EXIT_USAGE = 2


def _parameters(pairs: Sequence[Sequence[str]] | None) -> dict[str, Any]:
    from mtl.config import parse_value

    return {name: parse_value(value) for name, value in (pairs or [])}


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
    from mtl.notebooks import PROJECT_DIR, find_notebook, run_notebook

    info = find_notebook(args.name)
    parameters = _parameters(args.parameter)
    if args.profile is not None:
        parameters["profile"] = args.profile
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
    from mtl.sweep import add_sweep_parser

    add_sweep_parser(commands)
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
