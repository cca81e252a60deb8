"""Run the parameterised notebooks and build the HTML book.

The book is built in two separate steps, so that what it shows is exactly what
was computed:

1. every notebook named in ``book/_toc.yml`` is executed by papermill, one
   after the other, from ``notebooks/<name>.ipynb`` into
   ``book/executed/<name>.ipynb`` with the run's parameters (profile, data
   root, and any ``-p name value`` overrides) injected;
2. Jupyter Book renders those executed copies with execution switched off, in
   nit-picky mode with warnings as errors (``-W -n --keep-going``).

A notebook that raises stops the build with its name, the failing cell and the
error; its executed copy is kept as ``<name>.failed.ipynb`` for inspection and
never rendered. Each notebook's wall time is appended to
``executed/timings.csv`` and summarised in a table at the end.

Kernels always run with the interpreter running this module (the project's
virtual environment), whatever kernelspecs the user has installed elsewhere.

Each notebook carries its own facts in its metadata (``metadata.mtl``: the
paper's tables and figures it reproduces and the experiments it reads), so
:func:`list_notebooks` needs no separate registry.

What the notebooks call, so that they stay narrative over library calls:

* :func:`plan_notebook` -- the cell right after ``parameters``: checks every
  parameter (unknown corpus or protocol, corpora without a shared class, a
  missing data root stop the notebook there, saying why) and resolves them
  into a :class:`NotebookPlan` whose display is the run's settings table and
  whose :meth:`NotebookPlan.run` computes (or loads) the experiment's records;
* :func:`compare_with_paper`, :func:`pooled_confusion` -- views of records;
* :func:`committed_real_records` -- the real-data records committed under
  ``results/real`` (or a plain statement that there are none);
* :func:`corpus_tables`, :func:`corpus_overview`, :func:`class_distribution_figure`,
  :func:`logmel_examples`, :func:`face_crop_examples`, :func:`face_fallback_example`
  -- the data chapter.

:func:`external_resources` and :func:`screenshot` check a built book: nothing
fetched from the network, and pages that render.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import yaml

from mtl.config import PROFILES
from mtl.errors import ConfigError, MissingDataError, MtlError
from mtl.paths import project_root

PROJECT_DIR = project_root()
BOOK_DIR = PROJECT_DIR / "book"
NOTEBOOK_DIR = PROJECT_DIR / "notebooks"
CONFIG_FILE = PROJECT_DIR / "_config.yml"
TOC_NAME = "_toc.yml"
EXECUTED = "executed"

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
VALIDATION_TAG = "validate-parameters"
"""Tag of the cell, right after the parameters, that checks them through the library."""

Echo = Callable[[str], None]


class NotebookError(MtlError):
    """A notebook or chapter named on the command line does not exist."""


class NotebookFailed(NotebookError):
    """A notebook raised while it was executed, or the book did not build."""

    def __init__(self, message: str, seconds: float = 0.0):
        super().__init__(message)
        self.seconds = seconds
        """Wall time spent before the failure."""


# ----------------------------------------------------------------------------
# what notebooks there are
# ----------------------------------------------------------------------------
@dataclass(frozen=True)
class NotebookInfo:
    """One parameterised notebook of ``notebooks/``."""

    name: str
    path: Path
    title: str
    paper: str
    """The paper's tables/figures it reproduces (``"Table 1, Fig. 7"``), or ``""``."""
    experiments: tuple[str, ...]
    """Names of the :mod:`mtl.experiments` experiments it runs or reads."""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """Parameter names and their default values (from the ``parameters`` cell)."""


def toc_notebooks(toc: Path | None = None) -> list[str]:
    """Names of the notebooks the table of contents renders, in book order."""
    toc = toc or BOOK_DIR / TOC_NAME
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            target = node.get("file") or node.get("root")
            if isinstance(target, str) and target.startswith(f"{EXECUTED}/"):
                names.append(Path(target).stem)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(toc.read_text(encoding="utf-8")))
    return names


def _read_info(path: Path) -> NotebookInfo:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("mtl", {})
    title = path.stem
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = next((line for line in cell.source.splitlines() if line.startswith("# ")), None)
            if heading:
                title = heading[2:].strip()
                break
    cell = next((c for c in nb.cells if c.cell_type == "code" and PARAMETERS_TAG in c.metadata.get("tags", [])),
                None)
    parameters = _parameter_defaults(cell.source, path) if cell is not None else {}
    return NotebookInfo(name=path.stem, path=path, title=title, paper=str(meta.get("paper", "")),
                        experiments=tuple(meta.get("experiments", ())), parameters=parameters)


