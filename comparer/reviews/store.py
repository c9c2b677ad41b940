"""The review store: one SQLite file in WAL mode, a versioned schema, one transaction per write.

WAL lets the UI read history while a comparison is being written; each write is its own
transaction, so a process killed mid-write loses at most the write in flight, never a committed
row. The schema version lives in ``PRAGMA user_version`` and ``MIGRATIONS`` brings any older file up.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import comparer
from comparer.paths import DATA_DIR

VOTES = ("left", "right", "tie", "both_bad")
TAGS = ("fluent", "on-topic", "factual error", "repetition", "code runs", "code fails", "off-topic", "incoherent")

MIGRATIONS = [
    # 1: comparisons and votes
    """
    CREATE TABLE comparisons (
        id TEXT PRIMARY KEY, created_at REAL NOT NULL, finished_at REAL, preset TEXT, prompt TEXT NOT NULL,
        left_model TEXT NOT NULL, right_model TEXT NOT NULL, left_revision TEXT, right_revision TEXT,
        left_card TEXT, right_card TEXT, settings TEXT NOT NULL, blind INTEGER NOT NULL DEFAULT 0,
        left_output TEXT NOT NULL DEFAULT '', right_output TEXT NOT NULL DEFAULT '',
        left_stats TEXT, right_stats TEXT, status TEXT NOT NULL DEFAULT 'running',
        app_version TEXT, library_versions TEXT
    );
    CREATE TABLE votes (
        id INTEGER PRIMARY KEY AUTOINCREMENT, comparison_id TEXT NOT NULL REFERENCES comparisons(id),
        created_at REAL NOT NULL, vote TEXT NOT NULL CHECK (vote IN ('left', 'right', 'tie', 'both_bad')),
        tags TEXT NOT NULL DEFAULT '[]', note TEXT NOT NULL DEFAULT '', reviewer TEXT
    );
    CREATE INDEX votes_by_comparison ON votes(comparison_id);
    """,
    # 2: filter history by pair quickly
    "CREATE INDEX comparisons_by_pair ON comparisons(left_model, right_model);",
    # 3: the latest vote kept on its comparison (set in the vote's transaction), so a vote, a tally and a
    # history page are indexed queries instead of a read of every comparison and vote
    """
    ALTER TABLE comparisons ADD COLUMN latest_vote TEXT;
    UPDATE comparisons SET latest_vote = (SELECT vote FROM votes WHERE votes.comparison_id = comparisons.id
                                          ORDER BY votes.id DESC LIMIT 1);
    CREATE INDEX comparisons_by_time ON comparisons(created_at);
    CREATE INDEX comparisons_tally ON comparisons(left_model, right_model, latest_vote, preset);
    """,
    # 4: who started each comparison (the visitor's session), so a public deployment shows each visitor only
    # their own
    "ALTER TABLE comparisons ADD COLUMN owner TEXT; CREATE INDEX comparisons_by_owner ON comparisons(owner, created_at);",
]
MAX_TAGS = 8
SCHEMA_VERSION = len(MIGRATIONS)


class ReviewError(ValueError):
    """Bad review input; the message says what to send instead."""


@dataclass
class NewComparison:
    prompt: str
    left_model: str
    right_model: str
    settings: dict
    preset: str | None = None
    blind: bool = False
    left_revision: str | None = None
    right_revision: str | None = None
    left_card: dict | None = None
    right_card: dict | None = None
    owner: str | None = None  # the session that started it
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


def default_db_path() -> Path:
    return Path(os.environ.get("COMPARER_DB", DATA_DIR / "reviews.sqlite"))


class ReviewStore:
    """Thread-safe: one connection per thread, every write in its own transaction."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path or default_db_path())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.migrate()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction on this thread's connection: committed whole or rolled back whole."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _write(self, sql: str, params=()) -> sqlite3.Cursor:
        with self._transaction() as conn:
            return conn.execute(sql, params)

    def migrate(self) -> int:
        """Apply every migration newer than the file's ``user_version``, each in one transaction."""
        conn = self._conn()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            conn.executescript(f"BEGIN IMMEDIATE; {script} PRAGMA user_version = {number}; COMMIT;")
        return conn.execute("PRAGMA user_version").fetchone()[0]

    # ---- writes -------------------------------------------------------------------------------
    def mark_interrupted(self) -> int:
        """At start-up: comparisons left 'running' by a process that died are 'interrupted' (nothing runs
        yet in this one). Returns how many."""
        return self._write("UPDATE comparisons SET status='interrupted' WHERE status='running'").rowcount

    def start_comparison(self, new: NewComparison) -> str:
        self._write(
            "INSERT INTO comparisons (id, created_at, preset, prompt, left_model, right_model, left_revision, "
            "right_revision, left_card, right_card, settings, blind, app_version, library_versions, owner) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (new.id, time.time(), new.preset, new.prompt, new.left_model, new.right_model, new.left_revision,
             new.right_revision, _dumps(new.left_card), _dumps(new.right_card), _dumps(new.settings),
             int(new.blind), comparer.__version__, _dumps(library_versions()), new.owner))
        return new.id

    def finish_comparison(self, comparison_id: str, left_output: str, right_output: str,
                          left_stats: dict, right_stats: dict, status: str) -> None:
        self._write("UPDATE comparisons SET left_output=?, right_output=?, left_stats=?, right_stats=?, status=?, "
                    "finished_at=? WHERE id=?",
                    (left_output, right_output, _dumps(left_stats), _dumps(right_stats), status, time.time(),
                     comparison_id))

    def add_vote(self, comparison_id: str, vote: str, tags: list[str] | None = None, note: str = "",
                 reviewer: str | None = None) -> int:
        """Record a vote; works while the comparison is still generating."""
        if vote not in VOTES:
            raise ReviewError(f"vote must be one of {', '.join(VOTES)}; got {vote!r}.")
        tags = list(tags or [])
        if not all(isinstance(t, str) and 0 < len(t) <= 40 for t in tags):
            raise ReviewError("tags must be short strings (1 to 40 characters).")
        if len(tags) > MAX_TAGS:
            raise ReviewError(f"at most {MAX_TAGS} tags per vote; got {len(tags)}.")
        if not isinstance(note, str) or len(note) > 5000:
            raise ReviewError("note must be text of at most 5,000 characters.")
        if any(0xD800 <= ord(c) <= 0xDFFF for c in note + "".join(tags)):
            raise ReviewError("note and tags must be valid text: remove the unpaired surrogate character.")
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM comparisons WHERE id=?", (comparison_id,)).fetchone() is None:
                raise ReviewError(f"No comparison with id {comparison_id!r}: run /compare first and use the id it "
                                  "returns.")
            cursor = conn.execute("INSERT INTO votes (comparison_id, created_at, vote, tags, note, reviewer) "
                                  "VALUES (?, ?, ?, ?, ?, ?)",
                                  (comparison_id, time.time(), vote, _dumps(tags), note, reviewer))
            conn.execute("UPDATE comparisons SET latest_vote=? WHERE id=?", (vote, comparison_id))
        return cursor.lastrowid

    # ---- reads --------------------------------------------------------------------------------
    def get(self, comparison_id: str) -> dict | None:
        row = self._conn().execute("SELECT * FROM comparisons WHERE id=?", (comparison_id,)).fetchone()
        return _comparison(row, self._votes(comparison_id)) if row else None

    def owner_of(self, comparison_id: str) -> str | None:
        row = self._conn().execute("SELECT owner FROM comparisons WHERE id=?", (comparison_id,)).fetchone()
        return row[0] if row else None

    def _votes(self, comparison_id: str) -> list[dict]:
        rows = self._conn().execute("SELECT * FROM votes WHERE comparison_id=? ORDER BY id", (comparison_id,))
        return [{**dict(r), "tags": json.loads(r["tags"])} for r in rows]

    def history(self, pair: tuple[str, str] | None = None, preset: str | None = None, vote: str | None = None,
                limit: int = 500, offset: int = 0, owner: str | None = None, model: str | None = None) -> list[dict]:
        """Newest first, one page of at most ``limit`` matches after ``offset``; ``vote`` filters on the latest
        vote (see ``_filters``). The filters are in the query, so an old match is never cut off by newer
        others and a page costs the same at any store size. ``owner``: only that session's comparisons."""
        where, params = _filters(pair, preset, vote, owner, model)
        rows = self._conn().execute(f"SELECT * FROM comparisons {where} ORDER BY created_at DESC LIMIT ? OFFSET ?",
                                    (*params, int(limit), int(offset))).fetchall()
        votes = self._votes_of([r["id"] for r in rows])
        return [_comparison(r, votes.get(r["id"], [])) for r in rows]

    def _votes_of(self, ids: list[str]) -> dict[str, list[dict]]:
        found: dict[str, list[dict]] = {}
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start:start + 500]
            rows = self._conn().execute(f"SELECT * FROM votes WHERE comparison_id IN ({','.join('?' * len(chunk))}) "
                                        "ORDER BY id", chunk)
            for r in rows:
                found.setdefault(r["comparison_id"], []).append({**dict(r), "tags": json.loads(r["tags"])})
        return found

    def latest_votes(self, pair: tuple[str, str] | None = None, preset: str | None = None,
                     owner: str | None = None, model: str | None = None) -> list[tuple]:
        """(left model, right model, latest vote, count) over voted comparisons: what a tally and a leaderboard
        need, grouped in SQL on an index."""
        where, params = _filters(pair, preset, None, owner, model)
        where = f"{where} {'AND' if where else 'WHERE'} latest_vote IS NOT NULL"
        return [tuple(r) for r in self._conn().execute(
            f"SELECT left_model, right_model, latest_vote, COUNT(*) FROM comparisons {where} "
            "GROUP BY left_model, right_model, latest_vote", params)]

    def pairs(self, owner: str | None = None) -> list[tuple[str, str]]:
        """The (left, right) model pairs of the comparisons whose models may be named: an unvoted blind
        comparison's are left out, so the filter's choices never name a model only blind runs used."""
        where, params = _filters(None, None, None, owner)
        where = f"{where} {'AND' if where else 'WHERE'} {NAMED}"
        return [tuple(r) for r in self._conn().execute(
            f"SELECT DISTINCT left_model, right_model FROM comparisons {where}", params)]

    def count(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM comparisons").fetchone()[0]


# comparisons whose models may be named: not blind, or blind and voted on (see hide_unvoted_blind)
NAMED = "(blind=0 OR latest_vote IS NOT NULL)"
# the latest vote relative to a model, wherever it sat: blind runs shuffle the sides
WON = "((left_model=? AND latest_vote='left') OR (right_model=? AND latest_vote='right'))"
LOST = "((left_model=? AND latest_vote='right') OR (right_model=? AND latest_vote='left'))"


def _filters(pair, preset, vote, owner=None, model=None) -> tuple[str, list]:
    """The Review tab's filters as a WHERE clause: owner; pair in either order or one ``model`` on either
    side (neither matches an unvoted blind comparison, which would name its models); preset; latest vote,
    one of VOTES, 'none' (unvoted), or 'won' / 'lost' by ``model`` on whichever side it was."""
    clauses, params = [], []
    if owner is not None:
        clauses.append("owner=?")
        params.append(owner)
    if pair:
        a, b = pair
        clauses.append(f"((left_model=? AND right_model=?) OR (left_model=? AND right_model=?)) AND {NAMED}")
        params += [a, b, b, a]
    if model:
        clauses.append(f"(left_model=? OR right_model=?) AND {NAMED}")
        params += [model, model]
    if preset:
        clauses.append("preset=?")
        params.append(preset)
    if vote in ("won", "lost"):
        if not model:
            raise ReviewError(f"'{vote}' needs a model: pick one model to filter on its wins or losses.")
        clauses.append(WON if vote == "won" else LOST)
        params += [model, model]
    elif vote == "none":
        clauses.append("latest_vote IS NULL")
    elif vote:
        clauses.append("latest_vote=?")
        params.append(vote)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _comparison(row: sqlite3.Row, votes: list[dict]) -> dict:
    item = dict(row)
    for key in ("left_card", "right_card", "settings", "left_stats", "right_stats", "library_versions"):
        item[key] = json.loads(item[key]) if item[key] else None
    item["blind"] = bool(item["blind"])
    item.pop("latest_vote", None)  # the same as votes[-1]; kept for the queries only
    item.pop("owner", None)  # a session id: never shown nor exported
    item["votes"] = votes
    return item


def _dumps(value) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def library_versions() -> dict:
    import importlib.metadata

    versions = {}
    for name in ("torch", "transformers", "gradio"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions
