"""aiohttp as the transport: the client's own session (the default), or a bot's own.

The default because aiohttp parses HTTP in C: a call costs a fraction of the CPU it
costs on httpx, whose parser is pure Python (docs/benchmarks.md). The client's own
session is what httpx's own client was: TLS verified against httpx's CA store, a
connection pool sized by `limits`, proxies from the environment, or an egress route's
source address or proxy instead (`open_session`).
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import httpx

from .._exceptions import APIConnectionError, APITimeoutError, ConfigurationError
from ._base import Answer, BoundedTransport, read_capped

if TYPE_CHECKING:
    import aiohttp
    import yarl

    from .._egress import Egress

__all__ = ["AiohttpTransport", "open_session"]

ProxyFor = Callable[["yarl.URL"], "yarl.URL | None"]
"""The proxy to reach a URL by, or None to go direct."""


def open_session(limits: httpx.Limits, egress: Egress | None = None) -> AiohttpTransport:
    """The client's own session, for the running event loop: its connections leave by
    `egress` (its source address bound, or through its proxy) or, without one, by any
    proxy the environment names for the destination."""
    import aiohttp  # only here: `import bingx_assets` must not pay for aiohttp

    # trust_env stays off: aiohttp would then look the environment's proxies (and a
    # netrc) up on a thread for every request. They are read once here instead; a
    # route takes none from the environment, which would carry requests past it.
    if egress is None:
        proxy_for = environment_proxies()  # before anything is opened: it may refuse
    else:
        proxy_for = _always(egress.proxy) if egress.proxy is not None else None
    local_address = egress.local_address if egress is not None else None
    connector = aiohttp.TCPConnector(
        # aiohttp keeps every idle connection up to `limit`: it has no separate
        # `max_keepalive_connections`, only how long an idle one is kept.
        limit=limits.max_connections or 0,  # None is no limit, aiohttp's 0
        keepalive_timeout=limits.keepalive_expiry,
        ssl=_verified_tls(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
        local_addr=(local_address, 0) if local_address is not None else None,
    )
    return AiohttpTransport(aiohttp.ClientSession(connector=connector), proxy_for)


def _always(proxy: str) -> ProxyFor:
    import yarl

    url = yarl.URL(proxy)
    return lambda _: url


@functools.cache
def _verified_tls(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """httpx's own TLS settings: certifi's CA store, or `SSL_CERT_FILE` / `SSL_CERT_DIR`
    when set (the arguments, so that each setting has its own context). Loading a CA
    store takes milliseconds: once per process, not per session."""
    return httpx.create_ssl_context()


_PROXY_SCHEMES = ("http", "https")


def environment_proxies() -> ProxyFor | None:
    """The environment's proxies as httpx reads them: `HTTP_PROXY`, `HTTPS_PROXY`, then
    `ALL_PROXY` (either case; the system's settings on macOS and Windows), a host
    without a scheme taken as `http://`, and `NO_PROXY`'s hosts reached directly.
    None when there are none. aiohttp speaks to HTTP(S) proxies only: a SOCKS one is a
    `ConfigurationError`, never a silent direct connection."""
    import urllib.request

    import yarl

    found = urllib.request.getproxies()
    by_scheme: dict[str, yarl.URL] = {}
    for scheme in ("http", "https", "all"):
        if proxy := found.get(scheme):
            try:
                url = yarl.URL(proxy if "://" in proxy else f"http://{proxy}")
            except ValueError as exc:
                # Not quoted: the URL may hold a password (an unencoded '/' in one is
                # what most often breaks it), and yarl's words do not quote it either.
                raise ConfigurationError(
                    f"{scheme.upper()}_PROXY is not a URL ({exc}); in a user or password, "
                    "percent-encode '/', '?', '#' and '@'"
                ) from None
            if url.scheme not in _PROXY_SCHEMES:
                raise ConfigurationError(
                    f"{scheme.upper()}_PROXY names a {url.scheme}:// proxy; the client's own "
                    "aiohttp session reaches BingX through http:// or https:// proxies only: "
                    "unset it, or hand in a session of yours that can (http_client=)"
                )
            by_scheme[scheme] = url
    if not by_scheme:
        return None
    chosen: dict[tuple[str, str | None], yarl.URL | None] = {}

    def proxy_for(url: yarl.URL) -> yarl.URL | None:
        key = (url.scheme, url.host)
        if key not in chosen:  # once per destination: NO_PROXY is read each time
            bypass = url.host is None or urllib.request.proxy_bypass(url.host)
            chosen[key] = None if bypass else by_scheme.get(url.scheme, by_scheme.get("all"))
        return chosen[key]

    return proxy_for


class AiohttpTransport(BoundedTransport):
    """An `aiohttp.ClientSession`: the client's own (`open_session`), or a caller's,
    used as it is (its TLS settings, its connection limits, its proxies) and never
    closed here. `proxy_for` picks each request's proxy, for a session that takes
    none from the environment itself."""

    def __init__(self, session: aiohttp.ClientSession, proxy_for: ProxyFor | None = None) -> None:
        import aiohttp  # only here: `import bingx_assets` must not pay for aiohttp
        import yarl

        if not hasattr(aiohttp, "ClientMiddlewareType"):  # per-request middlewares: 3.12
            raise ConfigurationError(
                f"an aiohttp.ClientSession needs aiohttp 3.12 or later, not {aiohttp.__version__}"
            )
        self.session = session
        self._proxy_for = proxy_for
        # A per-request `middlewares=` replaces the session's own, so theirs go first,
        # around ours. aiohttp keeps them in a private attribute with no public getter;
        # the default keeps requests going out (once) should a later aiohttp rename it.
        self._middlewares: tuple[aiohttp.ClientMiddlewareType, ...] = tuple(
            getattr(session, "_middlewares", ())
        )
        self._connection_error = aiohttp.ClientConnectionError
        self._client_error = aiohttp.ClientError
        self._client_timeout = aiohttp.ClientTimeout
        self._url = yarl.URL
        self._timeouts: tuple[httpx.Timeout, aiohttp.ClientTimeout] | None = None

    def _failure(self, exc: Exception) -> APIConnectionError | None:
        if isinstance(exc, TimeoutError):  # aiohttp's own timeouts subclass it
            return APITimeoutError(f"no answer in time ({type(exc).__name__})")
        if isinstance(exc, self._client_error):
            return APIConnectionError(type(exc).__name__)
        return None

    async def _read(
        self, url: str, headers: Mapping[str, str], timeouts: httpx.Timeout
    ) -> Answer | None:
        # encoded=True: the URL is sent byte for byte as it was signed.
        address = self._url(url, encoded=True)
        async with self.session.get(
            address,
            headers=headers,
            proxy=self._proxy_for(address) if self._proxy_for is not None else None,
            timeout=self._timeout(timeouts),
            allow_redirects=False,  # as httpx: a redirect is an answer, not followed
            raise_for_status=False,  # a 429 is read here, whatever the session says
            middlewares=(*self._middlewares, self._send_once()),
        ) as response:
            content = await read_capped(
                response.content.iter_any(), response.headers.get("Content-Length")
            )
            if content is None:
                response.close()  # the rest of the body is never read: drop the connection
                return None
            return Answer(response.status, response.headers, content)

    async def aclose(self) -> None:
        """Close the session: only for the client's own."""
        await self.session.close()

    def _send_once(self) -> aiohttp.ClientMiddlewareType:
        """A middleware for one request that lets it reach the server once. aiohttp
        resends an idempotent GET when a reused connection drops before the answer
        (RFC 9112 9.3.1.1), the same signed URL under the same rate slot; BingX may have
        counted the first. A second send raises instead, and the error reaches the
        client's own retry, which takes a new slot and signs afresh."""
        sent = False
        failure: aiohttp.ClientError | None = None

        async def send_once(
            request: aiohttp.ClientRequest, send: aiohttp.ClientHandlerType
        ) -> aiohttp.ClientResponse:
            nonlocal sent, failure
            if sent:  # aiohttp's resend (the first error again: aiohttp resends once),
                # or a session middleware's after an answer (an error aiohttp never resends)
                raise failure or self._connection_error("sent once already")
            sent = True
            try:
                return await send(request)
            except self._client_error as exc:
                failure = exc
                raise

        return send_once

    def _timeout(self, timeout: httpx.Timeout) -> aiohttp.ClientTimeout:
        """httpx's four timeouts as aiohttp's: the same limits on the same waits."""
        if self._timeouts is None or self._timeouts[0] is not timeout:
            connect = None
            if timeout.pool is not None and timeout.connect is not None:
                connect = timeout.pool + timeout.connect
            converted = self._client_timeout(
                total=None, connect=connect, sock_connect=timeout.connect, sock_read=timeout.read
            )
            self._timeouts = (timeout, converted)
        return self._timeouts[1]