def _parameter_defaults(source: str, path: Path) -> dict[str, Any]:
    """``name = literal`` assignments of a parameters cell, read without executing it."""
    defaults: dict[str, Any] = {}
    for node in ast.parse(source, filename=str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                defaults[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError as error:
                raise NotebookError(f"{path}: parameter {node.targets[0].id!r} must have a literal default "
                                    f"(a number, string, list, None...)") from error
    return defaults


def list_notebooks(notebook_dir: Path | None = None) -> list[NotebookInfo]:
    """Every notebook of ``notebooks/``: those in the book first (book order), then the rest."""
    notebook_dir = notebook_dir or NOTEBOOK_DIR
    paths = {p.stem: p for p in sorted(notebook_dir.glob("*.ipynb"))}
    order = [n for n in toc_notebooks() if n in paths] + [n for n in paths if n not in toc_notebooks()]
    return [_read_info(paths[name]) for name in order]


def _experiment_notebooks() -> dict[str, str]:
    """Experiment id -> notebook name, from :data:`mtl.experiments.EXPERIMENTS`."""
    try:
        from mtl.experiments import EXPERIMENTS
    except ImportError:
        return {}
    return {e.id: Path(e.notebook).stem for e in EXPERIMENTS.values()}


def find_notebook(name: str | Path) -> NotebookInfo:
    """A notebook by name (``visual_transfer``), by experiment it covers, or by path."""
    candidate = Path(name)
    if candidate.suffix == ".ipynb" and candidate.is_file():
        return _read_info(candidate.resolve())
    known = list_notebooks()
    for info in known:
        if info.name == str(name):
            return info
    covering = [info for info in known if str(name) in info.experiments]
    if covering:
        return covering[0]
    registered = _experiment_notebooks().get(str(name))
    if registered is not None:
        for info in known:
            if info.name == registered:
                return info
    choices = sorted({n.name for n in known} | {e for n in known for e in n.experiments}
                     | set(_experiment_notebooks()))
    raise NotebookError(f"no notebook or experiment named {str(name)!r}; choose one of: {', '.join(choices)} "
                        f"(or give the path of an .ipynb file); `mtl list` describes them")


# ----------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------
def parse_parameter_value(text: str) -> Any:
    """A command-line parameter value as the Python value it spells.

    YAML syntax: ``3`` -> int, ``0.02`` -> float, ``true`` -> bool,
    ``[0, 1, 2]`` -> list, ``None``/``null`` -> None, anything else -> str.
    """
    if text.strip() in ("None", "none", "null", "~", ""):
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def check_parameter_names(info: NotebookInfo, parameters: Mapping[str, Any]) -> None:
    """Raise :class:`~mtl.errors.ConfigError` for a parameter the notebook does not declare."""
    unknown = sorted(set(parameters) - set(info.parameters))
    if unknown:
        raise ConfigError(f"notebook {info.name!r} has no parameter(s) {', '.join(map(repr, unknown))}; "
                          f"its parameters are: {', '.join(info.parameters)}")


# ----------------------------------------------------------------------------
# executing one notebook
# ----------------------------------------------------------------------------
@dataclass
class NotebookRun:
    """How executing one notebook went."""

    name: str
    status: str
    """``"ok"``, ``"failed"``, or ``"reused"`` (not executed in this build; its previous copy is rendered)."""
    seconds: float
    output: Path | None
    error: str | None = None


def _kernel_manager_class():
    """A kernel manager that starts ipykernel with *this* interpreter.

    A ``python3`` kernelspec in the user's Jupyter folders may point at another
    Python that cannot import :mod:`mtl`; bypassing the kernelspec lookup makes
    the executed notebooks run in the same environment as ``mtl`` itself.
    """
    from ipykernel.kernelspec import get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class ThisPythonKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport_encryption = "auto"  # CurveZMQ when available: no plain-TCP warning

        @property
        def kernel_spec(self) -> KernelSpec:
            return KernelSpec(resource_dir="", **get_kernel_dict())  # argv[0] is sys.executable

    return ThisPythonKernelManager


@contextlib.contextmanager
def _kernel_environment() -> Iterator[None]:
    """Environment inherited by kernels: no progress bars, no debugger chatter."""
    changes = {"TQDM_DISABLE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
               "MPLBACKEND": "module://matplotlib_inline.backend_inline",
               # tqdm.auto warns in kernels without ipywidgets, though its bars are disabled anyway
               "PYTHONWARNINGS": ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                        "ignore:IProgress not found"]))}
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _compact_parameter_cells(path: Path) -> None:
    """Hide the injected-parameters cell's code (a toggle) and drop the defaults cell from the rendering."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if INJECTED_TAG in tags and "hide-input" not in tags:
            tags.append("hide-input")
        elif PARAMETERS_TAG in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(nb, path)


def _describe_failure(name: str, exc: Exception, nb_path: Path, failed_copy: Path) -> str:
    from papermill.exceptions import PapermillExecutionError

    if not isinstance(exc, PapermillExecutionError):
        return f"notebook {name!r} could not be executed: {type(exc).__name__}: {exc}"
    import nbformat

    where = f"cell [{exc.exec_count}]"
    with contextlib.suppress(Exception):
        source_cells = nbformat.read(nb_path, as_version=4).cells
        for cell in source_cells:
            if cell.cell_type == "code" and cell.source == exc.source:
                if VALIDATION_TAG in cell.metadata.get("tags", []):
                    where = "the parameter check (the cell after the parameters)"
                break
    return (f"notebook {name!r} failed at {where}: {exc.ename}: {exc.evalue}\n"
            f"    executed copy with the traceback: {failed_copy}")


def run_notebook(name: str | Path, output: Path | None = None, parameters: Mapping[str, Any] | None = None,
                 *, cwd: Path | None = None, log_output: bool = False) -> NotebookRun:
    """Execute one notebook with papermill; raise :class:`NotebookFailed` if a cell raises.

    Parameters
    ----------
    name:
        A notebook name, an experiment it covers, or an ``.ipynb`` path.
    output:
        Where the executed copy goes (default ``book/executed/<name>.ipynb``). It
        appears only when the notebook succeeded; a failed run is kept as
        ``<stem>.failed.ipynb`` beside it.
    parameters:
        Values for the notebook's ``parameters`` cell; names it does not declare
        are an error.
    cwd:
        Working directory of the kernel (default: the project folder).
    log_output:
        Stream the notebook's outputs to the terminal as it runs.
    """
    import papermill

    info = find_notebook(name)
    parameters = dict(parameters or {})
    check_parameter_names(info, parameters)
    output = Path(output) if output else BOOK_DIR / EXECUTED / f"{info.name}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    running = output.with_name(f".{output.stem}.running.ipynb")
    failed = output.with_name(f"{output.stem}.failed.ipynb")
    started = time.perf_counter()
    try:
        with _kernel_environment():
            papermill.execute_notebook(str(info.path), str(running), parameters=parameters,
                                       cwd=str(cwd or PROJECT_DIR), progress_bar=False, log_output=log_output,
                                       kernel_manager_class=_kernel_manager_class(),
                                       shutdown_kernel="immediate")  # every output is saved by then
    except Exception as exc:  # papermill raises after saving the failed copy
        if running.exists():
            os.replace(running, failed)
        raise NotebookFailed(_describe_failure(info.name, exc, info.path, failed),
                             time.perf_counter() - started) from exc
    seconds = time.perf_counter() - started
    _compact_parameter_cells(running)
    os.replace(running, output)
    with contextlib.suppress(FileNotFoundError):
        failed.unlink()
    return NotebookRun(info.name, "ok", seconds, output)


# ----------------------------------------------------------------------------
# the whole book
# ----------------------------------------------------------------------------
@dataclass
class BookReport:
    """What :func:`build_book` did."""

    profile: str
    runs: list[NotebookRun]
    build_seconds: float
    html_dir: Path
    dropped: list[str] = field(default_factory=list)
    """Chapters left out because their executed copy does not exist."""

    def table(self) -> str:
        """Seconds per notebook, the build and the total, as aligned text."""
        return timing_table(self.runs, self.build_seconds)


def timing_table(runs: Sequence[NotebookRun], build_seconds: float | None = None) -> str:
    """Seconds per notebook (and for the Jupyter Book build when given) and the total, as aligned text."""
    width = max([len(r.name) for r in runs] + [len("jupyter-book build")])
    lines = [f"{'notebook'.ljust(width)}  {'status':8}  {'seconds':>8}"]
    lines += [f"{r.name.ljust(width)}  {r.status:8}  {r.seconds:8.1f}" for r in runs]
    if build_seconds is not None:
        lines.append(f"{'jupyter-book build'.ljust(width)}  {'ok':8}  {build_seconds:8.1f}")
    total = sum(r.seconds for r in runs) + (build_seconds or 0.0)
    lines.append(f"{'total'.ljust(width)}  {'':8}  {total:8.1f}")
    return "\n".join(lines)


def _stage_sources(output_dir: Path) -> Path:
    """Copy the book's prose and toc to ``output_dir/book`` (executed copies stay there between runs)."""
    staged = output_dir / "book"
    staged.mkdir(parents=True, exist_ok=True)
    for item in BOOK_DIR.iterdir():
        if item.name == EXECUTED:
            continue
        target = staged / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)
    return staged


