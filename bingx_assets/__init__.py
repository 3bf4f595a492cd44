"""bingx-assets: an asyncio client for BingX's asset overview that never breaks its limits."""

from ._client import AssetsClient
from ._clock import Clock, SystemClock
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

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AccountType",
    "AssetOverview",
    "AssetsClient",
    "AuthenticationError",
    "Balance",
    "BingXError",
    "Clock",
    "ConfigurationError",
    "DecodeError",
    "InvalidArgumentError",
    "LimiterStats",
    "PermissionDeniedError",
    "Rate",
    "RateLimitError",
    "RateLimiter",
    "RateLimits",
    "ServerBusyError",
    "SystemClock",
    "TimestampError",
    "__version__",
]
