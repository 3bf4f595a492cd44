"""How the command line shows results: rich tables, JSON lines, a progress bar, a live view.

Only the command line imports this module (and rich): `import bingx_assets` stays light.
Every string from a server or a file goes through `printable` before it is shown, and
nothing is ever cut to fit: a table too wide for the terminal (or for the 80 columns a
pipe or cron job gets) becomes one block per key, in which long lines wrap.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TextIO

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from .._exceptions import APIError, RateLimitError
from .._models import exact_sum
from .._pool import KeyResult
from .._printable import printable

__all__ = [
    "Totals",
    "console_for",
    "error_text",
    "json_document",
    "live_view",
    "progress",
    "results_table",
]

# Below this many keys a run is quick enough to need no progress bar.
_PROGRESS_FROM = 20
_MISSING = "—"
_UNBOUNDED = 1 << 20


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


def error_text(error: BaseException | None) -> str:
    """An error as a person reads it. A rate-limit message already says which UID, until
    when and what happens next; other errors keep their type, which names the remedy
    in docs/errors.md."""
    if isinstance(error, RateLimitError):
        return printable(str(error))
    return f"{type(error).__name__}: {printable(str(error))}"


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
            failed: dict[str, object] = {
                "label": r.label,
                "ok": False,
                "error": _error_json(r.error),
            }
            if r.retry_at is not None:  # not in the next round: when the key is sent again
                failed["retry_at"] = r.retry_at.isoformat(timespec="seconds")
            keys.append(failed)
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
    """One row per key: a column per account type, the key's total, and its error; one
    block per key instead where that table would not fit the width.

    Every amount is shown at one precision (the most significant decimals any of them
    has), so the columns line up and no digit BingX sent is dropped. Account types that
    are zero in every key are left out when others are not, and named below the table.
    """
    totals = Totals.of(results)
    names = _account_types(results)
    shown = [n for n in names if totals.by_type.get(n)] or names
    hidden = [n for n in names if n not in shown]
    places = _places(results)
    note = Text(f"zero in every key: {', '.join(map(printable, hidden))}", style="dim")
    table: RenderableType = _table(results, totals, shown, places, title)
    if hidden:
        # Below the table rather than its caption, which would wrap at the table's width.
        table = Group(table, note)

    def blocks(width: int) -> RenderableType:
        shown_blocks = _blocks(results, totals, shown, places, title, width)
        return Group(shown_blocks, note) if hidden else shown_blocks

    return _FitsTheWidth(table, blocks)


class _FitsTheWidth:
    """`table` where every column fits whole; else `blocks` for that width. Decided
    when printed, at the console's width: a live view's terminal can be resized."""

    def __init__(self, table: RenderableType, blocks: Callable[[int], RenderableType]) -> None:
        self.table, self.blocks = table, blocks

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        # Measured unbounded: Measurement.get clamps to the width it is given.
        unbounded = options.update(width=_UNBOUNDED)
        needed = Measurement.get(console, unbounded, self.table).minimum
        yield self.table if needed <= options.max_width else self.blocks(options.max_width)


def _table(
    results: Sequence[KeyResult],
    totals: Totals,
    shown: list[str],
    places: int,
    title: str | None,
) -> Table:
    failures = any(r.overview is None for r in results)
    table = Table(
        title=title,
        box=box.SIMPLE,
        show_edge=False,
        show_footer=len(results) > 1,
        title_justify="left",
    )
    # no_wrap, as the amounts: rich would otherwise narrow a long label to "…" to make
    # room for the error column, where the blocks below keep it whole.
    table.add_column("key", "TOTAL", no_wrap=True)
    for name in shown:
        footer = _amount(totals.by_type.get(name), places, totals)
        # An account type is the server's text: it reaches the terminal only printable.
        # Text, not a str: rich would read "[/x]" or "[link=...]" in it as markup.
        table.add_column(Text(printable(name)), footer, justify="right", no_wrap=True)
    table.add_column("total", _amount(totals.total, places, totals), justify="right",
                     no_wrap=True, style="bold")  # fmt: skip
    if failures:
        table.add_column("error", _partial(totals, len(results)),
                         style="red", overflow="fold")  # fmt: skip

    for r in results:
        label = Text(printable(r.label))  # a label from a keys file is anyone's text
        if r.overview is not None:
            values = r.overview.as_dict()
            cells = [_format(values.get(n), places) for n in shown]
            row: list[Text | str] = [label, *cells, _format(r.overview.total, places)]
        else:
            row = [label, *([_MISSING] * len(shown)), _MISSING]
        if failures:
            row.append(Text(error_text(r.error)) if r.error is not None else Text(""))
        table.add_row(*row)
    return table


def _blocks(
    results: Sequence[KeyResult],
    totals: Totals,
    shown: list[str],
    places: int,
    title: str | None,
    width: int,
) -> Group:
    """Each key as a few lines (its label, then one line per amount, or its error), and
    the TOTAL block last: what the table shows, in `width` columns. Amounts line up on
    the right where they fit; where they don't, an amount wraps to a line of its own,
    whole."""
    names = [printable(n) for n in shown]
    name_width = max(map(len, [*names, "total", "error"]))
    rows: list[tuple[str, list[str] | str]] = []  # a label and its amounts, or its error
    for r in results:
        if r.overview is not None:
            values = r.overview.as_dict()
            amounts = [_format(values.get(name), places) for name in shown]
            rows.append((r.label, [*amounts, _format(r.overview.total, places)]))
        else:
            rows.append((r.label, error_text(r.error)))
    if len(results) > 1:
        by_type = [_amount(totals.by_type.get(name), places, totals) for name in shown]
        rows.append(("TOTAL", [*by_type, _amount(totals.total, places, totals)]))
    digits = max((len(a) for _, cells in rows if isinstance(cells, list) for a in cells), default=0)
    if 2 + name_width + 2 + digits > width:
        digits = 0  # right-aligned, they would wrap as a line of spaces and a number

    lines: list[Text] = [Text(title)] if title else []
    for label, cells in rows:
        lines.append(Text(printable(label), style="bold"))
        if isinstance(cells, str):
            lines.append(Text(f"  {'error'.ljust(name_width)}  {cells}", style="red"))
            continue
        for name, amount in zip([*names, "total"], cells, strict=True):
            style = "bold" if name == "total" else ""
            lines.append(Text(f"  {name.ljust(name_width)}  {amount.rjust(digits)}", style=style))
    if len(results) > 1 and not totals.complete:
        lines.append(Text(f"  {_partial(totals, len(results))}", style="red"))
    return Group(*lines)


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
    if value is None:
        return _MISSING
    if value.is_zero():
        value = value.copy_abs()  # BingX's "-0" is no debt: a person reads "-0.0" as one
    return f"{value:.{places}f}"


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