def _log_timings(executed_dir: Path, profile: str, runs: Sequence[NotebookRun]) -> None:
    log = executed_dir / "timings.csv"
    new = not log.exists()
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with open(log, "a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(["finished_utc", "profile", "notebook", "status", "seconds"])
        for run in runs:
            writer.writerow([stamp, profile, run.name, run.status, f"{run.seconds:.1f}"])


def _filtered_toc(toc: Path, keep: set[str], target: Path) -> list[str]:
    """Write ``toc`` without the executed-notebook chapters not in ``keep``; return those dropped."""
    dropped: list[str] = []

    def prune(node: Any) -> Any:
        if isinstance(node, list):
            kept = [prune(v) for v in node]
            return [v for v in kept if v is not None]
        if isinstance(node, dict):
            target_file = node.get("file")
            if isinstance(target_file, str) and target_file.startswith(f"{EXECUTED}/") \
                    and Path(target_file).stem not in keep:
                dropped.append(Path(target_file).stem)
                return None
            pruned = {k: prune(v) for k, v in node.items()}
            if "chapters" in pruned and not pruned["chapters"]:
                return None
            return pruned
        return node

    data = prune(yaml.safe_load(toc.read_text(encoding="utf-8")))
    data["parts"] = [p for p in data.get("parts", []) if p is not None]
    target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return dropped


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _jupyter_book(source: Path, toc: Path, output_dir: Path, echo: Echo, strict: bool = True) -> None:
    """Render ``source`` with execution off; with ``strict``, any warning fails the build.

    Always nit-picky (``-n``); ``strict`` adds ``-W --keep-going`` so that every
    warning is listed before the build fails.
    """
    command = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())",
               "build", str(source), "--config", str(CONFIG_FILE), "--toc", str(toc),
               "--path-output", str(output_dir), "--all", "-n", "-q"]
    if strict:
        command += ["-W", "--keep-going"]
    result = subprocess.run(command, cwd=str(PROJECT_DIR), capture_output=True, text=True,
                            env={**os.environ, "NO_COLOR": "1"})
    said = _ANSI.sub("", result.stderr.strip() or result.stdout.strip())
    if result.returncode != 0:
        raise NotebookFailed(f"jupyter-book build failed (exit {result.returncode}); Sphinx said:\n{said[-6000:]}")
    if result.stderr.strip():
        echo(_ANSI.sub("", result.stderr.strip()))


