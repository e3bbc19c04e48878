"""The batch result cache: a small SQLite file that remembers successful item results.

Keyed by a SHA-256 of (task, model chain with the model actually pinned for ``auto``, gate
settings, and the exact request the task sends — system prompt, prompt, schema, limits), so an
identical item in a later batch, or in a rerun after ``--retry-failed``, costs nothing. Only
successes are stored. The cache is advisory: it is written with ``synchronous=NORMAL`` in WAL
mode; new rows are buffered and written in one short transaction every ``COMMIT_EVERY`` results,
every ``COMMIT_SECONDS`` or on close, so a crash may forget the last few entries — which only
means recomputing them — and other processes sharing the file never wait long for the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from offload.settings import data_dir

COMMIT_EVERY = 64
COMMIT_SECONDS = 1.0
SCHEMA = "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, row TEXT NOT NULL, created REAL NOT NULL)"


def default_path() -> Path:
    """``batch-cache.sqlite3`` in the data dir."""
    return data_dir() / "batch-cache.sqlite3"


def cache_key(run: Mapping[str, Any], request: Mapping[str, Any]) -> str:
    """The key of one item: the run's fingerprint plus the item's request, canonically encoded."""
    blob = json.dumps({"run": run, "request": request}, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResultCache:
    """Successful results by key. ``read=False`` recomputes everything but still refreshes entries."""

    def __init__(self, path: Path | None = None, *, read: bool = True) -> None:
        self.path = path or default_path()
        self.read = read
        self.hits = 0
        self._pending: list[tuple[str, str, float]] = []
        self._flushed = time.monotonic()
        self._db: sqlite3.Connection | None = None
        self.broken: str | None = None

    def _conn(self) -> sqlite3.Connection | None:
        if self._db is None and self.broken is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(SCHEMA)
                self._db = db
            except (sqlite3.Error, OSError) as exc:
                self.broken = f"result cache unavailable ({self.path}: {exc}); continuing without it"
        return self._db

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored row for ``key``, when reading is on and there is one."""
        if not self.read:
            return None
        db = self._conn()
        if db is None:
            return None
        try:
            found = db.execute("SELECT row FROM results WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return None
        if found is None:
            return None
        with contextlib.suppress(ValueError):
            row = json.loads(found[0])
            if isinstance(row, dict):
                self.hits += 1
                return row
        return None

    def put(self, key: str, row: Mapping[str, Any]) -> None:
        """Remember a successful row (written in groups)."""
        if self.broken is not None:
            return
        self._pending.append((key, json.dumps(row, ensure_ascii=False), time.time()))
        if len(self._pending) >= COMMIT_EVERY or time.monotonic() - self._flushed >= COMMIT_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows in one transaction."""
        rows, self._pending = self._pending, []
        self._flushed = time.monotonic()
        db = self._conn() if rows else None
        if db is None:
            return
        try:
            with contextlib.closing(db.cursor()) as cur:
                cur.execute("BEGIN IMMEDIATE")
                cur.executemany("INSERT OR REPLACE INTO results (key, row, created) VALUES (?, ?, ?)", rows)
                cur.execute("COMMIT")
        except sqlite3.Error as exc:
            self.broken = f"result cache write failed ({exc}); continuing without it"
            self._close(db)

    def _close(self, db: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):
            db.close()
        self._db = None

    def close(self) -> None:
        """Write what is pending and close the file."""
        self.flush()
        if self._db is not None:
            self._close(self._db)
