"""The python examples in README.md and docs/*.md: found here, type-checked here.

Run from the repository root: `python docs/check_examples.py` (nox's typecheck session
does) runs `mypy --strict` on every one. Each example is a complete program that runs as
written (`asyncio.run(main())`, no top-level `await`); tests/test_examples.py runs each
as a subprocess against the simulator. The fence's info string says how an example runs:

    ```python            a program, run aimed at the simulator by BINGX_BASE_URL
    ```python pytest     a test file, run by pytest
    ```python no-run     needs what no test machine has (egress addresses, proxies, a
                         Redis Cluster): type-checked only; say why in the text around it
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(
    r"^```python(?P<info>[^\n]*)\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL
)
KINDS = ("run", "pytest", "no-run")


class Example(NamedTuple):
    page: Path
    line: int  # of the example's first line of code, in the page
    code: str
    kind: str  # one of KINDS

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def examples(page: Path) -> list[Example]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        kind = match.group("info").strip() or "run"
        line = text.count("\n", 0, match.start("code")) + 1
        found.append(Example(page, line, match.group("code"), kind))
    return found


def all_examples() -> list[Example]:
    return [example for page in PAGES for example in examples(page)]


def problems(example: Example) -> list[str]:
    """What keeps `example` from being a program that runs as written."""
    if example.kind not in KINDS:
        return [f"{example.name}: unknown kind {example.kind!r}; one of {', '.join(KINDS)}"]
    try:
        compile(example.code, example.name, "exec")
    except SyntaxError as exc:
        return [f"{example.name}: not a complete program ({exc.msg}, line {exc.lineno})"]
    return []


def main() -> int:
    found = all_examples()
    wrong = [problem for example in found for problem in problems(example)]
    for problem in wrong:
        print(problem)
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
            line = example.line + int(line_text) - 1
            message = f"{example.page.relative_to(ROOT)}:{line}:{detail}"
        print(message)
    print(f"{len(found)} examples from {len(PAGES)} pages")
    return result.returncode or (1 if wrong else 0)


if __name__ == "__main__":
    sys.exit(main())
