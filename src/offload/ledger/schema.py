"""The usage ledger's storage format: connection settings and append-only named migrations.

The ledger is one SQLite file (``usage.sqlite3`` in the data dir). Its schema only ever grows
by appending a migration function to ``MIGRATIONS``; the ``_migrations(name, applied_at)``
table records which ones ran. A shipped migration is never edited, renamed or removed — a
change to the schema is a new function at the end of the list.

Money is stored as whole nano-dollars (``*_nusd``, 1e-9 USD) so sums in SQL are exact; the
``calls_usd`` view shows the same rows with dollar columns for people querying the file.

Connections use WAL mode (readers never block the writer) and a ``busy_timeout`` so several
processes can write the same file; ``migrate`` takes the write lock first (``BEGIN
IMMEDIATE``) so two processes opening a fresh file do not both create the tables.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

BUSY_TIMEOUT_MS = 30_000

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Append ``fn`` to the migration list (its function name is its key)."""
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_calls(conn: sqlite3.Connection) -> None:
    """One row per model call, success or failure."""
    conn.execute(
        """
        CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            day TEXT NOT NULL,
            task TEXT,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            local INTEGER NOT NULL,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            seconds REAL NOT NULL,
            ttft_seconds REAL,
            outcome TEXT NOT NULL,
            error TEXT,
            escalated INTEGER NOT NULL DEFAULT 0,
            failover INTEGER NOT NULL DEFAULT 0,
            priced INTEGER NOT NULL DEFAULT 1,
            cost_nusd INTEGER NOT NULL DEFAULT 0,
            avoided_nusd INTEGER NOT NULL DEFAULT 0,
            baseline TEXT,
            prompt TEXT,
            answer TEXT
        )
        """
    )
    conn.execute("CREATE INDEX calls_ts ON calls(ts)")
    conn.execute("CREATE INDEX calls_day ON calls(day)")


@migration
def m002_calls_usd_view(conn: sqlite3.Connection) -> None:
    """A view with dollar columns, for humans and tools reading the file directly."""
    conn.execute(
        """
        CREATE VIEW calls_usd AS
        SELECT id, ts, datetime(ts, 'unixepoch') AS utc, day, task, provider, model, local,
               input_tokens, output_tokens, reasoning_tokens, seconds, ttft_seconds, outcome,
               error, escalated, failover, priced,
               cost_nusd / 1e9 AS cost_usd, avoided_nusd / 1e9 AS avoided_usd, baseline
        FROM calls
        """
    )


@migration
def m003_gateway_columns(conn: sqlite3.Connection) -> None:
    """Which client sent a gateway request and which scenario routed it (NULL for other calls)."""
    conn.execute("ALTER TABLE calls ADD COLUMN client TEXT")
    conn.execute("ALTER TABLE calls ADD COLUMN scenario TEXT")
    conn.execute("DROP VIEW calls_usd")
    conn.execute(
        """
        CREATE VIEW calls_usd AS
        SELECT id, ts, datetime(ts, 'unixepoch') AS utc, day, task, provider, model, local,
               input_tokens, output_tokens, reasoning_tokens, seconds, ttft_seconds, outcome,
               error, escalated, failover, priced,
               cost_nusd / 1e9 AS cost_usd, avoided_nusd / 1e9 AS avoided_usd, baseline,
               client, scenario
        FROM calls
        """
    )


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL and busy timeout set."""
    if readonly:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def applied(conn: sqlite3.Connection) -> set[str]:
    """Names of the migrations already applied (empty for a fresh file)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'"
    ).fetchone()
    if not exists:
        return set()
    return {row[0] for row in conn.execute("SELECT name FROM _migrations")}


def pending(conn: sqlite3.Connection) -> list[Migration]:
    """The migrations not yet applied, in order."""
    done = applied(conn)
    return [m for m in MIGRATIONS if m.__name__ not in done]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the missing migrations in order, in one write transaction; returns their names."""
    if not pending(conn):
        return []
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        ran = []
        for step in pending(conn):
            step(conn)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (step.__name__, time.time())
            )
            ran.append(step.__name__)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return ran
