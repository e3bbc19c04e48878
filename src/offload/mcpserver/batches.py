"""Batches started from a tool call: they run in the background and are looked up by job id.

``Jobs.start`` checks the input (a JSONL/CSV file or a directory inside the root) and the
output path (inside the root, never the input), starts ``offload.batch`` as an asyncio task and
returns at once; ``Jobs.status`` says running/done/failed with the counts and the output path,
and can wait for a change while the caller sends progress. Nothing here knows about MCP.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from offload.errors import InputError, OffloadError
from offload.tasks import progress

if TYPE_CHECKING:
    from offload.batching import Batch
    from offload.config import Config
    from offload.mcpserver.files import Root

State = Literal["running", "done", "failed"]


@dataclass
class Job:
    """One background batch."""

    id: str
    task: str
    input: str
    output: str
    state: State = "running"
    error: str | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    batch: Batch | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    runner: asyncio.Task[None] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The status shape of the ``batch``/``batch_status`` tools."""
        tally = self.batch.tally if self.batch is not None else None
        return {
            "job": self.id,
            "task": self.task,
            "state": self.state,
            "input": self.input,
            "output": self.output,
            "total": tally.total if tally else 0,
            "done": tally.done if tally else 0,
            "failed": tally.failed if tally else 0,
            "skipped": tally.skipped if tally else 0,
            "remaining": tally.remaining if tally else 0,
            "error": self.error,
            "seconds": round((self.ended or time.time()) - self.started, 1),
        }


class Jobs:
    """The server's background batches, by id."""

    def __init__(self, root: Root, config: Config) -> None:
        self.root = root
        self.config = config
        self._jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)

    def start(
        self,
        task: str,
        path: str,
        output: str | None,
        options: Mapping[str, Any],
        settings: Mapping[str, Any],
    ) -> Job:
        """Check the paths, start the batch in the background, and return its job."""
        from offload.batching import batch

        real = self.root.locate(path)
        self.root.files(path)  # every file below a directory must stay inside the root too
        target = self._output(output, real, task)
        job = Job(
            f"b{next(self._ids)}-{int(time.time())}",
            task,
            self.root.relative(real),
            self.root.relative(target),
        )
        run = batch(task, real, output=target, config=self.config, **dict(options), **dict(settings))
        job.batch = run
        # a fresh context: the job outlives this call, its progress listener and its call log
        job.runner = asyncio.create_task(self._run(job, run), context=contextvars.Context())
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job:
        """The job, or an ``InputError`` naming the known ones."""
        job = self._jobs.get(job_id)
        if job is None:
            known = ", ".join(self._jobs) or "none"
            raise InputError(f"no batch job {job_id!r} on this server (known: {known})")
        return job

    async def wait(self, job: Job, seconds: float) -> None:
        """Wait up to ``seconds`` for the job to end, reporting each finished item."""
        deadline = time.monotonic() + seconds
        while job.state == "running":
            left = deadline - time.monotonic()
            if left <= 0:
                return
            job.changed.clear()
            try:
                await asyncio.wait_for(job.changed.wait(), left)
            except TimeoutError:
                return
            status = job.to_dict()
            progress.report(f"batch {job.id}: {status['done']} of {status['total']} items done")

    async def aclose(self) -> None:
        """Stop every running batch (their output keeps what finished; a rerun resumes)."""
        for job in self._jobs.values():
            if job.runner is not None and not job.runner.done():
                job.runner.cancel()
        for job in self._jobs.values():
            if job.runner is not None:
                await asyncio.gather(job.runner, return_exceptions=True)

    def _output(self, output: str | None, source: Path, task: str) -> Path:
        if output:
            target = self.root.path / output
        else:
            stem = source.name if source.is_dir() else source.stem
            target = source.parent / f"{stem}.{task}.jsonl"
        parent = target.parent.resolve()
        if not parent.is_relative_to(self.root.path):
            raise InputError(f"output {output}: refused, it leads outside the root {self.root.path}")
        resolved = parent / target.name
        if resolved == source:
            raise InputError("the output file cannot be the input file", remedy="name another output")
        return resolved

    async def _run(self, job: Job, run: Batch) -> None:
        try:
            async with run:
                async for _ in run:
                    job.changed.set()
            if run.aborted is not None:
                raise run.aborted
            job.state = "done"
        except OffloadError as exc:
            job.state, job.error = "failed", str(exc)
        except Exception as exc:  # a background job must record, not lose, an unexpected failure
            job.state, job.error = "failed", f"unexpected error: {type(exc).__name__}: {exc}"
        finally:
            job.ended = time.time()
            job.changed.set()
