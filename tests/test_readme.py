"""The README's two commands: each makes its venv first, and .ci/run runs the second as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    section = (ROOT / "README.md").read_text().split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)\n```$", section, re.M | re.S)


def test_the_readme_has_two_commands_that_make_a_venv_first() -> None:
    demo, tests = readme_commands()
    for command in (demo, tests):
        assert "\n" not in command
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install ")
        # Nothing installs into the system Python, which Debian refuses.
        assert "python3 -m pip" not in command and " pip install" not in command.split("&&")[0]
    assert demo.endswith(".venv/bin/bingx-assets balances --simulate")
    assert tests.endswith(".venv/bin/nox")


def test_ci_runs_the_readmes_test_command_as_written() -> None:
    _, tests = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line and not line.startswith(("#", " ")) and "nox" in line]
    assert commands == [tests]
    assert ci[-1] == tests  # the last thing it does: its exit code is CI's


def test_nox_runs_the_build_and_the_docs_by_default() -> None:
    noxfile = (ROOT / "noxfile.py").read_text()
    sessions = re.search(r"nox\.options\.sessions = \[(.*?)\]", noxfile)
    assert sessions is not None
    assert [s.strip(' "') for s in sessions.group(1).split(",")] == [
        "tests", "lint", "typecheck", "build", "docs",
    ]  # fmt: skip
