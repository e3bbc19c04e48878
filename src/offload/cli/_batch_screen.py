"""The command line's view of one batch run: signals, live progress, failures, summary, exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from offload.cli._app import current_config, note

if TYPE_CHECKING:
    from offload.batching.engine import Batch
    from offload.batching.progress import ProgressBar
    from offload.batching.rows import ItemResult

SHOWN_FAILURES = 10
SHOWN_PROBLEMS = 20
EXIT_FAILED = 13
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Screen:
    """Drives one batch from the command line: signals, progress, failures, summary, exit code."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: ProgressBar | None = None
        self.failures = 0
        self.signal: int | None = None

    def say(self, message: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.note(message)
        else:
            note(message)

    async def drive(self, spec: Any) -> int:
        import asyncio
        import signal

        from offload.batching.engine import Batch
        from offload.errors import OffloadError

        batch = Batch(spec, config=current_config(), notify=self.say, on_ready=self.ready)
        loop = asyncio.get_running_loop()
        handled = (signal.SIGINT, signal.SIGTERM)
        for sig in handled:
            loop.add_signal_handler(sig, self.stop, batch, sig)
        error: OffloadError | None = None
        try:
            async for result in batch:
                self.item(result)
        except OffloadError as exc:
            if batch.aborted is not exc:
                raise
            error = exc
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            if self.bar is not None:
                await self.bar.stop()
        return self.finish(batch, error)

    def stop(self, batch: Batch, sig: int) -> None:
        """First signal: stop cleanly; a second one exits at once (the output is always consistent)."""
        import os
        import signal

        if self.signal is not None:
            os._exit(EXIT_TERMINATED if sig == signal.SIGTERM else EXIT_INTERRUPTED)
        self.signal = sig
        self.say("offload: stopping — items in flight are cancelled and will run on resume")
        batch.interrupt()

    def ready(self, batch: Batch) -> None:
        from offload.batching.progress import ProgressBar

        for problem in batch.problems[:SHOWN_PROBLEMS]:
            self.say(f"offload: input {problem}")
        if len(batch.problems) > SHOWN_PROBLEMS:
            self.say(f"offload: … and {len(batch.problems) - SHOWN_PROBLEMS} more unreadable input lines")
        for line in server_lines(batch):
            self.say(f"offload: server {line}")
        if not self.quiet:
            self.bar = ProgressBar(batch.tally)
            self.bar.start()

    def item(self, result: ItemResult) -> None:
        if result.ok:
            return
        self.failures += 1
        error = result.row.get("error") or {}
        if self.failures <= SHOWN_FAILURES:
            self.say(f"offload: item {result.id} failed: {error.get('kind')}: {error.get('message')}")
        elif self.failures == SHOWN_FAILURES + 1:
            self.say("offload: further failures are not shown (their lines in OUTPUT carry the error)")

    def finish(self, batch: Batch, error: Any) -> int:
        import signal

        from offload.batching.progress import summary_lines

        interrupted = batch.interrupted
        stopped = None
        if interrupted:
            stopped = "interrupted — run the same command again to resume"
        elif error is not None:
            stopped = f"{error.kind}: {error.message} — run the same command again to resume"
        if not self.quiet:
            if batch.tally.remaining == 0 and not batch.tally.done and batch.tally.total:
                note(f"offload: every item is already in {batch.spec.output}; nothing to do")
            for line in summary_lines(
                batch.tally,
                task=batch.spec.task,
                output=str(batch.spec.output) if batch.spec.output else None,
                servers=server_lines(batch),
                problems=[str(p) for p in batch.problems],
                stopped=stopped,
            ):
                note(line)
        elif stopped:
            note(f"offload: {stopped}")
        if interrupted:
            return EXIT_TERMINATED if self.signal == signal.SIGTERM else EXIT_INTERRUPTED
        if error is not None:
            if error.remedy and not self.quiet:
                note(f"  → {error.remedy}")
            return int(error.exit_code)
        return EXIT_FAILED if batch.tally.all_failed else 0


def server_lines(batch: Batch) -> list[str]:
    """One line per server: address, slots and where the count came from, items served, health."""
    fleet = batch.fleet
    if fleet is None:
        return []
    lines = []
    for pid, ep in fleet.endpoints():
        if fleet.sets[pid] is not fleet.primary and not (ep.served or ep.failed):
            continue  # an unused fallback
        model = fleet.pinned.get(pid)
        state = ""
        if ep.excluded:
            state = f"  set aside: {ep.excluded}"
        elif ep.downs:
            state = f"  down: {ep.last_error}"
        where = f"{pid} {ep.url}" + (f" ({model})" if model else "")
        lines.append(f"{where}  {ep.limit} slot(s) [{ep.source}]  served {ep.served}{state}")
    return lines
