"""Every chapter of the smoke-built book, as headless Chromium renders it.

Each page: is not blank (a screenshot with content, and text in its main
column); does not overflow sideways (the document is no wider than the
window: wide tables scroll inside their own boxes); shows no ``Traceback`` and
no ``...Error`` in any cell output; and shows no folder of the machine that
built it. The measurements are taken in the page itself, by a small script
added to a copy of it (beside the original, so its styles and scripts load),
read back from Chromium's ``--dump-dom``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mtl.book import chromium_executable, screenshot
from mtl.notebooks import EXECUTED, toc_notebooks

from test_book import smoke_book

pytestmark = pytest.mark.book

WIDTH, HEIGHT = 1100, 1400
"""The window: narrow enough that the theme shows its side bar and a wide table must scroll."""

_MEASURE = """
<script>
window.addEventListener("load", function () {
  var root = document.documentElement;
  var main = document.querySelector("main") || document.body;
  var wide = [];
  main.querySelectorAll("*").forEach(function (e) {
    var box = e.getBoundingClientRect();
    if (box.right > root.clientWidth + 1 && wide.length < 5) {
      wide.push(e.tagName + "." + e.className + " right=" + Math.round(box.right));
    }
  });
  var found = {
    scrollWidth: root.scrollWidth, clientWidth: root.clientWidth, bodyWidth: document.body.scrollWidth,
    height: Math.round(main.getBoundingClientRect().height), text: main.innerText,
    outputs: Array.from(main.querySelectorAll(".cell_output")).map(function (e) { return e.innerText; }),
    wide: wide
  };
  var out = document.createElement("pre");
  out.id = "mtl-measure";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>
"""


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    if chromium_executable() is None:
        pytest.skip("chromium is not installed (scripts/ensure-chromium installs it as root): no page check")
    return smoke_book(tmp_path_factory.getbasetemp())


def measure(page: Path, width: int = WIDTH, height: int = HEIGHT) -> dict:
    """What the page's own script measured once loaded in headless Chromium (see the module's docstring)."""
    copy = page.with_name(f".measure-{page.name}")
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", _MEASURE + "</body>"), encoding="utf-8")
    try:
        with tempfile.TemporaryDirectory(prefix="mtl-chromium-") as profile:
            result = subprocess.run(
                [chromium_executable(), "--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                 "--virtual-time-budget=5000", "--dump-dom", copy.resolve().as_uri()],
                capture_output=True, text=True, timeout=120)
    finally:
        copy.unlink()
    match = re.search(r'<pre id="mtl-measure"[^>]*>(.*?)</pre>', result.stdout, re.S)  # the theme adds attributes
    assert match, f"{page.name}: chromium reported nothing (exit {result.returncode}): {result.stderr[-800:]}"
    import html

    return json.loads(html.unescape(match.group(1)))


def _machine_paths(base: Path) -> set[str]:
    from mtl.paths import cache_dir, data_root, project_root, results_dir

    return {str(p) for p in (project_root(), data_root(), cache_dir(), results_dir(), Path(sys.prefix), base,
                             Path(os.path.expanduser("~")))
            if len(p.parts) > 1}


@pytest.mark.parametrize("name", toc_notebooks())
def test_every_chapter_reads_well_in_a_browser(book, name, tmp_path, tmp_path_factory):
    import matplotlib.image

    page = book.html_dir / EXECUTED / f"{name}.html"
    found = measure(page)
    assert found["scrollWidth"] <= found["clientWidth"], (
        f"{name}: the page is {found['scrollWidth']} px wide in a {found['clientWidth']} px window; "
        f"too wide: {found['wide']}")
    assert len(found["text"]) > 300 and found["height"] > 400, f"{name}: the main column is (almost) empty"
    for output in found["outputs"]:
        assert "Traceback" not in output, f"{name}: an output shows a traceback: {output[:400]}"
        assert not re.search(r"\b[A-Za-z]*Error\b", output), f"{name}: an output shows an error: {output[:400]}"
    shown = sorted(p for p in _machine_paths(tmp_path_factory.getbasetemp()) if p in found["text"])
    assert not shown, f"{name}: the page shows the building machine's folders {shown}"

    pixels = matplotlib.image.imread(screenshot(page, tmp_path / f"{name}.png", width=WIDTH, height=HEIGHT))[..., :3]
    assert pixels.std() > 0.05 and (pixels < 0.94).any(axis=-1).mean() > 0.03, f"{name}: the screenshot is blank"
