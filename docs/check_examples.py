"""Type-check every ```python example in README.md and docs/*.md with `mypy --strict`.

Run from the repository root: `python docs/check_examples.py` (nox's typecheck session
does). An example written for an async context (top-level `await`, `async with`, as in
`python -m asyncio`) is checked as the body of an `async def`. A block right below
`<!-- not checked: why -->` is skipped: keep that for true fragments.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP_MARK = re.compile(r"<!--\s*not checked:.*-->")
FENCE = re.compile(r"^```python\s*$\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)


class Example(NamedTuple):
    page: Path
    line: int  # of the example's first line of code, in the page
    code: str
    wrapped: bool  # checked inside an `async def`, one line further down


def examples(page: Path) -> list[Example]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        if SKIP_MARK.fullmatch(before.strip()):
            continue
        line = text.count("\n", 0, match.start(1)) + 1
        code = match.group(1)
        wrapped = needs_async_context(code)
        if wrapped:
            code = "async def _example() -> None:\n" + textwrap.indent(code, "    ")
        found.append(Example(page, line, code, wrapped))
    return found


def needs_async_context(code: str) -> bool:
    try:
        compile(code, "<example>", "exec")
    except SyntaxError:
        # Parses only with top-level await allowed: it is written for an async context.
        compile(code, "<example>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        return True
    return False


def main() -> int:
    found = [example for page in PAGES for example in examples(page)]
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[str, Example] = {}
        for n, example in enumerate(found):
            file = Path(tmp) / f"example_{n}.py"
            file.write_text(example.code, encoding="utf-8")
            files[str(file)] = example
        result = subprocess.run(  # noqa: S603 - our own interpreter and temp files
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *files],
            capture_output=True,
            text=True,
            check=False,
        )
    # Point each message at the page and line it is about, not at the temporary file.
    for message in result.stdout.splitlines():
        path, sep, rest = message.partition(":")
        example = files.get(path)
        if example and sep:
            line_text, _, detail = rest.partition(":")
            line = example.line + int(line_text) - 1 - example.wrapped
            message = f"{example.page.relative_to(ROOT)}:{line}:{detail}"
        print(message)
    print(f"{len(found)} examples from {len(PAGES)} pages")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
