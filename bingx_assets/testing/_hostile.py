"""A hostile server on loopback: the answers a broken proxy, a captive portal or an
attacker on the path could send, over real HTTP/1.1, for any client to meet.

```python
async with HostileServer(HostileAnswer.trickled(b'{"code":0,"data":[]}')) as server:
    client = AssetsClient(key, secret, uid=1, base_url=server.url)
    await client.asset_overview()  # APITimeoutError, within the attempt's deadline
```

Requests carrying `victim`'s api key (every asset request, without one) get the
hostile answer; the server's time and every other key get BingX's ordinary answers, so
a pool's other keys can show they were unharmed. Bodies are written as they are
generated, never held whole: a "50 MB" answer costs the server 64 KiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import msgspec

from .._constants import API_KEY_HEADER, SERVER_TIME_PATH, UID_PATH

__all__ = ["HEALTHY_BALANCE", "HostileAnswer", "HostileServer", "ReceivedHead"]

HEALTHY_BALANCE = "1.5"
"""What every key but the victim holds: one `sopt` account of 1.5 USDT."""

_BLOCK = 64 * 1024
_MAX_HEAD = 64 * 1024
_REASONS = {200: "OK", 400: "Bad Request", 429: "Too Many Requests", 500: "Server Error"}


@dataclass(frozen=True)
class ReceivedHead:
    """One request as it arrived: its target (with the signature) and its api key."""

    target: str
    api_key: str | None
    raw: bytes


@dataclass(frozen=True)
class HostileAnswer:
    """One misbehaviour. Build them with the class methods; `name` labels test ids."""

    name: str
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    per_byte: float = 0.0
    """Seconds between bytes of the body: a trickle no read timeout ever catches."""
    endless: bool = False
    """A chunked body that never ends (each chunk is `body`)."""
    size: int | None = None
    """A body of this many bytes of `body` repeated, with its Content-Length (or
    chunked, with `endless`'s framing and no length, when `declared` is False)."""
    declared: bool = True
    echo: Callable[[bytes], bytes] | None = field(default=None, repr=False)
    """Builds the body from the request's raw head: a server echoing what it got."""

    @classmethod
    def raw(cls, status: int, headers: tuple[tuple[str, str], ...], body: bytes) -> HostileAnswer:
        return cls("raw", status, headers, body)

    @classmethod
    def trickled(cls, body: bytes, *, per_byte: float = 1.0) -> HostileAnswer:
        return cls("trickled", body=body, per_byte=per_byte)

    @classmethod
    def endless_chunks(cls, *, per_chunk: float = 0.0, chunk: bytes = b"x" * 4096) -> HostileAnswer:
        """Chunks for ever: as fast as they are read, or one `chunk` every `per_chunk`
        seconds (`endless_chunks(per_chunk=1, chunk=b"x")`: a byte a second)."""
        return cls("endless", body=chunk, endless=True, per_byte=per_chunk)

    @classmethod
    def huge(cls, size: int, *, declared: bool = True) -> HostileAnswer:
        return cls(f"huge-{'declared' if declared else 'chunked'}", body=b"x", size=size,
                   declared=declared)  # fmt: skip

    @classmethod
    def gzip_bomb(cls, size: int) -> HostileAnswer:
        """`size` zero bytes, gzipped (a thousandth of that on the wire), whatever the
        client asked for."""
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        zeros = bytes(_BLOCK)
        packed = [packer.compress(zeros) for _ in range(size // _BLOCK)]
        body = b"".join([*packed, packer.compress(bytes(size % _BLOCK)), packer.flush()])
        return cls("gzip-bomb", headers=(("Content-Encoding", "gzip"),), body=body)

    @classmethod
    def nested(cls, depth: int) -> HostileAnswer:
        body = b'{"code":0,"data":' + b"[" * depth + b"]" * depth + b"}"
        return cls(f"nested-{depth}", body=body)

    @classmethod
    def balance(cls, wire: str, *, as_number: bool = False) -> HostileAnswer:
        """A success whose one balance is `wire`: as a JSON string, or a bare number."""
        value = wire if as_number else msgspec.json.encode(wire).decode()
        body = f'{{"code":0,"data":[{{"accountType":"sopt","usdtBalance":{value}}}]}}'
        return cls(f"balance-{wire}{'-number' if as_number else ''}", body=body.encode())

    @classmethod
    def account_type(cls, text: str) -> HostileAnswer:
        """A success with an account type of `text` (control characters, say)."""
        row = {"accountType": text, "usdtBalance": "2"}
        return cls("account-type", body=msgspec.json.encode({"code": 0, "data": [row]}))

    @classmethod
    def message(cls, code: int, msg: str) -> HostileAnswer:
        return cls(f"message-{code}", body=msgspec.json.encode({"code": code, "msg": msg}))

    @classmethod
    def echoed(cls, *, in_json: bool) -> HostileAnswer:
        """The request's head sent back: as BingX's `msg` of a bad-signature error, or
        as a plain-text 400 page (a proxy's)."""
        if in_json:
            return cls(
                "echo-json",
                echo=lambda head: msgspec.json.encode(
                    {"code": 100001, "msg": f"Signature verification failed: {head.decode()}"}
                ),
            )
        return cls("echo-page", status=400, echo=lambda head: b"Bad request:\r\n" + head)


class HostileServer:
    """Serves `answer` on 127.0.0.1 (a free port) to `victim`'s asset requests (every
    key's, without a victim), and ordinary answers to everything else: the server time,
    and UID lookups naming `uids[api_key]` (1 for a key not in it); `received` lists
    every request head."""

    def __init__(
        self,
        answer: HostileAnswer,
        *,
        victim: str | None = None,
        uids: Mapping[str, int] | None = None,
    ) -> None:
        self.answer = answer
        self.victim = victim
        self.uids = dict(uids or {})
        self.received: list[ReceivedHead] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hostile_requests(self) -> list[ReceivedHead]:
        """The requests that were answered with the hostile answer."""
        return [r for r in self.received if self._is_victim(r)]

    async def __aenter__(self) -> HostileServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()

    def _is_victim(self, head: ReceivedHead) -> bool:
        if head.target.partition("?")[0] in (SERVER_TIME_PATH, UID_PATH):
            return False
        return self.victim is None or head.api_key == self.victim

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            received = _parse(head[:_MAX_HEAD])
            self.received.append(received)
            answer = self.answer if self._is_victim(received) else _healthy(received, self.uids)
            await _send(answer, head, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away: what a hostile answer hopes for
        finally:
            self._connections.discard(task)
            writer.transport.abort()


def _parse(head: bytes) -> ReceivedHead:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    target = parts[1] if len(parts) > 1 else ""
    api_key = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == API_KEY_HEADER.lower():
            api_key = value.strip()
    return ReceivedHead(target, api_key, head)


def _healthy(head: ReceivedHead, uids: Mapping[str, int]) -> HostileAnswer:
    path = head.target.partition("?")[0]
    if path == SERVER_TIME_PATH:
        data: object = {"serverTime": int(time.time() * 1000)}
    elif path == UID_PATH:
        data = {"uid": uids.get(head.api_key or "", 1)}
    else:
        data = [{"accountType": "sopt", "usdtBalance": HEALTHY_BALANCE}]
    return HostileAnswer("healthy", body=msgspec.json.encode({"code": 0, "data": data}))


async def _send(answer: HostileAnswer, head: bytes, writer: asyncio.StreamWriter) -> None:
    body = answer.echo(head) if answer.echo is not None else answer.body
    chunked = answer.endless or (answer.size is not None and not answer.declared)
    length = answer.size if answer.size is not None else len(body)
    framing = ("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(length))
    reason = _REASONS.get(answer.status, "Status")
    lines = [f"HTTP/1.1 {answer.status} {reason}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (*answer.headers, framing)]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    async for piece in _pieces(answer, body):
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        await writer.drain()  # a client that stops reading stops us here
        if answer.per_byte:
            await asyncio.sleep(answer.per_byte)
    if chunked:
        writer.write(b"0\r\n\r\n")
    await writer.drain()
    with contextlib.suppress(ConnectionError):
        writer.write_eof()


async def _pieces(answer: HostileAnswer, body: bytes) -> AsyncIterator[bytes]:
    if answer.endless:
        while True:
            yield body
    elif answer.size is not None:
        block = (body * (_BLOCK // max(len(body), 1) + 1))[:_BLOCK]
        left = answer.size
        while left > 0:
            yield block[:left]
            left -= len(block)
    elif answer.per_byte:
        for n in range(len(body)):
            yield body[n : n + 1]
    elif body:
        yield body
