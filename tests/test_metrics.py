"""Prometheus metrics, scraped over real HTTP from the exporter on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from bingx_assets import (
    AssetsClient,
    AssetsPool,
    BingXError,
    ConfigurationError,
    Credentials,
    PrometheusMetrics,
    RateLimiter,
    RateLimitError,
    serve_metrics,
)
from bingx_assets._cli import main
from bingx_assets._metrics import OUTCOMES, MetricsServer, exporting
from bingx_assets.testing import BingXSimulator, Fault, LoopClock, SimKey

from .conftest import verified_earlier

DASHBOARD = Path(__file__).parent.parent / "docs" / "grafana-dashboard.json"
FAMILIES = {
    "bingx_assets_balance_usdt",
    "bingx_assets_key_up",
    "bingx_assets_last_success_timestamp_seconds",
    "bingx_assets_requests",
    "bingx_assets_rate_limit_rejections",
    "bingx_assets_gate_closures",
    "bingx_assets_gate_open_seconds",
    "bingx_assets_limiter_wait_seconds",
    "bingx_assets_request_duration_seconds",
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape_text(server: MetricsServer) -> str:
    # Blocking on purpose: the exporter answers from its own thread, and a test that
    # blocks its event loop meanwhile proves the scrape never needs the loop.
    with urllib.request.urlopen(server.url, timeout=5) as response:
        assert response.status == 200
        return str(response.read().decode())


def samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


class CurrentRegistry(Collector):
    """The running test's registry: one exporter serves the whole module, since closing
    one waits out its thread's half-second poll."""

    registry = CollectorRegistry()

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


@pytest.fixture(scope="module")
def exporter() -> Iterator[tuple[MetricsServer, CurrentRegistry]]:
    current = CurrentRegistry()
    served = serve_metrics("127.0.0.1", 0, current)
    yield served, current
    served.close()


@pytest.fixture
def server(
    exporter: tuple[MetricsServer, CurrentRegistry], registry: CollectorRegistry
) -> MetricsServer:
    served, current = exporter
    current.registry = registry
    return served


@pytest.fixture
async def client(
    sim: BingXSimulator, key: SimKey, limiter: RateLimiter, registry: CollectorRegistry
) -> AsyncIterator[AssetsClient]:
    cache = verified_earlier(key.api_key, key.uid)
    async with AssetsClient(
        key.api_key,
        key.secret_key,
        uid=key.uid,
        uid_cache=cache,
        http_client=sim.http_client(),
        limiter=limiter,
        label="main",
    ) as made:
        PrometheusMetrics(registry).attach(made)
        yield made


async def test_balances_are_the_exact_values_read(
    client: AssetsClient, server: MetricsServer, clock: LoopClock
) -> None:
    overview = await client.asset_overview()
    found = samples(scrape_text(server))
    for balance in overview:
        shown = value(
            found, "bingx_assets_balance_usdt", key="main", account_type=str(balance.account_type)
        )
        assert shown == float(balance.usdt_balance)
    assert value(found, "bingx_assets_key_up", key="main") == 1
    assert value(found, "bingx_assets_last_success_timestamp_seconds", key="main") == (
        clock.wall_ms() / 1000
    )
    assert value(found, "bingx_assets_requests_total", outcome="ok") == 1
    assert value(found, "bingx_assets_limiter_wait_seconds_count") == 1
    assert value(found, "bingx_assets_request_duration_seconds_count") == 1


