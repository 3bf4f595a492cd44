"""`ClientOptions`: the settings `AssetsClient` and `AssetsPool` share, checked in one place."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlsplit

import httpx

from ._constants import (
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_WAIT,
    DEFAULT_RECV_WINDOW_MS,
    DEFAULT_TIMEOUT,
    MAX_RECV_WINDOW_MS,
)
from ._exceptions import ConfigurationError
from ._printable import masked_url

__all__ = ["ClientOptionArgs", "ClientOptions", "check_whole_number", "resolve_options"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """How a client talks to BingX. Every field is also a keyword of `AssetsClient` and
    `AssetsPool` (`AssetsClient(timeout=5, max_retries=2)`); build one `ClientOptions` to
    hand the same settings to several clients (`AssetsClient(options=opts)`). Every value
    is checked here: a wrong type or range raises `ConfigurationError` naming the option.
    """

    base_url: str = field(default_factory=lambda: _base_url_from_env())
    """`https://` host, optionally with a path prefix (a proxy); no query, fragment or
    user:password. Plain `http://` only to loopback, or with `allow_insecure_http`.
    Default: `BINGX_BASE_URL` from the environment when set, else BingX's own host."""
    # httpx.Timeout is unhashable, which dataclasses take for mutable: hence the factory
    # and no part in the hash.
    timeout: float | httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT, hash=False)
    """Seconds for each request, or an `httpx.Timeout` (default: 10 s, 5 s to connect);
    kept as an `httpx.Timeout`. Each attempt ends within its connect plus its read
    seconds in all (15 s at the default), however slowly an answer trickles."""
    max_retries: int = DEFAULT_MAX_RETRIES
    """Retries after the first attempt (busy server, lost connection, rate limit)."""
    max_wait: float = DEFAULT_MAX_WAIT
    """Longest disabled period (seconds) to wait out; longer raises `RateLimitError`."""
    recv_window: int = DEFAULT_RECV_WINDOW_MS
    """BingX's `recvWindow`: milliseconds a signed request stays valid, 1 to 60000."""
    allow_insecure_http: bool = False
    """Allow plain `http://` to a host other than loopback (sends the API key in clear)."""
    uid_cache: str | os.PathLike[str] | bool = True
    """Where the UIDs BingX named for keys are remembered between processes: True for
    `uids.sqlite3` in the user's cache directory, a database path, or False for nowhere
    (every process looks every key up again). Kept as a `Path` or a bool."""
    verify_uids: bool = True
    """Check a `uid` given by hand against BingX once per machine before counting on it
    (the UID cache remembers the answer). False trusts every given uid as verified: a
    wrong one then counts a key's requests against another UID, and its own can be
    refused; only for uids this code did not take from a person (a simulator's)."""

    def __post_init__(self) -> None:
        if not isinstance(self.allow_insecure_http, bool):
            raise _wrong("allow_insecure_http", "True or False", self.allow_insecure_http)
        if not isinstance(self.verify_uids, bool):
            raise _wrong("verify_uids", "True or False", self.verify_uids)
        try:
            base_url = _check_base_url(self.base_url, self.allow_insecure_http)
        except ConfigurationError as exc:
            if self.base_url == os.environ.get(BASE_URL_ENV):
                raise ConfigurationError(f"{exc} (from {BASE_URL_ENV})") from None
            raise
        timeout = _check_timeout(self.timeout)
        max_retries = check_whole_number("max_retries", self.max_retries, minimum=0)
        max_wait = _as_seconds(self.max_wait)
        if max_wait is None or not 0 <= max_wait < math.inf:
            raise _wrong("max_wait", "seconds >= 0", self.max_wait)
        recv_window = self.recv_window
        if not _is_int(recv_window) or not 0 < recv_window <= MAX_RECV_WINDOW_MS:
            raise _wrong("recv_window", f"milliseconds, 1 to {MAX_RECV_WINDOW_MS}", recv_window)
        object.__setattr__(self, "base_url", base_url)
        object.__setattr__(self, "timeout", timeout)
        object.__setattr__(self, "max_retries", max_retries)
        object.__setattr__(self, "max_wait", max_wait)
        object.__setattr__(self, "uid_cache", _check_uid_cache(self.uid_cache))


class ClientOptionArgs(TypedDict, total=False):
    """`ClientOptions`' fields as keywords, so that `AssetsClient(timeout=5)` is typed.

    A new option is a field of `ClientOptions` (default, check) and its line here;
    tests/test_options.py fails until both exist with one type and a bad value to try.
    """

    base_url: str
    timeout: float | httpx.Timeout
    max_retries: int
    max_wait: float
    recv_window: int
    allow_insecure_http: bool
    uid_cache: str | os.PathLike[str] | bool
    verify_uids: bool


