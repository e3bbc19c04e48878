"""The usage ledger: schema migrations, exact pricing, text storage, concurrent writers, reports."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from offload.config import Config, parse_config
from offload.errors import AuthError, InputError, ProviderError, Unreachable
from offload.ledger import BASELINE_HINT, Ledger, default_path, nano_usd, parse_when, schema
from offload.routing.cooldown import Cooldowns
from offload.routing.router import CallEvent, CallOptions, Candidate, Router
from offload.testing.scripted import ScriptedProvider
from offload.types import ChatRequest, ChatResult, Timings, Usage

CONFIG: dict[str, Any] = {
    "agents": {"defaults": {"model": {"primary": "local/small", "fallbacks": ["cloud/big"]}}},
    "models": {
        "mode": "replace",
        "providers": {
            "local": {"baseUrl": "http://127.0.0.1:9", "models": [{"id": "small"}]},
            "cloud": {
                "baseUrl": "http://127.0.0.1:10/v1",
                "local": False,  # a loopback fake standing in for a hosted API
                "models": [
                    {"id": "big", "cost": {"input": 1, "output": 5}},
                    {"id": "cheap", "cost": {"input": 0.15, "output": 0.6}},
                    {"id": "tenth", "cost": {"input": 0.1}},
                    {"id": "fifth", "cost": {"input": 0.2}},
                    {"id": "mystery"},
                ],
            },
            "anthropic": {
                "baseUrl": "https://api.anthropic.com",
                "api": "anthropic-messages",
                "models": [{"id": "claude-sonnet-4-5", "cost": {"input": 3, "output": 15}}],
            },
        },
    },
    "offload": {"savings": {"baseline": "anthropic/claude-sonnet-4-5"}},
}
REQ = ChatRequest.from_prompt("the purple elephant sings", system="be brief")
COLUMNS = [
    "id",
    "ts",
    "day",
    "task",
    "provider",
    "model",
    "local",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "seconds",
    "ttft_seconds",
    "outcome",
    "error",
    "escalated",
    "failover",
    "priced",
    "cost_nusd",
    "avoided_nusd",
    "baseline",
    "prompt",
    "answer",
    "client",
    "scenario",
]


def config(**offload: Any) -> Config:
    """The test config, with ``offload`` settings replaced when given."""
    raw = dict(CONFIG)
    if offload:
        raw["offload"] = offload
    return parse_config(raw, env={})


def config_without_baseline() -> Config:
    """The test config minus the provider that prices the default baseline (so none applies)."""
    raw = json.loads(json.dumps(CONFIG))
    del raw["models"]["providers"]["anthropic"]
    raw.pop("offload", None)
    cfg = parse_config(raw, env={})
    assert cfg.settings.savings_baseline is None
    return cfg


def candidate(cfg: Config, ref: str) -> Candidate:
    resolved = cfg.resolve(ref)
    provider = cfg.providers[resolved.provider]
    return Candidate(resolved, provider, provider.model(resolved.model))


def ok(
    cfg: Config,
    ref: str,
    input_tokens: int,
    output_tokens: int,
    *,
    seconds: float = 1.0,
    task: str | None = None,
    escalated: bool = False,
    failover: bool = False,
    answer: str = "a grey answer",
) -> CallEvent:
    cand = candidate(cfg, ref)
    result = ChatResult(
        answer,
        model=cand.ref.model,
        provider=cand.provider.id,
        usage=Usage(input_tokens, output_tokens, reasoning_tokens=output_tokens // 10),
        timings=Timings(time_to_first_token=0.25),
    )
    return CallEvent(
        cand,
        cand.ref.model,
        seconds,
        result=result,
        task=task,
        escalated=escalated,
        failover=failover,
        request=REQ,
    )


def failed(
    cfg: Config, ref: str, error: ProviderError, *, seconds: float = 0.5, task: str | None = None
) -> CallEvent:
    cand = candidate(cfg, ref)
    return CallEvent(cand, cand.ref.model, seconds, error=error, task=task, request=REQ)


def rows(path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY id")]
    finally:
        conn.close()


def write(path: Path, cfg: Config, *events: CallEvent) -> list[dict[str, Any]]:
    with Ledger(path, cfg) as ledger:
        for event in events:
            ledger.record(event)
    return rows(path)


def at(day: str, hour: int = 12, minute: int = 0) -> float:
    """Epoch seconds of a local wall-clock time (so the local day is ``day`` in any time zone)."""
    return time.mktime(time.strptime(f"{day} {hour}:{minute}", "%Y-%m-%d %H:%M"))


def fill_known(path: Path, cfg: Config | None = None) -> None:
    """Six calls over three days (with a gap day) whose totals the report tests know by heart."""
    cfg = cfg or config()
    known = [
        (at("2026-11-01", 10), ok(cfg, "local/small", 1_000_000, 500_000, seconds=2.0, task="summarize")),
        (at("2026-11-01", 11), ok(cfg, "local/small", 2_000, 1_000, seconds=1.0, task="summarize")),
        (at("2026-11-02", 9), failed(cfg, "local/small", Unreachable("connection refused"), task="code")),
        (
            at("2026-11-02", 9, 1),
            ok(cfg, "cloud/big", 200_000, 100_000, seconds=3.0, task="code", failover=True),
        ),
        (
            at("2026-11-02", 15),
            ok(cfg, "cloud/big", 100_000, 20_000, seconds=4.0, task="code", escalated=True),
        ),
        (at("2026-11-04", 8), ok(cfg, "local/small", 10_000, 5_000, seconds=0.5)),
    ]
    now = [0.0]
    with Ledger(path, cfg, clock=lambda: now[0]) as ledger:
        for ts, event in known:
            now[0] = ts
            ledger.record(event)


# --- schema ----------------------------------------------------------------------------------


def test_migrate_creates_the_exact_schema_and_rerunning_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    conn = schema.connect(path)
    try:
        assert schema.migrate(conn) == ["m001_calls", "m002_calls_usd_view", "m003_gateway_columns"]
        assert [r[1] for r in conn.execute("PRAGMA table_info(calls)")] == COLUMNS
        assert [r[1] for r in conn.execute("PRAGMA table_info(_migrations)")] == ["name", "applied_at"]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        before = conn.execute("SELECT name, applied_at FROM _migrations ORDER BY name").fetchall()
        assert schema.migrate(conn) == []
        assert conn.execute("SELECT name, applied_at FROM _migrations ORDER BY name").fetchall() == before
        assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")} >= {
            "calls_ts",
            "calls_day",
        }
    finally:
        conn.close()
    second = schema.connect(path)  # another connection (another process) sees it all applied
    try:
        assert schema.pending(second) == []
        assert schema.migrate(second) == []
    finally:
        second.close()


def test_a_new_migration_is_appended_and_only_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "usage.sqlite3"
    ran: list[str] = []

    def m003_example(conn: sqlite3.Connection) -> None:
        ran.append("m003")
        conn.execute("ALTER TABLE calls ADD COLUMN note TEXT")

    conn = schema.connect(path)
    try:
        schema.migrate(conn)
        monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, m003_example])
        assert schema.migrate(conn) == ["m003_example"]
        assert schema.migrate(conn) == []
        assert ran == ["m003"]
        assert [r[1] for r in conn.execute("PRAGMA table_info(calls)")][-1] == "note"
    finally:
        conn.close()


def test_a_reader_brings_an_older_file_up_to_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "usage.sqlite3"
    first_only = schema.MIGRATIONS[:1]
    monkeypatch.setattr(schema, "MIGRATIONS", first_only)
    conn = schema.connect(path)
    try:
        schema.migrate(conn)
    finally:
        conn.close()
    monkeypatch.undo()
    with Ledger.open_readonly(path) as reader:
        assert reader.count() == 0
    conn = schema.connect(path)
    try:
        assert schema.applied(conn) == {"m001_calls", "m002_calls_usd_view", "m003_gateway_columns"}
    finally:
        conn.close()


def test_the_default_file_is_in_the_data_dir(offload_home: Path) -> None:
    assert default_path() == offload_home / "data" / "usage.sqlite3"
    assert Ledger().path == default_path()


# --- prices -----------------------------------------------------------------------------------


def test_a_local_call_avoids_exactly_the_baseline_price(tmp_path: Path) -> None:
    [row] = write(tmp_path / "u.db", config(), ok(config(), "local/small", 1_000_000, 500_000))
    assert row["avoided_nusd"] == 10_500_000_000
    assert row["cost_nusd"] == 0
    assert row["priced"] == 1
    assert row["local"] == 1
    assert row["baseline"] == "anthropic/claude-sonnet-4-5"
    with Ledger.open_readonly(tmp_path / "u.db") as reader:
        [call] = reader.recent()
        assert call.avoided_usd == Decimal("10.5")
        assert call.cost_usd == 0
        assert reader.summary().totals.avoided_usd == Decimal("10.5")


def test_a_hosted_call_costs_its_price_and_avoids_nothing(tmp_path: Path) -> None:
    cfg = config()
    [row] = write(tmp_path / "u.db", cfg, ok(cfg, "cloud/big", 200_000, 100_000))
    assert row["cost_nusd"] == 700_000_000
    assert row["avoided_nusd"] == 0
    assert row["priced"] == 1
    assert row["input_tokens"] == 200_000
    assert row["output_tokens"] == 100_000
    assert row["reasoning_tokens"] == 10_000
    assert row["local"] == 0
    assert row["ttft_seconds"] == 0.25
    assert row["outcome"] == "ok"


def test_fractional_prices_and_sums_stay_exact(tmp_path: Path) -> None:
    cfg = config()
    path = tmp_path / "u.db"
    write(
        path,
        cfg,
        ok(cfg, "cloud/cheap", 1234, 567),  # 1234 × 0.15 + 567 × 0.6 micro-dollars
        ok(cfg, "cloud/tenth", 1_000_000, 0),
        ok(cfg, "cloud/fifth", 1_000_000, 0),
    )
    with Ledger.open_readonly(path) as reader:
        calls = {c.model: c for c in reader.recent()}
        assert calls["cheap"].cost_usd == Decimal("0.0005253")
        assert calls["tenth"].cost_usd + calls["fifth"].cost_usd == Decimal("0.3")
        assert reader.summary().totals.spent_usd == Decimal("0.3005253")
    assert 0.1 + 0.2 != 0.3  # what float sums would have given
    assert nano_usd(cfg.model_def(cfg.resolve("cloud/cheap")).cost, 1, 1) == 750  # type: ignore[union-attr]


def test_failures_cost_nothing_and_keep_a_short_secret_free_error(tmp_path: Path) -> None:
    cfg = config()
    error = AuthError("401 invalid x-api-key sk-ant-abcdefghijklmnop; token=hunter2 " + "x" * 500, status=401)
    [row] = write(tmp_path / "u.db", cfg, failed(cfg, "cloud/big", error))
    assert row["outcome"] == "auth"
    assert row["cost_nusd"] == 0
    assert row["avoided_nusd"] == 0
    assert row["input_tokens"] == 0
    assert row["output_tokens"] == 0
    assert row["error"].startswith("auth 401: 401 invalid x-api-key ***")
    assert len(row["error"]) <= 300
    assert "abcdefghijklmnop" not in row["error"]
    assert "hunter2" not in row["error"]


def test_a_hosted_model_without_a_price_is_flagged_unpriced(tmp_path: Path) -> None:
    cfg = config()
    path = tmp_path / "u.db"
    [row] = write(path, cfg, ok(cfg, "cloud/mystery", 1000, 1000))
    assert row["priced"] == 0
    assert row["cost_nusd"] == 0
    with Ledger.open_readonly(path) as reader:
        assert reader.summary().totals.unpriced_calls == 1


def test_default_baseline_prices_local_calls_when_none_is_configured(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "u.db", config(localOnly=False))
    assert ledger.baseline is not None
    assert ledger.baseline.ref == "anthropic/claude-sonnet-4-5"
    ledger.close()


def test_without_a_baseline_local_calls_avoid_nothing_and_the_report_says_so(tmp_path: Path) -> None:
    cfg = config_without_baseline()
    path = tmp_path / "u.db"
    ledger = Ledger(path, cfg)
    assert ledger.baseline is None
    assert ledger.baseline_problem == "no savings baseline configured"
    ledger.record(ok(cfg, "local/small", 1_000_000, 500_000))
    summary = ledger.summary()
    ledger.close()
    assert summary.totals.avoided_usd == 0
    assert summary.totals.unbaselined_local_calls == 1
    assert summary.baselines == ()
    assert "savings" in BASELINE_HINT
    assert "baseline" in BASELINE_HINT
    assert rows(path)[0]["baseline"] is None


def test_an_unpriced_baseline_is_explained(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "u.db", config(savings={"baseline": "cloud/mystery"}))
    assert ledger.baseline is None
    assert ledger.baseline_problem is not None
    assert "cloud/mystery has no price" in ledger.baseline_problem


# --- text -------------------------------------------------------------------------------------


def test_text_is_not_stored_by_default(tmp_path: Path) -> None:
    cfg = config()
    path = tmp_path / "u.db"
    [row] = write(path, cfg, ok(cfg, "local/small", 10, 10, answer="a mauve giraffe"))
    assert row["prompt"] is None
    assert row["answer"] is None
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"purple elephant" not in raw
    assert b"mauve giraffe" not in raw


def test_text_is_stored_when_the_config_says_so(tmp_path: Path) -> None:
    cfg = config(savings={"baseline": "anthropic/claude-sonnet-4-5"}, ledger={"storeText": True})
    [row] = write(tmp_path / "u.db", cfg, ok(cfg, "local/small", 10, 10, answer="a mauve giraffe"))
    assert json.loads(row["prompt"]) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "the purple elephant sings"},
    ]
    assert row["answer"] == "a mauve giraffe"


# --- through a real router --------------------------------------------------------------------


async def test_a_router_with_the_ledger_as_observer_records_every_attempt(tmp_path: Path) -> None:
    cfg = config()
    ledger = Ledger(tmp_path / "u.db", cfg)
    router = Router(cfg, observers=[ledger.record], cooldowns=Cooldowns(schedule=(0.0,)))
    local = ScriptedProvider("local", [Unreachable("refused", refused=True), "local answer"])
    cloud = ScriptedProvider("cloud", ["cloud answer"], local=False)
    router.pool.put("local", local)
    router.pool.put("cloud", cloud)
    first = await router.chat(REQ, CallOptions(task="summarize"))
    second = await router.chat(REQ, CallOptions(task="summarize"))
    assert first.result.content == "cloud answer"
    assert second.result.content == "local answer"
    calls = ledger.recent()
    ledger.close()
    assert [(c.name, c.outcome, c.failover) for c in reversed(calls)] == [
        ("local/small", "unreachable", False),
        ("cloud/big", "ok", True),
        ("local/small", "ok", False),
    ]
    scripted_usage = (len(REQ.messages[0].content.split()) + len(REQ.messages[1].content.split()) + 5, 2)
    hosted, local_ok = calls[1], calls[0]
    assert (hosted.input_tokens, hosted.output_tokens) == scripted_usage
    assert hosted.cost_usd == Decimal(scripted_usage[0] * 1 + scripted_usage[1] * 5) / 1_000_000
    assert local_ok.avoided_usd == Decimal(scripted_usage[0] * 3 + scripted_usage[1] * 15) / 1_000_000
    assert all(c.task == "summarize" for c in calls)


# --- concurrency and failure ------------------------------------------------------------------

WRITER_SCRIPT = """
import sys
from offload.config import parse_config
from offload.ledger import Ledger
from offload.routing.router import Candidate, CallEvent
from offload.types import ChatResult, Usage

