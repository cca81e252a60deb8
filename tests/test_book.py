"""The book: built once at the smoke profile, then inspected (pages, tables, figures, offline, pixels).

The build is shared with tests/test_notebooks.py through :func:`smoke_book`
(cached per test session), so every notebook is executed once.
"""

from __future__ import annotations

import functools
import re
import shutil
from pathlib import Path

import pytest
import yaml

from mtl.book import BookReport, _filtered_toc, build_book, chromium_executable, external_resources, screenshot
from mtl.notebooks import EXECUTED, NotebookFailed, toc_notebooks

pytestmark = pytest.mark.book

# Least number of figures (<img>) and tables (<table>) each notebook chapter shows at the smoke profile.
EXPECTED = {
    "pathnet_evolution": dict(img=2, table=2),
    "data": dict(img=4, table=3),
    "table1_visual_transfer": dict(img=2, table=3),
    "table2_visual_baselines": dict(img=1, table=3),
    "table3_speech_transfer": dict(img=3, table=3),
    "table4_speech_baselines": dict(img=1, table=3),
    "fig9_10_pathways": dict(img=4, table=1),
    "convergence": dict(img=2, table=3),
    "ablation": dict(img=0, table=1),
    # results, paired tests, F1 per AU, the compound signatures
    "related_method": dict(img=0, table=4),
    "real_recordings": dict(img=0, table=0),
    # the GA diagnostics figure; reference methods beside PathNet (utterance, segment), leakage, GA, pairs, best
    "where_089": dict(img=1, table=3),
    # settings, corpora, the methods and what they ran on; per-class bars, confusion matrices and pathways of two runs
    "own_corpus": dict(img=6, table=4),
}


