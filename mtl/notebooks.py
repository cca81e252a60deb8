"""The chapters' notebooks: find them, read their parameters, execute one with papermill.

A chapter's source is ``notebooks/<name>.md``, a MyST Markdown notebook (the
file people open, edit and commit); jupytext converts it on the fly, so no
``.ipynb`` copy is kept. Each carries its own facts in its metadata
(``metadata.mtl``: the paper's tables and figures it reproduces and the
experiments it reads), so :func:`list_notebooks` needs no separate registry.

:func:`run_notebook` executes one notebook with papermill, the parameters
injected after its ``parameters`` cell. Parameter names are checked first:
a notebook's parameters are :class:`~mtl.config.Config` field names beside
its own (``seeds``, ``corpora`` ...), and the paper's symbols (``G`` for
``generations``, :data:`mtl.config.PAPER_SYMBOLS`) are aliases. Kernels
always run with the interpreter running this module (the project's virtual
environment), whatever kernelspecs the user has installed elsewhere. The
executed copy shows no folder of the machine that ran it
(:func:`mtl.paths.portable_paths_in`).

Building the book from the executed copies is :mod:`mtl.book`'s work; what the
notebooks call lives in :mod:`mtl.chapters`.
"""

from __future__ import annotations

import ast
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import yaml

from mtl.config import PAPER_SYMBOLS, canonical_names
from mtl.errors import ConfigError, MtlError
from mtl.paths import portable_path, portable_paths_in, project_root

PROJECT_DIR = project_root()
BOOK_DIR = PROJECT_DIR / "book"
NOTEBOOK_DIR = PROJECT_DIR / "notebooks"
TOC_NAME = "_toc.yml"
EXECUTED = "executed"
"""Folder of ``book/`` holding the executed copies the book renders."""

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
VALIDATION_TAG = "validate-parameters"
"""Tag of the cell, right after the parameters, that checks them through the library."""


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


SOURCE_SUFFIX = ".md"
"""Notebook sources are MyST Markdown notebooks (jupytext); executed copies are ``.ipynb``."""


def read_notebook(path: Path) -> Any:
    """A notebook as an ``nbformat`` node, from its MyST source (``.md``) or an ``.ipynb`` file."""
    import jupytext

    try:
        return jupytext.read(path)
    except Exception as error:  # jupytext raises several types for a malformed source
        raise NotebookError(f"{path}: not a readable notebook ({type(error).__name__}: {error})") from error


def _read_info(path: Path) -> NotebookInfo:
    nb = read_notebook(path)
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
    paths = {p.stem: p for p in sorted(notebook_dir.glob(f"*{SOURCE_SUFFIX}"))}
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
    if candidate.suffix in (SOURCE_SUFFIX, ".ipynb") and candidate.is_file():
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
                        f"(or give the path of a .md or .ipynb notebook); `mtl list` describes them")


# ----------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------
def check_parameter_names(notebooks: NotebookInfo | Sequence[NotebookInfo],
                          parameters: Mapping[str, Any]) -> dict[str, Any]:
    """``parameters`` under the names the notebook(s) declare; :class:`~mtl.errors.ConfigError` for any other.

    A notebook's parameters are :class:`~mtl.config.Config` field names
    (``generations``) beside its own (``seeds``, ``corpora`` ...); the paper's
    symbols (:data:`mtl.config.PAPER_SYMBOLS`: ``G`` for ``generations`` ...)
    are accepted as aliases and replaced by the field name. For several
    notebooks (a whole book), a name one of them declares is enough.
    """
    several = not isinstance(notebooks, NotebookInfo)
    infos = list(notebooks) if several else [notebooks]
    declared = list(dict.fromkeys(name for info in infos for name in info.parameters))
    unknown = [name for name in parameters if PAPER_SYMBOLS.get(name, name) not in declared]
    if unknown:
        who = "no notebook has" if several else f"notebook {infos[0].name!r} has"
        shown = [f"{name!r} ({PAPER_SYMBOLS[name]})" if name in PAPER_SYMBOLS else repr(name) for name in unknown]
        raise ConfigError(f"{who} no parameter(s) {', '.join(shown)}; the parameters are: {', '.join(declared)} "
                          f"(the paper's symbols {', '.join(PAPER_SYMBOLS)} stand for the Config fields "
                          f"{', '.join(PAPER_SYMBOLS.values())})")
    return canonical_names(parameters, also=declared)  # refuses a setting given twice (G and generations)


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
def kernel_environment(**variables: str) -> Iterator[None]:
    """``os.environ`` as kernels inherit it while the block runs, restored afterwards.

    No progress bars and no debugger chatter, plus ``variables`` (e.g.
    ``MTL_DATA_ROOT``); blocks may nest.
    """
    changes = {"TQDM_DISABLE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
               "MPLBACKEND": "module://matplotlib_inline.backend_inline",
               # tqdm.auto warns in kernels without ipywidgets, though its bars are disabled anyway
               "PYTHONWARNINGS": ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                        "ignore:IProgress not found"])), **variables}
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