def build_book(profile: str = "default", *, only: Sequence[str] | None = None, skip_execution: bool = False,
               output_dir: Path | None = None, parameters: Mapping[str, Any] | None = None,
               data_root: Path | None = None, echo: Echo = print) -> BookReport:
    """Execute the book's notebooks (papermill), then build the HTML (Jupyter Book).

    Parameters
    ----------
    profile:
        ``smoke``, ``default`` or ``paper`` (:data:`mtl.config.PROFILES`), passed to every notebook.
    only:
        Execute only these notebooks; the others keep their previous executed
        copies, and chapters without one are left out of this build.
    skip_execution:
        Execute nothing; render the executed copies already there.
    output_dir:
        Where everything goes. Default: executed copies in ``book/executed`` and
        the HTML in ``_build/html`` of the project. Otherwise the prose is staged
        to ``output_dir/book`` with its own ``executed/`` folder (a smoke build
        never overwrites the default one) and the HTML goes to
        ``output_dir/_build/html``.
    parameters:
        Further parameters for every notebook that declares them (e.g. ``seeds``).
    data_root:
        Folder of the real corpora passed to the notebooks (default: ``MTL_DATA_ROOT`` when set).
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    chapters = toc_notebooks(BOOK_DIR / TOC_NAME)
    if only:
        unknown = [n for n in only if n not in chapters]
        if unknown:
            raise NotebookError(f"not a notebook of the book: {', '.join(unknown)}; the book's notebooks are: "
                                f"{', '.join(chapters)}")
    if output_dir is None:
        source, build_root = BOOK_DIR, PROJECT_DIR
    else:
        build_root = Path(output_dir).resolve()
        source = _stage_sources(build_root)
    executed_dir = source / EXECUTED
    executed_dir.mkdir(parents=True, exist_ok=True)
    available = {info.name: info for info in list_notebooks()}
    declared = {name for info in available.values() for name in info.parameters}
    undeclared = sorted(set(parameters or {}) - declared)
    if undeclared:
        raise ConfigError(f"no notebook has parameter(s) {', '.join(map(repr, undeclared))}; "
                          f"the notebooks' parameters are: {', '.join(sorted(declared))}")
    to_run = [] if skip_execution else [n for n in chapters if (not only or n in only)]

    common: dict[str, Any] = {"profile": profile}
    if data_root is not None or os.environ.get("MTL_DATA_ROOT"):
        from mtl.paths import data_root as default_data_root

        common["data_root"] = str(Path(data_root).resolve() if data_root else default_data_root())
    common.update(parameters or {})

    runs: list[NotebookRun] = []
    failures: list[str] = []
    for name in chapters:
        output = executed_dir / f"{name}.ipynb"
        if name not in to_run:
            if output.exists():
                runs.append(NotebookRun(name, "reused", 0.0, output))
            continue
        if name not in available:
            failures.append(f"notebook {name!r} is in the table of contents but notebooks/{name}.ipynb does not exist")
            continue
        own = {k: v for k, v in common.items() if k in available[name].parameters}
        echo(f">> {name}: executing at profile {profile!r}")
        try:
            run = run_notebook(name, output, own)
        except NotebookFailed as exc:
            run = NotebookRun(name, "failed", exc.seconds, None, str(exc))
            failures.append(str(exc))
        runs.append(run)
        echo(f"   {run.status} in {run.seconds:.1f} s")
    executed_now = [r for r in runs if r.status in ("ok", "failed")]
    if executed_now:
        _log_timings(executed_dir, profile, executed_now)
    if failures:
        if runs:
            echo(timing_table(runs))
        raise NotebookFailed("the book was not built because notebooks failed:\n" + "\n".join(failures))

    present = {p.stem for p in executed_dir.glob("*.ipynb") if not p.stem.endswith(".failed")}
    toc = build_root / "_build" / "_toc.yml"
    toc.parent.mkdir(parents=True, exist_ok=True)
    dropped = _filtered_toc(source / TOC_NAME, present, toc)
    for name in dropped:
        echo(f"!! chapter {name!r} left out: no executed copy (run it, e.g. `mtl book --only {name}`)")
    # Links to left-out chapters cannot resolve: a partial book is built, but not with warnings as errors.
    strict = not dropped
    echo(f">> jupyter-book build (execution off, {'-W -n --keep-going' if strict else '-n: partial book, warnings shown'})")
    started = time.perf_counter()
    _jupyter_book(source, toc, build_root, echo, strict=strict)
    report = BookReport(profile, runs, time.perf_counter() - started, build_root / "_build" / "html", dropped)
    remote = external_resources(report.html_dir)
    if remote:
        listing = "\n".join(f"    {page}: {what} {url}" for page, what, url in remote[:20])
        raise NotebookFailed(f"the built book would load {len(remote)} resource(s) from the network "
                             f"(it must read offline):\n{listing}")
    echo(report.table())
    echo(f"book: {report.html_dir / 'index.html'}")
    return report


# ----------------------------------------------------------------------------
# checking the built book
# ----------------------------------------------------------------------------
_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
_REMOTE_IN_TEXT = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}/", re.IGNORECASE)
_CSS_REMOTE = re.compile(r"(?:url\(\s*['\"]?|@import\s+['\"])\s*((?:https?:)?//[^'\")\s]+)", re.IGNORECASE)
_LOADING_ATTRIBUTES = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src",
                       "audio": "src", "video": "src", "embed": "src", "object": "data"}


def external_resources(html_dir: Path) -> list[tuple[str, str, str]]:
    """Everything a built page would fetch from the network, as ``(file, what, url)``.

    Looks at the attributes that make a browser load something (``<script
    src>``, ``<link href>``, ``<img src>``, ...), at URLs inside inline
    ``<script>`` and ``<style>`` blocks, and at ``url(...)``/``@import`` in the
    CSS files. Plain hyperlinks (``<a href>``) are allowed: they load nothing
    until clicked. An empty list means the book reads offline.
    """
    from html.parser import HTMLParser

    found: list[tuple[str, str, str]] = []

    class Scanner(HTMLParser):
        def __init__(self, name: str) -> None:
            super().__init__(convert_charrefs=True)
            self.name, self.inside = name, None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            wanted = _LOADING_ATTRIBUTES.get(tag)
            for key, value in attrs:
                if value and key == wanted and _REMOTE.match(value):
                    if tag == "link" and dict(attrs).get("rel") in ("canonical",):
                        continue
                    found.append((self.name, f"<{tag} {key}>", value))
            self.inside = tag if tag in ("script", "style") else None

        def handle_endtag(self, tag: str) -> None:
            self.inside = None

        def handle_data(self, data: str) -> None:
            if self.inside:
                for match in _REMOTE_IN_TEXT.finditer(data):
                    found.append((self.name, f"inline <{self.inside}>", match.group(0)))

    html_dir = Path(html_dir)
    for page in sorted(html_dir.rglob("*.html")):
        scanner = Scanner(str(page.relative_to(html_dir)))
        scanner.feed(page.read_text(encoding="utf-8", errors="replace"))
    for sheet in sorted(html_dir.rglob("*.css")):
        for match in _CSS_REMOTE.finditer(sheet.read_text(encoding="utf-8", errors="replace")):
            found.append((str(sheet.relative_to(html_dir)), "css", match.group(1)))
    return found


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_executable() -> str | None:
    """Path of a Chromium/Chrome able to run headless, or None (``scripts/ensure-chromium`` installs one)."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 900, timeout: float = 90.0) -> Path:
    """Render a built page in headless Chromium (no network, a throw-away profile) into ``png``.

    The page gets a few seconds of virtual time so that MathJax and the
    theme's scripts have run before the picture is taken.
    """
    import tempfile

    browser = chromium_executable()
    if browser is None:
        raise MissingDataError("no chromium found: run scripts/ensure-chromium (as root) or install chromium")
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mtl-chromium-") as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                   f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={width},{height}",
                   "--virtual-time-budget=5000", Path(page).resolve().as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if not png.is_file():
        raise NotebookFailed(f"chromium wrote no screenshot of {page} (exit {result.returncode}): "
                             f"{result.stderr.strip()[-800:]}")
    return png


# ----------------------------------------------------------------------------
# a notebook's parameters, checked and resolved (the cell after `parameters`)
# ----------------------------------------------------------------------------
_ARROW = re.compile(r"^\s*([A-Za-z0-9_+\s-]*?)\s*(?:->|→)\s*([A-Za-z0-9_-]+)\s*$")


def parse_pair(text: str) -> tuple[tuple[str, ...], str]:
    """``"enterface+savee->emodb"`` -> ``(("enterface", "savee"), "emodb")``; ``"savee"`` -> ``((), "savee")``."""
    text = str(text).strip()
    match = _ARROW.match(text)
    if match:
        sources = tuple(sorted(s.strip() for s in match.group(1).split("+") if s.strip()))
        if not sources:
            raise ConfigError(f"{text!r}: no source corpus before '->' (write e.g. 'enterface->savee')")
        return sources, match.group(2)
    if not re.fullmatch(r"[A-Za-z0-9_]+", text):
        raise ConfigError(f"{text!r} is not a corpus or a 'source->target' pair (e.g. 'enterface+savee->emodb')")
    return (), text


def _pair_text(sources: Sequence[str], target: str) -> str:
    return f"{'+'.join(sources)}->{target}" if sources else target


