"""Print the N-th (1-based) fenced code block of README.md's "## Set-up" section.

CI executes the README's set-up commands verbatim with it (``.ci/run``); tests/test_readme.py
checks the blocks' shape with the same parser. Standard library only: it runs before any
virtual environment exists.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def fenced_blocks(markdown: str, section: str) -> list[str]:
    """The fenced code blocks of the ``## <section>`` part of a Markdown text."""
    match = re.search(rf"^## {re.escape(section)}.*?$(.*?)(?=^## |\Z)", markdown, flags=re.M | re.S)
    if not match:
        raise SystemExit(f"README.md has no '## {section}' section")
    return [b.strip() for b in re.findall(r"^```[^\n]*\n(.*?)^```", match.group(1), flags=re.M | re.S)]


def setup_block(n: int) -> str:
    blocks = fenced_blocks(README.read_text(encoding="utf-8"), "Set-up")
    if not 1 <= n <= len(blocks):
        raise SystemExit(f"README.md's Set-up has {len(blocks)} code blocks; block {n} asked for")
    return blocks[n - 1]


if __name__ == "__main__":
    print(setup_block(int(sys.argv[1])))
