"""The two outputs side by side as HTML, with the passages they share highlighted in both.

Two language models given one prompt rarely write the same sentence, so an inline word diff of their
outputs is mostly strike-through and says little. Reading them in two columns, with each run of at
least ``MIN_SHARED_WORDS`` words that both contain marked in both, shows where they agree; when they
share no such run the view says "no meaningful overlap" instead of marking everything.
"""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass

MIN_SHARED_WORDS = 3  # shorter common runs ("of the", "and") are chance, not agreement
CLOSE_RATIO = 0.7  # difflib ratio above which two outputs are variants of one text
MARK_STYLE = "background:#fde68a;border-radius:2px"
COLUMNS_STYLE = "display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:12px"
TEXT_STYLE = "white-space:pre-wrap;font-family:monospace;border:1px solid #ddd;border-radius:4px;padding:8px"


@dataclass
class Passage:
    """A run of ``words`` words found at word ``left_start`` in the left output and ``right_start`` in the right."""
    left_start: int
    right_start: int
    words: int


def _tokens(text: str) -> list[str]:
    """Words with the whitespace after them (any leading whitespace rides on the first), so joining the
    tokens gives the text back exactly."""
    tokens = re.findall(r"\s*\S+\s*", text) if text.strip() else [text]
    return [t for t in tokens if t] or [""]


def shared_passages(left: str, right: str, min_words: int = MIN_SHARED_WORDS) -> list[Passage]:
    """Runs of identical words in both outputs (difflib on words, whitespace ignored): runs of at least
    ``min_words`` (fewer when a whole output is shorter), or of any length when most words agree
    (``CLOSE_RATIO``: two near-identical outputs, where every common word is agreement, not chance)."""
    a, b = [t.strip() for t in _tokens(left)], [t.strip() for t in _tokens(right)]
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    need = 1 if matcher.ratio() >= CLOSE_RATIO else max(1, min(min_words, sum(map(bool, a)), sum(map(bool, b))))
    return [Passage(i, j, n) for i, j, n in matcher.get_matching_blocks() if n >= need and any(a[i:i + n])]


def similarity(left: str, right: str) -> float:
    """Fraction of words in common, difflib's ratio over the two word sequences (0 to 1)."""
    a, b = [t.strip() for t in _tokens(left)], [t.strip() for t in _tokens(right)]
    return difflib.SequenceMatcher(a=a, b=b, autojunk=False).ratio()


def _column(text: str, starts: list[tuple[int, int]], label: str) -> str:
    tokens = _tokens(text)
    marked = {}
    for number, (start, words) in enumerate(starts, 1):
        for k in range(start, start + words):
            marked[k] = number
    parts, k = [], 0
    while k < len(tokens):  # consecutive tokens of one passage go into one <mark>
        number, end = marked.get(k), k + 1
        while end < len(tokens) and marked.get(end) == number:
            end += 1
        chunk = html.escape("".join(tokens[k:end]))
        parts.append(f'<mark style="{MARK_STYLE}" title="shared passage {number}">{chunk}</mark>' if number
                     else f"<span>{chunk}</span>")
        k = end
    return (f'<div><div style="font-weight:600">{html.escape(label)}</div>'
            f'<div style="{TEXT_STYLE}">{"".join(parts)}</div></div>')


def side_by_side_html(left: str, right: str, left_label: str = "left", right_label: str = "right") -> str:
    """Both outputs in two columns (stacked on a narrow screen), shared passages highlighted in both,
    above a line that says how much they share or that they share nothing meaningful."""
    passages = shared_passages(left, right)
    left_col = _column(left, [(p.left_start, p.words) for p in passages], left_label)
    right_col = _column(right, [(p.right_start, p.words) for p in passages], right_label)
    return f'<div>{summary(left, right, passages)}<div style="{COLUMNS_STYLE}">{left_col}{right_col}</div></div>'


def summary(left: str, right: str, passages: list[Passage] | None = None) -> str:
    passages = shared_passages(left, right) if passages is None else passages
    if not passages:
        return (f"<p><b>No meaningful overlap</b>: the outputs share no run of {MIN_SHARED_WORDS} or more words "
                f"({similarity(left, right):.0%} of words in common), so nothing is highlighted.</p>")
    words = [len([t for t in _tokens(text) if t.strip()]) or 1 for text in (left, right)]
    shared = sum(p.words for p in passages)
    return (f"<p>{len(passages)} shared passage{'s' if len(passages) > 1 else ''} (highlighted in both): "
            f"{shared / words[0]:.0%} of the left output's words, {shared / words[1]:.0%} of the right's.</p>")


def diff_html(left: str, right: str) -> str:
    """The Review tab's comparison view (kept under its old name for callers of the library)."""
    return side_by_side_html(left, right)
