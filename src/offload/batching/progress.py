"""Batch progress: the running tally, the live bar on stderr, and the one-screen summary.

Owns ``Tally`` (counts the engine updates as items finish), ``ProgressBar`` (redraws one line
about five times a second on a terminal — done/total, items/s and output tokens/s over the last
ten seconds, ETA, failures, escalations — or prints a plain line every ``LOG_EVERY`` seconds
when stderr is a file or pipe; notes are printed above the bar) and ``summary_lines``. Nothing
here touches the output file; with ``--quiet`` none of it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

REDRAW = 0.2
LOG_EVERY = 10.0
WINDOW = 10.0


@dataclass
class Tally:
    """What a run has done so far."""

    total: int = 0
    """Valid input items."""
    skipped: int = 0
    """Already in the output when the run started."""
    earlier_failed: int = 0
    """Of those, lines that carry an error."""
    malformed: int = 0
    done: int = 0
    failed: int = 0
    cached: int = 0
    escalated: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    models: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def remaining(self) -> int:
        """Items still to run."""
        return max(0, self.total - self.skipped - self.done)

    @property
    def complete(self) -> int:
        """Items with a line in the output (earlier and now)."""
        return self.skipped + self.done

    @property
    def all_failed(self) -> int:
        """Input items whose line carries an error, plus unreadable input lines."""
        return self.failed + self.earlier_failed + self.malformed

    def add(self, row: dict[str, Any]) -> None:
        """Count one finished item by its output line."""
        self.done += 1
        if row.get("error") is not None:
            self.failed += 1
            error = row["error"]
            self.errors[str(error.get("kind", "error")) if isinstance(error, dict) else "error"] += 1
            return
        if row.get("cached"):
            self.cached += 1
        else:
            tokens = row.get("tokens") or {}
            self.input_tokens += int(tokens.get("input", 0) or 0)
            self.output_tokens += int(tokens.get("output", 0) or 0)
        if row.get("escalated"):
            self.escalated += 1
        if row.get("model"):
            self.models[str(row["model"])] += 1

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the run started (until it ended)."""
        end = self.ended if self.ended is not None else (now or time.monotonic())
        return max(1e-9, end - self.started)


def duration(seconds: float) -> str:
    """``42s``, ``3m07s``, ``2h05m``."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def count(n: float) -> str:
    """``950``, ``12.3k``, ``4.1M``."""
    if n < 1000:
        return f"{n:.0f}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"


class ProgressBar:
    """The live line on stderr (see the module docstring)."""

    def __init__(
        self,
        tally: Tally,
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        width: int = 24,
    ) -> None:
        self.tally = tally
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.clock = clock
        self.width = width
        self._samples: deque[tuple[float, int, int]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._shown = False
        self._last_log = 0.0

    def rates(self, now: float) -> tuple[float, float]:
        """(items/s, output tokens/s) over the last ``WINDOW`` seconds."""
        t = self.tally
        self._samples.append((now, t.done, t.output_tokens))
        while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW:
            self._samples.popleft()
        then, done, tokens = self._samples[0]
        span = now - then
        if span <= 0:
            return 0.0, 0.0
        return (t.done - done) / span, (t.output_tokens - tokens) / span

    def line(self, now: float | None = None) -> str:
        """The progress line."""
        now = self.clock() if now is None else now
        t = self.tally
        items, tokens = self.rates(now)
        total = max(1, t.total)
        filled = int(self.width * t.complete / total)
        bar = "#" * filled + "." * (self.width - filled)
        eta = duration(t.remaining / items) if items > 0 and t.remaining else ("-" if t.remaining else "0s")
        parts = [
            f"[{bar}] {t.complete}/{t.total}",
            f"{items:.1f} items/s",
            f"{count(tokens)} tok/s",
            f"ETA {eta}",
        ]
        if t.failed:
            parts.append(f"failed {t.failed}")
        if t.escalated:
            parts.append(f"escalated {t.escalated}")
        if t.cached:
            parts.append(f"cached {t.cached}")
        return "  ".join(parts)

    def _draw(self) -> None:
        now = self.clock()
        if self.tty:
            self.stream.write("\r\x1b[2K" + self.line(now))
            self._shown = True
        elif now - self._last_log >= LOG_EVERY:
            self._last_log = now
            self.stream.write(self.line(now) + "\n")
        self.stream.flush()

    def _clear(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\r\x1b[2K")
            self._shown = False

    def note(self, message: str) -> None:
        """Print a line above the bar (secrets masked)."""
        from offload import redact

        self._clear()
        self.stream.write(redact.text(message) + "\n")
        if self._task is not None:
            self._draw()
        else:
            self.stream.flush()

    def start(self) -> None:
        """Begin redrawing (needs a running event loop)."""
        self._last_log = self.clock()
        self.rates(self.clock())
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            self._draw()
            await asyncio.sleep(REDRAW)

    async def stop(self) -> None:
        """Stop redrawing and erase the bar."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._clear()
        self.stream.flush()


def summary_lines(
    tally: Tally,
    *,
    task: str,
    output: str | None,
    servers: list[str],
    problems: list[str],
    stopped: str | None = None,
) -> list[str]:
    """The end-of-run summary (one screen)."""
    t = tally
    secs = t.elapsed()
    ran = t.done - t.cached
    head = f"batch {task}: {t.done} item(s) in {duration(secs)}"
    if ran:
        head += f" ({ran / secs:.1f} items/s, {count(t.output_tokens / secs)} output tok/s)"
    lines = [head]
    state = f"  done       {t.complete}/{t.total}"
    extras = [f"{t.skipped} from earlier runs"] if t.skipped else []
    if t.cached:
        extras.append(f"{t.cached} from the cache")
    lines.append(state + (f" ({', '.join(extras)})" if extras else ""))
    if t.all_failed:
        kinds = ", ".join(f"{k} {n}" for k, n in t.errors.most_common())
        parts = [f"{t.failed} this run" + (f" ({kinds})" if kinds else "")] if t.failed else []
        if t.earlier_failed:
            parts.append(f"{t.earlier_failed} in earlier runs (rerun with --retry-failed)")
        if t.malformed:
            parts.append(f"{t.malformed} unreadable input line(s)")
        lines.append(f"  failed     {'; '.join(parts)}")
    if t.escalated:
        lines.append(f"  escalated  {t.escalated}")
    if t.models:
        shown = ", ".join(f"{m} {n}" for m, n in t.models.most_common(4))
        more = len(t.models) - 4
        lines.append(f"  models     {shown}" + (f", +{more} more" if more > 0 else ""))
    if t.input_tokens or t.output_tokens:
        lines.append(f"  tokens     {count(t.input_tokens)} in, {count(t.output_tokens)} out")
    lines += [f"  server     {s}" for s in servers[:6]]
    if len(servers) > 6:
        lines.append(f"  server     … and {len(servers) - 6} more")
    for problem in problems[:5]:
        lines.append(f"  input      {problem}")
    if len(problems) > 5:
        lines.append(f"  input      … and {len(problems) - 5} more unreadable line(s)")
    if output:
        lines.append(f"  output     {output}")
    if stopped:
        lines.append(f"  stopped    {stopped}")
    return lines
