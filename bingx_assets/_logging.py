"""The package's logger, and a filter that keeps signatures out of the HTTP libraries' logs."""

from __future__ import annotations

import logging
import re

__all__ = ["install_redaction", "log", "redact"]

log = logging.getLogger("bingx_assets")

_SIGNATURE = re.compile(r"(signature=)[0-9a-fA-F]+")


def redact(text: str) -> str:
    """`text` with any request signature replaced by `***`."""
    return _SIGNATURE.sub(r"\1***", text)


class _RedactSignatures(logging.Filter):
    """httpx logs every request's full URL at INFO, and ours carry a signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "signature=" in message:
            record.msg, record.args = redact(message), None
        return True


def install_redaction() -> None:
    """Attach the filter to httpx's, httpcore's and aiohttp's client loggers, once.

    aiohttp logs no URLs today; the filter is there so that a future version cannot.
    """
    for name in ("httpx", "httpcore", "aiohttp.client"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactSignatures) for f in logger.filters):
            logger.addFilter(_RedactSignatures())
