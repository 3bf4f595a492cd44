"""The `bingx-assets` command.

    bingx-assets balances [--keys FILE] [--json] [--simulate]   every key's balances, once
    bingx-assets watch --interval 5 [--changes-only]            every key's balances, on a beat
    bingx-assets simulate [--port 0] [--write-keys FILE]        the simulator, served on loopback
    bingx-assets keys resolve FILE                              write the keys' UIDs into FILE

Keys come from `--keys FILE` (TOML, see `Credentials.from_file`) or the environment
(`BINGX_API_KEY` / `BINGX_SECRET_KEY`, plus `BINGX_API_KEY_<LABEL>` pairs). Errors print
one line; the exit code is 0 when every key was read, 1 when some key failed, 2 for bad
input and 130 when interrupted. Secrets are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TextIO

import httpx

from ._constants import DEFAULT_BASE_URL, DEFAULT_MAX_WAIT
from ._credentials import Credentials
from ._exceptions import APIError, BingXError, ConfigurationError
from ._keys_command import resolve_keys_file
from ._limits import Rate, RateLimiter, RateLimits
from ._models import AccountType
from ._pool import AssetsPool, KeyResult
from .testing import BingXSimulator, SimulatorServer

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# Below this many keys a run is quick enough to need no progress bar.
_PROGRESS_FROM = 20


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its one-line usage error
        return EXIT_USAGE if exit_.code else EXIT_OK
    if getattr(args, "verbose", False):
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    try:
        code: int = asyncio.run(args.command(args))
        return code
    except BingXError as exc:
        print(f"error: {_describe(exc)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_SOME_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bingx-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    balances = commands.add_parser("balances", help="every key's balances, once")
    _add_source_options(balances)
    balances.set_defaults(command=_balances)

    watch = commands.add_parser("watch", help="every key's balances, on a steady beat")
    _add_source_options(watch)
    watch.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
    watch.add_argument("--changes-only", action="store_true", help="only rounds that changed")
    watch.add_argument("--rounds", type=int, help="stop after this many rounds")
    watch.add_argument("--metrics-port", type=int, metavar="PORT", help="serve /metrics here")
    watch.add_argument(
        "--metrics-host", default="127.0.0.1", metavar="HOST", help="its address (127.0.0.1)"
    )
    watch.set_defaults(command=_watch)

    simulate = commands.add_parser("simulate", help="serve the simulator on loopback")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=0, help="0 picks a free port")
    _add_simulation_options(simulate)
    simulate.add_argument(
        "--write-keys", type=Path, help="write the simulated keys here (TOML, mode 600)"
    )
    simulate.add_argument(
        "--unlimited", action="store_true", help="no rate limits: for measuring overhead"
    )
    simulate.set_defaults(command=_simulate)

    keys = commands.add_parser("keys", help="work on a keys file")
    keys_commands = keys.add_subparsers(required=True, metavar="ACTION")
    resolve = keys_commands.add_parser("resolve", help="look up missing UIDs, write them in")
    resolve.add_argument("file", type=Path, metavar="FILE", help="TOML file of keys")
    resolve.add_argument("--base-url", default=DEFAULT_BASE_URL)
    resolve.add_argument("--timeout", type=float, default=10.0, help="seconds per attempt")
    resolve.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    resolve.set_defaults(command=resolve_keys_file)
    return parser


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keys", type=Path, metavar="FILE", help="TOML file of keys")
    parser.add_argument(
        "--account-type", choices=[t.value for t in AccountType], help="one account type"
    )
    parser.add_argument("--json", action="store_true", help="JSON for machines")
    parser.add_argument("--simulate", action="store_true", help="use the embedded simulator")
    _add_simulation_options(parser)
    parser.add_argument("--base-url", default=DEFAULT_BASE_URL)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per attempt")
    parser.add_argument("--max-wait", type=float, default=DEFAULT_MAX_WAIT,
                        help="longest disabled period to wait out, seconds")  # fmt: skip
    parser.add_argument("--redis", metavar="URL", help="share limits through Redis")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _add_simulation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--simulated-keys", type=int, default=1, metavar="N")
    parser.add_argument("--simulated-uids", type=int, default=1, metavar="M")


@contextlib.asynccontextmanager
async def _open_pool(args: argparse.Namespace) -> AsyncIterator[AssetsPool]:
    limiter = _limiter(args)
    http_client: httpx.AsyncClient | None = None
    if args.simulate:
        simulator = BingXSimulator(jitter=0.01)
        credentials = _simulated_keys(simulator, args.simulated_keys, args.simulated_uids)
        http_client = simulator.http_client()
    elif args.keys is not None:
        credentials = Credentials.from_file(args.keys)
    else:
        credentials = Credentials.from_env()
    pool = AssetsPool(
        credentials,
        base_url=args.base_url,
        timeout=args.timeout,
        max_wait=args.max_wait,
        http_client=http_client,
        limiter=limiter,
    )
    try:
        yield pool
    finally:
        await pool.aclose()
        if http_client is not None:
            await http_client.aclose()
        await limiter.aclose()


def _limiter(args: argparse.Namespace) -> RateLimiter:
    if not args.redis:
        return RateLimiter()
    try:
        from ._redis import RedisBackend
    except ImportError:
        raise ConfigurationError("--redis needs redis: pip install 'bingx-assets[redis]'") from None
    return RateLimiter(backend=RedisBackend.from_url(args.redis))


def _simulated_keys(simulator: BingXSimulator, keys: int, uids: int) -> list[Credentials]:
    if keys < 1 or uids < 1:
        raise ConfigurationError("--simulated-keys and --simulated-uids must be at least 1")
    made = [simulator.add_key(uid=10_000 + n % uids) for n in range(keys)]
    return [
        Credentials(k.api_key, k.secret_key, f"sim-{n + 1}", str(k.uid)) for n, k in enumerate(made)
    ]


async def _balances(args: argparse.Namespace) -> int:
    async with _open_pool(args) as pool:
        results = await _read_with_progress(pool, args.account_type)
    _print_results(results, as_json=args.json, out=sys.stdout)
    return EXIT_OK if all(r.ok for r in results) else EXIT_SOME_FAILED


async def _read_with_progress(pool: AssetsPool, account_type: str | None) -> list[KeyResult]:
    total = len(pool.credentials)
    show = total >= _PROGRESS_FROM and sys.stderr.isatty()
    position = {c.label: n for n, c in enumerate(pool.credentials)}
    results: list[KeyResult] = []
    async with contextlib.aclosing(pool.stream(account_type)) as stream:
        async for result in stream:
            results.append(result)
            if show:
                done = len(results)
                bar = "#" * (30 * done // total)
                print(f"\r[{bar:<30}] {done}/{total}", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr)
    return sorted(results, key=lambda r: position[r.label])


async def _watch(args: argparse.Namespace) -> int:
    async with _open_pool(args) as pool, _metrics_served(pool, args):
        watching = pool.watch(
            args.interval, account_type=args.account_type, changes_only=args.changes_only
        )
        async with contextlib.aclosing(watching) as snapshots:
            async for snapshot in snapshots:
                if not args.json:
                    print(f"-- round {snapshot.round}", flush=True)
                _print_results(list(snapshot.results), as_json=args.json, out=sys.stdout)
                if args.rounds is not None and snapshot.round >= args.rounds:
                    break
    return EXIT_OK


@contextlib.asynccontextmanager
async def _metrics_served(pool: AssetsPool, args: argparse.Namespace) -> AsyncIterator[None]:
    if args.metrics_port is None:
        yield
        return
    try:
        from ._metrics import exporting
    except ImportError:
        raise ConfigurationError(
            "--metrics-port needs prometheus-client: pip install 'bingx-assets[prometheus]'"
        ) from None
    with exporting(pool, args.metrics_host, args.metrics_port) as server:
        print(f"metrics on {server.url}", file=sys.stderr, flush=True)
        yield


async def _simulate(args: argparse.Namespace) -> int:
    limits = RateLimits(Rate(10**9, 1.0), Rate(10**9, 10.0), Rate(10**9, 10.0))
    simulator = BingXSimulator(jitter=0.01, limits=limits if args.unlimited else None)
    credentials = _simulated_keys(simulator, args.simulated_keys, args.simulated_uids)
    async with SimulatorServer(simulator, args.host, args.port) as server:
        if args.write_keys is not None:
            _write_keys(args.write_keys, credentials)
        print(f"simulator serving on {server.url}", flush=True)
        if args.write_keys is not None:
            print(f"keys written to {args.write_keys}", flush=True)
        await server.serve_forever()
    return EXIT_OK


def _write_keys(path: Path, credentials: list[Credentials]) -> None:
    lines = []
    for c in credentials:
        lines += ["[[keys]]", f'label = "{c.label}"', f'api_key = "{c.api_key}"',
                  f'secret_key = "{c.secret_key}"', f"uid = {c.uid}", ""]  # fmt: skip
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("\n".join(lines))


def _print_results(results: list[KeyResult], *, as_json: bool, out: TextIO) -> None:
    if as_json:
        print(json.dumps(_as_json(results)), file=out, flush=True)
    else:
        print(_as_table(results), file=out, flush=True)


def _as_json(results: list[KeyResult]) -> dict[str, object]:
    keys: list[dict[str, object]] = []
    for r in results:
        if r.overview is not None:
            balances = {k: f"{v:f}" for k, v in r.overview.as_dict().items()}
            keys.append({"label": r.label, "ok": True, "account_types": balances,
                         "total": f"{r.overview.total:f}"})  # fmt: skip
        else:
            keys.append({"label": r.label, "ok": False, "error": _error_json(r.error)})
    return {"keys": keys, "total": f"{_grand_total(results):f}"}


def _error_json(error: Exception | None) -> dict[str, object]:
    shown: dict[str, object] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, APIError):
        shown["code"] = error.code
    return shown


def _describe(error: BaseException | None) -> str:
    """`Type: message` on one line: BingX's messages and HTML bodies may hold line
    breaks, and a terminal should never get control characters from a server."""
    text = "".join(c if c.isprintable() else " " for c in str(error))
    return f"{type(error).__name__}: {' '.join(text.split())}"


def _grand_total(results: list[KeyResult]) -> Decimal:
    return sum((r.overview.total for r in results if r.overview is not None), Decimal(0))


def _as_table(results: list[KeyResult]) -> str:
    rows: list[tuple[str, str, str]] = []
    for r in results:
        if r.overview is None:
            rows.append((r.label, "error", _describe(r.error)))
            continue
        rows += [(r.label, str(b.account_type), f"{b.usdt_balance:f}") for b in r.overview]
        if len(results) > 1:
            rows.append((r.label, "total", f"{r.overview.total:f}"))
    rows.append(("", "TOTAL", f"{_grand_total(results):f}"))
    header = ("key", "account type", "USDT")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(2)]
    lines = [f"{header[0]:<{widths[0]}}  {header[1]:<{widths[1]}}  {header[2]}"]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
