"""The answer gate measured on a labelled corpus, plus the cases issue 12 names one by one.

``tests/data/gate_corpus.jsonl`` holds good and bad answers in every language
``checks.detect_language`` knows: refusals (plain, bold, quoted, labelled, after reasoning),
non-answers, echoes of the instructions and of offload's re-ask, and hard good cases —
summaries and rewrites that *mention* apologies or inability, translations of refusal
sentences, and short answers such as "No.".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from offload.tasks import builtin, checks
from offload.tasks.spec import TaskSpec
from offload.types import ChatResult

CORPUS = Path(__file__).parent / "data" / "gate_corpus.jsonl"


def _rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def _spec(row: dict[str, Any]) -> TaskSpec:
    task, source, arg = row["task"], row["source"], row["arg"]
    if task == "summarize":
        return builtin.summarize(source, "paragraph")
    if task == "translate":
        return builtin.translate(source, arg)
    if task == "rewrite":
        return builtin.rewrite(source, arg)
    assert task == "yesno", task
    return TaskSpec(
        name="ask",
        system="Answer the question about the text briefly.",
        prompt=f"{arg}\n\n<<<\n{source}\n>>>",
        source=source,
    )


def _rejected(row: dict[str, Any]) -> list[str]:
    _, problems = _spec(row).accept(ChatResult(content=row["answer"]))
    return problems


def test_corpus_is_big_and_covers_every_detected_language() -> None:
    rows = _rows()
    assert len(rows) >= 300
    languages = {row["lang"] for row in rows}
    assert languages >= set(checks.STOPWORDS) | set(checks.SCRIPTS)
    assert sum(row["good"] for row in rows) >= 100
    assert sum(not row["good"] for row in rows) >= 100


def test_gate_error_rates_on_the_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    rows = _rows()
    good = [r for r in rows if r["good"]]
    bad = [r for r in rows if not r["good"]]
    false_rejects = [(r, p) for r in good if (p := _rejected(r))]
    false_accepts = [r for r in bad if not _rejected(r)]
    fr, fa = len(false_rejects) / len(good), len(false_accepts) / len(bad)
    with capsys.disabled():
        print(
            f"\ngate on {len(rows)} answers: false accepts {len(false_accepts)}/{len(bad)} = {fa:.1%}, "
            f"false rejects {len(false_rejects)}/{len(good)} = {fr:.1%}"
        )
        for r, p in false_rejects:
            print(f"  false reject [{r['lang']}] {r['answer'][:70]!r}: {p}")
        for r in false_accepts:
            print(f"  false accept [{r['lang']}] {r['answer'][:70]!r} ({r['note']})")
    assert fa <= 0.02
    assert fr <= 0.02


@pytest.mark.parametrize(
    "answer",
    [
        "I’m sorry, but I can’t help with that.",
        "I apologize, but I cannot assist with this request.",
        "Unfortunately, I am unable to provide a summary.",
        "**I'm sorry, but I can't help with that.**",
        "\"I'm sorry, but I can't help with that.\"",
        "Lo siento, pero no puedo ayudar con eso.",
        "Summary: I cannot help with that.",
    ],
)
def test_issue_refusals_are_refusals(answer: str) -> None:
    assert checks.gate(answer, source="The library reopens on Monday.") == ["the model refused"]


@pytest.mark.parametrize("answer", ["...", "N/A", "null", "```\n```", "<think>Let me see.</think>"])
def test_issue_non_answers_are_rejected(answer: str) -> None:
    assert checks.gate(answer, source="The library reopens on Monday.") != []


def test_offloads_own_reask_text_is_caught_when_echoed() -> None:
    spec = builtin.summarize("The library reopens on Monday after roof repairs.", "sentence")
    reask = spec.reask("I'm sorry.", ["the model refused"]).messages[-1].content
    assert checks.gate(f"Understood: {reask}") == ["the answer repeats offload's re-ask instead of answering"]


def test_echo_of_the_task_instruction_is_caught() -> None:
    spec = builtin.summarize("The library reopens on Monday after roof repairs.", "sentence")
    _, problems = spec.accept(ChatResult(content="Summarize the text below in one sentence."))
    assert problems == ["the answer repeats the task's instructions instead of doing the task"]


def test_reasoning_is_dropped_from_the_accepted_text() -> None:
    spec = builtin.summarize("The library reopens on Monday after roof repairs.", "sentence")
    output, problems = spec.accept(
        ChatResult(content="<think>short one</think>\nThe library reopens Monday.")
    )
    assert problems == []
    assert output == "The library reopens Monday."


def test_refusal_shaped_answer_passes_when_the_input_says_the_same() -> None:
    spec = builtin.translate("I'm sorry, but I can't help with that.", "Spanish")
    _, problems = spec.accept(ChatResult(content="Lo siento, pero no puedo ayudar con eso."))
    assert problems == []
