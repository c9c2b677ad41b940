"""Win / tie / loss per model pair with a 95 % Wilson interval on the decisive votes.

A pair's A is the model its comparisons showed on the left most often (the preset's left pane), so the
tally reads in the order of the panes. The win rate counts decisive votes only (A better or B better);
ties and "both bad" have their own columns and the rate's denominator is printed beside it."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959964


@dataclass
class PairTally:
    model_a: str
    model_b: str
    a_wins: int = 0
    b_wins: int = 0
    ties: int = 0
    both_bad: int = 0

    @property
    def decisive(self) -> int:
        return self.a_wins + self.b_wins

    @property
    def total(self) -> int:
        return self.decisive + self.ties + self.both_bad

    def a_win_rate_ci(self) -> tuple[float, float, float] | None:
        """(rate, low, high) of A winning among decisive votes; None without any."""
        return wilson(self.a_wins, self.decisive)


def wilson(successes: int, trials: int, z: float = Z_95) -> tuple[float, float, float] | None:
    """Wilson score interval: sensible at small counts and at 0 % or 100 %, unlike p +- z*se."""
    if trials == 0:
        return None
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return p, max(0.0, centre - half), min(1.0, centre + half)


def tally(comparisons: list[dict]) -> list[PairTally]:
    """Latest vote of each comparison, credited to the model shown in the chosen pane."""
    return tally_counts([(c["left_model"], c["right_model"], c["votes"][-1]["vote"], 1)
                         for c in comparisons if c["votes"]])


def tally_counts(rows: list[tuple]) -> list[PairTally]:
    """``tally`` from (left model, right model, latest vote, count) rows (ReviewStore.latest_votes), each
    pair in pane order (see the module docstring)."""
    lefts: dict[tuple[str, str], dict[str, int]] = {}
    for left, right, _, n in rows:
        side = lefts.setdefault(tuple(sorted((left, right))), {})
        side[left] = side.get(left, 0) + n
    pairs: dict[tuple[str, str], PairTally] = {}
    for left, right, vote, n in rows:
        key = tuple(sorted((left, right)))
        t = pairs.setdefault(key, PairTally(*_pane_order(key, lefts[key])))
        if vote in ("left", "right"):
            if (left if vote == "left" else right) == t.model_a:
                t.a_wins += n
            else:
                t.b_wins += n
        elif vote == "tie":
            t.ties += n
        else:
            t.both_bad += n
    return sorted(pairs.values(), key=lambda t: -t.total)


def _pane_order(pair: tuple[str, str], times_left: dict[str, int]) -> tuple[str, str]:
    """(A, B): A the model shown on the left most often; alphabetical on a draw."""
    a, b = pair
    return (b, a) if times_left.get(b, 0) > times_left.get(a, 0) else (a, b)


def rate_text(t: PairTally) -> str:
    """"67 % of 3 (21–94 %)": the rate, its denominator (decisive votes) and its 95 % Wilson interval."""
    ci = t.a_win_rate_ci()
    return f"{ci[0]:.0%} of {t.decisive} ({ci[1]:.0%}–{ci[2]:.0%})" if ci else "no decisive vote"


TALLY_NOTE = ("A is the model shown in the left pane most often. **A's win rate** = A better / (A better + "
              "B better): ties and both bad are left out of it and counted in their own columns; 95 % Wilson "
              "interval in brackets. Each comparison counts once, with its latest vote.")


def tally_markdown(tallies: list[PairTally], escape=str) -> str:
    """The Review tab's tally table. ``escape`` renders a model name as text (comparer.ui.review.as_text)."""
    if not tallies:
        return "No votes yet."
    rows = ["| A (left) | B (right) | A better | B better | tie | both bad | A's win rate |",
            "|---|---|---|---|---|---|---|"]
    for t in tallies:
        rows.append(f"| {escape(t.model_a)} | {escape(t.model_b)} | {t.a_wins} | {t.b_wins} | {t.ties} | "
                    f"{t.both_bad} | {rate_text(t)} |")
    return "\n".join(rows) + f"\n\n{TALLY_NOTE}"


def tally_line(t: PairTally, escape=str) -> str:
    """One pair's tally as a sentence, for the vote panel under the panes (narrow screens included)."""
    ci = t.a_win_rate_ci()
    rate = (f"{escape(t.model_a)} won {ci[0]:.0%} of the {t.decisive} decisive votes (95 % CI {ci[1]:.0%}–"
            f"{ci[2]:.0%}; ties and both bad left out)." if ci else "No decisive vote yet.")
    return (f"This pair so far, {t.total} votes: **{escape(t.model_a)}** better {t.a_wins}, "
            f"**{escape(t.model_b)}** better {t.b_wins}, tie {t.ties}, both bad {t.both_bad}. {rate}")