def resolve_options(options: ClientOptions | None, keywords: ClientOptionArgs) -> ClientOptions:
    """`options` (or the defaults) with `keywords` applied; the same object when none are."""
    if options is not None and not isinstance(options, ClientOptions):
        raise _wrong("options", "a ClientOptions", options)
    # `**keywords` collects misspelt names too: name them as such, not as a TypeError.
    fields = [f.name for f in dataclasses.fields(ClientOptions)]
    for name in keywords:
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; options are {', '.join(fields)}"
            raise ConfigurationError(f"unknown option {name!r}{hint}")
    if options is None:
        return ClientOptions(**keywords)
    return dataclasses.replace(options, **keywords) if keywords else options


def _base_url_from_env() -> str:
    # Read when options are made, like the credentials: an empty value is no value.
    return os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL


def check_whole_number(name: str, value: Any, *, minimum: int) -> int:
    if not _is_int(value) or value < minimum:
        raise _wrong(name, f"a whole number >= {minimum}", value)
    return int(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_seconds(value: Any) -> float | None:
    """A real number as a float; None for anything else (NaN stays, for the range checks)."""
    # True would mean 1 second, 1 retry or recvWindow=True on the wire: never a number here.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond any float
        return None


def _is_positive_seconds(value: Any) -> bool:
    seconds = _as_seconds(value)
    return seconds is not None and 0 < seconds < math.inf


def _wrong(name: str, expected: str, value: Any) -> ConfigurationError:
    return ConfigurationError(f"{name} must be {expected}, not {value!r}")


def _check_timeout(timeout: Any) -> httpx.Timeout:
    if _is_positive_seconds(timeout):
        return httpx.Timeout(float(timeout))
    if isinstance(timeout, httpx.Timeout):
        parts = [timeout.connect, timeout.read, timeout.write, timeout.pool]
        # None is httpx's "no limit" for a phase: a call that could hang for ever.
        if all(_is_positive_seconds(p) for p in parts):
            return timeout
    raise _wrong(
        "timeout", "seconds > 0 or an httpx.Timeout with seconds > 0 in every part", timeout
    )


def _check_uid_cache(uid_cache: Any) -> bool | Path:
    if isinstance(uid_cache, bool):
        return uid_cache
    expected = "True, False or a file path"
    if not isinstance(uid_cache, str | os.PathLike):
        raise _wrong("uid_cache", expected, uid_cache)
    path = os.fspath(uid_cache)
    if not isinstance(path, str) or not path or "\0" in path:
        raise _wrong("uid_cache", expected, uid_cache)
    if os.path.isdir(path):
        raise ConfigurationError(f"uid_cache must name a file, not the directory {path!r}")
    return Path(path)


# A path prefix (for a proxy) is fine; dots, escapes and other punctuation are not.
_PATH_PREFIX = re.compile(r"(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?")


def _check_base_url(base_url: Any, allow_insecure_http: bool) -> str:
    if not isinstance(base_url, str):
        raise _wrong("base_url", "an https:// URL string", base_url)
    shown = masked_url(base_url)  # a password in it is never printed back
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL:
        raise ConfigurationError(f"base_url is not a URL: {shown!r}") from None
    if url.scheme not in ("https", "http") or not url.host:
        raise ConfigurationError(
            f"base_url must be an https:// URL (or http:// to loopback), not {shown!r}"
        )
    # The API path and the signed query are appended to it: anything after the path
    # would garble the request, and user:password would be sent to the host.
    if "?" in base_url or "#" in base_url or url.userinfo:
        raise ConfigurationError(
            f"base_url must be scheme://host[:port][/prefix] with no query, fragment or "
            f"user:password, not {shown!r}"
        )
    parts = urlsplit(base_url)  # as written: httpx would tidy away "/./" and "/../"
    try:
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        raise ConfigurationError(f"base_url has a bad port: {shown!r}") from None
    path = parts.path
    if not _PATH_PREFIX.fullmatch(path):
        raise ConfigurationError(
            f"base_url's path must be a plain prefix like /bingx, not {path!r}"
        )
    if url.scheme == "http" and not _is_loopback(url.host) and not allow_insecure_http:
        raise ConfigurationError(
            f"base_url: plain http to {url.host!r} would send the API key in clear: use https, "
            "or pass allow_insecure_http=True"
        )
    return base_url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