async def test_key_up_falls_on_an_auth_error_and_rises_again(
    client: AssetsClient, server: MetricsServer, sim: BingXSimulator
) -> None:
    first = await client.asset_overview()
    sim.inject(Fault.answer(100413, "Incorrect apiKey"))
    with pytest.raises(Exception, match="100413"):
        await client.asset_overview()
    down = samples(scrape_text(server))
    assert value(down, "bingx_assets_key_up", key="main") == 0
    assert value(down, "bingx_assets_requests_total", outcome="auth") == 1
    # The last good reading stays, for dashboards, while the key is down.
    assert value(down, "bingx_assets_balance_usdt", key="main", account_type="spot") == float(
        first.as_dict()["spot"]
    )
    await asyncio.sleep(60)  # a key refused as it is backs off for a minute
    await client.asset_overview()
    assert value(samples(scrape_text(server)), "bingx_assets_key_up", key="main") == 1


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        (Fault.http(503), "server_error"),
        (Fault.reset(), "connection"),
        (Fault.timeout(), "timeout"),
        (Fault.body(b"{not json"), "decode"),
        (Fault.answer(100419, "IP not whitelisted"), "permission"),
        (Fault.answer(100400, "bad param"), "invalid_argument"),
        (Fault.answer(109999, "a code BingX added"), "other"),
    ],
)
async def test_each_injected_fault_counts_under_its_outcome(
    client: AssetsClient,
    server: MetricsServer,
    sim: BingXSimulator,
    fault: Fault,
    outcome: str,
) -> None:
    sim.inject(fault)
    with contextlib.suppress(BingXError):  # transient faults are retried to success
        await client.asset_overview()
    found = samples(scrape_text(server))
    assert value(found, "bingx_assets_requests_total", outcome=outcome) == 1
    others = [o for o in OUTCOMES if o not in (outcome, "ok")]
    assert all(value(found, "bingx_assets_requests_total", outcome=o) == 0 for o in others)


async def test_rate_limit_rejections_and_gates(
    client: AssetsClient, server: MetricsServer, sim: BingXSimulator, key: SimKey
) -> None:
    # Disabled for two seconds: the gate closes, then the retry goes through.
    sim.inject(Fault.rate_limited(sim.server_ms() + 2000))
    await client.asset_overview()
    found = samples(scrape_text(server))
    assert value(found, "bingx_assets_rate_limit_rejections_total") == 1
    assert value(found, "bingx_assets_requests_total", outcome="rate_limited") == 1
    assert value(found, "bingx_assets_gate_closures_total") == 1
    assert value(found, "bingx_assets_gate_open_seconds", uid=str(key.uid)) == 0
    assert value(found, "bingx_assets_requests_total", outcome="ok") == 1


async def test_no_created_series_and_the_process_wide_setting_is_left_alone(
    client: AssetsClient, registry: CollectorRegistry
) -> None:
    await client.asset_overview()
    text = generate_latest(registry).decode()
    assert "bingx_assets_requests_total" in text
    assert "bingx_assets_limiter_wait_seconds_bucket" in text
    assert "_created" not in text
    # An application's own counter on the same registry keeps prometheus_client's default.
    Counter("app_orders", "orders", registry=registry).inc()
    assert "app_orders_created" in generate_latest(registry).decode()


async def test_gate_open_seconds_is_zero_for_every_known_uid_while_open(
    registry: CollectorRegistry, sim: BingXSimulator, limiter: RateLimiter
) -> None:
    keys = [sim.add_key(uid=uid) for uid in (501, 502)]
    credentials = [Credentials(k.api_key, k.secret_key, f"k{n}") for n, k in enumerate(keys)]
    async with sim.http_client() as http:
        pool = AssetsPool(credentials, http_client=http, limiter=limiter)
        PrometheusMetrics(registry).attach(pool)
        assert "bingx_assets_gate_open_seconds{" not in generate_latest(registry).decode()
        await pool.gather()  # the UIDs are looked up: known from now on
        found = samples(generate_latest(registry).decode())
        assert value(found, "bingx_assets_gate_open_seconds", uid="501") == 0
        assert value(found, "bingx_assets_gate_open_seconds", uid="502") == 0
        sim.disable(501, 600.0)
        await pool.gather()
        found = samples(generate_latest(registry).decode())
        assert value(found, "bingx_assets_gate_open_seconds", uid="501") > 500
        assert value(found, "bingx_assets_gate_open_seconds", uid="502") == 0


async def test_gate_open_seconds_counts_down_to_zero(
    client: AssetsClient, server: MetricsServer, sim: BingXSimulator, key: SimKey
) -> None:
    sim.disable(key.uid, 600.0)  # longer than max_wait: the read fails at once
    with pytest.raises(Exception, match="100410"):
        await client.asset_overview()
    closed = value(samples(scrape_text(server)), "bingx_assets_gate_open_seconds", uid=str(key.uid))
    assert 599 < closed <= 602
    await asyncio.sleep(300)
    halfway = value(
        samples(scrape_text(server)), "bingx_assets_gate_open_seconds", uid=str(key.uid)
    )
    assert halfway == pytest.approx(closed - 300)
    await asyncio.sleep(closed)
    reopened = samples(scrape_text(server))
    assert value(reopened, "bingx_assets_gate_open_seconds", uid=str(key.uid)) == 0
    # The client refusing to send into the closed gate is no rejection by BingX.
    assert value(reopened, "bingx_assets_rate_limit_rejections_total") == 1
    await client.asset_overview()


