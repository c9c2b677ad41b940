"""Win / tie / loss per model pair with a 95 % Wilson interval on the decisive votes."""

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
    """``tally`` from (left model, right model, latest vote, count) rows (ReviewStore.latest_votes)."""
    pairs: dict[tuple[str, str], PairTally] = {}
    for left, right, vote, n in rows:
        a, b = sorted((left, right))
        t = pairs.setdefault((a, b), PairTally(a, b))
        if vote in ("left", "right"):
            if (left if vote == "left" else right) == a:
                t.a_wins += n
            else:
                t.b_wins += n
        elif vote == "tie":
            t.ties += n
        else:
            t.both_bad += n
    return sorted(pairs.values(), key=lambda t: -(t.decisive + t.ties + t.both_bad))


def tally_markdown(tallies: list[PairTally]) -> str:
    if not tallies:
        return "No votes yet."
    rows = ["| A | B | A wins | B wins | ties | both bad | A win rate (95 % CI) |", "|---|---|---|---|---|---|---|"]
    for t in tallies:
        ci = t.a_win_rate_ci()
        rate = f"{ci[0]:.0%} ({ci[1]:.0%}–{ci[2]:.0%})" if ci else "–"
        rows.append(f"| {t.model_a} | {t.model_b} | {t.a_wins} | {t.b_wins} | {t.ties} | {t.both_bad} | {rate} |")
    return "\n".join(rows)
