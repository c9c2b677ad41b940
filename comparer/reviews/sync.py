"""Optional sync of the review database to a Hugging Face dataset repository.

A Space's disk is wiped on restart, so reviews are pushed every few minutes with huggingface_hub's
``CommitScheduler``. A live SQLite file cannot be copied byte for byte while it is written, so each
push first takes a consistent snapshot with SQLite's online backup API.
Enabled only when both ``COMPARER_SYNC_REPO`` and ``HF_TOKEN`` are set.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from huggingface_hub import CommitScheduler

from comparer.paths import DATA_DIR
from comparer.reviews.store import ReviewStore

SNAPSHOT_NAME = "reviews.sqlite"


class SnapshotScheduler(CommitScheduler):
    """A CommitScheduler whose every push uploads a fresh, consistent snapshot of the store."""

    def __init__(self, store: ReviewStore, **kwargs):
        self.store, self._snapshot_lock = store, threading.Lock()
        super().__init__(**kwargs)

    def push_to_hub(self):
        with self._snapshot_lock:  # the scheduler's own thread and trigger() may push at once
            snapshot(self.store.path, Path(self.folder_path) / SNAPSHOT_NAME)
            return super().push_to_hub()


def snapshot(db_path: Path, out_path: Path) -> None:
    """Online backup: a consistent copy even while other connections write."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp")
    with sqlite3.connect(db_path) as src, sqlite3.connect(tmp) as dst:
        src.backup(dst)
    tmp.replace(out_path)


def start_sync_from_env(store: ReviewStore, hf_api=None) -> SnapshotScheduler | None:
    """Start the scheduler if the deployment configured one; None otherwise."""
    repo_id, token = os.environ.get("COMPARER_SYNC_REPO"), os.environ.get("HF_TOKEN")
    if not repo_id or not (token or hf_api):
        return None
    every_min = float(os.environ.get("COMPARER_SYNC_EVERY_MIN", "5"))
    folder = Path(os.environ.get("COMPARER_SYNC_DIR", DATA_DIR / "sync"))
    return SnapshotScheduler(store, repo_id=repo_id, folder_path=folder, every=every_min, repo_type="dataset",
                             path_in_repo="reviews", token=token, private=True, hf_api=hf_api)
