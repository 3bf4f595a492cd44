"""Check a built docs site loads nothing from another host: `python docs/check_site.py site`.

nox's docs session runs it after `mkdocs build`. A page may link out (`<a href>`), but
no script, stylesheet, font, image or frame may come from an http(s) URL: the site works
from file:// and sends nothing anywhere.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# Anything the browser fetches by itself: <script src>, <link href> (stylesheets, fonts,
# icons, preloads), <img>/<iframe>/<source> src, and CSS url(...) or @import.
_LOADED = re.compile(
    r"<(?:script|img|iframe|source|embed)\b[^>]*\bsrc=[\"']?(https?:)?//"
    r"|<link\b[^>]*\bhref=[\"']?(https?:)?//"
    r"|url\(\s*[\"']?(https?:)?//"
    r"|@import\s+[\"']?(https?:)?//",
    re.IGNORECASE,
)


def third_party_loads(site: Path) -> list[str]:
    found = []
    for path in sorted(site.rglob("*")):
        if path.suffix not in (".html", ".css"):
            continue
        for match in _LOADED.finditer(path.read_text(encoding="utf-8", errors="replace")):
            found.append(f"{path.relative_to(site)}: {match.group(0)}")
    return found


def main(argv: list[str]) -> int:
    site = Path(argv[0] if argv else "site")
    found = third_party_loads(site)
    for line in found:
        print(line)
    pages = len(list(site.rglob("*.html")))
    print(f"{pages} pages, {len(found)} loads from another host")
    return 1 if found or not pages else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
