"""The simulator served over HTTP/1.1 on loopback, for other processes and other clients."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress

import h11
import httpx

from .._exceptions import ConfigurationError
from .._simulated import serving, stopped
from ._simulator import BingXSimulator

__all__ = ["SimulatorServer"]

_MAX_HEADERS = 64 * 1024


class SimulatorServer:
    """Serves `simulator` on `host:port` (loopback only; port 0 picks a free one).

    The simulator sees each request's source address (the connection's peer) and
    counts IP windows per address: clients bound to 127.0.0.2, 127.0.0.3, ... are
    different IPs to it (any 127.x.y.z can be a source on Linux's loopback).

    ```python
    async with SimulatorServer(BingXSimulator()) as server:
        client = AssetsClient(key, secret, base_url=server.url)
    ```
    """

    def __init__(self, simulator: BingXSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ConfigurationError(f"the simulator serves loopback only, not {host!r}")
        self.simulator = simulator
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host  # IPv6 in brackets
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve_connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        serving(self.url)  # clients in this process aimed here keep no files

    async def close(self) -> None:
        if self._server is not None:
            stopped(self.url)
            self._server.close()
            # Closing the sockets ends each connection's read; cancelling its task
            # instead would make asyncio log the cancellation as an error.
            for writer in self._connections.values():
                writer.transport.abort()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()

    async def __aenter__(self) -> SimulatorServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEADERS)
        # The simulator counts IP windows per source address, as BingX does.
        client_ip = str(writer.get_extra_info("peername")[0])
        try:
            while True:
                request = await self._next_request(connection, reader, client_ip)
                if request is None:
                    break
                try:
                    response = await self.simulator.handle(request)
                except httpx.TransportError:
                    writer.transport.abort()  # an injected reset or timeout: no answer
                    break
                headers = [(k, v) for k, v in response.headers.items() if k != "content-length"]
                headers.append(("content-length", str(len(response.content))))
                data = connection.send(
                    h11.Response(status_code=response.status_code, headers=headers)
                )
                data += connection.send(h11.Data(data=response.content))
                data += connection.send(h11.EndOfMessage())
                writer.write(data)
                await writer.drain()
                if connection.our_state is h11.MUST_CLOSE:
                    break
                connection.start_next_cycle()
        except (h11.RemoteProtocolError, ConnectionError):
            pass
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _next_request(
        self, connection: h11.Connection, reader: asyncio.StreamReader, client_ip: str
    ) -> httpx.Request | None:
        head: h11.Request | None = None
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                chunk = await reader.read(65536)
                connection.receive_data(chunk)
                if not chunk and head is None:
                    return None
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                target = head.target.decode("ascii", "replace")
                # A request forwarded by a plain-http proxy names the whole URL.
                absolute = target.startswith(("http://", "https://"))
                return httpx.Request(
                    head.method.decode(),
                    target if absolute else f"{self.url}{target}",
                    headers=[(k, v) for k, v in head.headers],
                    extensions={"client_ip": client_ip},
                )
