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
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from offload._ledger_rows import usd
from offload._ledger_schema import connect, migrate, pending

MODEL_KEY = "provider || '/' || model"
GROUPS = {"day": "day", "task": "task", "model": MODEL_KEY}


@dataclass(frozen=True, slots=True)
class Bucket:
    """Aggregates for a group of calls (the totals, one day, one task or one model)."""

    key: str | None
    calls: int = 0
    ok_calls: int = 0
    local_calls: int = 0
    local_input_tokens: int = 0
    local_output_tokens: int = 0
    hosted_input_tokens: int = 0
    hosted_output_tokens: int = 0
    spent_usd: Decimal = Decimal(0)
    avoided_usd: Decimal = Decimal(0)
    escalated: int = 0
    failovers: int = 0
    unpriced_calls: int = 0
    unbaselined_local_calls: int = 0
    median_latency: float | None = None
    local: bool | None = None

    @property
    def failed_calls(self) -> int:
        """Calls that ended in an error."""
        return self.calls - self.ok_calls

    @property
    def hosted_calls(self) -> int:
        """Answered calls served by a hosted model."""
        return self.ok_calls - self.local_calls

    @property
    def local_tokens(self) -> int:
        """Input + output tokens processed locally."""
        return self.local_input_tokens + self.local_output_tokens

    @property
    def hosted_tokens(self) -> int:
        """Input + output tokens sent to hosted models."""
        return self.hosted_input_tokens + self.hosted_output_tokens

    @property
    def local_share(self) -> float:
        """Share of answered calls served locally (0 when nothing was answered)."""
        return _rate(self.local_calls, self.ok_calls)

    @property
    def escalation_rate(self) -> float:
        """Share of answered calls that were escalations."""
        return _rate(self.escalated, self.ok_calls)

    @property
    def failover_rate(self) -> float:
        """Share of answered calls that needed a failover first."""
        return _rate(self.failovers, self.ok_calls)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (dollars as numbers)."""
        return {
            "key": self.key,
            "local": self.local,
            "calls": self.calls,
            "ok_calls": self.ok_calls,
            "failed_calls": self.failed_calls,
            "local_calls": self.local_calls,
            "hosted_calls": self.hosted_calls,
            "local_share": self.local_share,
            "tokens": {
                "local_input": self.local_input_tokens,
                "local_output": self.local_output_tokens,
                "hosted_input": self.hosted_input_tokens,
                "hosted_output": self.hosted_output_tokens,
                "local": self.local_tokens,
                "hosted": self.hosted_tokens,
            },
            "spent_usd": float(self.spent_usd),
            "avoided_usd": float(self.avoided_usd),
            "escalated": self.escalated,
            "escalation_rate": self.escalation_rate,
            "failovers": self.failovers,
            "failover_rate": self.failover_rate,
            "unpriced_calls": self.unpriced_calls,
            "unbaselined_local_calls": self.unbaselined_local_calls,
            "median_latency_seconds": self.median_latency,
        }


@dataclass(frozen=True, slots=True)
class Summary:
    """What ``offload stats`` shows: totals plus breakdowns by day, task and model."""

    totals: Bucket
    by_day: tuple[Bucket, ...] = ()
    by_task: tuple[Bucket, ...] = ()
    by_model: tuple[Bucket, ...] = ()
    since: float | None = None
    until: float | None = None
    baselines: tuple[str, ...] = ()
    first_ts: float | None = None
    last_ts: float | None = None
    path: str | None = None

    @property
    def empty(self) -> bool:
        """True when no call falls in the window."""
        return self.totals.calls == 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the shape ``offload stats --json`` prints)."""
        return {
            "ledger": self.path,
            "since": self.since,
            "until": self.until,
            "first_call": self.first_ts,
            "last_call": self.last_ts,
            "baselines": list(self.baselines),
            "totals": self.totals.to_dict(),
            "by_day": [b.to_dict() for b in self.by_day],
            "by_task": [b.to_dict() for b in self.by_task],
            "by_model": [b.to_dict() for b in self.by_model],
        }


@dataclass(frozen=True, slots=True)
class CallRow:
    """One logged call."""

    id: int
    ts: float
    day: str
    task: str | None
    provider: str
    model: str
    local: bool
    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    seconds: float
    ttft_seconds: float | None
    outcome: str
    error: str | None
    escalated: bool
    failover: bool
    priced: bool
    cost_usd: Decimal
    avoided_usd: Decimal
    baseline: str | None
    prompt: str | None = field(default=None, repr=False)
    answer: str | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """``provider/model``."""
        return f"{self.provider}/{self.model}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the shape ``offload log --json`` prints)."""
        return {
            "id": self.id,
            "time": self.ts,
            "day": self.day,
            "task": self.task,
            "provider": self.provider,
            "model": self.model,
            "local": self.local,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "seconds": self.seconds,
            "ttft_seconds": self.ttft_seconds,
            "outcome": self.outcome,
            "error": self.error,
            "escalated": self.escalated,
            "failover": self.failover,
            "priced": self.priced,
            "cost_usd": float(self.cost_usd),
            "avoided_usd": float(self.avoided_usd),
            "baseline": self.baseline,
            "prompt": self.prompt,
            "answer": self.answer,
        }


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


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
        return Summary(
            totals=totals[0] if totals else Bucket(None),
            by_day=tuple(self._buckets("day", where, args)),
            by_task=tuple(self._buckets("task", where, args)),
            by_model=tuple(self._buckets("model", where, args)),
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
