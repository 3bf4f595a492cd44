"""Faults the simulator can answer with instead of serving: BingX's and the network's."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import msgspec

from ._messages import MSG_DISABLED, MSG_RATE_LIMITED, MSG_TOO_MANY_ERRORS

__all__ = ["Fault"]


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour. Build them with the class methods:

    `Fault.http(503)`, `Fault.html(502)`, `Fault.body(b'{"code":0,"da')`,
    `Fault.answer(100410, "rate limited")`, `Fault.rate_limited(until_ms)`,
    `Fault.reset()`, `Fault.timeout()`, `Fault.slow(2.0)`.
    """

    status: int = 200
    content: bytes | None = None
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    raises: type[httpx.TransportError] | None = None

    @property
    def passes_through(self) -> bool:
        """Only a delay: the request is then served as usual."""
        return self.content is None and self.raises is None and self.status == 200

    @classmethod
    def http(cls, status: int, body: bytes = b"", *, retry_after: float | None = None) -> Fault:
        headers = (("Retry-After", f"{retry_after:g}"),) if retry_after is not None else ()
        return cls(status=status, content=body, content_type="text/plain", headers=headers)

    @classmethod
    def html(cls, status: int = 502) -> Fault:
        page = f"<html><head><title>{status}</title></head><body>nginx</body></html>"
        return cls(status=status, content=page.encode(), content_type="text/html")

    @classmethod
    def body(cls, raw: bytes, *, content_type: str = "application/json") -> Fault:
        """HTTP 200 with this body: truncated or malformed JSON, a wrong content type."""
        return cls(content=raw, content_type=content_type)

    @classmethod
    def answer(cls, code: int | str, msg: str) -> Fault:
        """BingX's envelope with an error code."""
        return cls(content=msgspec.json.encode({"code": code, "msg": msg, "data": {}}))

    @classmethod
    def rate_limited(cls, until_ms: int | None = None, *, too_many_errors: bool = False) -> Fault:
        """100410 in one of its three forms: with `until_ms`, "unblocked after" (or, with
        `too_many_errors`, "can retry after time"); without, plain "rate limited"."""
        if until_ms is None:
            return cls.answer(100410, MSG_RATE_LIMITED)
        if too_many_errors:
            message = MSG_TOO_MANY_ERRORS.format(
                limit=20, code=100202, period_ms=480_000, until=until_ms
            )
            return cls.answer(100410, message)
        return cls.answer(100410, MSG_DISABLED.format(until=until_ms))

    @classmethod
    def reset(cls) -> Fault:
        """The connection drops before an answer."""
        return cls(raises=httpx.RemoteProtocolError)

    @classmethod
    def timeout(cls, after: float = 0.0) -> Fault:
        """No answer: the client's read times out after `after` seconds."""
        return cls(delay=after, raises=httpx.ReadTimeout)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Served as usual on arrival, its answer `seconds` late."""
        return cls(delay=seconds)

    def response(self) -> httpx.Response:
        headers = [("content-type", self.content_type), *self.headers]
        return httpx.Response(self.status, content=self.content or b"", headers=headers)
