"""How the command line shows results: rich tables, JSON lines, a progress bar, a live view.

Only the command line imports this module (and rich): `import bingx_assets` stays light.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from .._exceptions import APIError, RateLimitError
from .._models import exact_sum
from .._pool import KeyResult

__all__ = [
    "Totals",
    "console_for",
    "error_text",
    "json_document",
    "live_view",
    "one_line",
    "progress",
    "results_table",
]

# Below this many keys a run is quick enough to need no progress bar.
_PROGRESS_FROM = 20
_MISSING = "—"


@dataclass(frozen=True)
class Totals:
    """The sum over the keys that were read; `failed` keys are not in it."""

    total: Decimal | None
    by_type: dict[str, Decimal]
    read: int
    failed: int

    @classmethod
    def of(cls, results: Sequence[KeyResult]) -> Totals:
        by_type: dict[str, Decimal] = {}
        read = [r.overview for r in results if r.overview is not None]
        for overview in read:
            for name, value in overview.as_dict().items():
                by_type[name] = exact_sum((by_type.get(name, Decimal(0)), value))
        total = exact_sum(o.total for o in read) if read else None
        return cls(total, by_type, len(read), len(results) - len(read))

    @property
    def complete(self) -> bool:
        return self.failed == 0


def one_line(text: str) -> str:
    """BingX's messages and HTML bodies may hold line breaks, and a terminal should never
    get control characters from a server: printable characters on one line."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def error_text(error: BaseException | None) -> str:
    """An error as a person reads it. A rate-limit message already says which UID, until
    when and what happens next; other errors keep their type, which names the remedy
    in docs/errors.md."""
    if isinstance(error, RateLimitError):
        return one_line(str(error))
    return f"{type(error).__name__}: {one_line(str(error))}"


# -- JSON -------------------------------------------------------------------------


def json_document(results: Sequence[KeyResult], **extra: object) -> str:
    """One line of JSON: every key, and the total over the keys that were read."""
    keys: list[dict[str, object]] = []
    for r in results:
        if r.overview is not None:
            balances = {k: f"{v:f}" for k, v in r.overview.as_dict().items()}
            keys.append({"label": r.label, "ok": True, "account_types": balances,
                         "total": f"{r.overview.total:f}"})  # fmt: skip
        else:
            keys.append({"label": r.label, "ok": False, "error": _error_json(r.error)})
    totals = Totals.of(results)
    document = {
        **extra,
        "keys": keys,
        "total": None if totals.total is None else f"{totals.total:f}",
        "complete": totals.complete,
        "failed": totals.failed,
    }
    return json.dumps(document)


def _error_json(error: Exception | None) -> dict[str, object]:
    shown: dict[str, object] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, APIError):
        shown["code"] = error.code
    if isinstance(error, RateLimitError) and error.unblock_at_ms is not None:
        shown["unblock_at_ms"] = error.unblock_at_ms
    return shown


# -- tables -----------------------------------------------------------------------


def console_for(file: TextIO) -> Console:
    """A console on `file`: as wide as the terminal (off one, `COLUMNS` or 80), colour
    only on a terminal, and no guessing at what looks like a number or a URL."""
    return Console(file=file, highlight=False)


