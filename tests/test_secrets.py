"""Secrets never show: not on stderr, in ``doctor``, the ``--log`` file, ``config show``, batch
output, the ledger or ``offload log`` — even when a server echoes them back in an error body.

The hostile server is a real loopback ASGI app that answers every request with a 400 whose
message repeats the request's URL and headers, plus a hosted-style key of its own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from offload import redact
from offload.config import parse_config
from offload.errors import ConfigError
from offload.testing import start
from tests.e2e import offload, write_config

PASSWORD = "PW-userinfo-7781"
QUERY = "QS-query-5521"
API_KEY = "cfg-apikey-9034"
CUSTOM = "HDR-custom-2290"
APIM = "HDR-apim-6612"
ECHOED = "sk-ant-api03-ECHOEDBYSERVER123"
SECRETS = (PASSWORD, QUERY, API_KEY, CUSTOM, APIM, ECHOED)


async def echo(request: Request) -> JSONResponse:
    said = f"{request.url} headers={dict(request.headers)} try {ECHOED}"
    return JSONResponse({"error": {"message": said, "type": "invalid_request_error"}}, status_code=400)


@pytest.fixture
def echo_url() -> Iterator[str]:
    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])
    server = start(app)
    try:
        yield server.url.removeprefix("http://")
    finally:
        server.stop()


def config_text(hostport: str) -> str:
    return f"""{{
  agents: {{ defaults: {{ model: "echo/m" }} }},
  models: {{ providers: {{ echo: {{
    baseUrl: "http://admin:{PASSWORD}@{hostport}/v1?key={QUERY}",
    api: "openai-completions",
    apiKey: "{API_KEY}",
    headers: {{ "X-Custom-Auth": "{CUSTOM}", "Ocp-Apim-Subscription-Key": "{APIM}", "X-Title": "tests" }},
    models: [{{ id: "m" }}],
  }} }} }},
  offload: {{ embedded: {{ enabled: false }} }},
}}"""


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked into {where}"


def test_no_secret_reaches_stderr_the_request_log_the_ledger_or_offload_log(
    echo_url: str, offload_home: Path, tmp_path: Path
) -> None:
    cfg = write_config(offload_home, config_text(echo_url))
    log = tmp_path / "requests.jsonl"
    run = offload("--config", str(cfg), "ask", "hi", "--log", str(log))
    assert run.code == 9, run.err
    assert "rejected the request" in run.err  # the server's message is shown...
    assert_clean(run.err, "stderr")  # ...with its secrets masked
    assert log.exists()
    assert_clean(log.read_text(), "--log")
    assert "Basic" not in log.read_text().replace("Basic ***", "")
    ledger = offload_home / "data" / "usage.sqlite3"
    with sqlite3.connect(ledger) as conn:
        stored = json.dumps(conn.execute("SELECT * FROM calls").fetchall())
    assert "echo" in stored
    assert_clean(stored, "the ledger")
    shown = offload("--config", str(cfg), "log")
    assert shown.code == 0, shown.err
    assert_clean(shown.out, "offload log")
    as_json = offload("--config", str(cfg), "log", "--json")
    assert_clean(as_json.out, "offload log --json")


def test_doctor_and_config_show_mask_every_secret(echo_url: str, offload_home: Path) -> None:
    cfg = write_config(offload_home, config_text(echo_url))
    doctor = offload("--config", str(cfg), "doctor")
    assert "echo" in doctor.out
    assert_clean(doctor.out + doctor.err, "doctor")
    show = offload("--config", str(cfg), "config", "show", "--json")
    assert show.code == 0, show.err
    assert_clean(show.out, "config show")
    echo_entry = show.json()["models"]["providers"]["echo"]
    assert echo_entry["headers"]["X-Title"] == "tests"  # harmless headers stay readable
    assert echo_entry["headers"]["X-Custom-Auth"] == "***"


def test_batch_error_messages_are_masked(echo_url: str, offload_home: Path, tmp_path: Path) -> None:
    cfg = write_config(offload_home, config_text(echo_url))
    items = tmp_path / "in.jsonl"
    items.write_text(json.dumps({"id": "a", "text": "some text to summarize"}) + "\n")
    out = tmp_path / "out.jsonl"
    run = offload("--config", str(cfg), "batch", "summarize", str(items), "-o", str(out))
    assert run.code == 13, run.err
    assert "error" in out.read_text()
    assert_clean(out.read_text(), "batch output")
    assert_clean(run.err, "batch stderr")


@pytest.mark.parametrize(
    ("provider", "secret"),
    [
        ({"apiKeyEnv": "sk-proj-abcdef123456"}, "sk-proj-abcdef123456"),
        ({"apiKeyEnv": ["sk-proj-abcdef123456"]}, "sk-proj-abcdef123456"),
        ({"apiKey": ["hunter2-password"]}, "hunter2-password"),
        ({"headers": {"X-Auth": ["hdr-value-1234"]}}, "hdr-value-1234"),
        ({"baseUrl": ["Bearer abcdefgh1234"]}, "abcdefgh1234"),
    ],
)
def test_config_errors_name_the_type_never_the_secret(provider: dict[str, object], secret: str) -> None:
    raw = {"models": {"providers": {"p": {"baseUrl": "http://127.0.0.1:1/v1", **provider}}}}
    with pytest.raises(ConfigError) as info:
        parse_config(raw, env={})
    assert secret not in str(info.value)
    assert "value not shown" in str(info.value)


def test_config_errors_still_quote_ordinary_values() -> None:
    with pytest.raises(ConfigError, match=r'models\.mode: expected "merge" or "replace", got "mix"'):
        parse_config({"models": {"mode": "mix"}}, env={})


def test_a_single_env_var_name_is_accepted_for_api_key_env() -> None:
    raw = {"models": {"providers": {"p": {"baseUrl": "http://127.0.0.1:1/v1", "apiKeyEnv": "MY_KEY"}}}}
    assert parse_config(raw, env={"MY_KEY": "k-123456"}).providers["p"].api_key == "k-123456"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("http://admin:pw@host:1/v1?key=abc&page=2", "http://***@host:1/v1?key=***&page=2"),
        ("Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer ***"),
        ("header Basic YWRtaW46cGFzcw==", "header Basic ***"),
        ("bad key sk-ant-api03-XYZxyz123456 sent", "bad key *** sent"),
        ("token sk-lm-abcdef12:ghij3456 refused", "token *** refused"),
        ('{"api_key": "abc123"}', '{"api_key": "***"}'),
        ("max_tokens: 100, a basic check", "max_tokens: 100, a basic check"),
        ("https://h/x?access_token=zz&client_secret=yy", "https://h/x?access_token=***&client_secret=***"),
    ],
)
def test_patterns(raw: str, shown: str) -> None:
    assert redact.text(raw) == shown


def test_registered_values_are_masked_anywhere_and_short_ones_ignored() -> None:
    redact.register("my-own-token-value", "abc", "lmstudio", "pw-12")
    assert redact.text("the server said my-own-token-value!") == "the server said ***!"
    assert redact.text("abc lmstudio pw-12") == "abc lmstudio pw-12"


def test_header_values_are_masked_unless_harmless() -> None:
    shown = redact.headers({"Content-Type": "application/json", "Ocp-Apim-Subscription-Key": "v"})
    assert shown == {"Content-Type": "application/json", "Ocp-Apim-Subscription-Key": "***"}
