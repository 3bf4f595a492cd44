"""bingx-assets: an asyncio client for BingX's asset overview that never breaks its limits."""

from typing import TYPE_CHECKING

from ._client import AssetsClient
from ._clock import Clock, SystemClock
from ._credentials import Credentials
from ._egress import Egress
from ._exceptions import (
    AccountNotFoundError,
    AnswerTooLargeError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BingXError,
    ConfigurationError,
    DecodeError,
    ErrorBudgetError,
    InvalidArgumentError,
    LimiterUnavailableError,
    PermissionDeniedError,
    RateLimitError,
    ServerBusyError,
    TimestampError,
)
from ._limiter import HostBackend, LimiterStats, MemoryBackend, Rate, RateLimiter, RateLimits
from ._models import AccountType, AssetOverview, Balance
from ._options import ClientOptions
from ._pool import AssetsPool, KeyFailed, KeyOk, KeyResult, Snapshot

if TYPE_CHECKING:  # typed for checkers; imported at run time only when asked for
    from ._metrics import PrometheusMetrics, serve_metrics

__version__ = "0.1.0"

if TYPE_CHECKING:  # typed for users' type checkers; imported at run time only when asked for
    from ._limiter._redis import RedisBackend


def __getattr__(name: str) -> object:
    # RedisBackend needs the optional `redis` package: import it only when asked for.
    if name == "RedisBackend":
        try:
            from ._limiter._redis import RedisBackend
        except ImportError as exc:
            raise ImportError(
                "RedisBackend needs redis: pip install 'bingx-assets[redis]'"
            ) from exc
        return RedisBackend
    # So do the metrics with prometheus-client: `import bingx_assets` never imports it.
    if name in ("PrometheusMetrics", "serve_metrics"):
        try:
            from . import _metrics
        except ImportError as exc:
            raise ImportError(
                f"{name} needs prometheus-client: pip install 'bingx-assets[prometheus]'"
            ) from exc
        return getattr(_metrics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AccountNotFoundError",
    "AccountType",
    "AnswerTooLargeError",
    "AssetOverview",
    "AssetsClient",
    "AssetsPool",
    "AuthenticationError",
    "Balance",
    "BingXError",
    "ClientOptions",
    "Clock",
    "ConfigurationError",
    "Credentials",
    "DecodeError",
    "Egress",
    "ErrorBudgetError",
    "HostBackend",
    "InvalidArgumentError",
    "KeyFailed",
    "KeyOk",
    "KeyResult",
    "LimiterStats",
    "LimiterUnavailableError",
    "MemoryBackend",
    "PermissionDeniedError",
    "PrometheusMetrics",
    "Rate",
    "RateLimitError",
    "RateLimiter",
    "RateLimits",
    "RedisBackend",
    "ServerBusyError",
    "Snapshot",
    "SystemClock",
    "TimestampError",
    "__version__",
    "serve_metrics",
]
