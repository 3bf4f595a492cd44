"""Which destinations are a simulator in this process, so that a client aimed at one
keeps nothing of it in the user's files.

The simulator's keys are made up afresh (and deterministically) each run: a UID or a
rate window remembered from one run would be wrong in the next, and a script that only
tries the simulator has no business in the user's cache, state or store. So a client
or pool whose `http_client` goes to `BingXSimulator` (its `http_client()` or
`transport()`), or whose `base_url` is a `SimulatorServer` running in this process,
uses no UID cache by default and, unless given a limiter, one in-memory limiter shared
by every such client of the process. A file path or a limiter given explicitly is
still used as given.
"""

from __future__ import annotations

import dataclasses
import weakref

from ._limiter import RateLimiter, resolve_limiter
from ._options import ClientOptions

__all__ = ["is_simulated", "resolve_storage", "serving", "simulated_transport", "stopped"]

_transports: weakref.WeakSet[object] = weakref.WeakSet()
_urls: set[str] = set()


def simulated_transport(transport: object) -> None:
    """Mark `transport` as the simulator's."""
    _transports.add(transport)


def serving(url: str) -> None:
    _urls.add(url.rstrip("/"))


def stopped(url: str) -> None:
    _urls.discard(url.rstrip("/"))


def is_simulated(http_client: object, base_url: str) -> bool:
    # httpx keeps a client's transport in `_transport` (since 0.18); nothing else names it.
    transport = getattr(http_client, "_transport", None)
    if transport is not None and transport in _transports:
        return True
    return http_client is None and base_url.rstrip("/") in _urls


def resolve_storage(
    http_client: object, options: ClientOptions, limiter: object
) -> tuple[ClientOptions, RateLimiter]:
    """The options and limiter a client or pool runs with: as given, except that a
    simulated destination gets no UID cache and an in-memory limiter by default."""
    if not is_simulated(http_client, options.base_url):
        return options, resolve_limiter(limiter, options.base_url)
    if options.uid_cache is True:
        options = dataclasses.replace(options, uid_cache=False)
    if limiter is not None:
        return options, resolve_limiter(limiter, options.base_url)
    return options, RateLimiter.default(None)
