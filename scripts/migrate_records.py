"""Rewrite committed result records in the current layout (:func:`mtl.records.migrate_folder`).

    python scripts/migrate_records.py [FOLDER ...]     # default: results/real

Run once after the layout changes; a second run changes nothing. Numbers are
never touched: the migration makes corpus folders symbolic
(``$MTL_DATA_ROOT/emodb`` instead of a path of the machine that ran it) and
re-keys records whose stored key predates today's key formula.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mtl.paths import project_root
from mtl.records import migrate_folder


def main(argv: list[str]) -> int:
    folders = [Path(a) for a in argv] or [project_root() / "results" / "real"]
    for folder in folders:
        written = migrate_folder(folder)
        print(f"{folder}: {len(written)} record(s) rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
