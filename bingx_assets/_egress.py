"""`Egress`: one route out to BingX, a source address or a proxy (the client's own
session for a route is `_transports._aiohttp.open_session`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from ._exceptions import ConfigurationError
from ._printable import masked_url

__all__ = ["Egress", "check_routes"]


@dataclass(frozen=True, slots=True, init=False)
class Egress:
    """A route to BingX: a local source address to bind, or an HTTP(S) proxy.

    ```python
    Egress(local_address="203.0.113.7")               # one of this host's addresses
    Egress(proxy="http://user:pw@proxy.example:3128")  # BingX sees the proxy's address
    ```

    BingX counts its IP limits per source address, so each route has IP windows of its
    own, named by `ip`: by default `local_address`, or the proxy's host. Processes leaving
    by one route must use one name, so that they share its windows in Redis.
    `local_address="0.0.0.0"` leaves the choice of address to the operating system (the
    machine's default route).

    Not both at once: BingX sees the proxy's address, whatever address the connection to
    the proxy left from, so a source address would only name a route that is not the one
    BingX counts.

    Each route's connections are its own aiohttp session's (sized as the pool's), which
    takes no proxy from the environment: `HTTPS_PROXY` must not carry the requests past
    the route.
    """

    local_address: str | None
    """The source IP address to bind, or None for the operating system's choice."""
    proxy: str | None
    """`http://` or `https://` proxy URL (user:password allowed; never shown in reprs)."""
    ip: str
    """Names this route's IP windows and gate in the limiter."""

    def __init__(
        self, local_address: str | None = None, proxy: str | None = None, ip: str | None = None
    ) -> None:
        if local_address is None and proxy is None:
            raise ConfigurationError("an Egress needs a local_address or a proxy")
        if local_address is not None and proxy is not None:
            raise ConfigurationError(
                "an Egress takes a local_address or a proxy, not both: BingX sees the "
                "proxy's address, not the one the connection to the proxy left from"
            )
        address = _check_address(local_address) if local_address is not None else None
        proxy_host = _check_proxy(proxy) if proxy is not None else None
        name = ip if ip is not None else address or proxy_host
        if not isinstance(name, str) or not name or not name.isprintable() or " " in name:
            raise ConfigurationError(
                f"an Egress's ip must be a non-empty name without spaces, not {name!r}"
            )
        object.__setattr__(self, "local_address", address)
        object.__setattr__(self, "proxy", proxy)
        object.__setattr__(self, "ip", name)

    def __repr__(self) -> str:
        parts = [f"ip={self.ip!r}"]
        if self.local_address is not None:
            parts.append(f"local_address={self.local_address!r}")
        if self.proxy is not None:
            parts.append(f"proxy={masked_url(self.proxy)!r}")
        return f"Egress({', '.join(parts)})"


def check_routes(routes: Iterable[Egress]) -> tuple[Egress, ...]:
    """The routes as a tuple: at least one, each an `Egress`, no IP window name twice."""
    if isinstance(routes, Egress | str) or not isinstance(routes, Iterable):
        raise ConfigurationError(f"egress must be a list of Egress routes, not {routes!r}")
    checked = tuple(routes)
    if not checked:
        raise ConfigurationError("egress must list at least one Egress route")
    names: set[str] = set()
    for route in checked:
        if not isinstance(route, Egress):
            raise ConfigurationError(f"egress must hold Egress routes, not {route!r}")
        if route.ip in names:
            raise ConfigurationError(
                f"two egress routes share the IP name {route.ip!r}: routes that leave by "
                "different addresses need different names (pass ip=...)"
            )
        names.add(route.ip)
    return checked


def _check_address(address: Any) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise ConfigurationError(
            f"local_address must be an IP address of this host, not {address!r}"
        ) from None


def _check_proxy(proxy: Any) -> str:
    """The proxy's host, once the URL is known to be one aiohttp can use."""
    if not isinstance(proxy, str):
        raise ConfigurationError(f"proxy must be an http:// or https:// URL, not {proxy!r}")
    try:
        url = httpx.URL(proxy)
    except httpx.InvalidURL:
        raise ConfigurationError(f"proxy is not a URL: {masked_url(proxy)!r}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"proxy must be an http:// or https:// URL with a host, not {masked_url(proxy)!r}"
        )
    if url.path not in ("", "/") or url.query or url.fragment:
        raise ConfigurationError(
            f"proxy must be scheme://[user:password@]host[:port], not {masked_url(proxy)!r}"
        )
    return url.host