@dataclass
class NotebookPlan:
    """A notebook's parameters after checking: the configuration, the data and (for experiments) the cells.

    Built by :func:`plan_notebook`; displayed in a notebook, it shows the
    settings of the run as a small table. :meth:`run` computes (or loads from
    the record cache) every cell and returns the records.
    """

    experiment: str | None
    paper_ref: str
    profile: str
    config: Any
    seeds: tuple[int, ...]
    protocols: tuple[str, ...]
    modality: str | None
    corpora: tuple[str, ...]
    pairs: tuple[tuple[tuple[str, ...], str], ...]
    data: str
    data_root: Path
    data_kinds: dict[str, str]
    cells: list[Any]

    def settings(self) -> "Any":
        """The run's settings as a two-column DataFrame (what, value)."""
        import pandas as pd

        from mtl.config import PAPER

        config = self.config
        rows: list[tuple[str, str]] = []
        if self.experiment:
            rows.append(("experiment", f"{self.experiment} ({self.paper_ref})"))
        rows.append(("profile", self.profile))
        if self.pairs:
            methods = sorted({c.method for c in self.cells}) if self.cells else []
            rows.append(("runs", "; ".join(_pair_text(s, t) for s, t in self.pairs)
                         + (f" — methods: {', '.join(methods)}" if methods else "")))
        if self.modality:
            rows.append(("modality", self.modality))
        if self.data_kinds:
            rows.append(("data", "; ".join(f"{c}: {k}" for c, k in self.data_kinds.items())))
        shown = _shown_path(self.data_root)
        where = f"{shown}/ in the project" if not Path(shown).is_absolute() else shown
        rows.append(("data root", where + ("" if self.data_root.is_dir() else " (absent)")))
        classes = sorted({", ".join(c.classes) for c in self.cells})
        if classes:
            rows.append(("classes", " | ".join(classes)))
        if self.experiment:
            rows.append(("protocol", ", ".join(self.protocols)))
            folds_run = sorted({c.fold for c in self.cells})
            rows.append(("folds", f"{config.folds}-fold; folds run: {', '.join(map(str, folds_run)) or '-'}"))
        rows.append(("seeds", ", ".join(map(str, self.seeds))))
        for label, name in (("S (population)", "population"), ("G (generations)", "generations"),
                            ("T (SGD steps per pathway)", "steps_per_pathway"), ("lr", "lr"),
                            ("batch", "batch_size")):
            value, paper = getattr(config, name), getattr(PAPER, name)
            if name == "steps_per_pathway":
                value = value if value is not None else f"one pass over the training set ({config.training_budget})"
                paper = "one pass over the training set (one_pass)"
            rows.append((label, f"{value}" + ("" if value == paper else f" (paper: {paper})")))
        shown = {"population", "generations", "steps_per_pathway", "lr", "batch_size", "protocol", "folds", "seed"}
        other = {k: v for k, v in config.differences_from_paper().items() if k not in shown}
        if other:
            rows.append(("other differences from the paper",
                         "; ".join(f"{k}={mine!r} (paper {paper!r})" for k, (paper, mine) in other.items())))
        if self.cells:
            rows.append(("cells", f"{len(self.cells)} (method x run x protocol x seed x fold)"))
        return pd.DataFrame(rows, columns=["setting", "value"])

    def _repr_html_(self) -> str:
        return self.settings().to_html(index=False, border=0, classes="mtl-settings")

    def __repr__(self) -> str:
        return self.settings().to_string(index=False)

    def run(self, progress: bool = False) -> list[dict[str, Any]]:
        """Compute every cell (or load its stored record) and return the records, in cell order."""
        from mtl.experiments import run_cell

        return [run_cell(cell, progress=progress) for cell in self.cells]


def plan_notebook(experiment: str | None = None, *, data_root: str | Path | None = None,
                  corpora: Sequence[str] | str | None = None, modality: str | None = None,
                  classes: Sequence[str] | str | None = None, data: str | None = None,
                  profile: str = "default", seeds: Sequence[int] | int | None = None, folds: int | None = None,
                  protocol: str | Sequence[str] | None = None, S: int | None = None, G: int | None = None,
                  T: int | None = None, lr: float | None = None, batch: int | None = None) -> NotebookPlan:
    """Check a notebook's parameters and resolve them into a :class:`NotebookPlan`.

    Every parameter may be ``None``, meaning the profile's (or the experiment's)
    default. Errors are :class:`~mtl.errors.ConfigError`,
    :class:`~mtl.corpora.labels.LabelError` or
    :class:`~mtl.errors.MissingDataError`, each naming the parameter.

    Parameters
    ----------
    experiment:
        An id of :data:`mtl.experiments.EXPERIMENTS`, or None for notebooks that
        run no experiment (then ``corpora`` are plain corpus names).
    data_root:
        Folder holding the real corpora (``emodb/``, ``ravdess-speech-16k/`` ...);
        it must exist. It becomes ``MTL_DATA_ROOT`` for this process. None: the
        environment's, else ``<project>/data``.
    corpora:
        For an experiment, the ``"source[+source]->target"`` runs to do
        (``["enterface->savee"]``; default: the experiment's own). A pair the
        experiment does not have runs its methods as a custom experiment
        ``<experiment>-custom``. Otherwise, corpus names.
    modality:
        ``"audio"`` or ``"video"``; default the experiment's.
    classes:
        ``"shared"``, ``"target"`` or a list of emotion names; default the experiment's rule.
    data:
        ``"auto"`` (real corpus when present under the data root, else
        synthetic), ``"real"`` or ``"synthetic"``; default the experiment's.
    profile:
        ``smoke``, ``default`` or ``paper``.
    seeds, folds, protocol:
        Seeds (an int or a list), k of k-fold, protocol(s) (``paper``,
        ``utterance``, ``speaker``).
    S, G, T, lr, batch:
        Population, generations, SGD steps per pathway (None: one pass over
        the training set), learning rate, mini-batch size.
    """
    from mtl import experiments as ex
    from mtl.config import get_profile

    if data_root is not None:
        root = Path(data_root).expanduser().resolve()
        if not root.is_dir():
            raise MissingDataError(f"data_root {str(data_root)!r} does not exist (resolved to {root}); give the "
                                   "folder that holds the real corpora (emodb/, ravdess-speech-16k/, ...), or "
                                   "None for the default")
        os.environ["MTL_DATA_ROOT"] = str(root)
    from mtl.paths import data_root as current_data_root

    overrides = {name: value for name, value in (("population", S), ("generations", G), ("steps_per_pathway", T),
                                                 ("lr", lr), ("batch_size", batch), ("folds", folds))
                 if value is not None}
    config = get_profile(profile, **overrides)
    if seeds is None:
        seeds = tuple(getattr(config, "seeds", None) or (config.seed,))
    seeds = (seeds,) if isinstance(seeds, int) else tuple(seeds)
    if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError(f"seeds must be one non-negative integer or a list of them, got {seeds!r}")
    if protocol is not None:
        protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
        for name in protocols:
            ex._check_choice(name, ex.PROTOCOLS, "protocol")
    else:
        protocols = ()
    if modality is not None:
        ex._check_choice(modality, ex.MODALITIES, "modality")
    if data is not None:
        ex._check_choice(data, ex.DATA_MODES, "data mode")
    names = [corpora] if isinstance(corpora, str) else list(corpora or [])

    if experiment is None:
        for name in names:
            ex._check_corpus(name, modality)
        if corpora is None:  # every corpus that exists here (real-only corpora need the data root)
            names = [n for n, info in ex.CORPORA.items() if info.synthetic or
                     (data != "synthetic" and (current_data_root() / info.folder).is_dir())]
            names = [n for n in names if modality is None or modality in ex.CORPORA[n].modalities]
        kinds = {name: ex.resolve_data_kind(name, data or "auto") for name in names}
        return NotebookPlan(None, "", profile, config, seeds, protocols or (config.protocol,), modality,
                            tuple(names), (), data or "auto", current_data_root(), kinds, [])

    if experiment not in ex.EXPERIMENTS:
        raise ConfigError(f"unknown experiment {experiment!r}; choose one of {', '.join(ex.EXPERIMENTS)}")
    entry = ex.EXPERIMENTS[experiment]
    modality = modality or entry.modality
    data = data or entry.data
    protocols = protocols or entry.protocols
    registry_pairs = list(dict.fromkeys((tuple(sorted(r.sources)), r.target) for r in entry.runs if r.sources))
    pairs = [parse_pair(n) for n in names] if names else registry_pairs
    methods = list(dict.fromkeys(r.method for r in entry.runs))
    cells: list[Any] = []
    common = dict(modality=modality, config=config, protocols=protocols, seeds=seeds, data=data)
    for sources, target in pairs:
        for corpus in (*sources, target):
            ex._check_corpus(corpus, modality)
        if (sources, target) in registry_pairs or (not sources and any(r.target == target for r in entry.runs)):
            for method in methods:
                wanted = () if method == "scratch" else sources
                if any(r.method == method and r.target == target and tuple(sorted(r.sources)) == wanted
                       for r in entry.runs):
                    cells += ex.experiment_cells(experiment, method=method, target=target, sources=wanted,
                                                 classes=classes, **common)
            continue
        if not sources:
            raise ConfigError(f"{experiment} has no run with target {target!r}; give a 'source->target' pair")
        rule = classes if classes is not None else "shared"
        target_classes, _ = ex.resolve_classes(target, sources, rule)
        for method in methods:
            cells += ex.experiment_cells(f"{experiment}-custom", method=method, target=target,
                                         sources=() if method == "scratch" else sources,
                                         classes=list(target_classes), folds=entry.folds, **common)
    kinds = {corpus: kind for cell in cells for corpus, kind in cell.data}
    return NotebookPlan(experiment, entry.paper_ref, profile, config, seeds, tuple(protocols), modality,
                        tuple(_pair_text(s, t) for s, t in pairs), tuple(pairs), data, current_data_root(), kinds,
                        cells)


