"""Named conversations: state in the data dir, one chain under concurrent turns."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from offload.conversations import ConversationStore
from offload.errors import InputError


async def test_first_turn_then_continuation(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    async with store.turn("work") as turn:
        assert turn.is_first
        assert turn.previous_response_id is None
        turn.commit("resp_1", "m")
    async with store.turn("work") as turn:
        assert not turn.is_first
        assert turn.previous_response_id == "resp_1"
        assert turn.state.model == "m"
        turn.commit("resp_2", None)
    state = store.get("work")
    assert (state.response_id, state.model, state.turns) == ("resp_2", "m", 2)


async def test_store_false_turn_changes_nothing(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    async with store.turn("x") as turn:
        turn.commit(None, "m")
    assert store.get("x").turns == 0
    assert store.list() == []


async def test_concurrent_turns_form_one_chain(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    seen: list[str | None] = []

    async def one(i: int) -> None:
        async with store.turn("chain") as turn:
            seen.append(turn.previous_response_id)
            await asyncio.sleep(0.01)  # widen the race window
            turn.commit(f"resp_{i}", "m")

    await asyncio.gather(*(one(i) for i in range(8)))
    assert seen.count(None) == 1  # exactly one first turn
    assert len(set(seen)) == 8  # every turn continued from a different response: no fork
    assert store.get("chain").turns == 8


def test_names_are_validated_and_forget_works(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    with pytest.raises(InputError, match="invalid conversation name"):
        store.get("../etc/passwd")
    assert store.forget("nothing") is False


def test_corrupt_state_gives_an_actionable_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="--forget bad"):
        ConversationStore(tmp_path).get("bad")


async def test_one_conversation_through_both_front_doors(tmp_path: Path) -> None:
    """``offload ask -c`` (the Offloader) and ``AsyncLMStudio`` continue each other's threads."""
    from offload import AsyncLMStudio, Offloader
    from offload.config import parse_config
    from offload.testing import LMStudioFake

    fake = LMStudioFake()
    with fake.serve() as server:

        def routed() -> Offloader:
            return Offloader(parse_config({}, env={}), base_url=server.url, state_dir=tmp_path, ledger=False)

        async with routed() as off:
            first = await off.ask("remember 7", conversation="proj")
        async with AsyncLMStudio(server.url, state_dir=tmp_path) as lms:
            second = await lms.chat("what number?", conversation="proj")
        async with routed() as off:
            third = await off.ask("and now?", conversation="proj")
    bodies = [r.body for r in fake.requests if r.path == "/api/v1/chat"]
    assert [b["model"] for b in bodies] == [bodies[0]["model"]] * 3
    assert bodies[1]["previous_response_id"] == first.result.response_id
    assert bodies[2]["previous_response_id"] == second.response_id
    state = ConversationStore(tmp_path / "conversations").get("proj")
    assert state.response_id == third.result.response_id
    assert state.turns == 3
    assert state.ref == f"lmstudio/{bodies[0]['model']}"


def test_state_names_provider_and_key_and_reads_older_files(tmp_path: Path) -> None:
    from offload.conversations import ConversationState

    state = ConversationState("p", "r1", "google/gemma-3-1b", 1, 0.0, "lmstudio")
    assert state.ref == "lmstudio/google/gemma-3-1b"
    assert state.key_for("lmstudio") == "google/gemma-3-1b"
    assert state.key_for("embedded") is None
    (tmp_path / "by-cli.json").write_text('{"response_id": "r", "model": "lmstudio/google/gemma-3-1b"}')
    (tmp_path / "by-client.json").write_text('{"response_id": "r", "model": "google/gemma-3-1b"}')
    store = ConversationStore(tmp_path)
    for name in ("by-cli", "by-client"):
        assert store.get(name).key_for("lmstudio") == "google/gemma-3-1b"
    assert store.get("by-cli").ref == "lmstudio/google/gemma-3-1b"


async def test_client_refuses_a_conversation_held_by_another_provider(tmp_path: Path) -> None:
    from offload import AsyncLMStudio
    from offload.testing import LMStudioFake

    store = ConversationStore(tmp_path / "conversations")
    async with store.turn("elsewhere") as turn:
        turn.commit("resp_1", "claude-haiku-4-5", "anthropic")
    fake = LMStudioFake()
    with fake.serve() as server:
        async with AsyncLMStudio(server.url, state_dir=tmp_path) as lms:
            with pytest.raises(InputError, match="continues on anthropic/claude-haiku-4-5") as caught:
                await lms.chat("hi", conversation="elsewhere")
    assert "offload ask -c elsewhere" in str(caught.value)
    assert [r for r in fake.requests if r.path == "/api/v1/chat"] == []