async def test_a_call_refused_at_a_closed_gate_is_not_sent_not_rate_limited(
    client: AssetsClient, server: MetricsServer, sim: BingXSimulator, key: SimKey
) -> None:
    sim.disable(key.uid, 600.0)  # longer than max_wait
    with pytest.raises(RateLimitError, match="100410"):
        await client.asset_overview()  # BingX refuses
    with pytest.raises(RateLimitError, match="not sent"):
        await client.asset_overview()  # the client refuses
    found = samples(scrape_text(server))
    assert value(found, "bingx_assets_requests_total", outcome="rate_limited") == 1
    assert value(found, "bingx_assets_requests_total", outcome="not_sent") == 1
    assert len([r for r in sim.requests if r.path.endswith("allAccountBalance")]) == 1


async def test_a_pool_exports_only_its_labels_and_uids_and_no_secret(
    clock: LoopClock, registry: CollectorRegistry, server: MetricsServer
) -> None:
    sim = BingXSimulator(clock=clock, jitter=0.01)
    keys = [sim.add_key(uid=500 + n % 3) for n in range(9)]
    credentials = [Credentials(k.api_key, k.secret_key, f"k{n}") for n, k in enumerate(keys)]
    sim.inject(Fault.http(503), Fault.rate_limited(), Fault.answer(100413, "Incorrect apiKey"))
    sim.disable(502, 600.0)
    async with AssetsPool(
        credentials, http_client=sim.http_client(), limiter=RateLimiter(clock=clock)
    ) as pool:
        PrometheusMetrics(registry).attach(pool)
        for _ in range(3):
            await pool.gather()
    text = scrape_text(server)
    labels = {
        (name, label, v)
        for (name, pairs), _ in samples(text).items()
        for label, v in pairs
        if label in ("key", "uid")
    }
    assert {v for _, label, v in labels if label == "key"} == {c.label for c in credentials}
    # "lookup": the shared window keys whose UID is not yet known wait in.
    assert {v for _, label, v in labels if label == "uid"} <= {"500", "501", "502", "lookup"}
    assert len([1 for name, label, _ in labels if name == "bingx_assets_key_up"]) == len(keys)
    signatures = {
        parse_qs(r.query)["signature"][0] for r in sim.requests if "signature=" in r.query
    }
    secrets = {k.api_key for k in keys} | {k.secret_key for k in keys} | signatures
    assert signatures
    assert not [s for s in secrets if s in text]


async def test_unlabelled_keys_are_named_by_position_in_metrics_never_by_the_key(
    clock: LoopClock, registry: CollectorRegistry, server: MetricsServer
) -> None:
    # Issue #13: nothing derived from an api key in the metrics, not even its tail.
    sim = BingXSimulator(clock=clock)
    keys = [sim.add_key(uid=600 + n) for n in range(3)]
    credentials = [Credentials(k.api_key, k.secret_key) for k in keys]
    async with AssetsPool(
        credentials, http_client=sim.http_client(), limiter=RateLimiter(clock=clock)
    ) as pool:
        PrometheusMetrics(registry).attach(pool)
        await pool.gather()
    found = samples(scrape_text(server))
    named = {v for (_, pairs), _ in found.items() for label, v in pairs if label == "key"}
    assert named == {"key-1", "key-2", "key-3"}
    assert not [k for k in keys if k.api_key[-4:] in scrape_text(server)]


async def test_attaching_twice_counts_once(
    client: AssetsClient, registry: CollectorRegistry, server: MetricsServer
) -> None:
    metrics = PrometheusMetrics(CollectorRegistry())
    metrics.attach(client).attach(client.limiter)
    assert len(client.limiter.observers) == 2  # the fixture's and this one
    await client.asset_overview()
    found = samples(scrape_text(server))
    assert value(found, "bingx_assets_requests_total", outcome="ok") == 1


def test_attach_refuses_what_it_cannot_measure() -> None:
    with pytest.raises(ConfigurationError, match="attach takes"):
        PrometheusMetrics(CollectorRegistry()).attach("a pool")  # type: ignore[arg-type]


