"""The ledger's row arithmetic, one rule per test: exact prices in nano-dollars, what a call costs
and avoids (local, hosted, failed, unpriced), the savings baseline, error text, stored text and
the ``--since``/``--until`` time forms. Pure functions, no I/O: these tests are what mutation
testing of ``offload/ledger/rows.py`` runs against.
"""

from __future__ import annotations

import decimal
import json
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from offload.config import Cost, ModelDef, ModelRef, ProviderConfig, parse_config
from offload.errors import InputError, Unreachable
from offload.ledger import rows
from offload.ledger.rows import (
    COLUMNS,
    ERROR_CHARS,
    Baseline,
    call_avoided,
    call_cost,
    error_text,
    event_row,
    local_day,
    nano_usd,
    parse_when,
    prompt_text,
    resolve_baseline,
    usd,
)
from offload.routing import CallEvent, Candidate
from offload.types import ChatRequest, ChatResult, Timings, Usage

PRICED = ModelDef("big", cost=Cost(input=3, output=15))
FREE = ModelDef("free")
HOSTED = ProviderConfig(
    "cloud", "http://127.0.0.1:9/v1", "openai-completions", local=False, models=(PRICED, FREE)
)
LOCAL = ProviderConfig("lms", "http://127.0.0.1:1234", "lmstudio", local=True)
USAGE = Usage(input_tokens=1000, output_tokens=200, reasoning_tokens=50)
RESULT = ChatResult("answer text", usage=USAGE, timings=Timings(time_to_first_token=0.25))
BASELINE = Baseline("anthropic/claude-sonnet-4-5", Cost(input=3, output=15))


def hosted(model: ModelDef | None = PRICED, **kw: Any) -> CallEvent:
    name = model.id if model else "big"
    return CallEvent(Candidate(ModelRef("cloud", name), HOSTED, model), name, 1.5, **{"result": RESULT, **kw})


def local(**kw: Any) -> CallEvent:
    return CallEvent(
        Candidate(ModelRef("lms", "auto"), LOCAL, None), "qwen3-4b", 2.0, **{"result": RESULT, **kw}
    )


# --- nano_usd / usd ---------------------------------------------------------------------------


def test_prices_are_per_million_tokens_in_nano_dollars() -> None:
    # 1000 × $3/M + 200 × $15/M = $0.003 + $0.003 = $0.006 = 6,000,000 nano-dollars
    assert nano_usd(Cost(input=3, output=15), 1000, 200) == 6_000_000


def test_input_and_output_are_priced_separately() -> None:
    assert nano_usd(Cost(input=2, output=0), 0, 1000) == 0
    assert nano_usd(Cost(input=0, output=2), 1000, 0) == 0
    assert nano_usd(Cost(input=2, output=0), 1000, 0) == 2_000_000
    assert nano_usd(Cost(input=0, output=2), 0, 1000) == 2_000_000


def test_decimal_prices_are_exact() -> None:
    # in floats 0.1 × 3 is 0.30000000000000004; the ledger must say exactly 300 nano-dollars
    assert nano_usd(Cost(input=0.1), 3, 0) == 300
    assert nano_usd(Cost(input=0.1, output=0.2), 1, 1) == 300


def test_sub_nano_amounts_round_half_to_even() -> None:
    assert nano_usd(Cost(input=0.0005), 1, 0) == 0  # 0.5 nano → 0
    assert nano_usd(Cost(input=0.0015), 1, 0) == 2  # 1.5 nano → 2
    assert nano_usd(Cost(input=0.0025), 1, 0) == 2  # 2.5 nano → 2
    assert nano_usd(Cost(input=0.0006), 1, 0) == 1  # 0.6 nano → 1


def test_rounding_does_not_depend_on_the_callers_decimal_context() -> None:
    with decimal.localcontext() as ctx:
        ctx.rounding = decimal.ROUND_HALF_UP
        assert nano_usd(Cost(input=0.0005), 1, 0) == 0
        assert nano_usd(Cost(input=0.0025), 1, 0) == 2


def test_usd_turns_nano_dollars_into_exact_dollars() -> None:
    assert usd(6_000_000) == Decimal("0.006")
    assert usd(1) == Decimal("0.000000001")
    assert usd(None) == Decimal(0)
    assert usd(0) == Decimal(0)


# --- what a call costs and avoids ------------------------------------------------------------


def test_a_hosted_call_costs_its_tokens_at_its_price() -> None:
    assert call_cost(hosted()) == (6_000_000, True)


