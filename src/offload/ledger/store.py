"""The usage ledger: one SQLite row per model call, and the reports that show what was saved.

``Ledger.record`` is a router observer (``Router(config, observers=[ledger.record])``). It
turns the ``CallEvent`` into a row in the caller's thread (pure arithmetic, no I/O) and puts it
on a queue; one background writer thread drains the queue in batches, each batch one
``BEGIN IMMEDIATE`` transaction. So recording never waits on the disk, concurrent asyncio
tasks and threads never interleave writes, and several processes share the file safely (WAL
mode, ``busy_timeout``). ``flush()`` waits until everything queued so far is written;
``close()`` flushes and stops the writer; an ``atexit`` hook does the same at interpreter exit.
If writing fails (disk full, unwritable dir) the caller is never affected: one line goes to
stderr and the rows of that batch are counted in ``dropped``.

Reports (``summary``, ``recent``) read through ``LedgerReader`` (see ``ledger.report``);
``Ledger.open_readonly()`` gives one without starting a writer. Storage format and pricing
rules live in ``ledger.schema`` and ``ledger.rows``.
"""

from __future__ import annotations

import atexit
import contextlib
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from offload.ledger.report import Bucket, CallRow, LedgerReader, Summary
from offload.ledger.rows import (
    BASELINE_HINT,
    INSERT,
    Baseline,
    Row,
    event_row,
    nano_usd,
    parse_when,
    resolve_baseline,
)
from offload.ledger.schema import MIGRATIONS, connect, migrate
from offload.settings import data_dir

if TYPE_CHECKING:
    from offload.config import Config
    from offload.routing.router import CallEvent

__all__ = [
    "BASELINE_HINT",
    "MIGRATIONS",
    "Baseline",
    "Bucket",
    "CallRow",
    "Ledger",
    "LedgerReader",
    "Summary",
    "default_path",
    "migrate",
    "nano_usd",
    "parse_when",
]

FILE_NAME = "usage.sqlite3"
BATCH_ROWS = 500
FLUSH_TIMEOUT = 60.0
LOCK_RETRIES = 5


def default_path() -> Path:
    """Where the ledger lives: ``usage.sqlite3`` in offload's data dir."""
    return data_dir() / FILE_NAME


@dataclass(frozen=True, slots=True)
class _Stop:
    """Queue marker: the writer thread ``owner`` writes what came before, then ends."""

    owner: int | None


_Item = Row | threading.Event | _Stop


