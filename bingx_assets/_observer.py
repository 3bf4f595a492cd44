"""The seam metrics hang on: what the limiter and the clients tell their observers.

A `RateLimiter` keeps a list of observers, empty unless metrics are attached, so code
that reports an event pays one empty-list check when nobody listens. Observers are
called on the event loop and must return at once: no I/O, no awaiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._models import AssetOverview

__all__ = ["Observer", "observing_attempt"]


class Observer(Protocol):
    """What happened, as it happens. `bingx_assets._metrics` implements it."""

    def acquired(self, waited: float) -> None:
        """A request got its slot after waiting `waited` seconds (0 when it did not wait)."""

    def settled(self, seconds: float) -> None:
        """A request's answer came (or it failed) `seconds` after it got its slot."""

    def gate_closed(self, gate: str, seconds: float) -> None:
        """The limiter closed `gate` (a UID's or an IP's) for `seconds` from now."""

    def attempted(self, error: BaseException | None) -> None:
        """One attempt ended: None when it succeeded, else the error it raised."""

    def read(self, label: str, overview: AssetOverview | None) -> None:
        """A client labelled `label` read its overview (None: the read failed)."""


class _AttemptWatch:
    __slots__ = ("_observers",)

    def __init__(self, observers: Sequence[Observer]) -> None:
        self._observers = observers

    def __enter__(self) -> None:
        pass

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        # Cancellation is nobody's outcome: the caller gave up, BingX did not answer.
        if not isinstance(error, asyncio.CancelledError):
            for observer in self._observers:
                observer.attempted(error)


def observing_attempt(observers: Sequence[Observer]) -> contextlib.AbstractContextManager[None]:
    """Around one attempt: tells the observers how it ended. The client enters it only
    when there are any: an attempt nobody watches pays nothing for it."""
    return _AttemptWatch(observers)
