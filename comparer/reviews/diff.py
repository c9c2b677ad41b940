"""Word-level diff of two outputs as HTML, so a reviewer sees where they part ways."""

from __future__ import annotations

import difflib
import html
import re

STYLE_A = "background:#fdd;text-decoration:line-through"
STYLE_B = "background:#dfd"


def _words(text: str) -> list[str]:
    return re.findall(r"\S+|\s+", text)


def diff_html(left: str, right: str) -> str:
    """Words only in the left output struck through in red, only in the right in green."""
    a, b = _words(left), _words(right)
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            parts.append(html.escape("".join(a[i1:i2])))
            continue
        if i2 > i1:
            parts.append(f'<span style="{STYLE_A}">{html.escape("".join(a[i1:i2]))}</span>')
        if j2 > j1:
            parts.append(f'<span style="{STYLE_B}">{html.escape("".join(b[j1:j2]))}</span>')
    return f'<div style="white-space:pre-wrap;font-family:monospace">{"".join(parts)}</div>'


def similarity(left: str, right: str) -> float:
    return difflib.SequenceMatcher(a=_words(left), b=_words(right), autojunk=False).ratio()
