"""The batch run: read, resume, warm the servers, keep every slot busy, write each result once.

Owns ``Batch`` (an async iterator of ``ItemResult``), ``BatchSpec`` (everything a run is asked
to do) and the per-item lifecycle:

1. the item's ``TaskSpec`` is built (a missing field fails only that item);
2. the result cache is asked (key: task, chain, pinned model, gate settings, exact request);
3. otherwise the task runs through the router — retries, failover, gate, re-asks, escalation
   as for a single call — on whichever server has a free slot;
4. the line is committed to the output (``OutputLog.append``) and counted, *then* yielded.

Item failures (a gate that never passed, a context overflow, a server error on that input)
are written with their error and the run goes on. Failures of the environment (nothing
answering, auth, no such model) are never written: the item waits (2, 4, 8, 10 s…) and runs
again; when they persist — such failures keep coming and no item finished for ``patience``
seconds — the run stops with that error, and a rerun resumes where it stopped. ``interrupt()``
(the CLI's Ctrl-C) stops dispatching and cancels the items in flight; none of them is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from offload.batching.inputs import Format, InputProblem, Item, check_paths, read_input
from offload.batching.jobs import Job, fingerprint, make_job, typical_need
from offload.batching.output import OutputFailed, OutputLog, Resume
from offload.batching.progress import Tally
from offload.batching.rows import ItemResult, error_row, result_row
from offload.errors import OffloadError
from offload.routing.policy import environmental

if TYPE_CHECKING:
    from offload.batching.cache import ResultCache
    from offload.batching.servers import Fleet
    from offload.config import Config
    from offload.offloader import Offloader
    from offload.routing.router import Candidate, Router
    from offload.tasks.runner import RunSettings, TaskResult, TaskRunner

RETRY_LATER = 2.0
RETRY_LATER_CAP = 10.0
STALL_STREAK = 3
NOTICES = 8


@dataclass(frozen=True)
class BatchSpec:
    """What one batch run is asked to do."""

    task: str
    items: str | os.PathLike[str] | Iterable[str | Mapping[str, Any]]
    output: str | os.PathLike[str] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)
    id_field: str | None = None
    text_field: str = "text"
    input_format: Format | None = None
    concurrency: int | None = None
    base_urls: tuple[str, ...] = ()
    cache: bool = True
    cache_path: Path | None = None
    retry_failed: bool = False
    api_token: str | None = None
    timeout: float | None = None
    patience: float = 30.0
    """Seconds without a finished item after which persistent server failures stop the run."""


@dataclass
class _Deferred:
    item: Item
    error: OffloadError


@dataclass
class _Run:
    job: Job
    runner: TaskRunner
    settings: RunSettings
    cache: ResultCache
    fingerprint: dict[str, Any]


class Batch:
    """A batch run as an async iterator of ``ItemResult`` (completion order).

    The output file (when given) is written as items finish, whether or not the caller
    consumes the iterator quickly. ``tally``, ``problems`` and ``fleet`` describe the run.
    """

    def __init__(
        self,
        spec: BatchSpec,
        *,
        offloader: Offloader | None = None,
        config: Config | None = None,
        notify: Callable[[str], None] | None = None,
        on_ready: Callable[[Batch], None] | None = None,
    ) -> None:
        self.spec = spec
        self.tally = Tally()
        self.problems: list[InputProblem] = []
        self.fleet: Fleet | None = None
        self.output: OutputLog | None = None
        self.resume = Resume()
        self.aborted: OffloadError | None = None
        self.interrupted = False
        self._offloader = offloader
        self._config = config
        self._notify = notify
        self._on_ready = on_ready
        self._stopping = False
        self._pending: set[asyncio.Task[ItemResult | _Deferred]] = set()
        self._env_streak = 0
        self._progress = time.monotonic()
        self._notices = 0
        self._iterator: AsyncIterator[ItemResult] | None = None
        self._results_queue: asyncio.Queue[ItemResult | None] | None = None

    # --- public controls -----------------------------------------------------------------------

    def interrupt(self) -> None:
        """Stop dispatching and cancel the items in flight (they stay unwritten, so resumable)."""
        self.interrupted = True
        self._stopping = True
        for task in self._pending:
            task.cancel()

    def __aiter__(self) -> AsyncIterator[ItemResult]:
        if self._iterator is None:
            self._iterator = self._results()
        return self._iterator

    async def __aenter__(self) -> Batch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the run (if still going) and release the output, cache and servers."""
        iterator = self._iterator
        if iterator is not None and hasattr(iterator, "aclose"):
            self.interrupt()
            await iterator.aclose()

    async def run(self) -> Tally:
        """Consume every result; the tally at the end."""
        async for _ in self:
            pass
        return self.tally

    def note(self, message: str) -> None:
        """Pass a notice to the caller (router failover notices are capped)."""
        if self._notify is not None:
            self._notify(message)

    def _router_notice(self, message: str) -> None:
        self._notices += 1
        if self._notices <= NOTICES:
            self.note(message)
        elif self._notices == NOTICES + 1:
            self.note("offload: further failover notices are not shown (see the summary)")

    # --- the run -------------------------------------------------------------------------------

    async def _results(self) -> AsyncIterator[ItemResult]:
        job = make_job(self.spec.task, self.spec.options)
        output = self.spec.output
        check_paths(self.spec.items, output)
        inputs = await asyncio.to_thread(
            read_input,
            self.spec.items,
            fmt=self.spec.input_format,
            id_field=self.spec.id_field,
            text_field=self.spec.text_field,
            need_text=job.needs_text,
            exclude=(output,) if output is not None else (),
        )
        self.problems = inputs.problems
        self.tally.total = len(inputs.items)
        self.tally.malformed = len(inputs.problems)
        if self.spec.output is not None:
            self.output = OutputLog(self.spec.output, retry_failed=self.spec.retry_failed)
            self.resume = self.output.open()
        try:
            for note in self.resume.notes:
                self.note(f"offload: {self.output.name if self.output else 'output'}: {note}")
            todo = [item for item in inputs.items if item.key not in self.resume.done]
            self.tally.skipped = self.tally.total - len(todo)
            keys = {item.key for item in inputs.items}
            self.tally.earlier_failed = sum(1 for k in self.resume.failed if k in keys)
            if todo:
                async for result in self._execute(job, todo):
                    yield result
        finally:
            if self.output is not None:
                await self.output.aclose()
            self.tally.ended = time.monotonic()

    async def _execute(self, job: Job, todo: list[Item]) -> AsyncIterator[ItemResult]:
        from offload.batching.cache import ResultCache
        from offload.offloader import Offloader
        from offload.routing.cooldown import Cooldowns
        from offload.tasks.runner import TaskRunner

        own = self._offloader is None
        off = self._offloader or Offloader(
            self._config, api_token=self.spec.api_token, timeout=self.spec.timeout, notify=self._router_notice
        )
        base = off.router  # only read: the run gets its own pool and cooldowns (Router.using)
        cache = ResultCache(self.spec.cache_path, read=self.spec.cache)
        try:
            planner = TaskRunner(base)
            settings = planner.settings_for(job.name, **{**job.defaults, **self.spec.settings})
            chain = self._chain(base, planner, job, settings)
            self.fleet = await self._prepare(base, chain, job, todo)
            router = base.using(
                pool=self.fleet.pool(base.pool),
                # the servers the fleet watches are rested per server, never the whole provider
                cooldowns=Cooldowns(exempt=self.fleet.sets),
            )
            runner = TaskRunner(router)
            if cache.broken:
                self.note(f"offload: {cache.broken}")
            run = _Run(job, runner, settings, cache, self._fingerprint(job, chain, settings, router))
            if self._on_ready is not None:
                self._on_ready(self)
            self.tally.started = self._progress = time.monotonic()
            results: asyncio.Queue[ItemResult | None] = asyncio.Queue()
            self._results_queue = results
            dispatcher = asyncio.create_task(self._dispatch(run, deque(todo), results))
            try:
                while (result := await results.get()) is not None:
                    yield result
                await dispatcher
            finally:
                if not dispatcher.done():
                    self.interrupt()
                    dispatcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await dispatcher
        finally:
            cache.close()
            if self.fleet is not None:
                await self.fleet.aclose()
            if own:
                await off.aclose()
        if self.aborted is not None:
            raise self.aborted

    def _chain(self, router: Router, runner: TaskRunner, job: Job, settings: RunSettings) -> list[Candidate]:
        from offload.routing.router import CallOptions

        names = runner.chain(job.name, settings)
        chain = router.candidates(CallOptions(chain=tuple(names)))
        if router.local_only(CallOptions(task=job.name, local_only=settings.local_only)):
            chain = [c for c in chain if c.local]
        return chain

    async def _prepare(self, router: Router, chain: list[Candidate], job: Job, todo: list[Item]) -> Fleet:
        from offload.batching.servers import prepare_fleet

        self.note("offload: getting the servers ready…")
        fleet = await prepare_fleet(
            router,
            chain,
            base_urls=self.spec.base_urls,
            concurrency=self.spec.concurrency,
            need=typical_need(job, todo),
        )
        for note in fleet.notes:
            self.note(f"offload: {note}")
        return fleet

    def _fingerprint(
        self, job: Job, chain: list[Candidate], settings: RunSettings, router: Router
    ) -> dict[str, Any]:
        from offload.routing.router import CallOptions

        fleet = self.fleet
        return {
            "task": job.name,
            "chain": [c.name for c in chain],
            "pinned": dict(fleet.pinned) if fleet else {},
            "gate": [
                settings.gate,
                settings.on_fail,
                settings.judge,
                settings.judge_threshold,
                settings.reasks,
            ],
            "local_only": router.local_only(CallOptions(task=job.name, local_only=settings.local_only)),
        }

    # --- dispatching ---------------------------------------------------------------------------

    def _target(self) -> int:
        """Items in flight: twice what the servers run at once, so a freed slot never waits on us."""
        slots = self.fleet.slots() if self.fleet is not None else 1
        return 2 * slots + 2

    async def _dispatch(
        self, run: _Run, queue: deque[Item], results: asyncio.Queue[ItemResult | None]
    ) -> None:
        later: list[tuple[float, Item]] = []
        requeued: dict[str, int] = {}
        loop = asyncio.get_running_loop()
        try:
            while True:
                now = loop.time()
                while later and later[0][0] <= now:
                    queue.appendleft(later.pop(0)[1])
                while not self._stopping and queue and len(self._pending) < self._target():
                    self._pending.add(asyncio.create_task(self._one(run, queue.popleft())))
                if not self._pending and (self._stopping or not later):
                    return
                if not self._pending:
                    await asyncio.sleep(min(0.25, max(0.0, later[0][0] - now)))
                    continue
                done, _ = await asyncio.wait(self._pending, timeout=0.25, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    self._pending.discard(task)
                    if task.cancelled():
                        continue
                    outcome = task.result()
                    if isinstance(outcome, _Deferred):
                        self._deferred(outcome, requeued, later, loop.time())
        finally:
            for task in self._pending:
                task.cancel()
            await asyncio.gather(*self._pending, return_exceptions=True)
            self._pending.clear()
            results.put_nowait(None)

    def _stop(self, error: OffloadError) -> None:
        """End the run with ``error`` (the first one wins); what is in flight is cancelled."""
        if self.aborted is None:
            self.aborted = error
            self._stopping = True
        if isinstance(error, OutputFailed):
            for task in self._pending:
                task.cancel()

    def _deferred(
        self, outcome: _Deferred, requeued: dict[str, int], later: list[tuple[float, Item]], now: float
    ) -> None:
        """An environment failure: run the item again later, or stop when failures persist."""
        self._env_streak += 1
        key = outcome.item.key
        requeued[key] = requeued.get(key, 0) + 1
        stalled = time.monotonic() - self._progress >= self.spec.patience
        if self._env_streak >= STALL_STREAK and stalled:
            self._stop(outcome.error)
            return
        wait = min(RETRY_LATER_CAP, RETRY_LATER * 2 ** (requeued[key] - 1))
        later.append((now + wait, outcome.item))
        later.sort(key=lambda pair: pair[0])

    async def _one(self, run: _Run, item: Item) -> ItemResult | _Deferred:
        from offload.batching.cache import cache_key

        started = time.monotonic()
        try:
            spec = run.job.spec(item)
        except OffloadError as exc:
            return self._commit(item, error_row(item, exc.kind, exc.message, exc.remedy, 0.0), error=exc)
        key = cache_key(run.fingerprint, fingerprint(spec))
        hit = run.cache.get(key)
        if hit is not None:
            return self._commit(item, {**hit, "id": item.id, "server": None, "cached": True, "seconds": 0.0})
        try:
            result = await run.job.run(run.runner, item, run.settings, spec)
        except OffloadError as exc:
            if environmental(exc):
                return _Deferred(item, exc)
            row = error_row(item, exc.kind, exc.message, exc.remedy, time.monotonic() - started)
            return self._commit(item, row, error=exc)
        except Exception as exc:  # a bug must not lose the other items; it is reported per item
            message = f"internal error: {type(exc).__name__}: {exc}"
            row = error_row(item, "internal", message, "please report this", time.monotonic() - started)
            return self._commit(item, row, error=OffloadError(message))
        row = result_row(item, result, time.monotonic() - started, _server(result))
        run.cache.put(key, {k: v for k, v in row.items() if k not in ("id", "server", "cached", "seconds")})
        return self._commit(item, row, result=result)

    def _commit(
        self,
        item: Item,
        row: dict[str, Any],
        *,
        result: TaskResult | None = None,
        error: OffloadError | None = None,
    ) -> ItemResult:
        """Write the line (the commit point), count it, and hand it on. No ``await`` here.

        When the line cannot be written (disk full) the run stops with that error, unwritten.
        """
        if self.output is not None:
            try:
                self.output.append(row)
            except OutputFailed as exc:
                self._stop(exc)
                return ItemResult(item.id, row, result, exc)
        self.tally.add(row)
        self._env_streak = 0
        self._progress = time.monotonic()
        done = ItemResult(item.id, row, result, error)
        if self._results_queue is not None:
            self._results_queue.put_nowait(done)
        return done


def _server(result: TaskResult) -> str | None:
    """The server that gave the item's answer (the last successful call's), when known."""
    for attempt in reversed(result.attempts):
        if attempt.outcome == "ok":
            return attempt.address
    return None
