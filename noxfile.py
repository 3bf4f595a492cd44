"""Tasks: `nox` runs tests, lint and type checks; `nox -s bench` and `nox -s docs` on demand."""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite (Redis tests start their own redis-server)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[lint]")
    session.run("mypy", "--strict", "bingx_assets")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: ratios and counts, written to benchmarks/results/."""
    session.install("-e", ".[bench]")
    session.run("python", "benchmarks/bench_limits.py")
