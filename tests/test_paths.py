"""mtl.paths: where data, caches and results live, and paths written without this machine's folders."""

from __future__ import annotations

from mtl.paths import cache_dir, data_root, portable_path, portable_paths_in, project_root, results_dir


def test_folders_follow_their_variables(tmp_path, monkeypatch):
    for name, folder in (("MTL_DATA_ROOT", data_root), ("MTL_CACHE_DIR", cache_dir), ("MTL_RESULTS_DIR", results_dir)):
        monkeypatch.setenv(name, str(tmp_path / name))
        assert folder() == tmp_path / name
        monkeypatch.delenv(name)
        assert project_root() in folder().parents  # the default lives in the project


def test_portable_path_never_shows_a_folder_of_this_machine(tmp_path, monkeypatch):
    data, cache = tmp_path / "corpora", tmp_path / "corpora" / "cache"
    monkeypatch.setenv("MTL_DATA_ROOT", str(data))
    monkeypatch.setenv("MTL_CACHE_DIR", str(cache))
    monkeypatch.setenv("MTL_RESULTS_DIR", str(tmp_path / "results"))
    assert portable_path(data) == "$MTL_DATA_ROOT"
    assert portable_path(data / "emodb") == "$MTL_DATA_ROOT/emodb"
    assert portable_path(cache / "synthetic" / "savee") == "$MTL_CACHE_DIR/synthetic/savee"  # the deepest wins
    assert portable_path(project_root() / "results" / "real") == "results/real"
    assert portable_path(tmp_path / "elsewhere" / "records") == "…/elsewhere/records"
    line = f"first: {cache}/synthetic/savee/a.wav missing; read {project_root()}/results/real; {data}-old stays"
    assert portable_paths_in(line) == (f"first: $MTL_CACHE_DIR/synthetic/savee/a.wav missing; read results/real; "
                                       f"{data}-old stays")


def test_default_folders_are_named_by_their_variables_too(monkeypatch):
    for name in ("MTL_DATA_ROOT", "MTL_CACHE_DIR", "MTL_RESULTS_DIR"):
        monkeypatch.delenv(name, raising=False)
    assert portable_path(project_root() / "data" / "emodb") == "$MTL_DATA_ROOT/emodb"
    assert portable_path(project_root() / ".cache" / "synthetic") == "$MTL_CACHE_DIR/synthetic"
    assert portable_path(project_root() / "notebooks" / "data.md") == "notebooks/data.md"
