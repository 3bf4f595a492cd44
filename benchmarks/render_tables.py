"""Write the benchmark tables in README.md and docs/*.md from `benchmarks/results/`.

A table in a page lives between two markers, and everything between them is this
script's to write:

    <!-- bench:NAME -->
    | heading | ... |
    <!-- /bench -->

NAME is a key of `TABLES` below: which results file the rows come from
(`benchmarks/results/<results>.json`, a list of objects as `_report.report` writes it),
which rows to keep (`where`: a function of the row, true to keep it; all rows without
one), and the columns: a heading and a `str.format` template over the row's fields
(`"{elapsed_s:.2f} s"`). A field that is None shows as an em dash; one the row lacks
stops the script (a benchmark renamed it).

To add a table: run its benchmark (its JSON lands in results/, committed with the
change), add a `Table` here, put the markers where it goes, and run
`python benchmarks/render_tables.py`.

A number in a sentence is written the same way, from one row of a results file:

    takes <!-- fig:peers_cpu client=ccxt; in_flight=1 | {cpu_us_median} µs -->570 µs<!-- /fig -->

`fig:` names the results file; before the `|`, `field=value` pairs separated by `;`
pick exactly one row (each value compared as text; each field once, and in every row);
after it, the template, on one line and without `>`. The comments are invisible in the
rendered page; the text between them is this script's. A marker it cannot read (a
misspelt name, a missing closer) stops it, rather than being left unchecked.

`--check` writes nothing and exits 1 when a page differs from what would be written
(tests/test_benchmark_tables.py runs it), so a number in the docs is always one that
was measured, in the run whose results are committed.
"""

from __future__ import annotations

import json
import re
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A body never holds another marker: an opener whose closer is missing matches nothing
# (and is reported) rather than running on to the next marker's closer over the prose.
_BODY = r"(?:(?!<!--).)*?"
REGION = re.compile(rf"(<!-- bench:(?P<name>[\w-]+) -->\n)(?P<body>{_BODY})(<!-- /bench -->)", re.S)
FIGURE = re.compile(
    r"(<!-- fig:(?P<results>\w+) (?P<where>[^|>\n]*)\|(?P<template>[^>\n]*?) -->)"
    rf"(?P<body>{_BODY})(<!-- /fig -->)",
    re.S,
)
_MARKS = {
    "a table": (re.compile(r"<!-- bench:"), REGION, "<!-- /bench -->"),
    "a figure": (re.compile(r"<!-- fig:"), FIGURE, "<!-- /fig -->"),
}
MISSING = "—"


Row = dict[str, Any]


@dataclass(frozen=True)
class Table:
    results: str
    columns: tuple[tuple[str, str], ...]
    where: Callable[[Row], bool] = field(default=lambda row: True)
    rows: Callable[[Any], list[Row]] = field(default=lambda results: list(results))
    """The rows from the file's JSON, when it is not already a list of them."""


def _mutation_rows(results: dict[str, Any]) -> list[Row]:
    """A row per module of `_mutation_report.py`'s file: survivors and unreached
    mutants are "explained" when their fate says why, else "to kill"."""
    rows = []
    for module, entry in results["modules"].items():
        unreached = entry["no_tests_mutants"]
        fates = [
            *entry["survivors"].values(),
            *(unreached.values() if isinstance(unreached, dict) else ["to kill"] * len(unreached)),
        ]
        to_kill = sum(1 for fate in fates if fate.startswith("to kill"))
        # A run over some functions only says which (`_mutation_report.PARTS`).
        label = f"`{module}`" + (f" ({entry['part']})" if entry.get("part") else "")
        rows.append(
            {**entry, "module": label, "explained": len(fates) - to_kill, "to_kill": to_kill}
        )
    return rows


def _readme_limits(row: Row) -> bool:
    """The README's few rows: on time, 100 ms late, a cold start (both rules), baselines."""
    if row["rule"] == "baseline" or (row["scenario"], row["rule"]) == ("1 key", "safe"):
        return True
    late_100 = "every request late" in row["scenario"] and row["late_s"] == 0.1
    cold = row["scenario"] == "1 key, first 5 late" and row["late_s"] == 0.4
    return (late_100 and row["rule"] == "safe") or cold