def test_a_hosted_call_without_its_model_on_the_candidate_uses_the_providers_entry() -> None:
    event = CallEvent(Candidate(ModelRef("cloud", "auto"), HOSTED, None), "big", 1.0, result=RESULT)
    assert call_cost(event) == (6_000_000, True)


def test_a_hosted_call_with_no_price_costs_zero_and_is_marked_unpriced() -> None:
    assert call_cost(hosted(FREE)) == (0, False)
    unknown = CallEvent(Candidate(ModelRef("cloud", "other"), HOSTED, None), "other", 1.0, result=RESULT)
    assert call_cost(unknown) == (0, False)


def test_local_and_failed_calls_cost_nothing_and_count_as_priced() -> None:
    assert call_cost(local()) == (0, True)
    assert call_cost(hosted(error=Unreachable("down"))) == (0, True)
    assert call_cost(hosted(result=None)) == (0, True)


def test_a_local_call_avoids_what_the_baseline_would_have_charged() -> None:
    assert call_avoided(local(), BASELINE) == 6_000_000


def test_nothing_is_avoided_without_a_baseline_or_an_answer_or_when_hosted() -> None:
    assert call_avoided(local(), None) == 0
    assert call_avoided(local(result=None), BASELINE) == 0
    assert call_avoided(local(error=Unreachable("down")), BASELINE) == 0
    assert call_avoided(hosted(), BASELINE) == 0


# --- the baseline ---------------------------------------------------------------------------


def baseline_config(baseline: str | None, cost: dict[str, float] | None) -> Any:
    model: dict[str, Any] = {"id": "ref"}
    if cost is not None:
        model["cost"] = cost
    raw: dict[str, Any] = {
        "models": {
            "mode": "replace",
            "providers": {"h": {"baseUrl": "http://127.0.0.1:9", "models": [model]}},
        }
    }
    if baseline is not None:
        raw["offload"] = {"savings": {"baseline": baseline}}
    return parse_config(raw, env={})


def test_the_configured_baseline_carries_its_price() -> None:
    found, problem = resolve_baseline(baseline_config("h/ref", {"input": 3, "output": 15}))
    assert found == Baseline("h/ref", Cost(input=3, output=15))
    assert problem is None


def test_no_config_or_no_baseline_means_no_savings_figure() -> None:
    assert resolve_baseline(None) == (None, "no savings baseline configured")
    assert resolve_baseline(baseline_config(None, {"input": 3})) == (None, "no savings baseline configured")


def test_an_unpriced_baseline_says_so() -> None:
    found, problem = resolve_baseline(baseline_config("h/ref", None))
    assert found is None
    assert problem == "savings baseline h/ref has no price (declare its cost under models.providers)"


def test_a_baseline_that_does_not_resolve_says_why() -> None:
    found, problem = resolve_baseline(baseline_config("nowhere", {"input": 1}))
    assert found is None
    assert problem is not None
    assert problem.startswith("savings baseline 'nowhere': unknown model 'nowhere'")


def test_a_baseline_on_an_undeclared_model_has_no_price() -> None:
    found, problem = resolve_baseline(baseline_config("h/other", {"input": 1}))
    assert found is None
    assert problem == "savings baseline h/other has no price (declare its cost under models.providers)"


# --- error text, prompt text, day -----------------------------------------------------------


def test_error_text_is_none_for_successful_calls() -> None:
    assert error_text(hosted()) is None


def test_error_text_is_the_short_form_with_secrets_masked() -> None:
    event = hosted(error=Unreachable("bad key sk-ant-abcdefghij1234 at host"))
    assert error_text(event) == "unreachable: bad key *** at host"


def test_error_text_is_cut_to_its_limit_with_an_ellipsis() -> None:
    prefix = len("unreachable: ")
    exact = hosted(error=Unreachable("x" * (ERROR_CHARS - prefix)))
    assert error_text(exact) == "unreachable: " + "x" * (ERROR_CHARS - prefix)
    longer = error_text(hosted(error=Unreachable("x" * (ERROR_CHARS - prefix + 1))))
    assert longer is not None
    assert len(longer) == ERROR_CHARS
    assert longer.endswith("x…")


def test_prompt_text_keeps_roles_and_content_and_counts_images() -> None:
    request = ChatRequest.from_prompt("look", system="be brief", images=("data:image/png;base64,AAAA",))
    assert json.loads(prompt_text(request) or "") == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "look", "images": 1},
    ]
    assert prompt_text(None) is None


