"""The review store at size: 100k stored comparisons, then vote latency (p50 / p95, the UI's whole vote:
store write, read back, the pair's tally) and a history page (the UI's Refresh: a filtered page, the
tally, the pair list). Targets: vote p95 <= 50 ms, a history page <= 200 ms.

    python scripts/review_store_bench.py --comparisons 100000 --out assets/benchmarks/logs/cpu-review-store.txt
"""

from __future__ import annotations

import argparse
import platform
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from comparer.reviews.store import ReviewStore
from comparer.ui.review import ReviewService

PAIRS = [("state-spaces/mamba-2.8b-hf", "EleutherAI/pythia-6.9b"), ("demo-mamba", "demo-llama"),
         ("state-spaces/mamba-130m-hf", "EleutherAI/pythia-160m")]


def fill(path: Path, n: int) -> list[str]:
    """n finished comparisons (a paragraph of output per side), a vote on two thirds, in bulk."""
    ReviewStore(path)  # schema
    conn = sqlite3.connect(path)
    ids, rng = [], random.Random(0)
    text = "It was a bright cold day in April, and the clocks were striking thirteen. " * 6
    with conn:
        for i in range(n):
            cid, (left, right) = uuid.uuid4().hex, rng.choice(PAIRS)
            ids.append(cid)
            conn.execute("INSERT INTO comparisons (id, created_at, preset, prompt, left_model, right_model, settings, "
                         "blind, left_output, right_output, status) VALUES (?, ?, ?, ?, ?, ?, '{}', 0, ?, ?, 'done')",
                         (cid, 1.7e9 + i, "paper", f"prompt {i}", left, right, text, text))
            if i % 3:
                vote = rng.choice(["left", "right", "tie", "both_bad"])
                conn.execute("INSERT INTO votes (comparison_id, created_at, vote, tags, note) VALUES (?, ?, ?, '[]', '')",
                             (cid, 1.7e9 + i, vote))
                conn.execute("UPDATE comparisons SET latest_vote=? WHERE id=?", (vote, cid))
    return ids


def timed_ms(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--comparisons", type=int, default=100_000)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reviews.sqlite"
        t0 = time.perf_counter()
        ids = fill(path, args.comparisons)
        service = ReviewService(ReviewStore(path), Path(tmp) / "exports")
        rng = random.Random(1)
        votes = timed_ms(lambda: service.vote(rng.choice(ids), rng.choice(["left", "right"]), ["fluent"], "ok"), 200)
        pages = timed_ms(lambda: service.history(), 20)
        filtered = timed_ms(lambda: service.history(" vs ".join(PAIRS[0]), "paper", "left"), 20)
        lines = [f"# {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, Python "
                 f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}: "
                 "python scripts/review_store_bench.py --comparisons {args.comparisons}",
                 f"stored comparisons: {args.comparisons} (filled in {time.perf_counter() - t0:.1f} s)",
                 f"vote (write + read back + the pair's tally), 200 votes: p50 {statistics.median(votes):.1f} ms, "
                 f"p95 {p95(votes):.1f} ms (target <= 50 ms)",
                 f"history page (newest 200 + tally + pairs), 20 runs: p50 {statistics.median(pages):.1f} ms, "
                 f"p95 {p95(pages):.1f} ms (target <= 200 ms)",
                 f"history page filtered (pair, preset, latest vote): p50 {statistics.median(filtered):.1f} ms, "
                 f"p95 {p95(filtered):.1f} ms"]
    text = "\n".join(lines).replace("{args.comparisons}", str(args.comparisons))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