@functools.cache
def smoke_book(base: Path) -> BookReport:
    """Build the whole book once at the smoke profile under ``base`` (synthetic data, scratch caches)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MTL_CACHE_DIR", str(base / "cache"))
        patch.setenv("MTL_RESULTS_DIR", str(base / "results"))
        return build_book("smoke", output_dir=base / "book", parameters={"data": "synthetic"}, echo=lambda _: None)


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> BookReport:
    return smoke_book(tmp_path_factory.getbasetemp())


def _page(book: BookReport, name: str) -> str:
    return (book.html_dir / EXECUTED / f"{name}.html").read_text(encoding="utf-8")


def _main_content(html: str) -> str:
    match = re.search(r'<main[^>]*id="main-content"[^>]*>(.*)</main>', html, re.S)
    return match.group(1) if match else html


def test_every_chapter_is_built(book):
    pages = {p.relative_to(book.html_dir).with_suffix("").as_posix() for p in book.html_dir.rglob("*.html")}
    for name in toc_notebooks():
        assert f"{EXECUTED}/{name}" in pages
    for prose in ("intro", "method", "reproduction_notes", "rerun"):
        assert prose in pages
    assert not book.dropped
    assert 'url=intro.html' in (book.html_dir / "index.html").read_text()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_chapter_shows_its_tables_and_figures(book, name):
    html = _main_content(_page(book, name))
    assert html.count("<img") >= EXPECTED[name]["img"], f"{name}: too few figures"
    assert html.count("<table") >= EXPECTED[name]["table"], f"{name}: too few tables"
    assert "Traceback" not in html, f"{name}: an error output is rendered"


@pytest.mark.parametrize("name, table", [("table1_visual_transfer", "Table 1"), ("table2_visual_baselines", "Table 2"),
                                         ("table3_speech_transfer", "Table 3"), ("table4_speech_baselines", "Table 4")])
def test_result_tables_set_reproduced_numbers_beside_the_papers(book, name, table):
    html = _page(book, name)
    assert f"{table}: accuracy, the paper's and ours" in html
    assert f"{table}: what each reproduced number ran on" in html
    for header in (">paper<", ">ours<", ">Data<", ">Corpus copy<", ">Protocol<", ">Seeds<", ">Folds<"):
        assert header in html, header
    assert "synthetic" in html and "not run" not in html


def test_parameter_cells_are_compact(book):
    html = _page(book, "table1_visual_transfer")
    assert "tag_injected-parameters" in html and "tag_hide-input" in html
    assert "Parameters (papermill injects" not in html  # the defaults cell is removed from the page
    assert "mtl-settings" in html                         # the resolved settings table


def test_real_recordings_chapter_never_invents_numbers(book):
    text = re.sub(r"<[^>]+>", " ", _page(book, "real_recordings"))
    assert "No real-data records are committed yet" in text or "committed record(s)" in text


def test_shared_text_is_rendered_where_it_is_included(book):
    shared = Path(__file__).resolve().parents[1] / "book" / "_shared"
    for name in ("table1_visual_transfer", "convergence"):
        text = " ".join(re.sub(r"<[^>]+>", " ", _main_content(_page(book, name))).split())
        for passage in ("synthetic-data.md", "cached-cells.md"):
            words = " ".join(re.sub(r"[`*]", "", (shared / passage).read_text()).split()[:12])
            assert words in text, f"{name}: {passage} is not rendered"
        assert "{include}" not in text


def test_no_path_of_the_building_machine_is_rendered(book, tmp_path_factory):
    # Data roots, caches and records appear as $MTL_DATA_ROOT, $MTL_CACHE_DIR or relative to the project.
    import os
    import sys

    from mtl.paths import cache_dir, data_root, project_root, results_dir

    machine = {str(p) for p in (project_root(), data_root(), cache_dir(), results_dir(), Path(sys.prefix),
                                tmp_path_factory.getbasetemp(), Path(os.path.expanduser("~")))
               if len(p.parts) > 1}
    built = [page for page in book.html_dir.rglob("*") if page.suffix in (".html", ".ipynb", ".md", ".txt")]
    assert any(page.suffix == ".ipynb" for page in built)  # the pages' sources (_sources/) are checked too
    for page in built:
        text = page.read_text(encoding="utf-8", errors="replace")
        found = sorted(path for path in machine if path in text)
        assert not found, f"{page.relative_to(book.html_dir)} shows {found}"


ROOT = Path(__file__).resolve().parents[1]
BIB_KEY = re.compile(r"^@\w+\{([^,\s]+),", re.M)


def _bib_keys() -> list[str]:
    return BIB_KEY.findall((ROOT / "book" / "references.bib").read_text(encoding="utf-8"))


def test_bibliography_page_lists_every_reference(book):
    keys = _bib_keys()
    assert {"nguyen2023meta", "fernando2017pathnet", "harvey2011microbial", "viola2001rapid",
            "burkhardt2005database", "livingstone2018ravdess", "haq2009speaker", "martin2006enterface",
            "pons2018multitask", "paszke2019pytorch", "mcfee2015librosa", "pedregosa2011scikit",
            "bradski2000opencv", "rocklin2015dask", "papermill", "jupyterbook", "jupytext"} <= set(keys)
    html = _main_content((book.html_dir / "bibliography.html").read_text(encoding="utf-8"))
    missing = [key for key in keys if f'id="cite-{key}"' not in html]
    assert not missing, f"cited nowhere, so not on the bibliography page: {missing}"
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "Meta-transfer learning for emotion recognition" in text
    assert "doi:10.1007/s00521-023-08248-y" in text


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_chapter_citations_link_to_the_bibliography(book, name):
    html = _main_content(_page(book, name))
    cited = set(re.findall(r'href="\.\./bibliography\.html#cite-([a-z0-9-]+)"', html))
    assert "nguyen2023meta" in cited, f"{name}: the paper is not cited"  # every chapter opens with it
    assert cited <= set(_bib_keys())
    assert "Nguyen <em>et al.</em>, 2023" in html
    # An unresolved citation renders as "[]"; a "[]" in highlighted code (Pygments' punctuation) is not one.
    assert not re.search(r'(?<!<span class="p">)\[\]</span>', html), f"{name}: a citation rendered empty"


def test_prose_chapters_cite_the_methods_they_name(book):
    cited = {page: set(re.findall(r'href="bibliography\.html#cite-([a-z0-9-]+)"',
                                  _main_content((book.html_dir / f"{page}.html").read_text(encoding="utf-8"))))
             for page in ("intro", "method", "reproduction_notes")}
    assert {"nguyen2023meta", "fernando2017pathnet", "harvey2011microbial", "viola2001rapid",
            "pons2018multitask"} <= cited["intro"]
    assert {"fernando2017pathnet", "harvey2011microbial", "viola2004robust", "zhang2018speech"} <= cited["method"]
    assert {"burkhardt2005database", "livingstone2018ravdess"} <= cited["reproduction_notes"]


_DOWNLOAD = re.compile(r'<a href="([^"]+)"[^>]*class="[^"]*btn-download-(?:source|notebook)-button', re.S)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_chapter_offers_its_executed_notebook_for_download(book, name):
    page = book.html_dir / EXECUTED / f"{name}.html"
    links = _DOWNLOAD.findall(page.read_text(encoding="utf-8"))
    notebooks = [link for link in links if link.endswith(".ipynb")]
    assert notebooks, f"{name}: no download button for the notebook"
    assert not any(re.match(r"(?:https?:)?//", link) for link in links)  # a file of the book, not a URL
    target = (page.parent / notebooks[0]).resolve()
    assert target.is_file() and book.html_dir.resolve() in target.parents
    executed = book.html_dir.parents[1] / "book" / EXECUTED / f"{name}.ipynb"
    assert target.read_bytes() == executed.read_bytes()  # the executed copy, outputs included


def test_publishing_workflow_runs_make_book_and_deploys_the_html():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["branches"] == ["main"] and "workflow_dispatch" in triggers
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert workflow["concurrency"]["group"] == "pages"
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    uses = {step["uses"].split("@")[0]: step for step in steps if "uses" in step}
    assert str(uses["actions/setup-python"]["with"]["python-version"]) == "3.11"
    assert any(step.get("run", "").startswith("make book") for step in steps)
    assert "actions/configure-pages" in uses
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert [step["uses"].split("@")[0] for step in deploy["steps"]] == ["actions/deploy-pages"]


def test_book_reads_offline(book):
    assert external_resources(book.html_dir) == []
    assert (book.html_dir / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert 'src="_static/mathjax/tex-chtml.js' in (book.html_dir / "method.html").read_text()


def test_timings_are_logged_per_notebook(book):
    log = (book.html_dir.parents[1] / "book" / EXECUTED / "timings.csv").read_text().splitlines()
    assert log[0] == "finished_utc,profile,notebook,status,seconds"
    logged = {line.split(",")[2] for line in log[1:]}
    assert set(toc_notebooks()) <= logged
    assert "jupyter-book build" in book.table() and "total" in book.table()


def test_an_edited_chapter_source_is_what_the_book_shows(tmp_path):
    """A teacher edits a chapter's prose and a parameter default in notebooks/<name>.md of a clone,
    builds that chapter alone, and finds both on the page (the cheapest chapter: it reads records)."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    tracked = subprocess.run(["git", "ls-files", "-z", "mtl", "notebooks", "book", "_config.yml", "pyproject.toml",
                              "results/real/real_recordings"], cwd=root, capture_output=True, text=True)
    if tracked.returncode != 0:
        pytest.skip(f"not a git checkout: {tracked.stderr.strip()}")
    clone = tmp_path / "clone"
    for name in filter(None, tracked.stdout.split("\0")):
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, clone / name)
    source = clone / "notebooks" / "real_recordings.md"
    text = source.read_text(encoding="utf-8")
    prose = "A sentence a teacher added, in plain sight."
    text = text.replace("\n# Reproduction on real recordings\n", f"\n# Reproduction on real recordings\n\n{prose}\n", 1)
    text = text.replace("records_dir = None", 'records_dir = "results/real/real_recordings"', 1)
    source.write_text(text, encoding="utf-8")

    result = subprocess.run([sys.executable, "-m", "mtl.cli", "book", "--profile", "smoke", "--only",
                             "real_recordings", "--output-dir", str(tmp_path / "out")], cwd=clone,
                            env={**os.environ, "PYTHONPATH": str(clone)}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    page = " ".join(re.sub(r"<[^>]+>", " ", (tmp_path / "out" / "_build" / "html" / EXECUTED /
                                             "real_recordings.html").read_text(encoding="utf-8")).split())
    assert prose in page
    assert "from results/real/real_recordings :" in page  # the new default is the folder the chapter read


def test_a_failing_notebook_fails_the_build_naming_it(tmp_path):
    with pytest.raises(NotebookFailed) as failure:
        build_book("smoke", only=["table1_visual_transfer"], output_dir=tmp_path, parameters={"protocol": "nope"},
                   echo=lambda _: None)
    message = str(failure.value)
    assert "notebooks failed" in message and "'table1_visual_transfer'" in message
    assert "unknown protocol 'nope'" in message
    assert not (tmp_path / "_build" / "html").exists()
    assert (tmp_path / "book" / EXECUTED / "table1_visual_transfer.failed.ipynb").is_file()


def test_external_resources_finds_what_a_browser_would_fetch(tmp_path):
    (tmp_path / "a.html").write_text(
        '<html><head><script src="https://cdn.example.org/x.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.com/f.css"><script>var u = "https://unpkg.com/a/b.js";</script>'
        '</head><body><a href="https://example.org/paper">a plain link is fine</a>'
        '<script src="_static/local.js"></script></body></html>')
    (tmp_path / "s.css").write_text('@font-face { src: url("https://fonts.example.com/a.woff2"); }')
    found = {(what, url) for _, what, url in external_resources(tmp_path)}
    assert ("<script src>", "https://cdn.example.org/x.js") in found
    assert ("<link href>", "//fonts.example.com/f.css") in found
    assert any(what == "inline <script>" for what, _ in found)
    assert ("css", "https://fonts.example.com/a.woff2") in found
    assert not any("example.org/paper" in url or "local.js" in url for _, url in found)


def _rerun_section(heading: str) -> str:
    """The text of one section (``## heading`` or ``### heading``) of book/rerun.md."""
    text = (Path(__file__).resolve().parents[1] / "book" / "rerun.md").read_text(encoding="utf-8")
    match = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#+ |\Z)", text, re.M | re.S)
    assert match, f"book/rerun.md has no section {heading!r}"
    return match.group(1)


def test_rerun_chapter_profile_table_matches_the_profiles():
    from mtl.config import PROFILES, get_profile

    rows = {m.group(1): [c.strip() for c in m.group(2).split("|")]
            for m in re.finditer(r"^\| `(\w+)` +\|[^|]*\|(.*)\|\s*$", _rerun_section("Profiles"), re.M)}
    assert set(rows) == set(PROFILES)
    for name, (population, generations, steps, folds, frames) in rows.items():
        config = get_profile(name)
        assert int(population) == config.population and int(generations) == config.generations, name
        assert steps == (str(config.steps_per_pathway) if config.steps_per_pathway else "one pass over the data")
        assert int(folds) == config.folds, name
        assert frames == ("every one" if config.frame_step == 1 else f"every {config.frame_step}th"), name


def test_rerun_chapter_alias_table_is_mtl_config_parameter_names():
    from mtl.config import parameter_names

    rows = [[cell.strip().strip("`") for cell in m.group(1).split("|")]
            for m in re.finditer(r"^\| (`\w`.*)\|\s*$", _rerun_section("The paper's symbols are aliases"), re.M)]
    expected = [[row["symbol"], row["Config field"],
                 "one pass over the training set" if row["paper"] is None else str(row["paper"])]
                for row in parameter_names().to_dict("records")]
    assert rows == expected


def test_filtered_toc_leaves_out_chapters_without_executed_copies(tmp_path):
    toc = Path(__file__).resolve().parents[1] / "book" / "_toc.yml"
    dropped = _filtered_toc(toc, {"pathnet_evolution"}, tmp_path / "toc.yml")
    assert "pathnet_evolution" not in dropped and "table1_visual_transfer" in dropped
    text = (tmp_path / "toc.yml").read_text()
    assert "executed/pathnet_evolution" in text and "executed/table1_visual_transfer" not in text
    assert "reproduction_notes" in text


def test_a_built_chapter_renders_in_a_browser(book, tmp_path):
    if chromium_executable() is None:
        pytest.skip("chromium is not installed (scripts/ensure-chromium installs it as root); "
                    "cannot take the screenshot")
    import matplotlib.image

    png = screenshot(book.html_dir / EXECUTED / "pathnet_evolution.html", tmp_path / "page.png", height=2400)
    pixels = matplotlib.image.imread(png)[..., :3]
    not_white = (pixels < 0.94).any(axis=-1).mean()
    assert pixels.std() > 0.05, "the screenshot is blank"
    assert not_white > 0.03, f"only {not_white:.1%} of the page is not white"


def test_the_book_configuration_is_valid_yaml_with_every_extension_listed_once():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    extensions = config["sphinx"]["config"]["extensions"]
    assert len(extensions) == len(set(extensions))
    assert {"sphinxcontrib.bibtex", "sphinx_exercise", "sphinx-mathjax-offline"} <= set(extensions)