def results_table(results: Sequence[KeyResult], *, title: str | None = None) -> RenderableType:
    """One row per key: a column per account type, the key's total, and its error.

    Every amount is shown at one precision (the most significant decimals any of them
    has), so the columns line up and no digit BingX sent is dropped. Account types that
    are zero in every key are left out when others are not, and named below the table.
    """
    totals = Totals.of(results)
    names = _account_types(results)
    shown = [n for n in names if totals.by_type.get(n)] or names
    hidden = [n for n in names if n not in shown]
    places = _places(results)
    failures = any(r.overview is None for r in results)

    table = Table(
        title=title,
        box=box.SIMPLE,
        show_edge=False,
        show_footer=len(results) > 1,
        title_justify="left",
    )
    table.add_column("key", "TOTAL")
    for name in shown:
        footer = _amount(totals.by_type.get(name), places, totals)
        table.add_column(name, footer, justify="right", no_wrap=True)
    table.add_column("total", _amount(totals.total, places, totals), justify="right",
                     no_wrap=True, style="bold")  # fmt: skip
    if failures:
        table.add_column("error", _partial(totals, len(results)),
                         style="red", overflow="fold")  # fmt: skip

    for r in results:
        label = Text(one_line(r.label))  # a label from a keys file is anyone's text
        if r.overview is not None:
            values = r.overview.as_dict()
            cells = [_format(values.get(n), places) for n in shown]
            row: list[Text | str] = [label, *cells, _format(r.overview.total, places)]
        else:
            row = [label, *([_MISSING] * len(shown)), _MISSING]
        if failures:
            row.append(Text(error_text(r.error)) if r.error is not None else Text(""))
        table.add_row(*row)
    if not hidden:
        return table
    # Below the table rather than its caption, which would wrap at the table's width.
    return Group(table, Text(f"zero in every key: {', '.join(hidden)}", style="dim"))


def _partial(totals: Totals, keys: int) -> str:
    """Under the error column: what the TOTAL row leaves out."""
    if totals.read == 0:
        return "no key was read"
    return f"partial: {totals.read} of {keys} keys ({totals.failed} failed)"


def _account_types(results: Sequence[KeyResult]) -> list[str]:
    names: dict[str, None] = {}  # in the order BingX sent them
    for r in results:
        if r.overview is not None:
            names.update(dict.fromkeys(r.overview.as_dict()))
    return list(names)


def _places(results: Sequence[KeyResult]) -> int:
    """The most decimals any amount needs: trailing zeros are BingX's padding, not digits."""
    values = [v for r in results if r.overview is not None for v in r.overview.as_dict().values()]
    return max((_decimals(v) for v in values if v.is_finite()), default=0)


def _decimals(value: Decimal) -> int:
    # Counted on the digits, not by normalize(), which rounds past the context's precision.
    _, digits, exponent = value.as_tuple()
    significant = "".join(map(str, digits)).rstrip("0")
    if not significant or not isinstance(exponent, int):
        return 0
    return max(0, -exponent - (len(digits) - len(significant)))


def _format(value: Decimal | None, places: int) -> str:
    return _MISSING if value is None else f"{value:.{places}f}"


def _amount(value: Decimal | None, places: int, totals: Totals) -> str:
    if totals.read == 0:
        return _MISSING
    return _format(value if value is not None else Decimal(0), places)


# -- progress and live view ---------------------------------------------------------


@contextmanager
def progress(keys: int, err: TextIO) -> Iterator[Callable[[], None]]:
    """A progress bar on `err` for a long run on a terminal; otherwise nothing."""
    if keys < _PROGRESS_FROM or not err.isatty():
        yield lambda: None
        return
    bar = Progress(
        TextColumn("reading keys"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=err),
        transient=True,
    )
    with bar:
        task = bar.add_task("keys", total=keys)
        yield lambda: bar.advance(task)


async def live_view(tables: AsyncIterator[RenderableType], out: TextIO, waiting: str = "") -> None:
    """Each table as it comes: in place on a terminal, one after another elsewhere.
    On a terminal, `waiting` (with a spinner) fills the screen until the first one."""
    console = console_for(out)
    if not out.isatty():
        async for table in tables:
            console.print(table)
            out.flush()
        return
    rounds = aiter(tables)
    first: RenderableType | None = None
    if waiting:
        with Live(Spinner("dots", waiting), console=console, transient=True):
            first = await anext(rounds, None)
            if first is None:
                return
    # No refresh thread from here on: a table changes only when a round ends.
    with Live(console=console, auto_refresh=False, vertical_overflow="visible") as live:
        if first is not None:
            live.update(first, refresh=True)
        async for table in rounds:
            live.update(table, refresh=True)
