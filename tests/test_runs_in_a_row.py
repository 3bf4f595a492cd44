"""Command-line runs one after the other share one budget (found in review).

A new process knows nothing of the last one's requests, which BingX still counts for a
period: without the saved limiter state, a second `balances` run within a second of the
first sends a full burst into a full UID window and is refused (a step towards a
disabled UID). The command saves its windows per server and reads them back.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.looptime(False)
def test_two_balances_runs_in_a_row_are_never_refused(tmp_path: Path) -> None:
    keys = tmp_path / "sim.toml"
    server = subprocess.Popen(
        [sys.executable, "-m", "bingx_assets", "simulate", "--simulated-keys", "5",
         "--write-keys", str(keys)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[-1]
        argv = [sys.executable, "-m", "bingx_assets", "balances", "--keys", str(keys),
                "--base-url", url, "--json"]  # fmt: skip
        for _ in range(2):  # one after the other, never at once
            subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    finally:
        server.terminate()
        _, log = server.communicate(timeout=10)
    assert "refused" not in log
