"""Tasks with scripted local and hosted models: gate, re-asks, escalation, local-only, long inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from offload import tasks
from offload.config import parse_config
from offload.errors import ContextOverflow, InputError, LocalOnlyRefused, QualityGateFailed
from offload.offloader import Offloader
from offload.testing.scripted import ScriptedProvider
from offload.types import ChatRequest, ChatResult

CONFIG: dict[str, Any] = {
    "agents": {"defaults": {"model": {"primary": "local/small", "fallbacks": ["cloud/big"]}}},
    "models": {
        "mode": "replace",
        "providers": {
            "local": {"baseUrl": "http://127.0.0.1:9", "models": [{"id": "small", "contextWindow": 8192}]},
            "cloud": {
                "baseUrl": "http://127.0.0.1:10/v1",
                "local": False,
                "models": [{"id": "big", "contextWindow": 200000, "cost": {"input": 3, "output": 15}}],
            },
        },
    },
}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def setup(
    config: dict[str, Any] | None = None, tmp: Path | None = None
) -> tuple[Offloader, ScriptedProvider, ScriptedProvider]:
    off = Offloader(parse_config(config or CONFIG, env={}), state_dir=tmp)
    local, cloud = ScriptedProvider("local"), ScriptedProvider("cloud", local=False)
    off.router.pool.put("local", local)
    off.router.pool.put("cloud", cloud)
    return off, local, cloud


async def test_extract_strips_fences_and_validates() -> None:
    off, local, cloud = setup()
    local.add('Sure! Here it is:\n```json\n{"name": "Maria Lopez", "age": 34,}\n```\nAnything else?')
    result = await tasks.extract("Maria Lopez is 34.", schema=PERSON, offloader=off)
    assert result.output == {"name": "Maria Lopez", "age": 34}
    assert result.model == "local/small"
    assert result.local
    assert not result.escalated
    assert cloud.calls == []
    request = local.calls[0]
    assert request.response_format is not None
    assert request.response_format.schema == PERSON


async def test_invalid_json_is_reasked_with_the_error_then_accepted() -> None:
    off, local, _ = setup()
    local.add("name: Maria, age: 34", '{"name": "Maria", "age": 34}')
    result = await tasks.extract("Maria is 34.", schema=PERSON, offloader=off)
    assert result.output == {"name": "Maria", "age": 34}
    assert not result.escalated
    reask = local.calls[1]
    assert [m.role for m in reask.messages] == ["system", "user", "assistant", "user"]
    assert "not valid JSON" in reask.messages[-1].content


async def test_schema_violation_reasks_then_escalates_to_hosted() -> None:
    off, local, cloud = setup()
    local.add('{"name": "Maria", "age": "thirty-four"}', '{"name": "Maria"}', '{"age": 34}')
    cloud.add('{"name": "Maria Lopez", "age": 34}')
    result = await tasks.extract("Maria Lopez is 34.", schema=PERSON, offloader=off)
    assert len(local.calls) == 3  # first answer + two re-asks
    assert "age: 'thirty-four' is not of type 'integer'" in local.calls[1].messages[-1].content
    assert result.output == {"name": "Maria Lopez", "age": 34}
    assert result.model == "cloud/big"
    assert not result.local
    assert result.escalated
    assert "local/small" in result.escalations[0]
    assert "required property" in result.escalations[0]


async def test_local_only_fails_with_the_validation_error() -> None:
    off, local, cloud = setup()
    local.add("not json", "still not", "nope")
    with pytest.raises(QualityGateFailed) as info:
        await tasks.extract("Maria is 34.", schema=PERSON, offloader=off, local_only=True)
    assert "not valid JSON" in str(info.value)
    assert "local-only mode refused escalating to cloud/big" in str(info.value)
    assert cloud.calls == []


async def test_on_fail_warn_and_fail() -> None:
    off, local, _ = setup()
    local.add("nope", "nope", "nope")
    warned = await tasks.extract("x", fields="name", offloader=off, on_fail="warn")
    assert warned.problems
    assert warned.output == "nope"
    local.add("nope", "nope", "nope")
    with pytest.raises(QualityGateFailed, match="local/small failed the gate"):
        await tasks.extract("x", fields="name", offloader=off, on_fail="fail")


async def test_classify_out_of_set_label_is_reasked() -> None:
    off, local, _ = setup()
    local.add('{"label": "Bug report"}', '{"label": "BUG"}')
    result = await tasks.classify("The app crashes", ["bug", "feature", "question"], offloader=off)
    assert result.output == {"label": "bug"}
    assert result.text == "bug"
    assert "is not one of ['bug', 'feature', 'question']" in local.calls[1].messages[-1].content
    schema = local.calls[0].response_format.schema  # type: ignore[union-attr]
    assert schema["properties"]["label"] == {"enum": ["bug", "feature", "question"]}


async def test_classify_multi_with_confidence() -> None:
    off, local, _ = setup()
    local.add('{"labels": ["Bug", "question"], "confidence": 0.8}')
    result = await tasks.classify(
        "crash?", ["bug", "feature", "question"], multi=True, confidence=True, offloader=off
    )
    assert result.output == {"labels": ["bug", "question"], "confidence": 0.8}
    assert result.text == "bug, question (0.80)"


async def test_summary_checks_catch_echo_and_length() -> None:
    off, local, cloud = setup()
    text = " ".join(f"Sentence number {i} says something about the topic." for i in range(20))
    local.add(text, text)  # echoes the input twice
    cloud.add("The text lists twenty sentences about a topic.")
    result = await tasks.summarize(text, "sentence", offloader=off)
    assert result.escalated
    assert result.model == "cloud/big"
    assert (
        "not shorter than the input" in result.escalations[0] or "repeats the prompt" in result.escalations[0]
    )


async def test_refusal_and_empty_answers_fail_the_gate() -> None:
    off, local, cloud = setup()
    local.add("I'm sorry, but I can't help with that.", "")
    cloud.add("Bonjour le monde")
    result = await tasks.translate("Hello world", "French", offloader=off)
    assert result.escalated
    assert result.text == "Bonjour le monde"
    assert "the model refused" in local.calls[1].messages[-1].content  # re-asked with the reason
    assert "the answer is empty" in result.escalations[0]  # the re-ask came back empty


async def test_translate_language_check() -> None:
    off, local, cloud = setup()
    local.add("The weather is nice today and it is warm.", "The weather is nice today.")
    cloud.add("Das Wetter ist heute schön und es ist warm.")
    result = await tasks.translate("The weather is nice today and it is warm.", "German", offloader=off)
    assert result.escalated
    assert "looks like 'en', not 'de'" in result.escalations[0]


async def test_brainstorm_removes_near_duplicates() -> None:
    off, local, _ = setup()
    local.add(
        json.dumps(
            {
                "ideas": [
                    "Use solar panels",
                    "use solar panels!",
                    "Plant trees",
                    "Bike to work",
                    "Plant more trees",
                    "Insulate the attic",
                    "Eat less meat",
                ]
            }
        )
    )
    result = await tasks.brainstorm("cut household emissions", 4, offloader=off)
    assert result.output["ideas"] == ["Use solar panels", "Plant trees", "Bike to work", "Insulate the attic"]
    assert result.text.splitlines()[0] == "1. Use solar panels"


async def test_brainstorm_too_few_distinct_ideas_escalates() -> None:
    off, local, cloud = setup()
    same = json.dumps({"ideas": ["Plant trees", "plant trees", "Plant trees!"]})
    local.add(same, same, same)
    cloud.add(json.dumps({"ideas": ["a b", "c d", "e f"]}))
    result = await tasks.brainstorm("x", 3, offloader=off)
    assert result.escalated
    assert "only 1 distinct ideas, 3 were asked for" in result.escalations[0]


async def test_review_findings_are_structured() -> None:
    off, local, _ = setup()
    local.add(
        json.dumps(
            {
                "summary": "Adds a cache.",
                "findings": [{"location": "cache.py:12", "severity": "major", "message": "never expires"}],
            }
        )
    )
    result = await tasks.review("diff --git a/cache.py b/cache.py\n+cache = {}", offloader=off)
    assert result.output["findings"][0]["severity"] == "major"
    assert result.text == "Adds a cache.\n- [major] cache.py:12: never expires"


async def test_judge_scores_local_answers_and_escalates_below_threshold() -> None:
    off, local, cloud = setup()
    local.add("A summary that misses the point.")
    cloud.add('{"score": 3, "reason": "misses the main point"}', "A good summary.")
    text = "word " * 60
    result = await tasks.summarize(text, "sentence", offloader=off, gate="judge")
    assert result.model == "cloud/big"
    assert result.escalated
    assert "scored it 3/10: misses the main point" in result.escalations[0]
    judge_request = cloud.calls[0]
    assert judge_request.response_format is not None
    assert "Grade an answer" in judge_request.messages[1].content
    local.add("A fine summary.")
    cloud.add('{"score": 9, "reason": "good"}')
    passed = await tasks.summarize(text, "sentence", offloader=off, gate="judge")
    assert passed.model == "local/small"
    assert passed.judge_score == 9


async def test_long_input_is_split_summarized_and_combined() -> None:
    off, local, _ = setup()

    def answer(request: ChatRequest) -> str:
        return "Part summary." if "at most" in request.messages[-1].content else "Overall summary."

    local.default = answer
    text = "\n\n".join(
        f"Paragraph {i}. " + "The quick brown fox jumps over the dog. " * 30 for i in range(40)
    )
    result = await tasks.summarize(text, "paragraph", offloader=off, local_only=True)
    assert result.text == "Overall summary."
    assert result.parts == 4
    assert all(len(c.messages[-1].content) < 8192 * 3.5 for c in local.calls)  # nothing over the window
    joined = " ".join(c.messages[-1].content for c in local.calls[:-1])
    for i in (0, 17, 39):  # every part of the input was read: nothing silently dropped
        assert f"Paragraph {i}." in joined


async def test_overflow_from_the_server_triggers_splitting() -> None:
    off, local, _ = setup()
    calls = {"n": 0}

    def answer(request: ChatRequest) -> str | ChatResult:
        calls["n"] += 1
        if len(request.messages[-1].content) > 4000:
            raise ContextOverflow("too long", context_length=1024, prompt_tokens=3000)
        return "Short."

    local.default = answer  # type: ignore[assignment]
    result = await tasks.summarize(
        "A sentence about things. " * 400, "sentence", offloader=off, local_only=True
    )
    assert result.text == "Short."
    assert result.parts > 1


async def test_per_task_config_sets_chain_and_gate() -> None:
    cfg = {**CONFIG, "offload": {"tasks": {"classify": {"model": "cloud/big", "gate": "off"}}}}
    off, local, cloud = setup(cfg)
    cloud.add('{"label": "nonsense"}')
    result = await tasks.classify("x", ["a", "b"], offloader=off)
    assert result.model == "cloud/big"
    assert local.calls == []
    assert result.problems  # gate off: returned as is


async def test_local_only_task_setting_refuses_hosted_model() -> None:
    cfg = {**CONFIG, "offload": {"tasks": {"rewrite": {"localOnly": True}}}}
    off, _, cloud = setup(cfg)
    with pytest.raises(LocalOnlyRefused):
        await tasks.rewrite("hello", "more formal", offloader=off, chain=("cloud/big",))
    assert cloud.calls == []


async def test_bad_task_input_is_clear() -> None:
    off, _, _ = setup()
    with pytest.raises(InputError, match="at least two labels"):
        await tasks.classify("x", ["only"], offloader=off)
    with pytest.raises(InputError, match="cannot read field"):
        await tasks.extract("x", fields="name, age integerish", offloader=off)
    with pytest.raises(InputError, match="either a JSON Schema or a field list"):
        await tasks.extract("x", offloader=off)
    with pytest.raises(TypeError, match="unknown task setting"):
        await tasks.rewrite("x", "y", offloader=off, colour="red")


async def test_user_template_task(offload_home: Path) -> None:
    folder = offload_home / "tasks"
    folder.mkdir(parents=True)
    (folder / "changelog.json5").write_text("""{
      system: "You write changelog entries.",
      template: "Entry for {audience}:\\n{text}",
      defaults: { audience: "users" },
      output: "text", maxOutputTokens: 100,
    }""")
    off, local, _ = setup()
    local.add("Added a cache.")
    result = await tasks.run_template("changelog", "+cache = {}", {"audience": "devs"}, offloader=off)
    assert result.text == "Added a cache."
    assert result.task == "changelog"
    assert local.calls[0].messages[1].content == "Entry for devs:\n+cache = {}"
    with pytest.raises(InputError, match="no task template 'nope'"):
        await tasks.run_template("nope", "x", offloader=off)
    (folder / "broken.json5").write_text('{template: "no text var", output: "json"}')
    with pytest.raises(Exception, match=r"must contain \{text\}"):
        await tasks.run_template("broken", "x", offloader=off)
