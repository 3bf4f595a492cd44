"""Prometheus metrics for clients, pools and limiters, and an exporter to serve them.

Needs the optional `prometheus-client` (`pip install 'bingx-assets[prometheus]'`).
Metrics hang on a limiter's observers (`bingx_assets._observer`): attaching them to a
client or a pool attaches them to its limiter, so everything that limiter serves is
measured. Balances stay exact `Decimal`s and become floats only when scraped.

Scrapes run on the exporter's own thread while the event loop keeps writing: what the
scrape reads is swapped in whole (one dict item, one tuple), never changed in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from threading import Thread
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from ._clock import Clock
from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    InvalidArgumentError,
    LimiterUnavailableError,
    PermissionDeniedError,
    RateLimitError,
    ServerBusyError,
    TimestampError,
)
from ._limiter import RateLimiter
from ._models import AssetOverview

if TYPE_CHECKING:
    from ._client import AssetsClient
    from ._pool import AssetsPool

__all__ = ["OUTCOMES", "MetricsServer", "PrometheusMetrics", "exporting", "serve_metrics"]

# Most specific first: APITimeoutError is an APIConnectionError.
_OUTCOME_BY_ERROR: tuple[tuple[type[BaseException], str], ...] = (
    (RateLimitError, "rate_limited"),
    (AuthenticationError, "auth"),
    (PermissionDeniedError, "permission"),
    (TimestampError, "timestamp"),
    (InvalidArgumentError, "invalid_argument"),
    (ServerBusyError, "server_error"),
    (APITimeoutError, "timeout"),
    (APIConnectionError, "connection"),
    (DecodeError, "decode"),
    (LimiterUnavailableError, "limiter_unavailable"),
)
OUTCOMES = ("ok", "not_sent", *(outcome for _, outcome in _OUTCOME_BY_ERROR), "other")
"""Every value of `requests_total`'s `outcome` label ("not_sent": refused here, at a gate
closed longer than max_wait; "other": an error code BingX added)."""

# Waits run from nothing (a free slot) through queueing behind a UID's 5/s to a
# disabled period waited out (max_wait, 60 s by default).
_WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def outcome_of(error: BaseException | None) -> str:
    """The `outcome` label of an attempt that ended with `error` (None: it succeeded)."""
    if error is None:
        return "ok"
    if isinstance(error, RateLimitError) and error.status_code is None and error.code is None:
        return "not_sent"  # no answer from BingX: a gate closed here refused the call
    return next((o for kind, o in _OUTCOME_BY_ERROR if isinstance(error, kind)), "other")


class _WithoutCreated:
    """No `_created` series: they double every counter and histogram for a value no
    dashboard reads. Per metric, so that the process-wide `disable_created_metrics()`
    stays the application's choice for its own metrics."""

    def _child_samples(self) -> Iterable[Sample]:
        samples = super()._child_samples()  # type: ignore[misc]
        return tuple(s for s in samples if s.name != "_created")


class _Counter(_WithoutCreated, Counter):
    pass


class _Histogram(_WithoutCreated, Histogram):
    pass


@dataclass(frozen=True, slots=True)
class _KeyState:
    overview: AssetOverview | None
    """The last successful reading (kept while the key is down)."""
    up: bool
    last_success: float | None