_LIMITS_COLUMNS = (
    ("scenario", "{scenario}"),
    ("rule", "{rule}"),
    ("late", "{late_s:g} s"),
    ("calls", "{calls}"),
    ("time / physical minimum", "{ratio:.3f}"),
    ("refused", "{rejections}"),
    ("failed", "{failed}"),
)

TABLES: dict[str, Table] = {
    "limits-readme": Table("limits", _LIMITS_COLUMNS, where=_readme_limits),
    "limits": Table(
        "limits",
        (
            *_LIMITS_COLUMNS[:3],
            ("round trip", "{rtt_s:g} s"),
            *_LIMITS_COLUMNS[3:],
            ("busiest second", "{peak_per_1s}"),
        ),
    ),
    "fanout": Table(
        "fanout",
        (
            ("keys", "{keys}"),
            ("UIDs", "{uids}"),
            ("rounds", "{rounds}"),
            ("first requests 0.4 s late", "{late_first}"),
            ("cores kept busy", "{busy_cores}"),
            ("elapsed", "{elapsed_s:.2f} s"),
            ("minimum", "{minimum_s:g} s"),
            ("ratio", "{ratio:.3f}"),
            ("reads ok", "{ok}"),
            ("errors", "{errors}"),
            ("rejections", "{rejections}"),
        ),
    ),
    "egress": Table(
        "egress",
        (
            ("routes", "{routes}"),
            ("elapsed", "{elapsed_s:.2f} s"),
            ("IP windows' minimum", "{minimum_s:g} s"),
            ("ratio", "{ratio:.3f}"),
            ("keys/s", "{keys_per_s:.1f}"),
            ("bound keys/s", "{bound_keys_per_s:.1f}"),
            ("speedup", "{speedup:.2f}"),
            ("rejections", "{rejections}"),
            ("UIDs on 2+ addresses", "{uids_on_2+_addresses}"),
            ("busiest second per address", "{peak_per_address} of {limit}"),
        ),
    ),
    "mutation": Table(
        "mutation",
        (
            ("module", "{module}"),
            ("run on", "{commit}"),
            ("mutants", "{checked}"),
            ("killed", "{killed}"),
            ("survived or unreached, explained", "{explained}"),
            ("to kill", "{to_kill}"),
            ("score", "{score:.0%}"),
        ),
        rows=_mutation_rows,
    ),
    "host-store-cost": Table(
        "host_store_cost",
        (
            ("backend", "{backend}"),
            ("µs per call (median)", "{median_us_per_call:.1f}"),
            ("min-max", "{min_us:.1f}-{max_us:.1f}"),
            ("added µs", "{added_us:.1f}"),
            ("ratio to memory", "{ratio_to_memory:.2f}"),
        ),
    ),
    "host-store-stall": Table(
        "host_store_stall",
        (
            ("processes", "{processes}"),
            ("calls", "{calls:,}"),
            ("longest stall ms", "{longest_stall_ms:.1f}"),
            ("p99 stall ms", "{p99_stall_ms:.3f}"),
            ("calls per s", "{calls_per_s:,}"),
        ),
    ),
    "host-store-runs": Table(
        "host_store_runs",
        (
            ("runs at once", "{runs}"),
            ("requests", "{requests}"),
            ("span s", "{span_s:.3f}"),
            ("minimum s", "{minimum_s:.1f}"),
            ("ratio", "{ratio:.3f}"),
            ("refusals", "{refusals}"),
        ),
    ),
    "redis-overhead": Table(
        "redis_overhead",
        (
            ("backend", "{backend}"),
            ("median µs per acquire + settle", "{median_us_per_call:.1f}"),
            ("min-max µs", "{min_us:.1f}-{max_us:.1f}"),
            ("ratio to memory", "{ratio_to_memory:.2f}"),
            ("CPU µs", "{cpu_us_per_call:.1f}"),
            ("CPU µs added to memory's", "{cpu_added_us:.1f}"),
        ),
    ),
    "redis-processes": Table(
        "redis_processes",
        (
            ("processes", "{processes}"),
            ("calls", "{calls}"),
            ("elapsed", "{elapsed_s:.2f} s"),
            ("minimum", "{minimum_s:g} s"),
            ("ratio", "{ratio:.3f}"),
            ("rejections", "{rejections}"),
            ("busiest second", "{peak_per_1s}"),
        ),
    ),
    "metrics": Table(
        "metrics",
        (
            ("", "{client}"),
            ("µs per call (median)", "{median_us_per_call:.1f}"),
            ("min-max", "{min_us:.1f}-{max_us:.1f}"),
            ("metrics' cost, µs", "{cost_us:.1f}"),
            ("ratio", "{ratio:.3f}"),
        ),
    ),
    "uid-cache": Table(
        "uid_cache",
        (
            ("a new process, each key its own UID", "uids {uids}, {keys} keys"),
            ("lookups", "{lookups}"),
            ("first balance", "{first_balance_s:.2f} s"),
            ("300th balance", "{balance_300_s:.2f} s"),
            ("every key's balance", "{all_balances_s:.1f} s"),
            ("unchecked over cached", "{unchecked_over_cached:.2f}"),
            ("rejections", "{rejections}"),
        ),
    ),
    "peers-cpu": Table(
        "peers_cpu",
        (
            ("client", "{client}"),
            ("in flight", "{in_flight}"),
            ("CPU µs (median)", "{cpu_us_median}"),
            ("min-max", "{cpu_us_min_max}"),
            ("wall µs", "{wall_us_median}"),
            ("CPU vs bare call on the same library", "{cpu_vs_bare_same_library:.2f}"),
            ("CPU vs ccxt", "{cpu_vs_ccxt:.2f}"),
        ),
    ),
    "peers-cpu-readme": Table(
        "peers_cpu",
        (
            ("client", "{client}"),
            ("in flight", "{in_flight}"),
            ("CPU µs (median)", "{cpu_us_median}"),
            ("CPU vs ccxt", "{cpu_vs_ccxt:.2f}"),
        ),
        # ccxt, what a user gets without choosing, and with an aiohttp session or an httpx
        # client of theirs (limited in memory)
        where=lambda row: (
            row["client"]
            in {
                "ccxt",
                "bingx-assets (default: aiohttp, host store)",
                "bingx-assets on aiohttp",
                "bingx-assets on httpx",
            }
        ),
    ),
    "profile": Table(
        "profile",
        (
            ("in flight", "{in_flight}"),
            ("part", "{part}"),
            ("share", "{share:.3f}"),
            ("µs per call", "{us_per_call:.1f}"),
        ),
    ),
    "windows": Table(
        "windows",
        (
            ("alive slots", "{alive_slots:,}"),
            ("µs per acquire + settle", "{us_per_acquire_settle:.2f}"),
            ("ratio to 1", "{ratio_to_1:.2f}"),
        ),
    ),
    "scaling": Table(
        "scaling",
        (
            ("transport", "{transport}"),
            ("keys", "{keys:,}"),
            ("UIDs", "{uids:,}"),
            ("CPU µs per call", "{cpu_us_per_call}"),
            ("RSS KiB per key", "{rss_kib_per_key:.1f}"),
            ("wall / minimum", "{ratio:.2f}"),
            ("CPU exponent in N", "{cpu_exponent:.2f}"),
        ),
    ),
    "peers-import": Table(
        "peers_import",
        (
            ("module", "`{module}`"),
            ("median", "{median_ms:.0f} ms"),
            ("min-max", "{min_max_ms} ms"),
            ("ratio to ccxt", "{ratio_to_ccxt:.2f}"),
            ("imports aiohttp", "{imports_aiohttp}"),
        ),
    ),
    "peers-utilisation": Table(
        "peers_utilisation",
        (
            ("scenario", "{scenario}"),
            ("client", "{client}"),
            ("elapsed", "{elapsed_s:.2f} s"),
            ("ratio", "{ratio_to_minimum:.3f}"),
            ("rejected", "{rejected}"),
        ),
    ),
    "peers-memory": Table(
        "peers_memory",
        (("client", "{client}"), ("MiB per 1,000 keys", "{MiB:.1f}")),
    ),
}


