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
        assert turn.is_first and turn.previous_response_id is None
        turn.commit("resp_1", "m")
    async with store.turn("work") as turn:
        assert not turn.is_first and turn.previous_response_id == "resp_1"
        assert turn.state.model == "m"
        turn.commit("resp_2", None)
    state = store.get("work")
    assert (state.response_id, state.model, state.turns) == ("resp_2", "m", 2)


async def test_store_false_turn_changes_nothing(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path)
    async with store.turn("x") as turn:
        turn.commit(None, "m")
    assert store.get("x").turns == 0 and store.list() == []


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