class PrometheusMetrics:
    """bingx-assets' metrics on a Prometheus registry (default: the global `REGISTRY`).

    ```python
    from bingx_assets import AssetsPool, PrometheusMetrics

    pool = AssetsPool(credentials)
    PrometheusMetrics().attach(pool)  # or a client, or a RateLimiter
    ```

    Attach one `PrometheusMetrics` per registry to as many clients, pools and limiters
    as you like (its families can be registered once only). Attaching to a client or a
    pool attaches to its limiter: every client using that limiter is then measured, each
    under its `label` (give bare `AssetsClient`s distinct labels).
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._requests = _Counter(
            "bingx_assets_requests",
            "Attempts by how they ended (ok, or the kind of error).",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:  # every outcome shows from the start, at 0
            self._requests.labels(outcome)
        self._rejections = _Counter(
            "bingx_assets_rate_limit_rejections",
            "Answers BingX refused for rate (100410, HTTP 429/418/403). The goal is 0.",
            registry=registry,
        )
        self._gate_closures = _Counter(
            "bingx_assets_gate_closures",
            "Times a UID or an IP was paused because BingX refused or disabled it.",
            registry=registry,
        )
        self._limiter_wait = _Histogram(
            "bingx_assets_limiter_wait_seconds",
            "Time a request waited for its slot in the rate limits.",
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self._request_duration = _Histogram(
            "bingx_assets_request_duration_seconds",
            "Time from a request's slot to its answer (or failure): the time on the wire.",
            registry=registry,
        )
        self._keys: dict[str, _KeyState] = {}
        self._gates: dict[str, tuple[asyncio.AbstractEventLoop, float]] = {}
        # The clients attached (alone or in a pool): their UIDs show gate_open_seconds 0
        # while open, so a "UIDs disabled" panel reads 0, not "no data", when all is well.
        self._clients: weakref.WeakSet[AssetsClient] = weakref.WeakSet()
        registry.register(_ReadingsCollector(self._keys, self._gates, self._clients))

    def attach(self, target: AssetsClient | AssetsPool | RateLimiter) -> PrometheusMetrics:
        """Measure `target` (a client, a pool or a limiter) from now on; returns self."""
        limiter = target if isinstance(target, RateLimiter) else getattr(target, "limiter", None)
        if not isinstance(limiter, RateLimiter):
            raise ConfigurationError(
                f"attach takes an AssetsClient, an AssetsPool or a RateLimiter, not {target!r}"
            )
        from ._client import AssetsClient  # here: the client never imports the metrics
        from ._pool import AssetsPool

        if isinstance(target, AssetsPool):
            self._clients.update(target._clients)
        elif isinstance(target, AssetsClient):
            self._clients.add(target)
        if not any(isinstance(o, _Recorder) and o.reports_to(self) for o in limiter.observers):
            limiter.observers.append(_Recorder(self, limiter.clock))
        return self


class _Recorder:
    """The observer a `PrometheusMetrics` puts on the limiters it is attached to."""

    __slots__ = ("_clock", "_metrics")

    def __init__(self, metrics: PrometheusMetrics, clock: Clock) -> None:
        self._metrics, self._clock = metrics, clock

    def reports_to(self, metrics: PrometheusMetrics) -> bool:
        return self._metrics is metrics

    def acquired(self, waited: float) -> None:
        self._metrics._limiter_wait.observe(waited)

    def settled(self, seconds: float) -> None:
        self._metrics._request_duration.observe(seconds)

    def gate_closed(self, gate: str, seconds: float) -> None:
        metrics = self._metrics
        metrics._gate_closures.inc()
        loop = asyncio.get_running_loop()
        # The limiter names gates "gate:{uid}:{endpoint}", "gate:ip:{ip}" and
        # "gate:key:{hash}"; an IP's or a key's pause is counted, but gate_open_seconds
        # is about UIDs.
        uid = gate.split(":")[1]
        if uid in ("ip", "key"):
            return
        opens = loop.time() + seconds
        known = metrics._gates.get(uid)
        if known is None or known[0] is not loop or known[1] < opens:
            metrics._gates[uid] = (loop, opens)

    def attempted(self, error: BaseException | None) -> None:
        metrics = self._metrics
        metrics._requests.labels(outcome_of(error)).inc()
        # status_code None: the client refused to send into a known disabled period.
        if isinstance(error, RateLimitError) and error.status_code is not None:
            metrics._rejections.inc()

    def read(self, label: str, overview: AssetOverview | None) -> None:
        keys = self._metrics._keys
        if overview is None:
            last = keys.get(label) or _KeyState(None, False, None)
            keys[label] = _KeyState(last.overview, False, last.last_success)
        else:
            keys[label] = _KeyState(overview, True, self._clock.wall_ms() / 1000)


class _ReadingsCollector(Collector):
    """The gauges read at scrape time: balances, key status, gates still closed."""

    def __init__(
        self,
        keys: dict[str, _KeyState],
        gates: dict[str, tuple[asyncio.AbstractEventLoop, float]],
        clients: weakref.WeakSet[AssetsClient],
    ) -> None:
        self._keys, self._gates, self._clients = keys, gates, clients

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        balance, up, last_success, gate_open = families = self._families()
        for label, state in list(self._keys.items()):
            up.add_metric([label], 1.0 if state.up else 0.0)
            if state.last_success is not None:
                last_success.add_metric([label], state.last_success)
            for b in state.overview or ():
                balance.add_metric([label, str(b.account_type)], float(b.usdt_balance))
        open_seconds = {uid: 0.0 for uid in self._known_uids()}
        for uid, (loop, opens) in list(self._gates.items()):
            # loop.time() only reads a clock: safe from the exporter's thread.
            open_seconds[uid] = max(0.0, opens - loop.time())
        for uid, seconds in sorted(open_seconds.items()):
            gate_open.add_metric([uid], seconds)
        return families

    def _known_uids(self) -> set[str]:
        # A client's UID is set once, when given or looked up: a plain read from here.
        return {uid for client in list(self._clients) if (uid := client._uid) is not None}

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "bingx_assets_balance_usdt",
                "USDT value of an account type, from the key's last successful read.",
                labels=["key", "account_type"],
            ),
            GaugeMetricFamily(
                "bingx_assets_key_up",
                "1 if the key's last read succeeded, else 0.",
                labels=["key"],
            ),
            GaugeMetricFamily(
                "bingx_assets_last_success_timestamp_seconds",
                "When the key was last read successfully (Unix time).",
                labels=["key"],
            ),
            GaugeMetricFamily(
                "bingx_assets_gate_open_seconds",
                "Seconds until a UID that BingX disabled may be called again (0: open).",
                labels=["uid"],
            ),
        )


@dataclass
class MetricsServer:
    """A running `/metrics` endpoint; `close()` stops it."""

    host: str
    port: int
    _server: WSGIServer
    _thread: Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def serve_metrics(
    host: str = "127.0.0.1", port: int = 0, registry: Collector = REGISTRY
) -> MetricsServer:
    """Serve `registry` at `http://host:port/metrics` on a thread (port 0: any free one).

    A busy port or an unknown host raises `ConfigurationError`.
    """
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigurationError(f"cannot serve metrics on {host}:{port}: {reason}") from None
    return MetricsServer(host, server.server_port, server, thread)


@contextlib.contextmanager
def exporting(
    target: AssetsClient | AssetsPool | RateLimiter, host: str, port: int
) -> Iterator[MetricsServer]:
    """`target`'s metrics, on a registry of their own, served while the block runs."""
    registry = CollectorRegistry()
    PrometheusMetrics(registry).attach(target)
    server = serve_metrics(host, port, registry)
    try:
        yield server
    finally:
        server.close()
