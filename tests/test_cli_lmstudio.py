"""The ``offload`` command against the LM Studio fake over real HTTP: each command, each error kind."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from offload.testing import FakeModel, LMStudioFake
from tests.e2e import Run, offload, write_config


@pytest.fixture
def fake() -> Iterator[tuple[LMStudioFake, dict[str, str]]]:
    lms = LMStudioFake()
    with lms.serve() as server:
        yield lms, {"LM_STUDIO_API_URL": server.url}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ask(env: dict[str, str], *args: str, input: str | None = None) -> Run:
    return offload("ask", "--provider", "lmstudio", *args, env=env, input=input)


def test_models_table_and_json(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    _, env = fake
    table = offload("models", env=env)
    assert table.code == 0, table.err
    header, *rows = table.out.splitlines()
    assert header.split()[:3] == ["KEY", "TYPE", "PARAMS"]
    gemma = next(r for r in rows if r.startswith("google/gemma-3-1b "))
    assert "google/gemma-3-1b (ctx 8192, 4 slots)" in gemma
    assert "vision,tools,reasoning:off/on" in next(r for r in rows if r.startswith("google/gemma-4-e4b "))
    data = offload("models", "--json", env=env).json()
    keys = [m["key"] for m in data["models"]]
    assert "text-embedding-nomic-embed-text-v1.5" in keys
    loaded = next(m for m in data["models"] if m["key"] == "google/gemma-3-1b")["loaded_instances"]
    assert loaded == [
        {
            "id": "google/gemma-3-1b",
            "context_length": 8192,
            "parallel": 4,
            "config": {"context_length": 8192, "parallel": 4, "reasoning_budget_message": ""},
        }
    ]


def test_server_down_is_one_clear_line_and_exit_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = offload("models", "--base-url", url)
    assert run.code == 3
    assert run.out == ""
    first = run.err.splitlines()[0]
    assert first == f"error: lmstudio is not reachable at {url} (connection refused)"
    assert "lms server start" in run.err
    assert "LM_STUDIO_API_URL" in run.err
    assert "Traceback" not in run.err


def test_load_reuses_instances_unless_asked_and_unload_verifies(
    fake: tuple[LMStudioFake, dict[str, str]],
) -> None:
    lms, env = fake
    first = offload("load", "qwen/qwen3-4b-2507", "--context-length", "8192", env=env)
    assert first.code == 0, first.err
    assert re.fullmatch(r"loaded qwen/qwen3-4b-2507 in \d+\.\d\ds\n", first.out)
    again = offload("load", "qwen/qwen3-4b-2507", env=env)
    assert "already loaded as qwen/qwen3-4b-2507" in again.out
    second = offload("load", "qwen/qwen3-4b-2507", "--new-instance", "--json", env=env)
    assert second.json()["instance_id"] == "qwen/qwen3-4b-2507:2"
    assert lms.loaded_instances().count("qwen/qwen3-4b-2507:2") == 1
    load_body = next(r.body for r in lms.requests if r.path == "/api/v1/models/load")
    assert load_body == {"model": "qwen/qwen3-4b-2507", "context_length": 8192}
    gone = offload("unload", "qwen/qwen3-4b-2507", env=env)
    assert gone.code == 0
    assert gone.out == "unloaded qwen/qwen3-4b-2507, qwen/qwen3-4b-2507:2\n"
    assert not [i for i in lms.loaded_instances() if i.startswith("qwen/")]
    assert offload("unload", "--all", env=env).code == 0
    assert lms.loaded_instances() == []


def test_unload_reports_instances_that_remain(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    lms, env = fake
    lms.fail_next("status:500", count=3, path="/api/v1/models/unload")
    run = offload("unload", "--instance", "google/gemma-3-1b", env=env)
    assert run.code == 8
    assert "google/gemma-3-1b" in lms.loaded_instances()
    usage = offload("unload", env=env)
    assert usage.code == 2
    assert "exactly one of" in usage.err


def test_load_unknown_key_names_the_closest(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    _, env = fake
    run = offload("load", "google/gemma-3", env=env)
    assert run.code == 5
    assert "has no model 'google/gemma-3'" in run.err
    assert "did you mean google/gemma-3-1b" in run.err


def test_ask_plain_json_and_stdin_and_file(fake: tuple[LMStudioFake, dict[str, str]], tmp_path: Path) -> None:
    lms, env = fake
    lms.script("The cat sat.", "From stdin.", "From a file.")
    run = ask(env, "Summarize: the cat sat on the mat")
    assert run.code == 0, run.err
    assert run.out == "The cat sat.\n"
    assert ask(env, input="the prompt on stdin").out == "From stdin.\n"  # no TEXT, piped stdin
    prompt = tmp_path / "p.txt"
    prompt.write_text("prompt from a file")
    data = ask(env, f"@{prompt}", "--json").json()
    assert data["content"] == "From a file."
    assert data["model"] == "google/gemma-3-1b"
    assert data["candidate"] == "lmstudio/auto"
    assert data["local"] is True
    assert re.fullmatch(r"resp_[0-9a-f]{48}", data["response_id"])
    bodies = [r.body for r in lms.requests if r.path == "/api/v1/chat"]
    assert bodies[-1]["input"] == "prompt from a file"


def test_ask_options_reach_the_wire(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    lms, env = fake
    run = ask(
        env,
        "hello there",
        "--model",
        "google/gemma-4-e4b",
        "--system",
        "be brief",
        "--temperature",
        "0.3",
        "--top-p",
        "0.9",
        "--max-output-tokens",
        "40",
        "--reasoning",
        "off",
        "--context-length",
        "4096",
        "--no-store",
        "--json",
    )
    assert run.code == 0, run.err
    body = [r.body for r in lms.requests if r.path == "/api/v1/chat"][-1]
    assert body == {
        "model": "google/gemma-4-e4b",
        "input": "hello there",
        "system_prompt": "be brief",
        "temperature": 0.3,
        "top_p": 0.9,
        "max_output_tokens": 40,
        "reasoning": "off",
        "context_length": 4096,
        "store": False,
    }
    assert run.json()["response_id"] is None


def test_model_choice_is_explained(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    _, env = fake
    run = ask(env, "hi", "--verbose")
    assert run.code == 0
    assert "model: lmstudio/google/gemma-3-1b" in run.err
    assert "already loaded" in run.err
    quality = ask(env, "describe", "--image", str(Path(__file__)), "--prefer", "quality", "--verbose")
    assert "model: lmstudio/google/gemma-4-26b-a4b-qat" in quality.err
    assert "with vision" in quality.err


def test_reasoning_stays_off_stdout(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    lms, env = fake
    run = ask(env, "think about it", "--model", "google/gemma-4-e4b", "--reasoning", "on", "--show-reasoning")
    assert run.code == 0, run.err
    reasoning = [r for r in lms.requests if r.path == "/api/v1/chat"]
    assert reasoning
    assert run.out.strip()
    assert run.err.strip()
    assert run.err.strip() not in run.out
    data = ask(env, "think", "--model", "google/gemma-4-e4b", "--reasoning", "on", "--json").json()
    assert data["reasoning"]
    assert data["reasoning"] not in data["content"]


def test_stream_prints_answer_and_progress(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    lms, env = fake
    lms.script("one two three four")
    run = ask(env, "count", "--model", "qwen/qwen3-4b-2507", "--stream")
    assert run.code == 0, run.err
    assert run.out == "one two three four\n"
    assert "loading model" in run.err
    assert "processing prompt" in run.err


def test_conversation_keeps_state_and_sends_system_once(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    lms, env = fake
    first = ask(env, "my name is Ann", "--conversation", "work", "--system", "be kind", "--json")
    second = ask(env, "what is my name?", "--conversation", "work", "--system", "be kind", "--json")
    assert first.code == 0, first.err
    assert second.code == 0, second.err
    bodies = [r.body for r in lms.requests if r.path == "/api/v1/chat"]
    assert bodies[0]["system_prompt"] == "be kind"
    assert "previous_response_id" not in bodies[0]
    assert "system_prompt" not in bodies[1]
    assert bodies[1]["previous_response_id"] == first.json()["response_id"]
    assert second.json()["conversation"] == "work"


def test_concurrent_turns_on_one_conversation_form_one_chain(
    fake: tuple[LMStudioFake, dict[str, str]], offload_home: Path
) -> None:
    lms, env = fake
    with ThreadPoolExecutor(6) as pool:
        runs = list(pool.map(lambda i: ask(env, f"turn {i}", "--conversation", "shared", "--json"), range(6)))
    assert [r.code for r in runs] == [0] * 6, [r.err for r in runs]
    ids = [r.json()["response_id"] for r in runs]
    bodies = [r.body for r in lms.requests if r.path == "/api/v1/chat"]
    previous = [b.get("previous_response_id") for b in bodies]
    assert previous.count(None) == 1  # one first turn
    assert len(set(previous)) == 6  # no two turns continued from the same response: no fork
    assert {p for p in previous if p} <= set(ids)
    state = json.loads((offload_home / "data" / "conversations" / "shared.json").read_text())
    assert state["turns"] == 6
    assert state["response_id"] in ids


def test_unload_after_only_unloads_what_this_call_loaded(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    lms, env = fake
    run = ask(env, "hi", "--model", "qwen/qwen3-4b-2507", "--unload-after")
    assert run.code == 0, run.err
    assert "qwen/qwen3-4b-2507" not in lms.loaded_instances()
    kept = ask(env, "hi", "--model", "google/gemma-3-1b", "--unload-after")
    assert kept.code == 0
    assert "google/gemma-3-1b" in lms.loaded_instances()


def test_log_file_has_requests_and_no_secrets(
    fake: tuple[LMStudioFake, dict[str, str]], tmp_path: Path
) -> None:
    _, env = fake
    log = tmp_path / "log.jsonl"
    run = ask(env, "hi", "--log", str(log), "--api-token", "sk-lm-Secret12:abcdefghijklmnopqrst")
    assert run.code == 0, run.err
    text = log.read_text()
    assert "Secret12" not in text
    records = [json.loads(line) for line in text.splitlines()]
    assert {"request", "response"} <= {r["direction"] for r in records}
    chat = next(r for r in records if r["direction"] == "request" and r["url"].endswith("/api/v1/chat"))
    assert chat["body"]["input"] == "hi"
    assert chat["headers"]["authorization"] == "***"


# --- error kinds ----------------------------------------------------------------------------


def test_auth_missing_and_rejected() -> None:
    lms = LMStudioFake(auth_token="sk-lm-Abcd1234:abcdefghijklmnopqrst")
    with lms.serve() as server:
        env = {"LM_STUDIO_API_URL": server.url}
        missing = ask(env, "hi")
        assert missing.code == 4
        assert "rejected the credentials (401)" in missing.err
        assert "LM_API_TOKEN" in missing.err
        wrong = ask({**env, "LM_API_TOKEN": "sk-lm-Wrong123:abcdefghijklmnopqrst"}, "hi")
        assert wrong.code == 4
        ok = ask({**env, "LM_API_TOKEN": "sk-lm-Abcd1234:abcdefghijklmnopqrst"}, "hi")
        assert ok.code == 0, ok.err


def test_model_not_found_names_closest(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    _, env = fake
    run = ask(env, "hi", "--model", "qwen3-4b")
    assert run.code == 5
    assert "has no model 'qwen3-4b'" in run.err
    assert "did you mean qwen/qwen3-4b-2507" in run.err


def test_context_overflow_is_explained_and_not_retried() -> None:
    lms = LMStudioFake(
        models=[FakeModel("tiny/model", loaded=True, context_length=64, max_context_length=4096)]
    )
    with lms.serve() as server:
        run = ask({"LM_STUDIO_API_URL": server.url}, "word " * 400, "--model", "tiny/model")
    assert run.code == 6
    assert "does not fit the loaded context of 64 tokens of tiny/model" in run.err
    assert "--context-length" in run.err
    assert len([r for r in lms.requests if r.path == "/api/v1/chat"]) == 1


def test_unknown_previous_response_suggests_a_new_conversation(
    fake: tuple[LMStudioFake, dict[str, str]],
) -> None:
    _, env = fake
    run = ask(env, "hi", "--previous-response-id", "resp_" + "0" * 48)
    assert run.code == 9
    assert "Could not find stored response" in run.err
    assert "new conversation" in run.err


def test_invalid_request_names_the_key(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    _, env = fake
    run = ask(env, "hi", "--model", "qwen/qwen3-4b-2507", "--reasoning", "high")
    assert run.code == 9
    assert "rejected the request" in run.err


def test_transient_errors_are_retried(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    lms, env = fake
    lms.fail_next("status:503", count=1)
    lms.fail_next("drop", count=1)
    run = ask(env, "hi")
    assert run.code == 0, run.err
    assert run.err.count("retry") == 2


def test_server_error_after_retries(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    lms, env = fake
    lms.fail_next("status:500", count=10)
    run = ask(env, "hi", "--model", "google/gemma-3-1b")
    assert run.code == 8
    assert "failed (500)" in run.err


def test_timeout(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    lms, env = fake
    lms.fail_next("timeout", count=5)
    run = ask(env, "hi", "--model", "google/gemma-3-1b", "--timeout", "0.3")
    assert run.code == 7
    assert "timed out waiting for lmstudio" in run.err


def test_200_with_error_quirk_is_a_clear_error(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    _, env = fake
    run = offload("models", "--base-url", env["LM_STUDIO_API_URL"] + "/lmstudio")
    assert run.code == 8
    assert (
        "answered 200 with an error: Unexpected endpoint or method. (GET /lmstudio/api/v1/models)" in run.err
    )
    assert "LM Studio 0.4 or newer" in run.err


def test_doctor_ok_and_failing(fake: tuple[LMStudioFake, dict[str, str]], offload_home: Path) -> None:
    _, env = fake
    run = offload("doctor", env=env)
    assert run.code == 0, run.out + run.err
    assert "✓ lmstudio: LM Studio answers at" in run.out
    assert "✓ round trip:" in run.out
    assert "✓ path: calls go to lmstudio, on this machine" in run.out
    write_config(offload_home, "{offload: {embedded: {enabled: false}}}")
    down = offload("doctor", "--base-url", f"http://127.0.0.1:{free_port()}")
    assert down.code == 1
    assert "✗ lmstudio: nothing answers" in down.out
    assert "fix: start LM Studio" in down.out
    assert "✗ path: no provider in the chain can answer" in down.out


@pytest.mark.inference
def test_doctor_reports_the_embedded_path_when_lmstudio_is_down() -> None:
    run = offload("doctor", "--base-url", f"http://127.0.0.1:{free_port()}")
    assert run.code == 0, run.out + run.err
    assert "! lmstudio: nothing answers" in run.out
    assert "✓ embedded: in-process llama.cpp: smollm2-135m-instruct answered" in run.out
    assert "✓ path: calls go to embedded (lmstudio unavailable), on this machine" in run.out


def test_version_and_exit_codes_in_help() -> None:
    from offload import __version__

    assert offload("--version").out.strip() == f"offload, version {__version__}"
    help_text = offload("--help").out
    assert "Exit codes:" in help_text
    assert "6  context overflow" in help_text


def test_conversations_listing_and_forget(fake: tuple[LMStudioFake, dict[str, str]]) -> None:
    _, env = fake
    assert ask(env, "hello", "-c", "notes").code == 0
    listed = offload("conversations", "--json").json()["conversations"]
    assert [(c["name"], c["turns"], c["model"]) for c in listed] == [
        ("notes", 1, "lmstudio/google/gemma-3-1b")
    ]
    assert "notes" in offload("conversations").out
    gone = offload("conversations", "--forget", "notes")
    assert "forgot notes" in gone.err
    assert offload("conversations", "--json").json()["conversations"] == []