# ----------------------------------------------------------------------------
# records of runs on real recordings, committed to the repository
# ----------------------------------------------------------------------------
@dataclass
class RealRecords:
    """The committed records of runs on real recordings, for the chapter that shows them.

    Displayed in a notebook it says what is there, or plainly that nothing is
    committed yet (and how to commit some); it never invents a number.
    """

    folder: Path
    frame: Any

    @property
    def empty(self) -> bool:
        return self.frame is None or self.frame.empty

    def _repr_markdown_(self) -> str:
        if self.empty:
            return (f"**No real-data records are committed yet** (looked in `{_shown_path(self.folder)}`), so "
                    "this chapter shows no numbers. To add some, run the `real_recordings` experiment with "
                    "`MTL_DATA_ROOT` pointing at the real corpora, e.g. "
                    "`mtl.experiments.run_experiment(\"real_recordings\", config=mtl.get_profile(\"paper\"))`, "
                    "then copy `results/runs/real_recordings/` to `results/real/` and commit it.")
        from mtl.results import to_markdown

        frame = self.frame
        groups = (frame.groupby(["experiment", "method", "sources", "target", "protocol", "data_kind"], dropna=False)
                  .agg(records=("cell_key", "size"), seeds=("seed", lambda s: ", ".join(map(str, sorted(set(s))))),
                       profile=("profile", "first"))
                  .reset_index())
        copies = "\n".join(f"* {copy}" for copy in sorted(frame["corpus_copy"].dropna().unique()))
        return (f"**{len(frame)} committed record(s)** of runs on real recordings, from "
                f"`{_shown_path(self.folder)}`:\n\n{to_markdown(groups)}\n\nTarget data:\n\n{copies}\n")

    def comparison(self, table: str = "table4") -> Any:
        """The paper's numbers beside these records' (mean ± sd), or a note that there are none."""
        from IPython.display import Markdown

        from mtl.results import paper_comparison, summarise

        if self.empty:
            return Markdown(f"*Nothing to compare with the paper's {table.replace('table', 'Table ')}: "
                            "no real-data records are committed yet.*")
        comparison = paper_comparison(summarise(self.frame), table)
        return Comparison(comparison[comparison["Data"] != "—"].reset_index(drop=True), table)

    def learning_curves(self) -> Any:
        """Held-out accuracy against generation (a figure), or None when there are no records."""
        if self.empty:
            from IPython.display import Markdown, display

            display(Markdown("*No learning curves: no real-data records are committed yet.*"))
            return None
        from mtl.plots import learning_curves

        return learning_curves(self.frame, by=lambda record: f"{record['method']} ({record['protocol']} protocol)",
                               title="Real recordings: held-out accuracy of the best pathway")


def _shown_path(path: Path) -> str:
    """``path`` relative to the project when inside it (no machine-specific prefix in the book)."""
    try:
        return Path(path).resolve().relative_to(PROJECT_DIR).as_posix()
    except ValueError:
        return str(path)


def committed_real_records(records_dir: str | Path | None = None) -> RealRecords:
    """Records of runs on real recordings (data ``real`` or ``mixed``) under ``records_dir``.

    Default ``<project>/results/real``, where runs on the real corpora are
    committed. A given ``records_dir`` must exist.
    """
    from mtl.results import load_records

    if records_dir is not None:
        folder = Path(records_dir).expanduser().resolve()
        if not folder.is_dir():
            raise MissingDataError(f"records_dir {str(records_dir)!r} does not exist (resolved to {folder})")
    else:
        folder = PROJECT_DIR / "results" / "real"
    frame = load_records(folder) if folder.is_dir() else None
    if frame is not None and not frame.empty:
        frame = frame[frame["data_kind"].isin(["real", "mixed"])].reset_index(drop=True)
    return RealRecords(folder, frame)