def _write_ipynb(nb: Any, path: Path) -> None:
    import nbformat

    nb.metadata.pop("jupytext", None)
    nbformat.write(nb, path)


def _finish_executed_copy(path: Path, source: Path, output: Path) -> None:
    """Make an executed copy fit to render: compact parameter cells, no paths of this machine.

    The injected-parameters cell's code is hidden behind a toggle and the
    defaults cell is dropped from the rendering. Every text output (a log
    line, a warning, a table) shows the project's and the ``MTL_*`` folders
    as :func:`mtl.paths.portable_paths_in` writes them, and papermill's record
    of where it read and wrote the notebook (staging copies of this build)
    becomes the source's path in the project and the executed copy's name.
    """
    import nbformat


    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if INJECTED_TAG in tags and "hide-input" not in tags:
            tags.append("hide-input")
        elif PARAMETERS_TAG in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = portable_paths_in(out["text"])
            for kind, value in out.get("data", {}).items():
                if kind.startswith("text/") and isinstance(value, str):
                    out["data"][kind] = portable_paths_in(value)
    record = nb.metadata.get("papermill", {})
    if record:
        record["input_path"], record["output_path"] = portable_path(source), output.name
    nbformat.write(nb, path)


def _describe_failure(name: str, exc: Exception, nb_path: Path, failed_copy: Path) -> str:
    from papermill.exceptions import PapermillExecutionError

    if not isinstance(exc, PapermillExecutionError):
        return f"notebook {name!r} could not be executed: {type(exc).__name__}: {exc}"
    where = f"cell [{exc.exec_count}]"
    with contextlib.suppress(Exception):
        source_cells = read_notebook(nb_path).cells
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
        A notebook name, an experiment it covers, or the path of a notebook
        (MyST ``.md`` source or ``.ipynb``).
    output:
        Where the executed copy goes (default ``book/executed/<name>.ipynb``). It
        appears only when the notebook succeeded; a failed run is kept as
        ``<stem>.failed.ipynb`` beside it.
    parameters:
        Values for the notebook's ``parameters`` cell, by the names it declares
        (a paper symbol such as ``G`` stands for its Config field,
        ``generations``); other names are an error.
    cwd:
        Working directory of the kernel (default: the project folder).
    log_output:
        Stream the notebook's outputs to the terminal as it runs.
    """
    import papermill

    info = find_notebook(name)
    parameters = check_parameter_names(info, parameters or {})
    output = Path(output) if output else BOOK_DIR / EXECUTED / f"{info.name}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    running = output.with_name(f".{output.stem}.running.ipynb")
    failed = output.with_name(f"{output.stem}.failed.ipynb")
    source = output.with_name(f".{output.stem}.source.ipynb")
    _write_ipynb(read_notebook(info.path), source)  # papermill reads .ipynb only
    started = time.perf_counter()
    try:
        with kernel_environment():
            papermill.execute_notebook(str(source), str(running), parameters=parameters,
                                       cwd=str(cwd or PROJECT_DIR), progress_bar=False, log_output=log_output,
                                       kernel_manager_class=_kernel_manager_class(),
                                       shutdown_kernel="immediate")  # every output is saved by then
    except Exception as exc:  # papermill raises after saving the failed copy
        if running.exists():
            os.replace(running, failed)
        raise NotebookFailed(_describe_failure(info.name, exc, info.path, failed),
                             time.perf_counter() - started) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            source.unlink()
    seconds = time.perf_counter() - started
    _finish_executed_copy(running, info.path, output)
    os.replace(running, output)
    with contextlib.suppress(FileNotFoundError):
        failed.unlink()
    return NotebookRun(info.name, "ok", seconds, output)
