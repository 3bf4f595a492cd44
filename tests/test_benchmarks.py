"""Every benchmark's smoke mode runs, so that a benchmark that crashes fails the suite
instead of the next `nox -s bench`; its results go to a scratch directory, never over
benchmarks/results/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
ALL = sorted(BENCHMARKS.glob("bench_*.py"))


def _results() -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in (BENCHMARKS / "results").glob("*")}


@pytest.fixture(scope="module")
def smoke_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[subprocess.Popen[str], Path]]]:
    """Every smoke run started at once: most of their time is spent waiting."""
    # The checkout's package, whatever an installed one says.
    path = os.pathsep.join([str(BENCHMARKS.parent), os.environ.get("PYTHONPATH", "")])
    runs = {}
    for script in ALL:
        scratch = tmp_path_factory.mktemp(script.stem)
        env = {**os.environ, "PYTHONPATH": path, "BENCH_SMOKE_RESULTS": str(scratch)}
        process = subprocess.Popen(
            [sys.executable, str(script), "--smoke"],
            cwd=scratch,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        runs[script.stem] = (process, scratch)
    yield runs
    for process, _ in runs.values():
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_every_benchmark_is_found() -> None:
    assert len(ALL) >= 8


@pytest.fixture(scope="module")
def results_before() -> dict[str, float]:
    return _results()


@pytest.mark.parametrize("script", ALL, ids=[p.stem for p in ALL])
def test_a_benchmark_runs_in_its_smoke_mode(
    script: Path,
    results_before: dict[str, float],
    smoke_runs: dict[str, tuple[subprocess.Popen[str], Path]],
) -> None:
    process, scratch = smoke_runs[script.stem]
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err[-3000:]
    written = list(scratch.glob("*.json"))
    assert written, out[-2000:]
    for result in written:
        rows = json.loads(result.read_text())
        assert isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows)
    assert _results() == results_before