cfg = parse_config({"models": {"mode": "replace", "providers": {
    "local": {"baseUrl": "http://127.0.0.1:9", "models": [{"id": "small"}]}}}}, env={})
provider = cfg.providers["local"]
cand = Candidate(cfg.resolve("local/small"), provider, provider.model("small"))
ledger = Ledger(sys.argv[1], cfg, batch_rows=7)
for i in range(int(sys.argv[2])):
    result = ChatResult("x", usage=Usage(i, 1))
    ledger.record(CallEvent(cand, "small", 0.01, result=result, task="proc-" + sys.argv[3]))
ledger.close()
print(ledger.dropped)
"""


async def test_concurrent_tasks_threads_and_processes_lose_no_row(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"  # fresh: the processes also race to create the schema
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT)
    per_process, processes, threads, per_thread, tasks = 300, 3, 8, 100, 200
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), str(per_process), str(n)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    cfg = config()
    threaded = Ledger(path, cfg, batch_rows=7)
    routed = Ledger(path, cfg, batch_rows=7)
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        for i in range(per_thread):
            threaded.record(ok(cfg, "local/small", i, 1, task="thread"))

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    router = Router(cfg, observers=[routed.record])
    router.pool.put("local", ScriptedProvider("local", default="fine"))
    await asyncio.gather(*(router.chat(REQ, CallOptions(task="async")) for _ in range(tasks)))
    for t in pool:
        t.join()
    outputs = [p.communicate()[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0] * processes
    assert outputs == ["0"] * processes
    threaded.close()
    routed.close()
    assert threaded.dropped == 0
    assert routed.dropped == 0
    with Ledger.open_readonly(path) as reader:
        assert reader.count() == processes * per_process + threads * per_thread + tasks
        by_task = {b.key: b.calls for b in reader.summary().by_task}
    assert by_task == {
        "thread": threads * per_thread,
        "async": tasks,
        **{f"proc-{n}": per_process for n in range(processes)},
    }


def test_a_failing_writer_never_reaches_the_caller_and_says_so_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    cfg = config()
    ledger = Ledger(blocker / "usage.sqlite3", cfg)
    for _ in range(3):
        ledger.record(ok(cfg, "local/small", 1, 1))
        assert ledger.flush()
    ledger.record(None)  # type: ignore[arg-type]  # even a broken event does not raise
    ledger.close()
    assert ledger.dropped == 3
    err = capsys.readouterr().err
    assert err.count("usage ledger cannot write") == 1
    assert "not-a-dir" in err


def test_the_writer_recovers_after_a_failed_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import offload.ledger.store as ledger_module

    cfg = config()
    ledger = Ledger(tmp_path / "u.db", cfg)

    def broken(conn: sqlite3.Connection, rows: list[Any]) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ledger_module, "insert", broken)
    ledger.record(ok(cfg, "local/small", 1, 1))
    assert ledger.flush()
    monkeypatch.undo()
    ledger.record(ok(cfg, "local/small", 2, 2))
    ledger.close()
    assert ledger.dropped == 1
    assert [r["input_tokens"] for r in rows(tmp_path / "u.db")] == [2]
    assert "disk on fire" in capsys.readouterr().err


def test_close_writes_everything_and_a_later_record_starts_again(tmp_path: Path) -> None:
    cfg = config()
    ledger = Ledger(tmp_path / "u.db", cfg)
    for i in range(1200):  # more than two batches
        ledger.record(ok(cfg, "local/small", i, 1))
    ledger.close()
    assert len(rows(tmp_path / "u.db")) == 1200
    ledger.record(ok(cfg, "local/small", 1, 1))
    ledger.close()
    assert len(rows(tmp_path / "u.db")) == 1201


# --- reports ----------------------------------------------------------------------------------


def test_summary_totals_and_rates(tmp_path: Path) -> None:
    fill_known(tmp_path / "u.db")
    with Ledger.open_readonly(tmp_path / "u.db") as reader:
        s = reader.summary()
    t = s.totals
    assert (t.calls, t.ok_calls, t.failed_calls, t.local_calls, t.hosted_calls) == (6, 5, 1, 3, 2)
    assert (t.local_input_tokens, t.local_output_tokens) == (1_012_000, 506_000)
    assert (t.hosted_input_tokens, t.hosted_output_tokens) == (300_000, 120_000)
    assert t.spent_usd == Decimal("0.9")
    assert t.avoided_usd == Decimal("10.626")
    assert t.local_share == pytest.approx(3 / 5)
    assert t.escalation_rate == pytest.approx(1 / 5)
    assert t.failover_rate == pytest.approx(1 / 5)
    assert t.median_latency == 2.0
    assert s.baselines == ("anthropic/claude-sonnet-4-5",)
    assert (s.first_ts, s.last_ts) == (at("2026-11-01", 10), at("2026-11-04", 8))


def test_summary_breakdowns_by_day_task_and_model(tmp_path: Path) -> None:
    fill_known(tmp_path / "u.db")
    with Ledger.open_readonly(tmp_path / "u.db") as reader:
        s = reader.summary()
    assert [(d.key, d.calls, d.avoided_usd, d.spent_usd) for d in s.by_day] == [
        ("2026-11-01", 2, Decimal("10.521"), 0),
        ("2026-11-02", 3, 0, Decimal("0.9")),
        ("2026-11-04", 1, Decimal("0.105"), 0),
    ]
    assert [(b.key, b.calls, b.ok_calls, b.local_share) for b in s.by_task] == [
        ("code", 3, 2, 0.0),
        ("summarize", 2, 2, 1.0),
        (None, 1, 1, 1.0),
    ]
    code = s.by_task[0]
    assert code.escalation_rate == 0.5
    assert code.failover_rate == 0.5
    assert code.failed_calls == 1
    assert [(m.key, m.local, m.calls, m.median_latency) for m in s.by_model] == [
        ("local/small", True, 4, 1.0),
        ("cloud/big", False, 2, 3.5),
    ]
    assert s.by_model[0].avoided_usd == Decimal("10.626")
    assert s.by_model[1].spent_usd == Decimal("0.9")


def test_since_and_until_select_a_window(tmp_path: Path) -> None:
    fill_known(tmp_path / "u.db")
    with Ledger.open_readonly(tmp_path / "u.db") as reader:
        later = reader.summary(since=parse_when("2026-11-02"))
        earlier = reader.summary(until=parse_when("2026-11-02"))
        nothing = reader.summary(since=parse_when("2027-01-01"))
    assert later.totals.calls == 4
    assert [d.key for d in later.by_day] == ["2026-11-02", "2026-11-04"]
    assert later.totals.avoided_usd == Decimal("0.105")
    assert later.totals.spent_usd == Decimal("0.9")
    assert earlier.totals.calls == 2
    assert earlier.totals.avoided_usd == Decimal("10.521")
    assert nothing.empty
    assert nothing.by_day == ()
    assert nothing.totals.median_latency is None


def test_recent_is_newest_first_and_filters(tmp_path: Path) -> None:
    fill_known(tmp_path / "u.db")
    with Ledger.open_readonly(tmp_path / "u.db") as reader:
        assert [c.day for c in reader.recent(3)] == ["2026-11-04", "2026-11-02", "2026-11-02"]
        assert [c.outcome for c in reader.recent(task="code")] == ["ok", "ok", "unreachable"]
        assert {c.name for c in reader.recent(model="cloud/big")} == {"cloud/big"}
        assert len(reader.recent(model="small")) == 4
        [failure] = reader.recent(outcome="unreachable")
        assert failure.error == "unreachable: connection refused"
        assert failure.cost_usd == 0


def test_a_missing_file_reads_as_an_empty_ledger(tmp_path: Path) -> None:
    with Ledger.open_readonly(tmp_path / "nothing-here.sqlite3") as reader:
        assert reader.summary().empty
        assert reader.recent() == []
    assert not (tmp_path / "nothing-here.sqlite3").exists()


def test_parse_when_reads_spans_and_dates() -> None:
    now = 1_800_000_000.0
    assert parse_when("7d", now) == now - 7 * 86400
    assert parse_when("24h", now) == now - 86400
    assert parse_when("30m", now) == now - 1800
    assert parse_when("2w", now) == now - 14 * 86400
    assert parse_when("2026-11-01") == at("2026-11-01", 0)
    assert parse_when("2026-11-01T00:00:00+00:00") == 1_793_491_200.0
    with pytest.raises(InputError, match="cannot read the time"):
        parse_when("last tuesday")