# ----------------------------------------------------------------------------
# small views of records for the chapters
# ----------------------------------------------------------------------------
def pooled_confusion(records: Sequence[Mapping[str, Any]], method: str, target: str,
                     sources: Sequence[str] = ()) -> tuple[Any, list[str]]:
    """Confusion counts summed over the folds and seeds of one run, and its class names.

    Selects the records of ``method`` from ``sources`` (any order) to
    ``target``; they must share one class list. Raises
    :class:`~mtl.errors.ConfigError` when none match.
    """
    import numpy as np

    chosen = [r for r in records if r.get("method") == method and r.get("target") == target
              and sorted(r.get("sources", [])) == sorted(sources)]
    if not chosen:
        raise ConfigError(f"no {method} record for {_pair_text(sorted(sources), target)} among {len(records)}")
    classes = list(chosen[0]["classes"])
    if any(list(r["classes"]) != classes for r in chosen):
        raise ConfigError(f"the {method} records for {_pair_text(sorted(sources), target)} differ in classes")
    total = sum(np.asarray(r["metrics"]["confusion"], dtype=np.int64) for r in chosen)
    return total, classes


_LEFT_CAPTION = {"selector": "caption", "props": "caption-side: top; text-align: left; font-weight: bold;"}


class Comparison:
    """The paper's numbers beside the reproduced ones, shown as two tables.

    *Accuracy*: for every model of the paper's table, the overall and
    per-class accuracy as printed in the paper and as reproduced (mean ± sd
    over folds and seeds), and the difference in overall accuracy.
    *Provenance*: for the same rows, the data (real or synthetic, which copy),
    the protocol, the profile, the seeds and the folds behind each number.
    """

    def __init__(self, frame: Any, table: str):
        self.frame = frame
        self.table = table

    def accuracy(self) -> Any:
        """Model, run, then (paper, ours) for overall and every class of the paper's table."""
        import pandas as pd

        frame = self.frame
        columns: list[tuple[str, str]] = [("", "Model"), ("", "Run")]
        data: dict[tuple[str, str], Any] = {("", "Model"): frame["Model"], ("", "Run"): _runs(frame)}
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

    def provenance(self) -> Any:
        """Model, run, data, corpus copy, protocol, profile, seeds, folds, note."""
        frame = self.frame.copy()
        frame.insert(1, "Run", _runs(frame))
        keep = ["Model", "Run", "Data", "Corpus copy", "Protocol", "Profile", "Seeds", "Folds", "Note"]
        return frame[[c for c in keep if c in frame.columns]]

    def _repr_html_(self) -> str:
        from mtl.results import style_table

        name = self.table.replace("table", "Table ")
        # Numbers stay on one line (a wide table scrolls); long provenance texts get room to wrap.
        accuracy = (style_table(self.accuracy())
                    .set_caption(f"{name}: accuracy, the paper's and ours (mean ± sd)")
                    .set_table_styles([{"selector": "td, th", "props": "white-space: nowrap; padding: 0 0.6em;"},
                                       {"selector": ".col0, .col1", "props": "white-space: normal; min-width: 9em;"},
                                       _LEFT_CAPTION]))
        provenance = self.provenance()
        wide = {column: "min-width: 22em;" for column in ("Corpus copy", "Note") if column in provenance.columns}
        provenance = (style_table(provenance)
                      .set_caption(f"{name}: what each reproduced number ran on")
                      .set_table_styles([_LEFT_CAPTION])
                      .set_table_styles({column: [{"selector": "", "props": props}] for column, props in wide.items()},
                                        overwrite=False))
        return accuracy.to_html() + "\n" + provenance.to_html()


def _runs(frame: Any) -> list[str]:
    """``"transfer ravdess → emodb (speaker)"``: method, corpora and protocol of each row."""
    return [f"{m} {s + ' → ' if s not in ('', '—') else ''}{t}" + (f" ({p})" if p not in ("", "—") else "")
            for m, s, t, p in zip(frame["Method"], frame["Sources"], frame["Target"], frame["Protocol"])]


def compare_with_paper(summary: Any, table: str, digits: int = 2) -> Comparison:
    """:func:`mtl.results.paper_comparison` of ``summary`` for ``table``, displayed as two tables."""
    from mtl.results import paper_comparison

    return Comparison(paper_comparison(summary, table, digits=digits), table)


# ----------------------------------------------------------------------------
# the data chapter: corpora, class distributions, log-Mel images
# ----------------------------------------------------------------------------
def corpus_tables(plan: NotebookPlan) -> dict[tuple[str, str], Any]:
    """The table of every (corpus, modality) of ``plan.corpora``: the real copy or the synthetic one.

    Synthetic corpora are generated on first use (cached under ``MTL_CACHE_DIR``).
    """
    from mtl import experiments as ex
    from mtl.corpora import load_corpus

    tables = {}
    for name in plan.corpora:
        kind = plan.data_kinds[name]
        root = ex.corpus_root(name, kind, plan.config)
        for modality in ex.CORPORA[name].modalities:
            if plan.modality in (None, modality):
                table = load_corpus(name, root=root, modality=modality)
                table.attrs["kind"] = kind
                tables[(name, modality)] = table
    return tables


def corpus_overview(tables: Mapping[tuple[str, str], Any]) -> Any:
    """One row per (corpus, modality): copy, files, speakers, classes, files skipped."""
    import pandas as pd

    from mtl.experiments import CORPORA

    rows = []
    for (name, modality), table in tables.items():
        rows.append({"corpus": CORPORA[name].title, "modality": modality, "copy": table.attrs.get("kind", "?"),
                     "files": len(table), "speakers": table["speaker"].nunique(),
                     "classes": ", ".join(sorted(table["emotion"].unique())),
                     "skipped": len(table.attrs.get("skipped", []))})
    return pd.DataFrame(rows)


