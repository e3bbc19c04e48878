"""The work behind the MCP tools, free of MCP types: one ``Service`` per server.

It owns the server's ``Offloader`` (one router shared by concurrent calls, the usage ledger
on), the file ``Root`` and the background batch ``Jobs``. Every handler takes the tool's
arguments as a dict and returns the structured result, raising ``OffloadError`` for anything
the caller should be told. Inputs named by ``paths`` are read here, confined to the root, and
fenced as untrusted data (``fence``) before any model sees them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from offload.errors import InputError, OffloadError
from offload.mcpserver import results
from offload.mcpserver.batches import Jobs
from offload.mcpserver.fence import fence, unfence
from offload.mcpserver.files import Root, Source
from offload.tasks import progress
from offload.tasks.table import TASKS, TaskDef, settings_on

if TYPE_CHECKING:
    from offload.config import Config
    from offload.offloader import Offloader
    from offload.tasks.runner import TaskResult

LOAD_CHECK_SECONDS = 5.0
SETTING_KEYS = tuple(s.name for s in settings_on("schema"))


class Service:
    """Tool handlers over one ``Offloader`` and one file root."""

    def __init__(self, config: Config, root: Root, *, offloader: Offloader | None = None) -> None:
        from offload.offloader import Offloader

        self.config = config
        self.root = root
        self.calls = results.Calls()
        self.offloader = offloader or Offloader(config, observers=[self.calls])
        if offloader is not None:
            offloader.router.observers.append(self.calls)
        self.jobs = Jobs(root, config)

    async def aclose(self) -> None:
        """Stop background batches and close the providers (flushes the ledger)."""
        await self.jobs.aclose()
        await self.offloader.aclose()

    # --- inputs -----------------------------------------------------------------------------

    def material(
        self, args: Mapping[str, Any], *, key: str = "text", required: bool = True
    ) -> tuple[str, list[str]]:
        """The fenced input from ``args[key]`` and/or ``args["paths"]``, and the files read."""
        text = args.get(key)
        paths = args.get("paths") or []
        if isinstance(paths, str):
            paths = [paths]
        sources: list[Source] = []
        if text:
            sources.append(Source("", str(text)))
        files = self.root.read([str(p) for p in paths]) if paths else []
        sources += files
        if not sources:
            if required:
                raise InputError(
                    f"nothing to work on: give {key!r} or 'paths'",
                    remedy=f"pass the material as {key!r}, or files/directories/globs as 'paths'",
                )
            return "", []
        return fence(sources), [s.path for s in files]

    @staticmethod
    def settings(args: Mapping[str, Any]) -> dict[str, Any]:
        """The routing/gate settings among a call's arguments."""
        return {k: args[k] for k in SETTING_KEYS if args.get(k) is not None}

    # --- tasks ------------------------------------------------------------------------------

    async def task(self, task: TaskDef, args: Mapping[str, Any]) -> dict[str, Any]:
        """Run one task tool: read and fence the input, run the task, price its model calls.

        For ``ask`` the ``text`` is the prompt (the caller's own instruction) and only the files
        are fenced material; for every other task both are material.
        """
        from offload.tasks import run_task

        if task.name == "ask":
            prompt = str(args.get("text") or "")
            material, sources = self.material({"paths": args.get("paths")}, required=False)
            text = f"{prompt}\n\n{material}" if material else prompt
        else:
            text, sources = self.material(args)
        options = {o.name: args[o.name] for o in task.on("schema") if args.get(o.name) is not None}
        if task.infer is not None:
            guessed = task.infer(str(args.get("text") or ""), sources[0] if len(sources) == 1 else None)
            options = {**{k: v for k, v in guessed.items() if k not in options}, **options}
        if sources:
            progress.report(f"{task.name}: read {len(sources)} file(s), {len(text):,} characters")
        await self._note_loading(task.name, args.get("model"))
        with results.Calls.collecting() as events:
            result = await run_task(task, text, options, offloader=self.offloader, **self.settings(args))
        if isinstance(result.output, str):
            result = _clean(result)
        return results.task_payload(result, events, self.config, sources)

    async def _note_loading(self, task: str, model: str | None) -> None:
        """Say so when the chain's first model is not loaded yet: this call will wait for the load."""
        from offload.providers.base import ModelManager
        from offload.routing import CallOptions

        try:
            first = self.offloader.router.candidates(CallOptions(model=model, task=task))[0]
            provider = self.offloader.router.pool.get(first.provider.id)
            if not isinstance(provider, ModelManager):
                return
            async with asyncio.timeout(LOAD_CHECK_SECONDS):
                found = await provider.models()
        except Exception:  # best effort: the call itself reports real problems
            return
        if first.ref.model == "auto":
            if not any(m.loaded for m in found if m.is_llm):
                progress.report(f"no model is loaded on {first.provider.id}: this call loads one first")
        elif any(m.key == first.ref.model and not m.loaded for m in found):
            progress.report(f"loading {first.name}: the first call loads the model, which can take a while")

    # --- models, stats, batches -------------------------------------------------------------

    async def models(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Models on every local provider (loaded or not) and the hosted models the config declares."""
        providers: list[dict[str, Any]] = []
        for pid, cfg in self.config.providers.items():
            entry: dict[str, Any] = {"provider": pid, "local": cfg.local, "models": []}
            if cfg.local and (args.get("provider") in (None, pid)):
                try:
                    found = await self.offloader.router.pool.get(pid).models()
                    entry["models"] = [_model_row(m) for m in found]
                except OffloadError as exc:
                    entry["error"] = exc.message
            elif args.get("provider") in (None, pid):
                entry["models"] = [{"key": m.id, "loaded": None} for m in cfg.models]
            else:
                continue
            providers.append(entry)
        chain = [str(ref) for ref in self.config.chain()]
        text = "\n".join(
            f"{p['provider']}: "
            + (
                p.get("error")
                or ", ".join(m["key"] + (" (loaded)" if m.get("loaded") else "") for m in p["models"])
            )
            for p in providers
        )
        return {"providers": providers, "default_chain": chain, "text": text}

    async def stats(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The ledger's savings summary (optionally since a time like ``7d``)."""
        from offload.ledger import Ledger, parse_when

        since = parse_when(str(args["since"])) if args.get("since") else None
        if self.offloader.ledger is not None:
            self.offloader.ledger.flush()
        with Ledger.open_readonly() as reader:
            summary = reader.summary(since, None).to_dict()
        totals = summary.get("totals", {})
        summary["text"] = ", ".join(f"{k}: {v}" for k, v in totals.items() if not isinstance(v, dict | list))
        return summary

    async def batch(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Start a background batch over a file or directory; returns the job id at once."""
        task = str(args.get("task") or "")
        path = str(args.get("path") or "")
        if not path:
            raise InputError("batch needs a 'path': a JSONL/CSV file or a directory inside the root")
        options = dict(args.get("options") or {})
        if task in TASKS:
            try:
                TASKS[task].values(options, "batch")
            except TypeError as exc:
                raise InputError(f"batch {task}: {exc}") from None
        job = self.jobs.start(task, path, args.get("output"), options, self.settings(args))
        status = job.to_dict()
        status["text"] = f"started batch {job.id}: {task} over {job.input}, writing {job.output}"
        return status

    async def batch_status(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """A job's state; with ``wait`` seconds, waits for it to end while reporting items."""
        job = self.jobs.get(str(args.get("job") or ""))
        wait = float(args.get("wait") or 0)
        if wait > 0:
            await self.jobs.wait(job, min(wait, 600.0))
        status = job.to_dict()
        status["text"] = (
            f"batch {job.id} {job.state}: {status['done']}/{status['total']} done, "
            f"{status['failed']} failed; output {job.output}" + (f"; error: {job.error}" if job.error else "")
        )
        return status


def _clean(result: TaskResult) -> TaskResult:
    from dataclasses import replace

    cleaned = unfence(result.text)
    return replace(result, output=cleaned, text=cleaned)


def _model_row(m: Any) -> dict[str, Any]:
    return {
        "key": m.key,
        "type": m.type,
        "loaded": m.loaded,
        "max_context_length": m.max_context_length,
        "loaded_context_length": m.loaded_context_length,
        "vision": m.vision,
    }
