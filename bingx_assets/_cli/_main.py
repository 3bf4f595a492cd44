"""The `bingx-assets` command.

    bingx-assets balances [--keys FILE] [--json] [--simulate]   every key's balances, once
    bingx-assets watch --interval 5 [--changes-only]            every key's balances, on a beat
    bingx-assets simulate [--port 0] [--write-keys FILE]        the simulator, served on loopback
    bingx-assets keys resolve FILE                              check UIDs, pin them in FILE

Keys come from `--keys FILE` (TOML, see `Credentials.from_file`) or the environment
(`BINGX_API_KEY` / `BINGX_SECRET_KEY`, plus `BINGX_API_KEY_<LABEL>` pairs). Errors print
one line; the exit code is 0 when every key was read, 1 when some key failed, 2 for bad
input, 130 when interrupted (Ctrl-C) and 143 when terminated (SIGTERM), both after
settling every request in flight. Secrets are never printed. How results look is
`_render`'s job.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import math
import os
import random
import signal
import string
import sys
import time
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

import httpx
import tomlkit

from .. import __version__
from .._constants import DEFAULT_BASE_URL, DEFAULT_MAX_WAIT
from .._credentials import Credentials
from .._exceptions import BingXError, ConfigurationError, LimiterUnavailableError
from .._files import write_private
from .._limiter import HostBackend, Rate, RateLimiter, RateLimits
from .._models import AccountType
from .._options import ClientOptionArgs, ClientOptions
from .._pool import AssetsPool, KeyResult, Snapshot
from .._printable import masked_url, printable
from ..testing import BingXSimulator, SimulatorServer
from ._keys_command import resolve_keys_file
from ._render import (
    console_for,
    error_text,
    json_document,
    live_view,
    progress,
    results_table,
)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# 128 + SIGTERM: what a shell reports for a process the signal ended, so a supervisor
# reads the same status, and tells it from Ctrl-C's 130.
EXIT_TERMINATED = 143
# `.invalid` never resolves (RFC 2606): the embedded simulator's requests name it in logs.
_EMBEDDED_SIMULATOR = "https://embedded-simulator.invalid"
# More simulated keys than this is a typo, not a test: each costs the simulator memory.
_MAX_SIMULATED_KEYS = 100_000
# asyncio and httpx overflow on timeouts past about 1e9 s; a day is longer than any use.
_MAX_SECONDS = 86_400.0

_DESCRIPTION = """\
Read the USDT value of every account type (spot, futures, copy trading, grid, ...) for
one or many BingX API keys, inside BingX's rate limits: once (balances), on a steady beat
(watch), or against a local simulator (simulate) to try it without an account."""

_EPILOG = """\
keys: --keys FILE (TOML [[keys]] tables with api_key, secret_key, optional label and uid),
or BINGX_API_KEY / BINGX_SECRET_KEY (plus BINGX_API_KEY_<LABEL> / BINGX_SECRET_KEY_<LABEL>).
exit codes: 0 every key read, 1 some key failed, 2 bad input, 130 interrupted (Ctrl-C),
143 terminated (SIGTERM).
try it:  bingx-assets simulate --port 8765 --write-keys sim.toml
         bingx-assets balances --keys sim.toml --base-url http://127.0.0.1:8765"""

