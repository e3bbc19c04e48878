"""``offload calibrate``: exact arithmetic, the judge's position swap, scripted models of known
accuracy through the real batch engine, preflight errors, ``--apply``, resume, and the report."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from offload.calibrate import CalibrateSpec, calibrate
from offload.calibrate.judge import Pair, append_verdict, read_verdict, read_verdicts
from offload.calibrate.metrics import (
    accuracy,
    bootstrap_ci,
    field_counts,
    gate_errors,
    macro_f1,
    mean_ci,
    percentile,
)
from offload.calibrate.table import Scored, recommend, summarize
from offload.config import parse_config
from offload.errors import InputError, LocalOnlyRefused
from offload.offloader import Offloader
from offload.testing.scripted import ScriptedProvider
from offload.types import ChatRequest

EXAMPLES = Path(__file__).parent.parent / "examples" / "calibrate"
CONFIG: dict[str, Any] = {
    "agents": {"defaults": {"model": {"primary": "local/small", "fallbacks": ["cloud/big"]}}},
    "models": {
        "mode": "replace",
        "providers": {
            "local": {"baseUrl": "http://127.0.0.1:9", "models": [{"id": "small", "contextWindow": 8192}]},
            "cloud": {
                "baseUrl": "http://127.0.0.1:10/v1",
                "local": False,
                "apiKey": "test-key",
                "models": [{"id": "big", "contextWindow": 200000, "cost": {"input": 3, "output": 15}}],
            },
        },
    },
}


# --- arithmetic -------------------------------------------------------------------------------


def test_accuracy_and_macro_f1_by_hand() -> None:
    pred = ["bug", "bug", "feature", "question"]
    gold = ["bug", "feature", "feature", "bug"]
    assert accuracy(pred, gold) == 0.5
    # bug: tp1 fp1 fn1 → 0.5; feature: tp1 fp0 fn1 → 2/3; question: tp0 fp1 fn0 → 0
    assert macro_f1(pred, gold) == pytest.approx((0.5 + 2 / 3 + 0) / 3)


def test_labels_compare_case_and_space_insensitively_and_read_label_objects() -> None:
    assert accuracy([{"label": " Bug "}], ["bug"]) == 1.0


def test_field_counts_score_paths_and_values() -> None:
    counts = field_counts({"name": "Maria", "age": 34, "tags": ["a"]}, {"name": "maria", "age": 35})
    assert counts.tp == 1  # name matches case-insensitively
    assert counts.fp == 2  # wrong age, extra tag
    assert counts.fn == 1  # the expected age
    assert counts.precision == pytest.approx(1 / 3)
    assert counts.recall == pytest.approx(1 / 2)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean() -> None:
    scores = [1.0] * 80 + [0.0] * 20
    lo, hi = mean_ci(scores)
    assert mean_ci(scores) == (lo, hi)
    assert lo < 0.8 < hi
    assert lo > 0.7
    assert hi < 0.9
    assert mean_ci([1.0] * 10) == (1.0, 1.0)
    assert bootstrap_ci(0, lambda idx: 0.0) == (0.0, 0.0)


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0


def test_gate_errors_count_false_accepts_and_rejects() -> None:
    errors = gate_errors([True, True, False, False, True], [1.0, 0.0, 1.0, 0.0, 0.0], 0.9)
    assert errors.false_accepts == 2
    assert errors.bad == 3
    assert errors.false_rejects == 1
    assert errors.good == 2
    assert errors.false_accept_rate == pytest.approx(2 / 3)
    assert errors.false_reject_rate == 0.5


def scored(scores: list[float], passed: list[bool], cost: int = 0, prefix: str = "i") -> list[Scored]:
    return [
        Scored(f"{prefix}{k}", "x", failed=False, passed=p, score=s, cost_nusd=cost)
        for k, (s, p) in enumerate(zip(scores, passed, strict=True))
    ]


def test_recommendation_takes_the_local_model_alone_when_it_clears_the_bar() -> None:
    ref = scored([1.0] * 50, [True] * 50, cost=2_000_000)  # $0.002 per item
    good = scored([1.0] * 50, [True] * 50)
    rec = recommend({"local/good": good}, "cloud/big", ref, 0.9)
    assert rec.chain == ("local/good",)
    assert rec.local_share == 1.0
    assert rec.usd_per_1000 == Decimal(0)
    assert rec.saved_per_1000 == Decimal("2.0000")
    assert rec.clears


def test_recommendation_escalates_what_the_gate_rejects() -> None:
    # 40 right answers the gate passes, 10 wrong ones it rejects: the chain gets all 50 right.
    ref = scored([1.0] * 50, [True] * 50, cost=1_000_000)
    local = scored([1.0] * 40 + [0.0] * 10, [True] * 40 + [False] * 10)
    rec = recommend({"local/small": local}, "cloud/big", ref, 0.9)
    assert rec.chain == ("local/small", "cloud/big")
    assert rec.local_share == 0.8
    assert rec.quality == 1.0
    assert rec.usd_per_1000 == Decimal("0.2000")  # 10 of 50 items at $0.001
    assert rec.saved_per_1000 == Decimal("0.8000")


def test_recommendation_falls_back_to_the_reference_when_nothing_local_clears() -> None:
    ref = scored([1.0] * 30, [True] * 30, cost=1_000)
    weak = scored([0.0] * 30, [True] * 30)  # the gate passes everything, all wrong
    rec = recommend({"local/weak": weak}, "cloud/big", ref, 0.9)
    assert rec.chain == ("cloud/big",)
    assert rec.local_share == 0.0
    assert rec.clears


def test_a_row_prices_the_reference_per_1000_items() -> None:
    items = scored([1.0, 0.0], [True, True])
    row = summarize("local/small", True, items, {"i0": 3_000_000, "i1": 1_000_000}, 0.9)
    assert row.reference_usd_per_1000 == Decimal("2.0000")
    assert row.usd_per_1000 == Decimal(0)
    assert row.quality == 0.5
    assert row.gate.false_accepts == 1


# --- the judge --------------------------------------------------------------------------------


def test_a_pair_scores_both_orders_and_cancels_position_bias() -> None:
    assert Pair("A", "B").score == 1.0  # candidate wins in both orders
    assert Pair("B", "A").score == 0.0  # loses in both
    assert Pair("tie", "tie").score == 1.0  # as good as the yardstick
    always_first = Pair("A", "A")
    assert always_first.score == 0.5
    assert always_first.position == "first"
    assert Pair("A", "B").position is None


def test_unreadable_verdicts_count_as_ties() -> None:
    assert read_verdict('{"better": "b"}') == "B"
    assert read_verdict("no idea") == "tie"
    assert read_verdict('{"better": "both"}') == "tie"


def test_verdict_file_resumes_and_cuts_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "judge.jsonl"
    append_verdict(path, "a", Pair("A", "B"))
    append_verdict(path, "a", Pair("B", "A"))  # a duplicate: the first one wins
    with path.open("ab") as handle:
        handle.write(b'{"id": "b", "fir')
    got = read_verdicts(path)
    assert got == {"a": Pair("A", "B")}
    assert path.read_bytes().endswith(b"\n")
    append_verdict(path, "b", Pair("tie", "tie"))
    assert read_verdicts(path)["b"] == Pair("tie", "tie")


# --- runs with scripted models of known accuracy ------------------------------------------------


def label_answers(samples: list[dict[str, Any]], wrong_every: int) -> Any:
    """A classifier that is wrong on every ``wrong_every``-th sample (by its position)."""
    truth = {s["text"]: s["expected"] for s in samples}
    order = [s["text"] for s in samples]
    labels = sorted(set(truth.values()))

    def answer(request: ChatRequest) -> str:
        prompt = request.messages[-1].content
        text = next((t for t in order if t in prompt), None)
        if text is None:  # the batch engine's warm-up request
            return "ok"
        right = truth[text]
        if wrong_every and (order.index(text) + 1) % wrong_every == 0:
            right = next(label for label in labels if label != right)
        return json.dumps({"label": right})

    return answer


def setup(tmp_path: Path, local: Any, cloud: Any) -> tuple[Offloader, ScriptedProvider, ScriptedProvider]:
    off = Offloader(parse_config(CONFIG, env={}), state_dir=tmp_path / "state")
    lp = ScriptedProvider("local", default=local)
    cp = ScriptedProvider("cloud", local=False, default=cloud)
    off.router.pool.put("local", lp)
    off.router.pool.put("cloud", cp)
    return off, lp, cp


def tickets(n: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (EXAMPLES / "tickets.jsonl").read_text().splitlines()]
    return rows[:n]


async def test_classify_scores_a_local_model_of_known_accuracy_exactly(tmp_path: Path) -> None:
    samples = tickets(40)
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    off, _local, _cloud = setup(tmp_path, label_answers(samples, 4), label_answers(samples, 0))
    try:
        spec = CalibrateSpec("classify", str(path), local=("local/small",), reference="cloud/big")
        cal = await calibrate(spec, offloader=off)
    finally:
        await off.aclose()
    (row,) = cal.rows
    assert cal.yardstick == "expected"
    assert row.quality == 0.75  # wrong on every 4th of 40
    assert row.measures["accuracy"] == 0.75
    assert row.ci[0] < 0.75 < row.ci[1]
    assert row.gate_pass_rate == 1.0  # a valid label always passes the checks
    assert row.gate.false_accepts == 10
    assert cal.reference_row.quality == 1.0
    assert cal.reference_row.usd_per_1000 > 0
    # 0.75 does not clear 0.9 alone, and the gate passes the wrong labels: keep the reference.
    assert cal.recommendation.chain == ("cloud/big",)
    assert len(cal.disagreements["local/small"]) == 10


async def test_a_judge_that_always_prefers_the_first_answer_is_detected_and_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text("".join(line + "\n" for line in (EXAMPLES / "notes.jsonl").read_text().splitlines()[:6]))

    def cloud(request: ChatRequest) -> str:
        if "Answer A:" in request.messages[-1].content:
            return '{"better": "A", "reason": "first is best"}'
        return "The reference summary of the text."

    off, _local, cloud_provider = setup(tmp_path, "A local summary of the text.", cloud)
    try:
        spec = CalibrateSpec("summarize", str(path), local=("local/small",), reference="cloud/big")
        cal = await calibrate(spec, offloader=off)
    finally:
        await off.aclose()
    (row,) = cal.rows
    assert row.measures["judge_first_bias"] == 1.0
    assert row.quality == 0.5  # neither a win nor a loss: the bias cancels out
    judged = [c for c in cloud_provider.calls if "Answer A:" in c.messages[-1].content]
    assert len(judged) == 12  # 6 items, both orders
    lines = (tmp_path / "notes.jsonl.calibrate" / "judge-local_small.jsonl").read_text().splitlines()
    assert len(lines) == 6


async def test_a_rerun_reuses_answers_and_verdicts(tmp_path: Path) -> None:
    path = tmp_path / "notes.jsonl"
    path.write_text("".join(line + "\n" for line in (EXAMPLES / "notes.jsonl").read_text().splitlines()[:4]))

    def cloud(request: ChatRequest) -> str:
        if "Answer A:" in request.messages[-1].content:
            return '{"better": "tie"}'
        return "The reference summary."

    spec = CalibrateSpec("summarize", str(path), local=("local/small",), reference="cloud/big")
    off, _, first_cloud = setup(tmp_path, "A local summary.", cloud)
    try:
        await calibrate(spec, offloader=off)
    finally:
        await off.aclose()
    assert len(first_cloud.calls) == 4 + 8
    off, local, again_cloud = setup(tmp_path, "A local summary.", cloud)
    try:
        cal = await calibrate(spec, offloader=off)
    finally:
        await off.aclose()
    assert again_cloud.calls == []
    assert local.calls == []
    assert cal.rows[0].quality == 1.0


# --- preflight: one clear error before any call ---------------------------------------------------


async def test_samples_without_text_are_refused_before_any_call(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1, "body": "x", "expected": "bug"}\n')
    off, local, cloud = setup(tmp_path, "x", "y")
    try:
        with pytest.raises(InputError, match="lack what classify needs"):
            await calibrate(CalibrateSpec("classify", str(path), reference="cloud/big"), offloader=off)
    finally:
        await off.aclose()
    assert local.calls == []
    assert cloud.calls == []


async def test_a_hosted_reference_under_local_only_is_refused_before_any_call(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in tickets(3)))
    off, local, cloud = setup(tmp_path, "x", "y")
    try:
        with pytest.raises(LocalOnlyRefused, match="cloud/big"):
            await calibrate(
                CalibrateSpec("classify", str(path), reference="cloud/big", local_only=True), offloader=off
            )
    finally:
        await off.aclose()
    assert local.calls == []
    assert cloud.calls == []


async def test_an_unavailable_judge_is_refused_before_any_call(tmp_path: Path) -> None:
    config = json.loads(json.dumps(CONFIG))
    config["models"]["providers"]["judgeco"] = {"baseUrl": "https://judge.example.com/v1", "local": False}
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": 1, "text": "Some text to summarize."}\n')
    off = Offloader(parse_config(config, env={}), state_dir=tmp_path / "state")
    try:
        spec = CalibrateSpec("summarize", str(path), reference="cloud/big", judge="judgeco/strong")
        with pytest.raises(InputError, match="judge judgeco/strong is unavailable"):
            await calibrate(spec, offloader=off)
    finally:
        await off.aclose()


async def test_classify_without_labels_needs_expected_labels(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": 1, "text": "crash"}\n{"id": 2, "text": "idea"}\n')
    off, local, _ = setup(tmp_path, "x", "y")
    try:
        with pytest.raises(InputError, match="at least two labels"):
            await calibrate(CalibrateSpec("classify", str(path), reference="cloud/big"), offloader=off)
    finally:
        await off.aclose()
    assert local.calls == []
