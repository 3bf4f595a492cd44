"""The benchmark tables in README.md and docs/ are the ones benchmarks/render_tables.py
writes from the committed results: a number in the docs is one that was measured."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location(
    "render_tables", ROOT / "benchmarks" / "render_tables.py"
)
assert _spec is not None and _spec.loader is not None
render_tables: Any = importlib.util.module_from_spec(_spec)
sys.modules["render_tables"] = render_tables  # dataclasses look their module up
_spec.loader.exec_module(render_tables)


def regions() -> list[tuple[Path, str]]:
    return [
        (page, match.group("name"))
        for page in render_tables.PAGES
        for match in render_tables.REGION.finditer(page.read_text(encoding="utf-8"))
    ]


def test_every_table_in_the_docs_is_what_the_results_say(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert render_tables.main(["--check"]) == 0, capsys.readouterr().out


def test_the_docs_hold_generated_tables_and_each_has_its_results() -> None:
    found = regions()
    assert len(found) >= 8
    names = {name for _, name in found}
    assert names <= set(render_tables.TABLES)
    for name in names:
        assert (render_tables.RESULTS / f"{render_tables.TABLES[name].results}.json").is_file()


def test_a_changed_number_is_found(capsys: pytest.CaptureFixture[str]) -> None:
    page, name = regions()[0]
    text = page.read_text(encoding="utf-8")
    table = render_tables.render(name)
    assert table in text
    # A hand edit of one cell, as when someone copies a newer number by hand.
    edited = text.replace(table, table.replace("|", "| 9", 1), 1)
    assert render_tables.rendered(edited) == text


def test_a_none_is_a_dash_a_missing_field_stops_and_a_table_name_must_exist() -> None:
    formatter = render_tables._Formatter()
    assert formatter.format("{ratio:.3f} / {ratio}", ratio=None) == "— / —"
    # A benchmark that renamed a field: its table would have read as dashes.
    with pytest.raises(SystemExit, match="names 'absent', which its row lacks"):
        formatter.format("{ratio} / {absent}", ratio=1)
    with pytest.raises(SystemExit, match="no table 'nonesuch'"):
        render_tables.render("nonesuch")


def test_a_figure_in_a_sentence_is_written_from_its_one_row() -> None:
    marker = "<!-- fig:peers_cpu client=ccxt; in_flight=1 | {cpu_vs_ccxt:.2f}x -->"
    edited = f"ccxt takes {marker}9.99x<!-- /fig --> its own CPU."
    assert render_tables.rendered(edited) == f"ccxt takes {marker}1.00x<!-- /fig --> its own CPU."
    with pytest.raises(SystemExit, match="picks 2 rows, not one"):
        render_tables.rendered("<!-- fig:peers_cpu client=ccxt | {cpu_us_median} -->1<!-- /fig -->")
    with pytest.raises(SystemExit, match="lacks"):
        render_tables.rendered("<!-- fig:nonesuch a=1 | {b} -->1<!-- /fig -->")


def test_the_docs_hold_figures_and_each_picks_its_row() -> None:
    found = [
        match
        for page in render_tables.PAGES
        for match in render_tables.FIGURE.finditer(page.read_text(encoding="utf-8"))
    ]
    assert len(found) >= 10
    for match in found:  # raises if a figure picks no row, or several
        render_tables.figure(match["results"], match["where"], match["template"])


@pytest.mark.parametrize(
    ("page", "why"),
    [
        # No closer: the lazy body ran on to the next figure's closer, deleting the prose.
        (
            "<!-- fig:peers_cpu client=ccxt; in_flight=1 | {cpu_us_median} -->1 kept prose "
            "<!-- fig:peers_cpu client=ccxt; in_flight=50 | {cpu_us_median} -->2<!-- /fig -->",
            "markers opens a figure but 1 are whole: look near line 1",
        ),
        ("a\n<!-- fig:peers-cpu client=ccxt | {x} -->1<!-- /fig -->", "look near line 2"),
        (
            "<!-- fig:peers_cpu client=ccxt; in_flight=1 | {cpu_us_median:>6} -->1<!-- /fig -->",
            "opens a figure",
        ),
        (
            "<!-- fig:peers_cpu client=ccxt; in_flight=1 | {cpu_us_median}-->1<!-- /fig -->",
            "opens a figure",
        ),
        ("<!-- bench:peers-cpu --> \n| x |\n<!-- /bench -->", "opens a table"),
        ("<!-- bench:peers-cpu -->\n| x |\n", "opens a table"),
        ("text <!-- /fig -->", "closes a figure"),
    ],
)
def test_a_marker_it_cannot_read_stops_it(page: str, why: str) -> None:
    with pytest.raises(SystemExit, match=re.escape(why)):
        render_tables.rendered(page)


def test_a_figure_picks_by_fields_its_rows_have_each_once() -> None:
    with pytest.raises(SystemExit, match=r"'clinet', which peers_cpu\.json's rows lack"):
        render_tables.figure("peers_cpu", "clinet=ccxt", "{cpu_us_median}")
    with pytest.raises(SystemExit, match="not distinct field=value pairs"):
        render_tables.figure("peers_cpu", "client=ccxt; in_flight=1; in_flight=50", "{x}")
    with pytest.raises(SystemExit, match="not distinct field=value pairs"):
        render_tables.figure("peers_cpu", "client", "{x}")