def test_prompt_text_keeps_non_ascii_as_is() -> None:
    assert prompt_text(ChatRequest.from_prompt("café")) == '[{"role": "user", "content": "café"}]'


def test_local_day_is_the_local_calendar_day() -> None:
    ts = 1_790_000_000.0
    assert local_day(ts) == time.strftime("%Y-%m-%d", time.localtime(ts))


# --- the whole row --------------------------------------------------------------------------


def test_a_hosted_call_row() -> None:
    request = ChatRequest.from_prompt("q")
    event = hosted(task="extract", failover=True, escalated=True, request=request)
    row = dict(zip(COLUMNS, event_row(event, ts=1000.0, baseline=BASELINE, store_text=True), strict=True))
    assert row == {
        "ts": 1000.0,
        "day": local_day(1000.0),
        "task": "extract",
        "provider": "cloud",
        "model": "big",
        "local": 0,
        "input_tokens": 1000,
        "output_tokens": 200,
        "reasoning_tokens": 50,
        "seconds": 1.5,
        "ttft_seconds": 0.25,
        "outcome": "ok",
        "error": None,
        "escalated": 1,
        "failover": 1,
        "priced": 1,
        "cost_nusd": 6_000_000,
        "avoided_nusd": 0,
        "baseline": "anthropic/claude-sonnet-4-5",
        "prompt": prompt_text(request),
        "answer": "answer text",
        "client": None,
        "scenario": None,
    }


def test_a_local_call_row_without_text_or_baseline() -> None:
    event = local(request=ChatRequest.from_prompt("q"))
    row = dict(zip(COLUMNS, event_row(event, ts=5.0, baseline=None, store_text=False), strict=True))
    assert (row["provider"], row["model"], row["local"]) == ("lms", "qwen3-4b", 1)
    assert (row["cost_nusd"], row["avoided_nusd"], row["priced"]) == (0, 0, 1)
    assert row["baseline"] is None
    assert row["prompt"] is None
    assert row["answer"] is None
    assert (row["escalated"], row["failover"]) == (0, 0)


def test_a_failed_call_row_has_no_usage_and_names_the_error() -> None:
    event = hosted(error=Unreachable("down"), model=PRICED)
    event = CallEvent(event.candidate, "", 0.5, result=RESULT, error=Unreachable("down"))
    row = dict(zip(COLUMNS, event_row(event, ts=5.0, baseline=BASELINE, store_text=True), strict=True))
    assert row["model"] == "big"  # the candidate's model when the event names none
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (0, 0, 0)
    assert row["ttft_seconds"] is None
    assert row["answer"] is None
    assert row["outcome"] == "unreachable"
    assert row["error"] == "unreachable: down"
    assert row["seconds"] == 0.5
    assert isinstance(row["seconds"], float)


def test_an_unpriced_hosted_call_row_is_marked() -> None:
    row = dict(zip(COLUMNS, event_row(hosted(FREE), ts=5.0, baseline=None, store_text=False), strict=True))
    assert row["priced"] == 0


# --- parse_when -----------------------------------------------------------------------------

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("10s", 10),
        ("30m", 1800),
        ("24h", 86400),
        ("7d", 7 * 86400),
        ("2w", 14 * 86400),
        ("1.5h", 5400),
        (" 7D ", 7 * 86400),
        ("3 d", 3 * 86400),
    ],
)
def test_relative_times_count_back_from_now(text: str, ago: float) -> None:
    assert parse_when(text, now=NOW) == NOW - ago


def test_relative_times_default_to_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows.time, "time", lambda: NOW)
    assert parse_when("1h") == NOW - 3600


def test_dates_and_times_are_local_unless_zoned() -> None:
    assert parse_when("2026-11-01", now=NOW) == datetime(2026, 11, 1).timestamp()
    assert parse_when("2026-11-01T09:30", now=NOW) == datetime(2026, 11, 1, 9, 30).timestamp()
    assert (
        parse_when("2026-11-01T09:30+00:00") == datetime.fromisoformat("2026-11-01T09:30+00:00").timestamp()
    )


@pytest.mark.parametrize("text", ["yesterday", "7x", "d7", "", "7dd", "-7d"])
def test_unreadable_times_are_input_errors(text: str) -> None:
    with pytest.raises(InputError, match="cannot read the time") as info:
        parse_when(text)
    assert info.value.remedy is not None
    assert "7d" in info.value.remedy