class Ledger:
    """Records model calls into the usage ledger and reports on them.

    ``path`` defaults to ``usage.sqlite3`` in the data dir. ``config`` supplies the savings
    baseline (``offload.savings.baseline``) and ``offload.ledger.storeText``; without one,
    local calls are recorded with no savings figure and no text is kept. Hosted prices come
    from the model entries the router's candidates carry. ``clock`` stamps rows (UTC epoch).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        config: Config | None = None,
        *,
        clock: Callable[[], float] = time.time,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self.path = Path(path).expanduser() if path is not None else default_path()
        self.store_text = bool(config is not None and config.settings.store_text)
        self.baseline, self.baseline_problem = resolve_baseline(config)
        self.dropped = 0
        """Rows lost because a write failed."""
        self._clock = clock
        self._batch_rows = batch_rows
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._complained = False

    # --- recording -------------------------------------------------------------------------

    def record(self, event: CallEvent) -> None:
        """Queue one call for writing. Never raises and never blocks on I/O."""
        try:
            row = event_row(event, ts=self._clock(), baseline=self.baseline, store_text=self.store_text)
            self._queue.put(row)
            self._ensure_writer()
        except Exception as exc:
            self._complain(exc)

    def record_row(self, row: Row) -> None:
        """Queue one ready-made row (values in ``COLUMNS`` order). Never raises or blocks on I/O."""
        try:
            self._queue.put(row)
            self._ensure_writer()
        except Exception as exc:
            self._complain(exc)

    def flush(self, timeout: float | None = FLUSH_TIMEOUT) -> bool:
        """Wait until every row queued so far is written; False if that did not happen in time."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        self._queue.put(done)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done.wait(0.05):
            if not thread.is_alive():
                return False
            if deadline is not None and time.monotonic() > deadline:
                return False
        return True

    def close(self) -> None:
        """Write everything queued, then stop the writer (a later ``record`` starts a new one)."""
        with self._lock:
            while True:
                thread = self._thread
                if thread is not None and thread.is_alive():
                    self._queue.put(_Stop(thread.ident))
                    thread.join()
                self._thread = None
                if self._queue.empty():
                    break
                self._start_writer()  # a row slipped in while the writer was stopping
            atexit.unregister(self.close)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_writer(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._start_writer()
                atexit.register(self.close)

    def _start_writer(self) -> None:
        """Start the writer thread (the caller holds ``_lock``)."""
        thread = threading.Thread(target=self._run, name="offload-ledger-writer", daemon=True)
        thread.start()
        self._thread = thread

    # --- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            stop = False
            while True:
                rows, signals, stopping = self._take(block=not stop)
                if rows:
                    conn = self._write(conn, rows)
                for signal in signals:
                    signal.set()
                if stop and not rows and not signals:
                    break  # asked to stop and nothing is left
                stop = stop or stopping
        except BaseException as exc:  # the writer must never take the process down
            self._complain(exc)
        finally:
            if conn is not None:
                conn.close()

    def _take(self, *, block: bool = True) -> tuple[list[Row], list[threading.Event], bool]:
        """Wait for one item (unless ``block`` is off), then drain up to a batch without waiting."""
        rows: list[Row] = []
        signals: list[threading.Event] = []
        item = self._queue.get() if block else self._next()
        while item is not None:
            if isinstance(item, _Stop):
                if item.owner == threading.get_ident():
                    return rows, signals, True
            elif isinstance(item, threading.Event):
                signals.append(item)
            else:
                rows.append(item)
            if len(rows) >= self._batch_rows:
                break
            item = self._next()
        return rows, signals, False

    def _next(self) -> _Item | None:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    def _write(self, conn: sqlite3.Connection | None, rows: list[Row]) -> sqlite3.Connection | None:
        """Insert ``rows`` in one transaction; on failure drop them, say so once, reconnect later."""
        for attempt in range(LOCK_RETRIES):
            try:
                if conn is None:
                    conn = connect(self.path)
                    migrate(conn)
                insert(conn, rows)
                return conn
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) and attempt + 1 < LOCK_RETRIES:
                    time.sleep(0.05 * (attempt + 1))
                    continue
                self._lost(conn, rows, exc)
                return None
            except Exception as exc:
                self._lost(conn, rows, exc)
                return None
        return conn  # pragma: no cover  (the loop always returns)

    def _lost(self, conn: sqlite3.Connection | None, rows: list[Row], exc: BaseException) -> None:
        self.dropped += len(rows)
        self._complain(exc)
        if conn is not None:
            conn.close()

    def _complain(self, exc: BaseException) -> None:
        if self._complained:
            return
        self._complained = True
        with contextlib.suppress(Exception):  # stderr may be closed at exit
            print(
                f"offload: the usage ledger cannot write to {self.path} ({type(exc).__name__}: {exc}); "
                "calls are not being recorded",
                file=sys.stderr,
            )

    # --- reports ---------------------------------------------------------------------------

    @classmethod
    def open_readonly(cls, path: str | Path | None = None) -> LedgerReader:
        """A reader over the ledger file (an absent file reads as empty); close it when done."""
        return LedgerReader.open(Path(path).expanduser() if path is not None else default_path())

    def summary(self, since: float | None = None, until: float | None = None) -> Summary:
        """Totals and breakdowns for calls in ``[since, until)`` (flushes first)."""
        self.flush()
        with self.open_readonly(self.path) as reader:
            return reader.summary(since, until)

    def recent(
        self,
        limit: int = 20,
        *,
        task: str | None = None,
        model: str | None = None,
        outcome: str | None = None,
    ) -> list[CallRow]:
        """The latest calls, newest first (flushes first)."""
        self.flush()
        with self.open_readonly(self.path) as reader:
            return reader.recent(limit, task=task, model=model, outcome=outcome)


def insert(conn: sqlite3.Connection, rows: list[Row]) -> None:
    """Insert rows in one write transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(INSERT, rows)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
