"""The one rule for HTTP clients: open one unless given one, close only the one opened."""

from __future__ import annotations

from typing import Self

import httpx

__all__ = ["OwnsHttpClient"]


class OwnsHttpClient:
    """Base of `AssetsClient` and `AssetsPool`: `async with` closes what it opened."""

    def __init__(self, http_client: httpx.AsyncClient | None) -> None:
        self._owns_http = http_client is None
        # httpx's own client verifies TLS; an injected one is used as it is.
        self._http = http_client if http_client is not None else httpx.AsyncClient()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client opened here; an injected one is left open."""
        if self._owns_http:
            await self._http.aclose()
