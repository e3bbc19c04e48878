"""Task commands end to end over real HTTP: LM Studio fake as the local model, OpenAI fake as hosted.

Covers the issue's cases from the shell: extraction answered in fences, with invalid JSON and
with a schema violation (re-ask, then escalation to the hosted fake, then the local-only
failure), classification with an out-of-set label, a summary of an input four times the
context window, every task once, and the savings report afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from offload.testing import FakeModel, LMStudioFake, OpenAIFake
from tests.e2e import Run, offload, write_config

PERSON_FIELDS = "name, age int"


@pytest.fixture
def env(offload_home: Path) -> Iterator[tuple[LMStudioFake, OpenAIFake, dict[str, str]]]:
    lms = LMStudioFake()
    with lms.serve() as server, OpenAIFake(["gpt-4o-mini"], api_key="sk-test") as cloud:
        write_config(
            offload_home,
            f"""{{
          agents: {{ defaults: {{ model: {{ primary: "lmstudio/google/gemma-3-1b",
                                              fallbacks: ["cloud/gpt-4o-mini"] }} }} }},
          models: {{ providers: {{
            lmstudio: {{ baseUrl: "{server.url}", api: "lmstudio",
                         models: [{{ id: "google/gemma-3-1b", contextWindow: 8192 }}] }},
            cloud: {{ baseUrl: "{cloud.base_url}", apiKey: "sk-test", api: "openai-completions", local: false,
                      models: [{{ id: "gpt-4o-mini", contextWindow: 128000,
                                  cost: {{ input: 0.15, output: 0.6 }} }}] }},
          }} }},
          offload: {{ savings: {{ baseline: "cloud/gpt-4o-mini" }} }},
        }}""",
        )
        yield lms, cloud, {}


def task(*args: str, input: str | None = None) -> Run:
    return offload(*args, "--json", input=input)


def test_extract_fenced_answer(env: tuple[LMStudioFake, OpenAIFake, dict[str, str]]) -> None:
    lms, cloud, _ = env
    lms.script('```json\n{"name": "Maria Lopez", "age": 34}\n```')
    run = task("extract", "--fields", PERSON_FIELDS, "Maria Lopez is 34.")
    assert run.code == 0, run.err
    data = run.json()
    assert data["output"] == {"name": "Maria Lopez", "age": 34}
    assert data["model"] == "lmstudio/google/gemma-3-1b"
    chat = next(r for r in lms.requests if r.path == "/v1/chat/completions").body
    assert chat["response_format"]["type"] == "json_schema"  # structured output through LM Studio's /v1
    assert cloud.requests == []


def test_extract_reasks_then_escalates_to_hosted(
    env: tuple[LMStudioFake, OpenAIFake, dict[str, str]],
) -> None:
    lms, cloud, _ = env
    lms.script("name is Maria", '{"name": "Maria", "age": "old"}', '{"name": "Maria"}')
    cloud.script('{"name": "Maria Lopez", "age": 34}')
    run = task("extract", "--fields", PERSON_FIELDS, "Maria Lopez is 34.")
    assert run.code == 0, run.err
    data = run.json()
    assert data["output"] == {"name": "Maria Lopez", "age": 34}
    assert data["model"] == "cloud/gpt-4o-mini"
    assert data["escalated"]
    assert not data["local"]
    assert "offload: escalated extract: lmstudio/google/gemma-3-1b" in run.err
    reasks = [r.body for r in lms.requests if r.path == "/v1/chat/completions"]
    assert len(reasks) == 3
    assert "not of type" in reasks[2]["messages"][-1]["content"]
    assert len(cloud.calls("/v1/chat/completions")) == 1
    stats = offload("stats", "--json").json()
    assert stats["totals"]["escalation_rate"] > 0
    assert stats["totals"]["calls"] == 4


def test_extract_local_only_fails_with_the_validation_error(
    env: tuple[LMStudioFake, OpenAIFake, dict[str, str]],
) -> None:
    lms, cloud, _ = env
    lms.script("nope", "still nope", '{"name": 1, "age": 2}')
    run = task("extract", "--local-only", "--fields", PERSON_FIELDS, "Maria Lopez is 34.")
    assert run.code == 12
    assert "name: 1 is not of type" in run.err
    assert "local-only mode refused escalating to cloud/gpt-4o-mini" in run.err
    assert cloud.requests == []


def test_classify_out_of_set_label(env: tuple[LMStudioFake, OpenAIFake, dict[str, str]]) -> None:
    lms, _, _ = env
    lms.script('{"label": "crash"}', '{"label": "Bug"}')
    run = task("classify", "--labels", "bug,feature,question", "It crashes when I click save")
    assert run.code == 0, run.err
    assert run.json()["output"] == {"label": "bug"}
    assert not run.json()["escalated"]


def test_summarize_input_four_times_the_context(offload_home: Path) -> None:
    tiny = LMStudioFake(
        models=[FakeModel("tiny/model", loaded=True, context_length=512, max_context_length=512)]
    )
    text = "\n\n".join(
        f"Section {i}: " + "The committee met and agreed on the budget. " * 12 for i in range(16)
    )
    with tiny.serve() as server:
        write_config(
            offload_home,
            f'{{models: {{providers: {{lmstudio: {{baseUrl: "{server.url}"}}}}}},'
            " offload: {embedded: {enabled: false}}}",
        )
        run = offload("summarize", "--json", input=text)
    assert run.code == 0, run.err
    data = run.json()
    assert data["parts"] > 1
    assert data["text"]
    inputs = [r.body["input"] for r in tiny.requests if r.path == "/api/v1/chat"]
    assert all(len(i) / 3.5 < 512 for i in inputs)  # every call fit the 512-token window
    read = " ".join(inputs)
    for i in (0, 7, 15):
        assert f"Section {i}:" in read  # nothing silently dropped


def test_every_task_from_the_shell(
    env: tuple[LMStudioFake, OpenAIFake, dict[str, str]], tmp_path: Path
) -> None:
    lms, cloud, _ = env
    lms.script(
        "The committee agreed on a budget.",
        "Please send the report when you can, thanks!",
        json.dumps(
            {
                "summary": "Adds a cache.",
                "findings": [{"location": "a.py:1", "severity": "minor", "message": "unbounded"}],
            }
        ),
        json.dumps({"ideas": ["Batch nightly jobs", "Cache answers", "Route by task", "Use smaller models"]}),
        "Das Treffen ist morgen und es ist wichtig.",
    )
    text = "The committee met on Tuesday. After a long debate about costs, it agreed on the new budget."
    assert (
        task("summarize", "--length", "sentence", text).json()["text"] == "The committee agreed on a budget."
    )
    rewrite = task("rewrite", "--how", "friendlier", "Send the report now.")
    assert rewrite.json()["text"].startswith("Please send")
    diff = tmp_path / "change.diff"
    diff.write_text("diff --git a/a.py b/a.py\n+cache = {}\n")
    review = task("review", str(diff))
    assert review.json()["output"]["findings"][0]["severity"] == "minor"
    ideas = task("brainstorm", "-n", "3", "save money on LLM calls").json()["output"]["ideas"]
    assert ideas == ["Batch nightly jobs", "Cache answers", "Route by task"]
    german = task("translate", "--to", "German", "The meeting is tomorrow and it is important.")
    assert german.code == 0, german.err
    assert german.json()["text"].startswith("Das Treffen")
    assert not german.json()["escalated"]
    assert cloud.requests == []
    log = offload("log", "--json").json()
    assert {row["task"] for row in log["calls"]} >= {
        "summarize",
        "rewrite",
        "review",
        "brainstorm",
        "translate",
    }


def test_user_template_from_the_shell(
    env: tuple[LMStudioFake, OpenAIFake, dict[str, str]], offload_home: Path
) -> None:
    lms, _, _ = env
    (offload_home / "tasks").mkdir()
    (offload_home / "tasks" / "tagline.json5").write_text(
        '{system: "You write taglines.", template: "Tagline for {audience}: {text}", output: "text"}'
    )
    lms.script("Spend less, ship more.")
    run = offload("run", "tagline", "--var", "audience=developers", "a tool that offloads LLM work")
    assert run.code == 0, run.err
    assert run.out.strip() == "Spend less, ship more."
    missing = offload("run", "tagline", "x")
    assert missing.code == 2
    assert "needs audience" in missing.err
    assert "--var audience=..." in missing.err


def test_generated_commands_read_files_and_guess_what_they_can(
    env: tuple[LMStudioFake, OpenAIFake, dict[str, str]], tmp_path: Path
) -> None:
    lms, _, _ = env
    review = json.dumps({"summary": "Fine.", "findings": []})
    lms.script(review, review, review, json.dumps({"label": "bug"}))
    diff = tmp_path / "change.diff"
    diff.write_text("diff --git a/a.py b/a.py\n+cache = {}\n")
    assert task("review", str(diff)).code == 0
    assert task("review", "--kind", "patch set", str(diff)).code == 0
    assert task("review", input="def f(): pass\n").code == 0
    labels = tmp_path / "labels.txt"
    labels.write_text("bug\nfeature\n\n")
    assert task("classify", "--labels-file", str(labels), "It crashes").json()["output"] == {"label": "bug"}
    chats = [r.body for r in lms.requests if r.path == "/v1/chat/completions"]
    prompts = [body["messages"][-1]["content"] for body in chats]
    assert len(prompts) == 4
    assert "Review this diff." in prompts[0]
    assert "Review this patch set." in prompts[1]  # an explicit --kind wins over the guess
    assert "Review this text." in prompts[2]
    assert "bug, feature." in prompts[3]
