"""Build the HTML book from the chapters' notebooks, and check the built book.

The book is built in two separate steps, so that what it shows is exactly what
was computed:

1. every notebook named in ``book/_toc.yml`` is executed by
   :func:`mtl.notebooks.run_notebook`, one after the other, from its source
   ``notebooks/<name>.md`` into ``book/executed/<name>.ipynb`` with the run's
   parameters (profile and any ``-p name value`` overrides) injected; the
   data root reaches the kernels as ``MTL_DATA_ROOT``;
2. Jupyter Book renders those executed copies with execution switched off, in
   nit-picky mode with warnings as errors (``-W -n --keep-going``).

A notebook that raises stops the build with its name, the failing cell and the
error; its executed copy is kept as ``<name>.failed.ipynb`` for inspection and
never rendered. Each notebook's wall time is appended to
``executed/timings.csv`` and summarised in a table at the end.

:func:`external_resources` and :func:`screenshot` check a built book: nothing
fetched from the network, and pages that render.
"""

from __future__ import annotations

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
from typing import Any, Callable, Mapping, Sequence

import yaml

from mtl.config import PROFILES
from mtl.errors import ConfigError, MissingDataError
from mtl.notebooks import (BOOK_DIR, EXECUTED, PROJECT_DIR, TOC_NAME, NotebookError, NotebookFailed, NotebookInfo,
                           NotebookRun, check_parameter_names, kernel_environment, list_notebooks, run_notebook,
                           toc_notebooks)

CONFIG_FILE = PROJECT_DIR / "_config.yml"

Echo = Callable[[str], None]


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


def _execute(chapters: Sequence[str], to_run: Sequence[str], available: Mapping[str, NotebookInfo],
             executed_dir: Path, common: Mapping[str, Any], profile: str,
             echo: Echo) -> tuple[list[NotebookRun], list[str]]:
    """Execute ``to_run`` (in book order) into ``executed_dir``; the runs of every chapter, and the failures."""
    runs: list[NotebookRun] = []
    failures: list[str] = []
    for name in chapters:
        output = executed_dir / f"{name}.ipynb"
        if name not in to_run:
            if output.exists():
                runs.append(NotebookRun(name, "reused", 0.0, output))
            continue
        if name not in available:
            failures.append(f"notebook {name!r} is in the table of contents but notebooks/{name}.md does not exist")
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
    return runs, failures


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
        Folder of the real corpora, given to the notebooks as ``MTL_DATA_ROOT``
        (default: the environment's ``MTL_DATA_ROOT``, else ``<project>/data``).
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
    parameters = check_parameter_names(list(available.values()), parameters or {})
    to_run = [] if skip_execution else [n for n in chapters if (not only or n in only)]

    common: dict[str, Any] = {"profile": profile, **parameters}
    # The data root reaches the kernels as MTL_DATA_ROOT, not as a parameter: the pages then show
    # `$MTL_DATA_ROOT`, never a folder of the machine that built them.
    environment = {}
    if data_root is not None:
        if not Path(data_root).expanduser().is_dir():
            raise MissingDataError(f"data root {str(data_root)!r} does not exist; give the folder that holds the "
                                   "real corpora (emodb/, ravdess-speech-16k/, ...)")
        environment["MTL_DATA_ROOT"] = str(Path(data_root).expanduser().resolve())
    with kernel_environment(**environment):
        runs, failures = _execute(chapters, to_run, available, executed_dir, common, profile, echo)
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
