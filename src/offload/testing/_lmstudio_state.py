"""Mutable server state of the LM Studio fake.

Owns ``FakeConfig`` (the knobs, changeable while serving), ``FakeStats`` (counters for
assertions), ``Registry`` (downloaded models, loaded instances, instance ids ``key``,
``key:2``…, download jobs) and ``ThreadStore`` (stored responses of stateful chats, shared by
``/api/v1/chat`` and ``/v1/responses``). Registry and store are guarded by a lock because tests
read and change them from their own thread while the server runs in another.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from offload.testing._lmstudio_models import GGUF_LOAD_DEFAULTS, FakeModel, Instance
from offload.testing._lmstudio_text import Responder


@dataclass
class FakeConfig:
    """Behaviour knobs; see ``LMStudioFake`` for their meaning. Safe to change while serving."""

    auth_token: str | None = None
    jit: bool = True
    parallel: int = 4
    token_delay: float = 0.0
    service_time: float = 0.0
    load_delay: float = 0.0
    responder: Responder | None = None
    default_context_length: int = 4096
    auto_evict: bool = True
    system_prompt_bug: bool = True
    memory_bytes: int | None = None


@dataclass
class FakeStats:
    """Counters for assertions (never reset implicitly).

    ``max_concurrency`` is the highest number of generations holding a slot at the same time
    (over all instances); ``max_queued`` the most generations waiting for a slot at once.
    """

    requests: int = 0
    generations: int = 0
    loads: int = 0
    active: int = 0
    max_concurrency: int = 0
    queued: int = 0
    max_queued: int = 0


@dataclass
class DownloadJob:
    job_id: str
    model: FakeModel
    started_at: str

    def status(self) -> dict[str, Any]:
        size = self.model.size_bytes
        return {
            "job_id": self.job_id,
            "status": "completed",
            "total_size_bytes": size,
            "downloaded_bytes": size,
            "started_at": self.started_at,
            "completed_at": _now_iso(),
        }


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Registry:
    """Known models, which are downloaded, and the loaded instances (in load order)."""

    def __init__(self, models: Iterable[FakeModel], config: FakeConfig) -> None:
        self._lock = threading.Lock()
        self._config = config
        self._models: dict[str, FakeModel] = {}
        self._downloaded: set[str] = set()
        self._instances: dict[str, Instance] = {}
        self._reserved: set[str] = set()
        self._jobs: dict[str, DownloadJob] = {}
        for model in models:
            if model.key in self._models:
                raise ValueError(f"duplicate model key {model.key!r}")
            self._models[model.key] = model
            if model.downloaded:
                self._downloaded.add(model.key)
            if model.loaded:
                self.add_instance(model, context_length=model.context_length, parallel=model.parallel)

    # models

    def listed(self) -> list[tuple[FakeModel, list[Instance]]]:
        """Downloaded models with their instances, for ``GET /api/v1/models``."""
        with self._lock:
            instances = list(self._instances.values())
            return [
                (model, [i for i in instances if i.model.key == key])
                for key, model in self._models.items()
                if key in self._downloaded
            ]

    def find_model(
        self, name: str, *, ignore_case: bool = False, downloaded: bool = True
    ) -> FakeModel | None:
        """The model designated by ``name`` (key or variant)."""
        wanted = name.lower() if ignore_case else name
        with self._lock:
            for key, model in self._models.items():
                if downloaded and key not in self._downloaded:
                    continue
                names = [n.lower() for n in model.names()] if ignore_case else model.names()
                if wanted in names:
                    return model
        return None

    def is_downloaded(self, key: str) -> bool:
        with self._lock:
            return key in self._downloaded

    def start_download(self, model: FakeModel) -> DownloadJob:
        job = DownloadJob(f"job_{secrets.token_hex(5)}", model, _now_iso())
        with self._lock:
            self._downloaded.add(model.key)
            self._jobs[job.job_id] = job
        return job

    def job(self, job_id: str) -> DownloadJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def example_names(self) -> list[str]:
        """Three names for the "e.g." list of the OpenAI-compat model-not-found error."""
        with self._lock:
            llms = [m for k, m in self._models.items() if k in self._downloaded and m.is_llm]
        names = [n for m in llms for n in (*m.variants[:1], m.key)]
        return names[:3]

    # instances

    def instance(self, instance_id: str) -> Instance | None:
        with self._lock:
            return self._instances.get(instance_id)

    def instances(self) -> list[Instance]:
        with self._lock:
            return list(self._instances.values())

    def instances_of(self, key: str) -> list[Instance]:
        return [i for i in self.instances() if i.model.key == key]

    def reserve_id(self, key: str, identifier: str | None = None) -> str:
        """A free instance id: ``key``, then ``key:2``, ``key:3``… (or ``identifier``)."""
        with self._lock:
            taken = self._instances.keys() | self._reserved
            if identifier is not None:
                if identifier in taken:
                    raise ValueError(f"instance id {identifier!r} is already in use")
                chosen = identifier
            else:
                chosen, n = key, 1
                while chosen in taken:
                    n += 1
                    chosen = f"{key}:{n}"
            self._reserved.add(chosen)
            return chosen

    def release_id(self, instance_id: str) -> None:
        with self._lock:
            self._reserved.discard(instance_id)

    def add_instance(
        self,
        model: FakeModel,
        *,
        context_length: int | None = None,
        parallel: int | None = None,
        options: dict[str, Any] | None = None,
        instance_id: str | None = None,
        jit: bool = False,
    ) -> Instance:
        """Register a loaded instance (reserving an id first if none was given)."""
        chosen = instance_id or self.reserve_id(model.key)
        given = (options or {}) if model.is_llm and model.format == "gguf" else {}
        context = context_length or min(self._config.default_context_length, model.max_context_length)
        if not model.is_llm:  # embedding models never load above their trained maximum
            context = min(context, model.max_context_length)
        instance = Instance(
            id=chosen,
            model=model,
            context_length=context,
            parallel=parallel or self._config.parallel,
            options={k: given[k] for k in (*GGUF_LOAD_DEFAULTS, "num_experts") if given.get(k) is not None},
            jit=jit,
        )
        with self._lock:
            self._reserved.discard(chosen)
            self._instances[chosen] = instance
        return instance

    def remove_instance(self, instance_id: str) -> Instance | None:
        with self._lock:
            return self._instances.pop(instance_id, None)

    def memory_used(self) -> int:
        """Bytes the loaded instances take (each counts its model's ``size_bytes``)."""
        return sum(instance.model.size_bytes for instance in self.instances())

    def expire_idle(self, now: float) -> list[str]:
        """Unload instances whose idle TTL has run out; returns their ids."""
        with self._lock:
            gone = [
                i.id for i in self._instances.values() if i.ttl is not None and now - i.last_used >= i.ttl
            ]
            for instance_id in gone:
                del self._instances[instance_id]
        return gone


@dataclass(frozen=True)
class StoredTurn:
    """One stored response: the user text, the reply and the response it continued."""

    response_id: str
    parent_id: str | None
    system_prompt: str | None
    user_text: str
    reply: str
    model_key: str = ""


def new_response_id() -> str:
    """``resp_`` + 48 lowercase hex digits, like LM Studio's."""
    return "resp_" + secrets.token_hex(24)


class ThreadStore:
    """Stored responses by id; any stored id can be continued (branching)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turns: dict[str, StoredTurn] = {}

    def put(self, turn: StoredTurn) -> None:
        with self._lock:
            self._turns[turn.response_id] = turn

    def get(self, response_id: str) -> StoredTurn | None:
        with self._lock:
            return self._turns.get(response_id)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._turns)

    def forget(self, response_id: str | None = None) -> None:
        """Drop one stored response, or all (as if they expired)."""
        with self._lock:
            if response_id is None:
                self._turns.clear()
            else:
                self._turns.pop(response_id, None)

    def chain(self, response_id: str) -> list[StoredTurn]:
        """The thread ending at ``response_id``, oldest first (empty if unknown)."""
        chain: list[StoredTurn] = []
        current: str | None = response_id
        with self._lock:
            while current is not None and (turn := self._turns.get(current)) is not None:
                chain.append(turn)
                current = turn.parent_id
        chain.reverse()
        return chain
