"""A ranking of every voted model from pairwise votes: a Bradley-Terry fit with bootstrap intervals.

A tally answers "which of these two is better"; with many pairs a team wants one ordering, as Chatbot
Arena and compar:IA publish. Bradley-Terry gives each model a strength ``theta`` so that
P(i beats j) = sigmoid(theta_i - theta_j), fitted by maximum likelihood over every vote at once, so a
model is credited for beating a strong opponent more than a weak one. Ratings are on the Elo scale
(1000 = the average model; +100 points = 64 % expected wins), as Arena shows them.

Ties and "both bad" count as half a win for each side (Arena's "tie (bothbad)" treatment): neither was
preferred, and dropping them would overstate how clearly one model leads. A small ridge prior keeps
ratings finite when a model won (or lost) every vote. Intervals are 95 % percentile intervals over
bootstrap resamples of the votes (each round draws as many votes as there are, with replacement).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

ELO_PER_LOGIT = 400 / math.log(10)  # Elo points per unit of log-odds
BASE_RATING = 1000.0
RIDGE = 0.1  # Gaussian prior on theta (variance 10 in log-odds): negligible once a model has a few votes
BOOTSTRAP_ROUNDS = 200
NEWTON_STEPS = 50
SCORE_FOR_LEFT = {"left": 1.0, "right": 0.0, "tie": 0.5, "both_bad": 0.5}
CSV_COLUMNS = ("rank", "model", "rating", "rating_low_95", "rating_high_95", "votes", "wins", "losses", "ties",
               "both_bad")


@dataclass
class Rating:
    """One model's row: its Elo-scale rating with a 95 % bootstrap interval and its vote counts.
    ``rank`` is 1 + the number of models whose interval lies wholly above this one (Arena's rank)."""
    model: str
    rating: float
    low: float
    high: float
    votes: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0
    both_bad: int = 0
    rank: int = 1


def games(rows: list[tuple]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(models, i, j, score of i, count) from (left model, right model, latest vote, count) rows
    (ReviewStore.latest_votes), one entry per distinct (pair, outcome)."""
    models = sorted({m for left, right, _, _ in rows for m in (left, right)})
    index = {m: k for k, m in enumerate(models)}
    kept = [(index[l], index[r], SCORE_FOR_LEFT[v], n) for l, r, v, n in rows if v in SCORE_FOR_LEFT and l != r]
    i, j, score, count = (np.array(col, dtype=float) for col in zip(*kept)) if kept else (np.zeros(0),) * 4
    return models, i.astype(int), j.astype(int), score, count


def fit_bradley_terry(n_models: int, i: np.ndarray, j: np.ndarray, score: np.ndarray,
                      count: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """Strengths theta (log-odds, mean zero) maximising the ridge-penalised likelihood, by Newton's method
    (the problem is convex, so a few steps reach machine precision for tens of models)."""
    theta = np.zeros(n_models)
    for _ in range(NEWTON_STEPS):
        p = 1 / (1 + np.exp(theta[j] - theta[i]))  # (games,) P(i beats j)
        residual, weight = count * (p - score), count * p * (1 - p)
        grad = ridge * theta + np.bincount(i, residual, n_models) - np.bincount(j, residual, n_models)
        hess = ridge * np.eye(n_models)
        np.add.at(hess, (i, i), weight)
        np.add.at(hess, (j, j), weight)
        np.add.at(hess, (i, j), -weight)
        np.add.at(hess, (j, i), -weight)
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]  # least norm: no drift along the all-equal shift
        theta -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return theta - theta.mean()


def leaderboard(rows: list[tuple], rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> list[Rating]:
    """Every model in ``rows`` ranked by its Bradley-Terry rating, best first. Seeded, so the same votes
    give the same intervals."""
    models, i, j, score, count = games(rows)
    if not models or count.sum() == 0:
        return []
    rating = BASE_RATING + ELO_PER_LOGIT * fit_bradley_terry(len(models), i, j, score, count)
    low, high = _bootstrap(len(models), i, j, score, count, rounds, seed)
    table = [Rating(m, float(rating[k]), float(low[k]), float(high[k])) for k, m in enumerate(models)]
    _count_votes(table, rows)
    for row in table:
        row.rank = 1 + sum(other.low > row.high for other in table)
    return sorted(table, key=lambda r: -r.rating)


def _bootstrap(n_models, i, j, score, count, rounds, seed) -> tuple[np.ndarray, np.ndarray]:
    """2.5th and 97.5th percentile ratings over ``rounds`` resamples of the votes. Resampling votes with
    replacement is a multinomial draw over the distinct (pair, outcome) cells, so no vote list is built."""
    rng = np.random.default_rng(seed)
    total = int(count.sum())
    draws = rng.multinomial(total, count / total, size=rounds)  # (rounds, cells)
    ratings = np.array([BASE_RATING + ELO_PER_LOGIT * fit_bradley_terry(n_models, i, j, score, d) for d in draws])
    return np.percentile(ratings, 2.5, axis=0), np.percentile(ratings, 97.5, axis=0)


def _count_votes(table: list[Rating], rows: list[tuple]) -> None:
    by_model = {r.model: r for r in table}
    for left, right, vote, n in rows:
        if vote not in SCORE_FOR_LEFT or left == right:
            continue
        for model, won in ((left, vote == "left"), (right, vote == "right")):
            row = by_model[model]
            row.votes += n
            if vote == "tie":
                row.ties += n
            elif vote == "both_bad":
                row.both_bad += n
            elif won:
                row.wins += n
            else:
                row.losses += n


def from_comparisons(items: list[dict]) -> list[Rating]:
    """The leaderboard of stored comparisons (their latest votes), e.g. for an export."""
    return leaderboard([(c["left_model"], c["right_model"], c["votes"][-1]["vote"], 1) for c in items if c["votes"]])


def table_rows(ratings: list[Rating]) -> list[list]:
    """Rows for the Review tab's leaderboard table (LEADERBOARD_COLUMNS in comparer/ui/review.py)."""
    return [[r.rank, r.model, round(r.rating), f"{r.low:.0f} – {r.high:.0f}", r.votes, r.wins, r.losses,
             r.ties + r.both_bad] for r in ratings]


def to_csv(ratings: list[Rating]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in ratings:
        writer.writerow([r.rank, r.model, f"{r.rating:.1f}", f"{r.low:.1f}", f"{r.high:.1f}", r.votes, r.wins,
                         r.losses, r.ties, r.both_bad])
    return out.getvalue()