# Library messages name keyword arguments; on the command line they are options.
_OPTION_NAMES = {"allow_insecure_http=True": "--allow-insecure-http", "base_url": "--base-url"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its one-line usage error, or --help
        return EXIT_USAGE if exit_.code else EXIT_OK
    with _logging_to_stderr(args.verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        code: int = asyncio.run(_terminated_like_interrupted(args.command(args)))
        return code
    except _Terminated:
        return EXIT_TERMINATED
    except ConfigurationError as exc:
        return _fail(_for_the_command_line(str(exc)), EXIT_USAGE)
    except BingXError as exc:
        return _fail(error_text(exc), EXIT_SOME_FAILED)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's exit-time
        # flush of stdout from failing again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_SOME_FAILED
    except Exception as exc:  # a bug: still one line, and the traceback on request
        if args.verbose:
            traceback.print_exc()
        return _fail(f"unexpected {type(exc).__name__}: {exc} (-v shows where)", EXIT_SOME_FAILED)


class _Terminated(Exception):
    """SIGTERM ended the run (`systemctl stop`, `docker stop`, `kill`)."""


async def _terminated_like_interrupted(command: Coroutine[object, object, int]) -> int:
    """`command`, cancelled by SIGTERM as Ctrl-C cancels it: every request in flight is
    settled on the way out, so its slot counts in the store for as long as BingX may
    count it, and the next run starts from there."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, terminate)
    except (NotImplementedError, RuntimeError, ValueError):  # Windows; not the main thread
        return await command
    try:
        return await command
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


@contextlib.contextmanager
def _logging_to_stderr(verbose: bool) -> Iterator[None]:
    """-v: our own logger's lines, not asyncio's or httpx's (which would name hosts a
    simulated run never reaches); undone when the command ends."""
    if not verbose:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    ours = logging.getLogger("bingx_assets")
    level = ours.level
    ours.addHandler(handler)
    ours.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        ours.removeHandler(handler)
        ours.setLevel(level)


def _fail(message: str, code: int) -> int:
    print(f"bingx-assets: error: {printable(message)}", file=sys.stderr)
    return code


def _for_the_command_line(message: str) -> str:
    for name, option in _OPTION_NAMES.items():
        message = message.replace(name, option)
    return message


# -- options ------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line like every other error here."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bingx-assets",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND", title="commands")

    balances = commands.add_parser(
        "balances",
        help="every key's balances, once",
        description="Read every key's balances once and print them (a table, or --json).",
    )
    _add_source_options(balances)
    balances.set_defaults(command=_balances)

    watch = commands.add_parser(
        "watch",
        help="every key's balances, on a steady beat",
        description="Read every key's balances every --interval seconds until interrupted "
        "(Ctrl-C) or --rounds rounds are done. On a terminal the table updates in place.",
    )
    _add_source_options(watch)
    watch.add_argument(
        "--interval",
        type=_seconds(minimum=0, inclusive=False),
        default=5.0,
        metavar="SECONDS",
        help="seconds between rounds (default: 5)",
    )
    watch.add_argument(
        "--changes-only",
        action="store_true",
        help="show a round only when some balance changed (rounds still count)",
    )
    watch.add_argument(
        "--rounds",
        type=_count("--rounds"),
        metavar="N",
        help="stop after N rounds (default: run until interrupted)",
    )
    watch.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus /metrics on this port while watching (needs the prometheus extra)",
    )
    watch.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address to serve /metrics on (default: 127.0.0.1)",
    )
    watch.set_defaults(command=_watch)

    simulate = commands.add_parser(
        "simulate",
        help="serve the simulator on loopback",
        description="Serve a simulated BingX on loopback, with made-up keys, as strict "
        "about rate limits as the real one. Point balances or watch at it with --keys "
        "and --base-url.",
    )
    simulate.add_argument(
        "--host",
        type=_loopback,
        default="127.0.0.1",
        help="loopback address to serve on (default: 127.0.0.1)",
    )
    simulate.add_argument(
        "--port", type=_port, default=0, help="port to serve on; 0 picks a free one (default: 0)"
    )
    _add_simulation_options(simulate)
    simulate.add_argument(
        "--write-keys",
        type=Path,
        metavar="FILE",
        help="write the simulated keys here, as a --keys file (mode 600)",
    )
    simulate.add_argument(
        "--unlimited", action="store_true", help="no rate limits: for measuring client overhead"
    )
    simulate.add_argument(
        "--latency",
        type=_seconds(minimum=0, inclusive=True),
        default=0.0,
        metavar="SECONDS",
        help="each request takes this long to arrive, and its answer as long again: a "
        "slow or distant server (default: 0)",
    )
    simulate.add_argument("-v", "--verbose", action="store_true", help="debug logging to stderr")
    simulate.set_defaults(command=_simulate)

    keys = commands.add_parser(
        "keys", help="work on a keys file", description="Work on a TOML keys file."
    )
    keys_commands = keys.add_subparsers(required=True, metavar="ACTION")
    resolve = keys_commands.add_parser(
        "resolve",
        help="check the keys' UIDs with BingX, write them in",
        description="Check the UID of every key in FILE with BingX (once per machine: "
        "this machine's UID cache remembers), write the missing ones into FILE and correct "
        "the wrong ones (comments and order kept, mode 600).",
    )
    resolve.add_argument("file", type=Path, metavar="FILE", help="TOML file of keys")
    _add_connection_options(resolve)
    resolve.add_argument(
        "-v", "--verbose", action="store_true", help="log retries and rate-limit pauses to stderr"
    )
    resolve.set_defaults(command=resolve_keys_file)
    return parser


def _add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help=f"BingX's address, or a served simulator's: https, or http on loopback "
        f"(default: BINGX_BASE_URL, else {DEFAULT_BASE_URL})",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds(minimum=0, inclusive=False),
        default=10.0,
        metavar="SECONDS",
        help="seconds to wait to connect, and for an answer; an attempt ends within "
        "twice that in all (default: 10)",
    )


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--keys",
        type=Path,
        metavar="FILE",
        help="TOML file of keys (default: keys from the environment)",
    )
    source.add_argument(
        "--simulate",
        action="store_true",
        help="read simulated keys from an embedded simulator, no network",
    )
    types = [t.value for t in AccountType]
    parser.add_argument(
        "--account-type",
        choices=types,
        metavar="TYPE",
        help=f"only this account type: {', '.join(types)}",
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON document per line, exact decimals as strings"
    )
    _add_simulation_options(parser)
    _add_connection_options(parser)
    parser.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow a plain http:// --base-url that is not loopback (sends the API key in clear)",
    )
    parser.add_argument(
        "--max-wait",
        type=_seconds(minimum=0, inclusive=True),
        default=DEFAULT_MAX_WAIT,
        metavar="SECONDS",
        help="longest period BingX disabled a UID for that is waited out "
        f"rather than reported (default: {DEFAULT_MAX_WAIT:g})",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="share rate limits with other processes through Redis, e.g. "
        "redis://localhost:6379/0 (needs bingx-assets[redis])",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log retries and rate-limit pauses to stderr"
    )


def _add_simulation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--simulated-keys",
        type=_count("--simulated-keys", _MAX_SIMULATED_KEYS),
        default=1,
        metavar="N",
        help="how many simulated keys (default: 1)",
    )
    parser.add_argument(
        "--simulated-uids",
        type=_count("--simulated-uids", _MAX_SIMULATED_KEYS),
        default=1,
        metavar="M",
        help="spread the simulated keys over M UIDs (default: 1)",
    )


def _seconds(*, minimum: float, inclusive: bool) -> Callable[[str], float]:
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seconds, not {text!r}") from None
        ok = value >= minimum if inclusive else value > minimum
        if not (math.isfinite(value) and ok and value <= _MAX_SECONDS):
            raise argparse.ArgumentTypeError(
                f"expected seconds {bound} and at most {_MAX_SECONDS:g}, not {text!r}"
            )
        return value

    return parse


def _count(option: str, maximum: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not {text!r}") from None
        if value < 1 or (maximum is not None and value > maximum):
            most = f" and at most {maximum}" if maximum is not None else ""
            raise argparse.ArgumentTypeError(f"expected at least 1{most}, not {text!r}")
        return value

    parse.__name__ = option  # argparse names the type in its "invalid ... value" line
    return parse


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, not {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, not {text!r}")
    return value


def _loopback(text: str) -> str:
    try:
        loopback = ipaddress.ip_address(text).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise argparse.ArgumentTypeError(
            f"the simulator serves loopback only (127.0.0.1 or ::1), not {text!r}"
        )
    return text


# -- balances and watch ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def _open_pool(args: argparse.Namespace) -> AsyncIterator[AssetsPool]:
    if not args.simulate and (args.simulated_keys != 1 or args.simulated_uids != 1):
        raise ConfigurationError("--simulated-keys and --simulated-uids need --simulate")
    # The embedded simulator needs no address; this one names it and cannot be reached.
    base_url = _EMBEDDED_SIMULATOR if args.simulate else args.base_url
    settings: ClientOptionArgs = {
        "timeout": args.timeout,
        "max_wait": args.max_wait,
        "allow_insecure_http": args.allow_insecure_http,
    }
    if base_url is not None:  # else BINGX_BASE_URL or BingX's own, as for the library
        settings["base_url"] = base_url
    if args.simulate:  # the simulator made its keys' UIDs: facts, and none of the user's cache
        settings["uid_cache"] = settings["verify_uids"] = False
    options = ClientOptions(**settings)
    if args.simulate:
        if args.base_url is not None:
            raise ConfigurationError(
                "--base-url cannot go with --simulate: the embedded simulator is inside this "
                "command and has no address; to try a served one, run `bingx-assets "
                "simulate --write-keys sim.toml` and point --keys and --base-url at it"
            )
        simulator = BingXSimulator(jitter=0.01)
        credentials = _simulated_keys(simulator, args.simulated_keys, args.simulated_uids)
    elif args.keys is not None:
        credentials = Credentials.from_file(args.keys)
    else:
        credentials = Credentials.from_env()
    limiter = _limiter(args.redis, None if args.simulate else options.base_url)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(limiter.aclose)
        http_client: httpx.AsyncClient | None = None
        if args.simulate:
            http_client = simulator.http_client()
            stack.push_async_callback(http_client.aclose)
        pool = AssetsPool(credentials, http_client=http_client, limiter=limiter, options=options)
        stack.push_async_callback(pool.aclose)
        yield pool


def _limiter(redis_url: str | None, base_url: str | None) -> RateLimiter:
    """Redis when asked; otherwise this machine's store for `base_url`, shared with
    every other process of it, so that runs one after another or at once never send
    into a window BingX still counts (the embedded simulator, new each run, keeps its
    limits in memory)."""
    if redis_url is None:
        if base_url is None:
            return RateLimiter()
        return RateLimiter(backend=HostBackend.for_base_url(base_url))
    try:
        from .._limiter._redis import RedisBackend
    except ImportError:
        raise ConfigurationError("--redis needs redis: pip install 'bingx-assets[redis]'") from None
    try:
        backend = RedisBackend.from_url(redis_url)
    except ValueError as exc:  # redis's own words for a malformed URL
        raise ConfigurationError(f"--redis {masked_url(redis_url)!r}: {exc}") from None
    return RateLimiter(backend=backend)


def _simulated_keys(simulator: BingXSimulator, keys: int, uids: int) -> list[Credentials]:
    if uids > keys:
        raise ConfigurationError(
            f"--simulated-uids {uids} needs at least as many --simulated-keys (one key per "
            f"UID at least), not {keys}"
        )
    # Key n belongs to UID 10000 + n % uids, so the keys are drawn from a generator seeded
    # with `uids`: a key names one UID in every run. A client of a served simulator keeps
    # its UID cache as against BingX, where a key's UID never changes; with the same keys
    # in a run of other --simulated-uids, it scheduled a key by the last run's UID, and
    # the simulator refused and disabled both.
    tokens = random.Random(f"simulated-uids={uids}")  # noqa: S311 (made up, reproducible)
    alphabet = string.ascii_letters + string.digits

    def token() -> str:
        return "".join(tokens.choices(alphabet, k=64))

    made = [simulator.add_key(token(), token(), uid=10_000 + n % uids) for n in range(keys)]
    return [
        Credentials(k.api_key, k.secret_key, f"sim-{n + 1}", str(k.uid)) for n, k in enumerate(made)
    ]


def _limiter_unreachable(results: Sequence[KeyResult]) -> LimiterUnavailableError | None:
    """The shared limiter's error when it failed every key: then nothing was sent."""
    errors = [r.error for r in results]
    if errors and all(isinstance(e, LimiterUnavailableError) for e in errors):
        first = errors[0]
        assert isinstance(first, LimiterUnavailableError)
        return first
    return None


def _misconfigured(results: Sequence[KeyResult]) -> ConfigurationError | None:
    """The one ConfigurationError every key failed with (an unusable proxy in the
    environment, say): bad input, said once, not once per key."""
    errors = [r.error for r in results]
    first = errors[0] if errors else None
    if isinstance(first, ConfigurationError) and all(
        isinstance(e, ConfigurationError) and str(e) == str(first) for e in errors
    ):
        return first
    return None


def _exit_code(results: Sequence[KeyResult]) -> int:
    return EXIT_OK if all(r.ok for r in results) else EXIT_SOME_FAILED


async def _balances(args: argparse.Namespace) -> int:
    async with _open_pool(args) as pool:
        position = {c.label: n for n, c in enumerate(pool.credentials)}
        results: list[KeyResult] = []
        with progress(len(pool.credentials), sys.stderr) as advance:
            async with contextlib.aclosing(pool.stream(args.account_type)) as stream:
                async for result in stream:
                    results.append(result)
                    advance()
    results.sort(key=lambda r: position[r.label])
    if (misconfigured := _misconfigured(results)) is not None:
        raise misconfigured
    unreachable = _limiter_unreachable(results)
    if unreachable is not None:
        raise unreachable  # one line: every key would say the same, and none was sent
    if args.json:
        print(json_document(results), flush=True)
    else:
        console_for(sys.stdout).print(results_table(results))
    return _exit_code(results)


async def _watch(args: argparse.Namespace) -> int:
    last: list[KeyResult] = []

    async def shown_rounds(pool: AssetsPool) -> AsyncIterator[Snapshot]:
        # The pool's own changes_only skips unchanged rounds without a trace; counting
        # them here is what lets --rounds stop a quiet watch.
        watching = pool.watch(args.interval, account_type=args.account_type)
        said_unreachable = False
        async with contextlib.aclosing(watching) as snapshots:
            async for snapshot in snapshots:
                last[:] = snapshot.results
                if (misconfigured := _misconfigured(snapshot.results)) is not None:
                    raise misconfigured  # no later round could read a key either
                unreachable = _limiter_unreachable(snapshot.results)
                if unreachable is not None:
                    # Once per outage, not once per key or per round.
                    if not said_unreachable:
                        print(f"bingx-assets: {printable(error_text(unreachable))}; watch "
                              f"keeps trying every {args.interval:g} s", file=sys.stderr,
                              flush=True)  # fmt: skip
                    said_unreachable = True
                elif not args.changes_only or snapshot.changed or snapshot.round == 1:
                    said_unreachable = False
                    yield snapshot
                if args.rounds is not None and snapshot.round >= args.rounds:
                    return

    async with _open_pool(args) as pool, _metrics_served(pool, args):
        if args.json:
            async for s in shown_rounds(pool):
                line = json_document(s.results, round=s.round, changed=sorted(s.changed))
                print(line, flush=True)
        else:
            tables = (
                results_table(s.results, title=_round_title(s.round))
                async for s in shown_rounds(pool)
            )
            await live_view(tables, sys.stdout, f"reading {len(pool.credentials)} keys ...")
    return _exit_code(last)


def _round_title(number: int) -> str:
    return f"round {number} at {time.strftime('%H:%M:%S')}"


# -- simulate -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _metrics_served(pool: AssetsPool, args: argparse.Namespace) -> AsyncIterator[None]:
    if args.metrics_port is None:
        yield
        return
    try:
        from .._metrics import exporting
    except ImportError:
        raise ConfigurationError(
            "--metrics-port needs prometheus-client: pip install 'bingx-assets[prometheus]'"
        ) from None
    with exporting(pool, args.metrics_host, args.metrics_port) as server:
        print(f"metrics on {server.url}", file=sys.stderr, flush=True)
        yield


async def _simulate(args: argparse.Namespace) -> int:
    limits = RateLimits(Rate(10**9, 1.0), Rate(10**9, 10.0), Rate(10**9, 10.0))
    simulator = BingXSimulator(
        jitter=0.01, limits=limits if args.unlimited else None, latency=args.latency
    )
    credentials = _simulated_keys(simulator, args.simulated_keys, args.simulated_uids)
    if args.write_keys is not None:
        _write_keys(args.write_keys, credentials)
    server = SimulatorServer(simulator, args.host, args.port)
    try:
        await server.start()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve on {args.host} port {args.port}: {_reason(exc)}"
        ) from None
    _show_simulator_log()
    try:
        print(f"simulator serving on {server.url}", flush=True)
        uids = sorted({int(c.uid or 0) for c in credentials})
        keys = "1 simulated key" if len(credentials) == 1 else f"{len(credentials)} simulated keys"
        of = "UID" if len(uids) == 1 else "UIDs"
        print(f"{keys} of {of} {', '.join(map(str, uids))}")
        if args.write_keys is not None:
            print(f"keys written to {args.write_keys}")
            print(f"read them: bingx-assets balances --keys {args.write_keys} "
                  f"--base-url {server.url}")  # fmt: skip
        print("refusals and disabled UIDs are logged below; Ctrl-C stops", flush=True)
        await server.serve_forever()
    finally:
        await server.close()
    return EXIT_OK


