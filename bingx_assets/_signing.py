"""Signing a GET the way BingX checks it: the exact query string, HMAC-SHA256, hex."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

__all__ = ["sign", "signed_query"]


def sign(secret_key: bytes, query: str) -> str:
    """Lowercase hex HMAC-SHA256 of `query` under `secret_key`."""
    return hmac.new(secret_key, query.encode(), hashlib.sha256).hexdigest()


def signed_query(params: Mapping[str, str | int], secret_key: bytes) -> str:
    """`k=v&k=v&signature=<hex>`: the string signed is byte for byte the string sent.

    Values are percent-encoded only where they need it (digits and letters never do),
    and the signature comes last, as BingX requires.
    """
    query = "&".join(
        f"{key}={value}" if type(value) is int else f"{key}={quote(str(value), safe='')}"
        for key, value in params.items()
    )
    return f"{query}&signature={sign(secret_key, query)}"
