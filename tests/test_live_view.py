"""`watch` on a terminal: a spinner says what it is doing until the first round is read."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import pytest
from rich.console import RenderableType
from rich.text import Text

from bingx_assets._cli._render import live_view


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_the_waiting_line_shows_before_the_first_round_and_then_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")  # rich draws nothing live on a dumb one
    out = Terminal()
    seen_before_first: list[str] = []

    async def rounds() -> AsyncIterator[RenderableType]:
        await asyncio.sleep(1.0)  # the first round takes a while to read
        seen_before_first.append(out.getvalue())
        yield Text("round 1 table")
        yield Text("round 2 table")

    await live_view(rounds(), out, "reading 4 keys ...")
    assert "reading 4 keys ..." in seen_before_first[0]
    assert "round 1 table" not in seen_before_first[0]
    shown = out.getvalue()
    assert shown.index("reading 4 keys") < shown.index("round 1 table") < shown.index("round 2")


async def test_piped_output_gets_the_tables_only() -> None:
    out = io.StringIO()

    async def rounds() -> AsyncIterator[RenderableType]:
        yield Text("round 1 table")

    await live_view(rounds(), out, "reading 4 keys ...")
    assert out.getvalue() == "round 1 table\n"