def _show_simulator_log() -> None:
    """The simulator logs each refusal and each disabled period: show them, since a
    person running `balances` against it again and again sees them nowhere else."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    simulator_log = logging.getLogger("bingx_assets.testing")
    simulator_log.addHandler(handler)
    simulator_log.setLevel(logging.INFO)
    simulator_log.propagate = False  # -v's handler would print each line twice


def _write_keys(path: Path, credentials: list[Credentials]) -> None:
    document = tomlkit.document()
    keys = tomlkit.aot()
    for c in credentials:
        keys.append(
            tomlkit.table().add("label", c.label).add("api_key", c.api_key)
            .add("secret_key", c.secret_key).add("uid", int(c.uid or 0))
        )  # fmt: skip
    document.add("keys", keys)
    try:
        write_private(path, tomlkit.dumps(document).encode())
    except OSError as exc:
        raise ConfigurationError(f"--write-keys: cannot write {path}: {_reason(exc)}") from None


def _reason(exc: OSError) -> str:
    # asyncio words a failed bind as a sentence around the errno's own text: keep the text.
    # A path that is no file has no errno, and str() would prefix "[Errno 0]".
    return os.strerror(exc.errno) if exc.errno else exc.strerror or str(exc)


if __name__ == "__main__":
    raise SystemExit(main())
