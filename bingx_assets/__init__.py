"""bingx-assets: an asyncio client for BingX's asset overview that never breaks its limits."""

from ._client import AssetsClient
from ._clock import Clock, SystemClock
from ._credentials import Credentials
from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BingXError,
    ConfigurationError,
    DecodeError,
    InvalidArgumentError,
    PermissionDeniedError,
    RateLimitError,
    ServerBusyError,
    TimestampError,
)
from ._limits import LimiterStats, Rate, RateLimiter, RateLimits
from ._models import AccountType, AssetOverview, Balance
from ._pool import AssetsPool, KeyResult, Snapshot

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AccountType",
    "AssetOverview",
    "AssetsClient",
    "AssetsPool",
    "AuthenticationError",
    "Balance",
    "BingXError",
    "Clock",
    "ConfigurationError",
    "Credentials",
    "DecodeError",
    "InvalidArgumentError",
    "KeyResult",
    "LimiterStats",
    "PermissionDeniedError",
    "Rate",
    "RateLimitError",
    "RateLimiter",
    "RateLimits",
    "ServerBusyError",
    "Snapshot",
    "SystemClock",
    "TimestampError",
    "__version__",
]
