"""Loaded first by every example tests/test_examples.py runs (it leads PYTHONPATH): the
process may open connections to loopback only.

An example that names any other host (BingX's own, a proxy, an egress address) gets
`OSError(ENETUNREACH)` before a packet leaves, and the attempt is written to the file
in `LOOPBACK_ONLY_REFUSALS`, which the test reads: an example can never reach the
network, and one that tries fails its test even if it swallows the error.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from typing import Any

_REFUSALS = os.environ.get("LOOPBACK_ONLY_REFUSALS", "")


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str) -> OSError:
    if _REFUSALS:
        with open(_REFUSALS, "a", encoding="utf-8") as refusals:
            refusals.write(what + "\n")
    return OSError(errno.ENETUNREACH, f"loopback only: refused {what}")


_getaddrinfo = socket.getaddrinfo
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _checked_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_loopback(host):
        raise _refuse(f"resolving {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise _refuse(f"connecting to {address!r}")


def _checked_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    _connect(self, address)


def _checked_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _connect_ex(self, address)


socket.getaddrinfo = _checked_getaddrinfo
socket.socket.connect = _checked_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _checked_connect_ex  # type: ignore[method-assign]
