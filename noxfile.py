"""Tasks: `nox` runs tests, lint, type checks, the package build and the strict docs
build; `nox -s bench` runs the benchmarks."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck", "build", "docs"]
nox.options.reuse_existing_virtualenvs = True


def _ensure_redis_server(session: nox.Session) -> None:
    """The Redis tests run a real redis-server: install Debian's package when it is missing.

    The tests start their own server on a free port, so the package's system service
    is never wanted: `policy-rc.d` stops the package from starting it, and it is
    disabled after install, so that nothing is left running or starting at boot.
    """
    if shutil.which("redis-server"):
        return
    if not shutil.which("apt-get") or os.geteuid() != 0:
        session.error("redis-server is missing: install it (the Redis tests need it)")
    session.run("apt-get", "update", "-qq", external=True)
    policy = Path("/usr/sbin/policy-rc.d")
    ours = not policy.exists()
    if ours:
        policy.write_text(
            "#!/bin/sh\n# bingx-assets' noxfile: no service starts while it installs\nexit 101\n"
        )
        policy.chmod(0o755)
    try:
        session.run(
            "apt-get", "install", "-y", "-qq", "redis-server",
            external=True, env={"DEBIAN_FRONTEND": "noninteractive", "RUNLEVEL": "1"},
        )  # fmt: skip
    finally:
        if ours:
            policy.unlink()
    if shutil.which("systemctl"):
        # Without systemd running (containers, CI) this fails harmlessly: nothing to stop.
        session.run(
            "systemctl", "disable", "--now", "redis-server", external=True, success_codes=[0, 1]
        )


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
    # The testing page's example imports pytest; the rest of `[test]` (ccxt, the peers
    # the benchmarks measure) is a long install that no type check needs.
    session.install("-e", ".[lint]", "pytest")
    session.run("mypy", "--strict", "bingx_assets")
    session.run("python", "docs/check_examples.py")


@nox.session
def build(session: nox.Session) -> None:
    """The wheel and the sdist as PyPI would take them: built in isolation (the wheel
    from the sdist, so the sdist holds all it needs), then `twine check --strict`."""
    session.install("build", "twine")
    with tempfile.TemporaryDirectory() as out:
        session.run("python", "-m", "build", "--outdir", out)
        built = sorted(str(p) for p in Path(out).iterdir())
        if not any(p.endswith(".whl") for p in built) or not any(
            p.endswith(".tar.gz") for p in built
        ):
            session.error(f"expected a wheel and an sdist, got {built}")
        session.run("twine", "check", "--strict", *built)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: ratios and counts, written to benchmarks/results/."""
    _ensure_redis_server(session)
    session.install("-e", ".[redis,prometheus]")
    # The peers we measure against live in this session only, never in the package.
    session.install("aiolimiter", "ccxt", "httpx-aiohttp")
    for bench in sorted(Path("benchmarks").glob("bench_*.py")):  # every one, new ones too
        session.run("python", str(bench))


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site, built with --strict (a broken reference fails it), then
    checked to load nothing from another host."""
    session.install("-e", ".[docs,redis,prometheus]")
    session.run(
        "mkdocs", "build", "--strict", "--site-dir", "site", env={"NO_MKDOCS_2_WARNING": "1"}
    )
    session.run("python", "docs/check_site.py", "site")  # no third-party fonts or scripts


@nox.session
def simulation(session: nox.Session) -> None:
    """The model-based simulation at nightly size: BINGX_MODEL_SCHEDULES schedules (5,000
    unless set; CI runs 400 in the suite). Replay one with BINGX_MODEL_SEED=<seed>."""
    session.install("-e", ".[test]")
    schedules = os.environ.get("BINGX_MODEL_SCHEDULES", "5000")
    session.run(
        "pytest", "-q", "tests/test_model.py", *session.posargs,
        env={"BINGX_MODEL_SCHEDULES": schedules},
    )  # fmt: skip


@nox.session
def mutation(session: nox.Session) -> None:
    """mutmut over the modules `[tool.mutmut]` names (tens of minutes: one module at a
    time with `nox -s mutation -- "bingx_assets._clock*"`), then its results written to
    benchmarks/results/mutation.json and printed as docs/reliability.md's table."""
    _ensure_redis_server(session)
    session.install("-e", ".[test]", "mutmut>=3.3")
    # The simulation's 400 schedules per mutant would cost more than every other test.
    env = {"BINGX_MODEL_SCHEDULES": "25"}
    session.run("mutmut", "run", "--max-children", "2", *session.posargs, env=env)
    session.run("python", "benchmarks/_mutation_report.py")