class _Formatter(string.Formatter):
    """str.format, with an em dash for a field that is None."""

    def get_value(self, key: int | str, args: Any, kwargs: Any) -> Any:
        if isinstance(key, str) and key not in kwargs:
            # A benchmark that renamed a field would otherwise leave a table of dashes.
            raise SystemExit(f"a template names {key!r}, which its row lacks: {sorted(kwargs)}")
        return super().get_value(key, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> str:
        return MISSING if value is None else super().format_field(value, format_spec)


def results_of(name: str) -> Any:
    """The JSON of `benchmarks/results/<name>.json`, which a table or a figure names."""
    path = RESULTS / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"{path.name} is named here but benchmarks/results/ lacks it")
    return json.loads(path.read_text(encoding="utf-8"))


def rows_of(table: Table) -> list[Row]:
    kept = [row for row in table.rows(results_of(table.results)) if table.where(row)]
    if not kept:
        raise SystemExit(f"{table.results}.json: no row is kept by its table's `where`")
    return kept


def render(name: str) -> str:
    table = TABLES.get(name)
    if table is None:
        raise SystemExit(f"no table {name!r} in benchmarks/render_tables.py's TABLES")
    formatter = _Formatter()
    lines = [
        "| " + " | ".join(heading for heading, _ in table.columns) + " |",
        "|" + " --- |" * len(table.columns),
    ]
    for row in rows_of(table):
        cells = [formatter.format(template, **row) for _, template in table.columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(results: str, where: str, template: str) -> str:
    """One number in a sentence: `template` over the one row of `results` that every
    `field=value` of `where` picks."""
    rows = results_of(results)
    pairs = [pair.partition("=") for pair in where.split(";") if pair.strip()]
    wanted = {field.strip(): value.strip() for field, _, value in pairs}
    if len(wanted) != len(pairs) or any(not sep for _, sep, _ in pairs):
        raise SystemExit(f"a figure's {where.strip()!r} is not distinct field=value pairs")
    for name in wanted:
        if any(name not in row for row in rows):
            raise SystemExit(f"a figure picks by {name!r}, which {results}.json's rows lack")
    picked = [row for row in rows if all(str(row[f]) == value for f, value in wanted.items())]
    if len(picked) != 1:
        raise SystemExit(f"{results}.json: {where.strip()!r} picks {len(picked)} rows, not one")
    return _Formatter().format(template.strip(), **picked[0])


def _check_markers(text: str) -> None:
    """Every opener and closer in the page belongs to a marker this script writes: one
    it cannot read (a misspelt name, a `>` in a template, a missing closer) would be left
    as it is, unchecked."""
    for kind, (opener, marker, closer) in _MARKS.items():
        whole = marker.findall(text)
        for count, what in ((len(opener.findall(text)), "opens"), (text.count(closer), "closes")):
            if count != len(whole):
                first = next(
                    (m.start() for m in opener.finditer(text) if not marker.match(text, m.start())),
                    0,
                )
                line = text.count("\n", 0, first) + 1
                raise SystemExit(
                    f"{count} markers {what} {kind} but {len(whole)} are whole: "
                    f"look near line {line}"
                )


def rendered(text: str) -> str:
    _check_markers(text)
    text = REGION.sub(lambda m: m.group(1) + render(m.group("name")) + m.group(4), text)
    return FIGURE.sub(
        lambda m: (
            m.group(1)
            + figure(m.group("results"), m.group("where"), m.group("template"))
            + m.group(6)
        ),
        text,
    )


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    stale = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        new = rendered(text)
        if new != text:
            stale.append(page.relative_to(ROOT))
            if not check:
                page.write_text(new, encoding="utf-8")
    if check and stale:
        print(f"tables differ from benchmarks/results/ in: {', '.join(map(str, stale))}")
        print("run: python benchmarks/render_tables.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
