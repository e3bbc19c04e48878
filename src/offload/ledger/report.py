"""Reading the usage ledger: totals and breakdowns (``summary``) and the call log (``recent``).

Definitions the reports use (all over the selected time window):

* *answered* calls are the ``ok`` rows; failures are counted in ``calls`` but serve nobody;
* *local share* = answered calls served by a local model / answered calls;
* *escalation rate* = answered calls that were escalations / answered calls;
* *failover rate* = answered calls that came after an earlier candidate failed / answered calls;
* *median latency* is over answered calls; tokens are split by where the call ran;
* money is summed in SQL over whole nano-dollars, then returned as exact ``Decimal`` dollars.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from offload.ledger.results import Bucket, CallRow, Summary
from offload.ledger.rows import usd
from offload.ledger.schema import connect, migrate, pending

__all__ = ["Bucket", "CallRow", "LedgerReader", "Summary"]

MODEL_KEY = "provider || '/' || model"
GROUPS = {"day": "day", "task": "task", "model": MODEL_KEY, "client": "client"}


class LedgerReader:
    """Read-only queries over a ledger file (a missing file reads as an empty ledger)."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> LedgerReader:
        """Open ``path`` read-only, bringing an older schema up to date first."""
        if not path.exists():
            conn = sqlite3.connect(":memory:", isolation_level=None)
            migrate(conn)
            return cls(conn, path)
        conn = connect(path, readonly=True)
        try:
            if pending(conn):
                conn.close()
                writer = connect(path)
                try:
                    migrate(writer)
                finally:
                    writer.close()
                conn = connect(path, readonly=True)
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> LedgerReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- summary ---------------------------------------------------------------------------

    def summary(self, since: float | None = None, until: float | None = None) -> Summary:
        """Totals and breakdowns for calls with ``since <= ts < until``."""
        where, args = _window(since, until)
        totals = self._buckets(None, where, args)
        first, last = self._conn.execute(f"SELECT MIN(ts), MAX(ts) FROM calls {where}", args).fetchone()
        gateway = f"{where} AND client IS NOT NULL" if where else "WHERE client IS NOT NULL"
        return Summary(
            totals=totals[0] if totals else Bucket(None),
            by_day=tuple(self._buckets("day", where, args)),
            by_task=tuple(self._buckets("task", where, args)),
            by_model=tuple(self._buckets("model", where, args)),
            by_client=tuple(self._buckets("client", gateway, args)),
            since=since,
            until=until,
            baselines=self._baselines(where, args),
            first_ts=first,
            last_ts=last,
            path=str(self.path) if self.path else None,
        )

    def _buckets(self, group: str | None, where: str, args: Sequence[Any]) -> list[Bucket]:
        key = GROUPS[group] if group else "NULL"
        sql = f"""
            SELECT {key} AS k,
                   COUNT(*),
                   TOTAL(outcome = 'ok'),
                   TOTAL(outcome = 'ok' AND local = 1),
                   TOTAL(CASE WHEN local = 1 THEN input_tokens END),
                   TOTAL(CASE WHEN local = 1 THEN output_tokens END),
                   TOTAL(CASE WHEN local = 0 THEN input_tokens END),
                   TOTAL(CASE WHEN local = 0 THEN output_tokens END),
                   SUM(cost_nusd),
                   SUM(avoided_nusd),
                   TOTAL(outcome = 'ok' AND escalated = 1),
                   TOTAL(outcome = 'ok' AND failover = 1),
                   TOTAL(outcome = 'ok' AND priced = 0),
                   TOTAL(outcome = 'ok' AND local = 1 AND baseline IS NULL),
                   MIN(local), MAX(local)
            FROM calls {where}
            {"GROUP BY k" if group else ""}
        """
        medians = self._medians(key, where, args)
        out = []
        for row in self._conn.execute(sql, args):
            if row[1] == 0:
                continue
            out.append(
                Bucket(
                    row[0],
                    calls=row[1],
                    ok_calls=int(row[2]),
                    local_calls=int(row[3]),
                    local_input_tokens=int(row[4]),
                    local_output_tokens=int(row[5]),
                    hosted_input_tokens=int(row[6]),
                    hosted_output_tokens=int(row[7]),
                    spent_usd=usd(row[8]),
                    avoided_usd=usd(row[9]),
                    escalated=int(row[10]),
                    failovers=int(row[11]),
                    unpriced_calls=int(row[12]),
                    unbaselined_local_calls=int(row[13]),
                    median_latency=medians.get(row[0]),
                    local=bool(row[14]) if group == "model" and row[14] == row[15] else None,
                )
            )
        return _ordered(group, out)

    def _medians(self, key: str, where: str, args: Sequence[Any]) -> dict[Any, float]:
        ok = f"{where} AND outcome = 'ok'" if where else "WHERE outcome = 'ok'"
        groups: dict[Any, list[float]] = defaultdict(list)
        for k, seconds in self._conn.execute(f"SELECT {key}, seconds FROM calls {ok}", args):
            groups[k].append(seconds)
        return {k: statistics.median(v) for k, v in groups.items()}

    def _baselines(self, where: str, args: Sequence[Any]) -> tuple[str, ...]:
        rows = self._conn.execute(
            f"""SELECT baseline FROM calls {where} {"AND" if where else "WHERE"} baseline IS NOT NULL
                GROUP BY baseline ORDER BY MAX(ts) DESC""",
            args,
        )
        return tuple(r[0] for r in rows)

    # --- the log ---------------------------------------------------------------------------

    def recent(
        self,
        limit: int = 20,
        *,
        task: str | None = None,
        model: str | None = None,
        outcome: str | None = None,
        since: float | None = None,
    ) -> list[CallRow]:
        """The latest calls, newest first; ``model`` matches ``provider/model`` or the model id."""
        where, args = _window(since, None)
        clauses = [where.removeprefix("WHERE ")] if where else []
        if task is not None:
            clauses.append("task = ?")
            args.append(task)
        if model is not None:
            clauses.append(f"({MODEL_KEY} = ? OR model = ?)")
            args += [model, model]
        if outcome is not None:
            clauses.append("outcome = ?")
            args.append(outcome)
        sql = "SELECT * FROM calls"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY ts DESC, id DESC LIMIT ?"
        args.append(limit)
        cursor = self._conn.execute(sql, args)
        names = [d[0] for d in cursor.description]
        return [_call_row(dict(zip(names, r, strict=True))) for r in cursor]

    def count(self) -> int:
        """Rows in the ledger."""
        return int(self._conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def answered(
        self, task: str | None = None, since: float | None = None
    ) -> list[tuple[bool, int, int, int]]:
        """``(local, input tokens, output tokens, cost in nano-dollars)`` of every answered call."""
        where, args = _window(since, None)
        where = f"{where} AND" if where else "WHERE"
        sql = f"SELECT local, input_tokens, output_tokens, cost_nusd FROM calls {where} outcome = 'ok'"
        if task is not None:
            sql += " AND task = ?"
            args.append(task)
        return [(bool(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in self._conn.execute(sql, args)]


def _window(since: float | None, until: float | None) -> tuple[str, list[Any]]:
    clauses, args = [], []
    if since is not None:
        clauses.append("ts >= ?")
        args.append(since)
    if until is not None:
        clauses.append("ts < ?")
        args.append(until)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), args


def _ordered(group: str | None, buckets: list[Bucket]) -> list[Bucket]:
    if group == "day":
        return sorted(buckets, key=lambda b: b.key or "")
    return sorted(buckets, key=lambda b: (-b.calls, -(b.local_tokens + b.hosted_tokens), b.key or ""))


def _call_row(r: dict[str, Any]) -> CallRow:
    return CallRow(
        id=r["id"],
        ts=r["ts"],
        day=r["day"],
        task=r["task"],
        provider=r["provider"],
        model=r["model"],
        local=bool(r["local"]),
        input_tokens=r["input_tokens"],
        output_tokens=r["output_tokens"],
        reasoning_tokens=r["reasoning_tokens"],
        seconds=r["seconds"],
        ttft_seconds=r["ttft_seconds"],
        outcome=r["outcome"],
        error=r["error"],
        escalated=bool(r["escalated"]),
        failover=bool(r["failover"]),
        priced=bool(r["priced"]),
        cost_usd=usd(r["cost_nusd"]),
        avoided_usd=usd(r["avoided_nusd"]),
        baseline=r["baseline"],
        prompt=r["prompt"],
        answer=r["answer"],
    )
