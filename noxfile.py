"""Tasks: `nox` runs tests, lint, type checks and the strict docs build; `nox -s bench`."""

from __future__ import annotations

import shutil

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.reuse_existing_virtualenvs = True


def _ensure_redis_server(session: nox.Session) -> None:
    """The Redis tests run a real redis-server: install Debian's package when it is missing."""
    if shutil.which("redis-server"):
        return
    if not shutil.which("apt-get"):
        session.error("redis-server is missing: install it (the Redis tests need it)")
    session.run("apt-get", "update", "-qq", external=True)
    session.run("apt-get", "install", "-y", "-qq", "redis-server", external=True)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite; the Redis tests start their own redis-server."""
    _ensure_redis_server(session)
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package, and on every example in README.md and docs/."""
    session.install("-e", ".[lint,test]")  # the testing page's example imports pytest
    session.run("mypy", "--strict", "bingx_assets")
    session.run("python", "docs/check_examples.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: ratios and counts, written to benchmarks/results/."""
    _ensure_redis_server(session)
    session.install("-e", ".[redis,prometheus]")
    # The peers we measure against live in this session only, never in the package.
    session.install("aiolimiter", "ccxt")
    for bench in ("limits", "fanout", "redis", "peers", "metrics", "uid_cache"):
        session.run("python", f"benchmarks/bench_{bench}.py")


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built with --strict: a broken reference fails it."""
    session.install("-e", ".[docs,redis,prometheus]")
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", "site", env={"NO_MKDOCS_2_WARNING": "1"}
    )