def test_a_busy_port_is_a_configuration_error(server: MetricsServer) -> None:
    busy = f"cannot serve metrics on 127.0.0.1:{server.port}"
    with pytest.raises(ConfigurationError, match=busy):
        serve_metrics("127.0.0.1", server.port, CollectorRegistry())


def test_without_observers_the_limiter_has_none() -> None:
    assert RateLimiter().observers == []


def test_importing_the_package_does_not_import_prometheus_client() -> None:
    code = "import sys, bingx_assets; print('prometheus_client' in sys.modules)"
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert ran.stdout.strip() == "False"


async def test_the_dashboard_references_only_exported_metrics(
    client: AssetsClient, server: MetricsServer, sim: BingXSimulator, key: SimKey
) -> None:
    await client.asset_overview()
    sim.disable(key.uid, 600.0)
    with pytest.raises(Exception, match="100410"):
        await client.asset_overview()
    families = list(text_string_to_metric_families(scrape_text(server)))
    assert {f.name for f in families} == FAMILIES
    assert "_created" not in scrape_text(server)
    exported = {s.name for f in families for s in f.samples}
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    referenced = {n for e in expressions for n in re.findall(r"\bbingx_assets_\w+", e)}
    assert len(expressions) >= 3
    assert referenced
    assert referenced <= exported, referenced - exported
    assert {"bingx_assets_balance_usdt", "bingx_assets_limiter_wait_seconds_bucket"} <= referenced


def test_watch_serves_metrics_while_it_runs_and_closes_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["watch", "--simulate", "--rounds", "1", "--metrics-port", "0"])
    _, err = capsys.readouterr()
    assert code == 0
    url = re.fullmatch(r"metrics on (http://127\.0\.0\.1:(\d+)/metrics)\n", err)
    assert url is not None, err
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", int(url.group(2))), timeout=5),
    ):
        pass


def test_watch_on_a_busy_port_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], server: MetricsServer
) -> None:
    code = main(["watch", "--simulate", "--rounds", "1", "--metrics-port", str(server.port)])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("bingx-assets: error: cannot serve metrics on 127.0.0.1:")
    assert err.count("\n") == 1


def test_watch_on_an_unknown_host_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A name that does not resolve, without asking any resolver (loopback only).
    def unknown(host: object, *args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    argv = ["watch", "--simulate", "--rounds", "1", "--metrics-port", "0"]
    code = main([*argv, "--metrics-host", "no-such-host.invalid"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1
    assert "cannot serve metrics on no-such-host.invalid:0" in err


async def test_exporting_serves_a_target_on_its_own_registry(
    client: AssetsClient,
) -> None:
    with exporting(client, "127.0.0.1", 0) as served:
        await client.asset_overview()
        found = samples(scrape_text(served))
    assert value(found, "bingx_assets_key_up", key="main") == 1


async def test_an_unreachable_redis_limiter_counts_as_limiter_unavailable(
    sim: BingXSimulator, key: SimKey, registry: CollectorRegistry, server: MetricsServer
) -> None:
    from redis.asyncio import Redis

    from bingx_assets import RedisBackend

    backend = RedisBackend(Redis.from_url("unix:///nonexistent/redis.sock"))
    limiter = RateLimiter(backend=backend)
    PrometheusMetrics(registry).attach(limiter)
    cache = verified_earlier(key.api_key, key.uid)
    client = AssetsClient(
        key.api_key,
        key.secret_key,
        uid=key.uid,
        uid_cache=cache,
        http_client=sim.http_client(),
        limiter=limiter,
    )
    with pytest.raises(BingXError, match="nothing was sent"):
        await client.asset_overview()
    found = samples(scrape_text(server))
    assert value(found, "bingx_assets_requests_total", outcome="limiter_unavailable") >= 1
    assert value(found, "bingx_assets_key_up", key="default") == 0
    await backend.redis.aclose()


def test_without_prometheus_client_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "import bingx_assets\n"
        "try:\n"
        "    bingx_assets.PrometheusMetrics\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "from bingx_assets._cli import main\n"
        "print(main(['watch', '--simulate', '--rounds', '1', '--metrics-port', '0']))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    extra = "pip install 'bingx-assets[prometheus]'"
    assert ran.stdout.splitlines() == [
        f"PrometheusMetrics needs prometheus-client: {extra}",
        "2",
    ]
    assert ran.stderr == f"bingx-assets: error: --metrics-port needs prometheus-client: {extra}\n"
