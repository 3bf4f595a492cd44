"""Printing a benchmark's rows as a table and writing them as JSON."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

SMOKE = "--smoke" in sys.argv[1:]
"""Tiny sizes, a few seconds: the test suite runs every benchmark so, to catch one that
crashes. Its figures mean nothing, so they go to a temporary directory (or
$BENCH_SMOKE_RESULTS), never over the real results."""

if SMOKE:
    RESULTS = Path(os.environ.get("BENCH_SMOKE_RESULTS") or tempfile.mkdtemp(prefix="bench-"))
else:
    RESULTS = Path(__file__).parent / "results"


def report(name: str, rows: Sequence[dict[str, object]]) -> None:
    columns = list(rows[0])
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(list(rows), indent=2) + "\n")
    print(f"\nwritten to {path}\n")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return "-" if value is None else str(value)
