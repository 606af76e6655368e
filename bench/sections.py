"""BENCHMARKS.md holds the cycle benchmark's page plus sections written by
other benchmarks between `<!-- name:start -->` / `<!-- name:end -->` markers;
each benchmark rewrites only its own part."""
from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"<!-- (?P<name>[a-z0-9-]+):start -->.*?<!-- (?P=name):end -->\n?", re.S)


def marked_sections(path: Path) -> str:
    """Every marked section of the file, to keep when the page is rewritten."""
    if not path.exists():
        return ""
    return "".join(m.group(0) for m in _SECTION.finditer(path.read_text()))


def replace_section(path: Path, name: str, body: str) -> None:
    block = f"<!-- {name}:start -->\n{body.rstrip()}\n<!-- {name}:end -->\n"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- {name}:start -->.*?<!-- {name}:end -->\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)
