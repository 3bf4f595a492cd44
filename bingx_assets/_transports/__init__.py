"""The one seam between the client and an HTTP library: a signed GET in, an `Answer` out.

Two adapters: aiohttp (the default: the client's own session, one per event loop, or a
bot's own `ClientSession` handed in) and httpx (a caller's `AsyncClient`, what respx,
`httpx.MockTransport` and the simulator's `http_client()` plug into). Both read the
answer within one deadline per attempt and up to 1 MiB (`_base`), and raise only our
`APIConnectionError` / `APITimeoutError` / `AnswerTooLargeError` for a missing or
unbounded answer, naming the library's error type and never its message (the URL in it
carries a signature), and outside the library's exception, which keeps the request.

`_base` is the seam (and `BoundedTransport`, the deadline and the error mapping both
adapters share: each gives only its `_read` and its library's `_failure`), `_aiohttp`
and `_httpx` its two adapters (`_aiohttp` also opens the
client's own session), and `_http_clients` the rule for which client is used and who
closes it.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx

from .._exceptions import ConfigurationError
from ._aiohttp import AiohttpTransport
from ._base import Answer, Transport
from ._httpx import HttpxTransport

__all__ = ["AiohttpTransport", "Answer", "HttpxTransport", "Transport", "transport_for"]


def transport_for(http_client: Any) -> Transport:
    """The adapter for a caller's HTTP client: an `httpx.AsyncClient` or an
    `aiohttp.ClientSession`."""
    if isinstance(http_client, httpx.AsyncClient):
        return HttpxTransport(http_client)
    # Whoever holds a ClientSession has imported aiohttp already: look, don't import.
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is not None and isinstance(http_client, aiohttp.ClientSession):
        return AiohttpTransport(http_client)
    raise ConfigurationError(
        "http_client must be an httpx.AsyncClient or an aiohttp.ClientSession, "
        f"not {type(http_client).__name__}"
    )
