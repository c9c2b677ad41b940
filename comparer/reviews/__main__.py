"""python -m comparer.reviews export --format csv|jsonl|llm-comparator|leaderboard-csv --out FILE [--db PATH]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from comparer.reviews.export import FORMATS, export
from comparer.reviews.store import ReviewStore, default_db_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m comparer.reviews")
    sub = parser.add_subparsers(dest="command", required=True)
    exp = sub.add_parser("export", help="write every stored comparison to FILE")
    exp.add_argument("--format", required=True, choices=FORMATS)
    exp.add_argument("--out", required=True)
    exp.add_argument("--db", default=None, help=f"SQLite file (default: $COMPARER_DB or {default_db_path()})")
    args = parser.parse_args(argv)
    db = Path(args.db) if args.db else default_db_path()
    if not db.exists():
        print(f"error: no review database at {db}; run some comparisons first or pass --db.", file=sys.stderr)
        return 2
    items = ReviewStore(db).history(limit=1_000_000)
    Path(args.out).write_text(export(items, args.format))
    print(f"wrote {len(items)} comparisons to {args.out} ({args.format})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
