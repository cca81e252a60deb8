"""The package's layout: imports run forward, every module is on the architecture page, none is too long.

The layers below are the data flow of ``book/architecture.md``: a module may
import from its own layer and the layers before it, never from a later one.
Function-level imports count too: an import placed inside a function to dodge
a cycle is still a backward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mtl"
ARCHITECTURE = ROOT / "book" / "architecture.md"
MAX_LINES = 600

LAYERS: tuple[tuple[str, ...], ...] = (
    ("mtl", "mtl.errors", "mtl.paths", "mtl.io", "mtl.config"),
    ("mtl.corpora", "mtl.media"),
    ("mtl.synthetic", "mtl.features", "mtl.evaluation", "mtl.pathnet", "mtl.multitask"),
    ("mtl.datasets", "mtl.multitask.data", "mtl.cells", "mtl.records", "mtl.results", "mtl.corpus_plots", "mtl.plots", "mtl.comparison"),
    ("mtl.runner", "mtl.schedulers", "mtl.sweep"),
    ("mtl.experiments",),
    ("mtl.ablation", "mtl.multitask.experiment", "mtl.multitask.chapter", "mtl.reference"),
    ("mtl.chapters", "mtl.own_corpus", "mtl.notebooks", "mtl.book", "mtl.cli"),
)


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best = None
    for index, layer in enumerate(LAYERS):
        for prefix in layer:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > len(best[1]):
                    best = (index, prefix)
    assert best is not None, f"{module} is in no layer of this test: add it to LAYERS"
    return best[0]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mtl":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "mtl")
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _name(p))
def test_imports_run_forward(path):
    module = _name(path)
    backwards = sorted(m for m in _imports(path) if _layer(m) > _layer(module))
    assert not backwards, f"{module} (layer {_layer(module)}) imports from later layers: {backwards}"


def test_every_module_is_on_the_architecture_page():
    page = ARCHITECTURE.read_text(encoding="utf-8")
    missing = [p.relative_to(ROOT).as_posix() for p in MODULES if p.name != "__init__.py"
               and p.relative_to(ROOT).as_posix() not in page and f"{p.parent.relative_to(ROOT).as_posix()}/" not in page]
    assert not missing, f"not on book/architecture.md: {missing}"


def test_no_module_is_longer_than_a_reader_can_hold():
    long = {_name(p): n for p in MODULES if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