def class_distribution_figure(tables: Mapping[tuple[str, str], Any]) -> Any:
    """Files per emotion of each corpus (one panel per corpus and modality), in the paper's class order."""
    from matplotlib.figure import Figure

    from mtl.corpora.labels import paper_order
    from mtl.experiments import CORPORA

    n = len(tables)
    columns = min(n, 3)
    rows = -(-n // columns)
    fig = Figure(figsize=(3.3 * columns, 2.9 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, ((name, modality), table) in zip(axes.flat, tables.items()):
        counts = table["emotion"].value_counts()
        order = paper_order(counts.index)
        ax.barh(range(len(order)), [counts[c] for c in order], color="tab:blue")
        ax.set_yticks(range(len(order)), order)
        ax.invert_yaxis()
        ax.set_xlabel("files")
        ax.set_title(f"{CORPORA[name].title}, {modality}\n({table.attrs.get('kind', '?')})", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Recordings per emotion")
    return fig


def logmel_examples(tables: Mapping[tuple[str, str], Any], config: Any, corpus: str = "emodb",
                    emotions: Sequence[str] = ("anger", "sadness", "neutral"), seed: int = 0) -> Any:
    """The 3-channel log-Mel image (static, delta, delta-delta) of one segment per emotion of ``corpus``.

    One utterance per emotion is drawn at random (``seed``) from the corpus's
    audio table; its middle segment is shown. Rows are emotions, columns
    channels; the title says whether the recordings are real or synthetic.
    """
    from matplotlib.figure import Figure
    import numpy as np

    from mtl.experiments import CORPORA
    from mtl.features.audio import utterance_segments

    if (corpus, "audio") not in tables:
        raise ConfigError(f"{corpus} (audio) is not among this run's corpora: "
                          f"{', '.join(f'{n} ({m})' for n, m in tables)}")
    table = tables[(corpus, "audio")]
    kind = table.attrs.get("kind", "?")
    rng = np.random.default_rng(seed)
    emotions = [e for e in emotions if (table["emotion"] == e).any()]
    if not emotions:
        raise ConfigError("none of the requested emotions is in the table")
    fig = Figure(figsize=(8.4, 2.5 * len(emotions)), layout="constrained")
    axes = fig.subplots(len(emotions), 3, squeeze=False)
    for row, emotion in zip(axes, emotions):
        candidates = table[table["emotion"] == emotion]
        path = candidates["path"].iloc[int(rng.integers(len(candidates)))]
        segments = utterance_segments(path, config)
        image = segments[len(segments) // 2]
        for ax, channel, name in zip(row, range(3), ("static (dB)", "delta", "delta-delta")):
            shown = ax.imshow(image[..., channel], origin="lower", aspect="auto",
                              cmap="magma" if channel == 0 else "coolwarm")
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
            ax.set_title(f"{emotion}: {name}", fontsize=9)
            ax.set_xlabel("frame (10 ms)")
            ax.set_ylabel("Mel band")
        row[0].text(0.0, -0.38, Path(path).name, transform=row[0].transAxes, fontsize=7, color="0.4")
    what = ("real recordings" if kind == "real" else
            "synthetic speech: the real corpus is not under the data root")
    fig.suptitle(f"{CORPORA[corpus].title} ({what}): the middle 655 ms segment of one utterance per emotion")
    return fig


def face_crop_examples(tables: Mapping[tuple[str, str], Any], config: Any, seed: int = 0) -> Any:
    """One 64 x 64 face crop per emotion (the last kept frame of a random clip) for every video corpus.

    Rows are corpora, columns emotions in the paper's order; crops come from
    :func:`mtl.features.faces.clip_face_crops` exactly as the experiments see them.
    """
    from matplotlib.figure import Figure
    import numpy as np

    from mtl.corpora.labels import paper_order
    from mtl.experiments import CORPORA
    from mtl.features.faces import clip_face_crops

    videos = {name: table for (name, modality), table in tables.items() if modality == "video"}
    if not videos:
        raise ConfigError("no video corpus among the tables (eNTERFACE and SAVEE have video)")
    emotions = paper_order({e for table in videos.values() for e in table["emotion"].unique()})
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(1.45 * len(emotions) + 0.6, 1.75 * len(videos)), layout="constrained")
    axes = fig.subplots(len(videos), len(emotions), squeeze=False)
    for r, (row, (name, table)) in enumerate(zip(axes, videos.items())):
        for ax, emotion in zip(row, emotions):
            ax.set_xticks([])
            ax.set_yticks([])
            clips = table[table["emotion"] == emotion]
            if clips.empty:
                ax.set_facecolor("0.93")
            else:
                crops, _, _ = clip_face_crops(clips["path"].iloc[int(rng.integers(len(clips)))], config)
                ax.imshow(crops[-1])
            if r == 0:
                ax.set_title(emotion, fontsize=9)
        row[0].set_ylabel(f"{CORPORA[name].title}\n({table.attrs.get('kind', '?')})", fontsize=9)
    fig.suptitle("Face crops (64 × 64) per emotion, at the apex of a clip")
    return fig


def face_fallback_example(config: Any, seed: int = 0, n_frames: int = 10,
                          featureless: Sequence[int] = (0, 1, 5, 6)) -> tuple[Any, Any]:
    """The detector's fallback (§3.1) on a synthetic clip whose ``featureless`` frames show no face.

    A synthetic person moves towards a happy expression over ``n_frames``
    frames; the frames listed in ``featureless`` are replaced by the same head
    drawn without eyes, brows, nose or mouth, which the detector (almost
    always) rejects. :func:`mtl.features.faces.face_track` then backfills the
    frames before the first detection from it and carries the last box
    forward over later misses. Returns the figure (frames with their boxes,
    and the crops) and the per-frame table.
    """
    from matplotlib.figure import Figure
    import numpy as np
    from matplotlib.patches import Rectangle

    from mtl.features.faces import face_track, score_threshold
    from mtl.synthetic.faces import random_identity, render_blank_face, render_clip

    rng = np.random.default_rng(seed)
    identity = random_identity(rng)
    frames, _, _ = render_clip(identity, "happiness", n_frames, rng)
    for index in featureless:
        if 0 <= index < n_frames:
            frames[index] = render_blank_face(identity, rng, size=frames.shape[1:3])
    crops, info = face_track(frames, size=config.face_size, min_score=score_threshold(config))
    colours = {"detected": "tab:green", "carried": "tab:orange", "backfilled": "tab:purple"}
    fig = Figure(figsize=(1.35 * n_frames, 3.1), layout="constrained")
    axes = fig.subplots(2, n_frames, squeeze=False)
    for k, row in info.iterrows():
        top, bottom = axes[0, k], axes[1, k]
        top.imshow(frames[k])
        colour = colours[row["status"]]
        top.add_patch(Rectangle((row["x"], row["y"]), row["width"], row["height"], fill=False, edgecolor=colour,
                                linewidth=1.6, linestyle="-" if row["status"] == "detected" else "--"))
        top.set_title(f"frame {row['frame']}\n{row['status']}", fontsize=8, color=colour)
        bottom.imshow(crops[k])
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("frame + box", fontsize=8)
    axes[1, 0].set_ylabel("crop", fontsize=8)
    fig.suptitle("Face detection with the paper's fallback: frames without a face reuse the last detected box")
    return fig, info
