"""Named stateful conversations: the last response id per name, kept in offload's data dir.

One state, one meaning, for both front doors (``offload ask -c`` / ``Offloader`` and
``AsyncLMStudio``): a conversation remembers the response to continue from and the model that
served it, as the provider id (``lmstudio``) and the model key that provider knows
(``google/gemma-3-1b``); ``ref`` joins them into the ``provider/model`` reference the router
takes. States written before the provider was recorded keep their single ``model`` string.

Each conversation is one small JSON file under ``<data dir>/conversations/``. A turn holds an
exclusive file lock on its conversation from reading the last response id until the new one
is written, so concurrent ``offload ask --conversation NAME`` calls (threads or processes)
take turns and the thread stays a single chain: no lost update, no fork. Files are replaced
atomically, so a crash never leaves a half-written state.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from offload.errors import InputError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class ConversationState:
    """What is remembered about a conversation between turns."""

    name: str
    response_id: str | None = None
    model: str | None = None
    """The model key as its provider knows it (``google/gemma-3-1b``)."""
    turns: int = 0
    updated: float = 0.0
    provider: str | None = None
    """The provider id that served the last turn (``None`` in states from older versions)."""

    @property
    def ref(self) -> str | None:
        """``provider/model``, what the router takes (the bare ``model`` for older states)."""
        if self.model is None or self.provider is None:
            return self.model
        return f"{self.provider}/{self.model}"

    def key_for(self, provider: str) -> str | None:
        """The model key to send to ``provider``, or ``None`` when another provider served."""
        if self.model is None:
            return None
        if self.provider is None:  # older state: a bare key, or a ref written by ``offload ask``
            prefix = f"{provider}/"
            return self.model[len(prefix) :] if self.model.startswith(prefix) else self.model
        return self.model if self.provider == provider else None


class ConversationTurn:
    """One turn in progress: read ``state``, then ``commit`` the new response id."""

    def __init__(self, store: ConversationStore, state: ConversationState) -> None:
        self._store = store
        self.state = state
        self.committed = False

    @property
    def previous_response_id(self) -> str | None:
        """The id to continue from, ``None`` on the first turn."""
        return self.state.response_id

    @property
    def is_first(self) -> bool:
        """True when the conversation has no stored turn yet (send the system prompt)."""
        return self.state.response_id is None

    def commit(
        self, response_id: str | None, model: str | None, provider: str | None = None
    ) -> ConversationState:
        """Record the turn's response id and the ``provider``'s ``model`` key that served it
        (a ``None`` id — ``store: false`` — changes nothing)."""
        if response_id is None:
            return self.state
        old = self.state
        self.state = ConversationState(
            old.name,
            response_id,
            model or old.model,
            old.turns + 1,
            time.time(),
            provider if model else old.provider,
        )
        self._store._write(self.state)
        self.committed = True
        return self.state


class ConversationStore:
    """All named conversations in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str, suffix: str = ".json") -> Path:
        if not NAME.match(name):
            raise InputError(
                f"invalid conversation name {name!r}",
                remedy="use letters, digits, '.', '_' or '-' (up to 128 characters)",
            )
        return self.directory / f"{name}{suffix}"

    def get(self, name: str) -> ConversationState:
        """The stored state (an empty state for an unknown name)."""
        path = self._path(name)
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return ConversationState(name)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(
                f"conversation state {path} is unreadable ({exc})",
                remedy=f"delete it to start over: offload conversations --forget {name}",
            ) from exc
        return ConversationState(
            name=name,
            response_id=data.get("response_id"),
            model=data.get("model"),
            turns=int(data.get("turns") or 0),
            updated=float(data.get("updated") or 0.0),
            provider=data.get("provider"),
        )

    def list(self) -> list[ConversationState]:
        """Every stored conversation, most recent first."""
        if not self.directory.is_dir():
            return []
        states = [self.get(p.stem) for p in self.directory.glob("*.json") if NAME.match(p.stem)]
        return sorted(states, key=lambda s: s.updated, reverse=True)

    def forget(self, name: str) -> bool:
        """Delete a conversation; True when it existed."""
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return False
        return True

    def _write(self, state: ConversationState) -> None:
        path = self._path(state.name)
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{state.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(state), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    @asynccontextmanager
    async def turn(self, name: str) -> AsyncIterator[ConversationTurn]:
        """Hold the conversation's lock for one turn (other turns on ``name`` wait)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path(name, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(_lock, fd)
            yield ConversationTurn(self, self.get(name))
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def _lock(fd: int) -> None:
    """Block until this process holds an exclusive lock on ``fd`` (threads and processes alike)."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:
                continue
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_EX)
