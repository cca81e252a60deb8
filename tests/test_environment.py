"""The conda description, the pip lock and pyproject.toml agree."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_norm(name)] = version.strip()
    return pins


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    declared = _pins(x for x in pip_section if not x.startswith("-e"))
    assert declared == wanted


def test_lock_agrees_with_pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _pins(project["dependencies"] + project["optional-dependencies"]["test"])
    lock = _pins((ROOT / "requirements-lock.txt").read_text().splitlines())
    mismatched = {k: (v, lock.get(k)) for k, v in wanted.items() if lock.get(k) != v}
    assert not mismatched, f"pyproject pins missing or different in requirements-lock.txt: {mismatched}"


def test_torch_is_pinned_everywhere():
    for name in ("pyproject.toml", "environment.yml", "requirements-lock.txt"):
        text = (ROOT / name).read_text()
        assert "torch==2.13.0" in text, name
        assert not re.search(r"^\s*-?\s*\"?torch\"?\s*,?\s*$", text, re.M), name
