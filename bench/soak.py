"""Soak: 50,000 routed calls mixing asks, streams, tasks, failures and fallbacks; memory, fds, ledger.

One ``Offloader`` (ledger on, temporary ``OFFLOAD_HOME``) against the zero-latency OpenAI-compatible
fake (``fake_openai.py`` of the shared gateway bench, ``--fake PATH``) in its own process, with
three providers: ``fake`` (answers), ``broken`` (the same server under a path that answers 404)
and ``down`` (a closed port: connection refused). The default chain is down → broken → fake, so
default calls fail over, and explicit calls to ``broken`` without fallbacks fail (cooldowns are
cut to 0.2 s so that failing candidates keep being called). 16 calls in flight; each call's
kind follows a fixed 10-step cycle:

    4 × ask fake · 2 × stream fake · 1 × ask the default chain · 1 × summarize · 1 × rewrite ·
    1 × ask broken, no fallbacks (an error)

After a warm-up (``--warmup`` calls) it samples this process's RSS and open file descriptors
every ``--every`` calls. Targets: RSS grows <= 10% from the first sample to the last, fds stay
flat, and the ledger holds exactly one row per call event the router reported.

    .venv/bin/python bench/soak.py [--calls 50000] [--warmup 5000] [--every 5000]

Bench only, not CI. Nothing is asserted; it prints the figures and the verdicts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from overhead import FAKE, fake_openai, free_port

FAKE_MODEL = "fake/fake-model"
COOLDOWN = 0.2
TEXT = "The quarterly report shows steady growth in every region, led by new customers in the north. " * 3


def config(url: str) -> Any:
    from offload.config import parse_config

    root = url[: -len("/v1")]
    model = [{"id": "fake-model"}]
    return parse_config(
        {
            "agents": {
                "defaults": {
                    "model": {
                        "primary": "down/fake-model",
                        "fallbacks": ["broken/fake-model", "fake/fake-model"],
                    }
                }
            },
            "models": {
                "mode": "replace",
                "providers": {
                    "fake": {
                        "baseUrl": url,
                        "api": "openai-completions",
                        "apiKey": "sk-fake",
                        "models": model,
                    },
                    "broken": {"baseUrl": root + "/broken/v1", "api": "openai-completions", "models": model},
                    "down": {
                        "baseUrl": f"http://127.0.0.1:{free_port()}/v1",
                        "api": "openai-completions",
                        "models": model,
                    },
                },
            },
        },
        env={},
    )


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def soak(url: str, home: Path, calls: int, warmup: int, every: int) -> dict[str, Any]:
    from offload import tasks
    from offload.errors import OffloadError
    from offload.offloader import Offloader
    from offload.routing.cooldown import Cooldowns

    events = 0
    kinds: Counter[str] = Counter()

    def count(event: Any) -> None:
        nonlocal events
        events += 1
        kinds[f"{event.candidate.provider.id}:{event.error.kind if event.error else 'ok'}"] += 1

    outcomes: Counter[str] = Counter()
    samples: list[tuple[int, float, int]] = []
    done = 0
    next_call = 0

    async def one(off: Offloader, i: int) -> None:
        step = i % 10
        if step < 4:
            await off.ask("Say hello.", model="fake/fake-model")
        elif step < 6:
            stream = off.stream("Say hello.", model="fake/fake-model")
            async for _ in stream.events:
                pass
        elif step == 6:
            await off.ask("Say hello.")
        elif step == 7:
            await tasks.summarize(TEXT, offloader=off, gate="off", model="fake/fake-model")
        elif step == 8:
            await tasks.rewrite(TEXT, "make it shorter", offloader=off, gate="off", model="fake/fake-model")
        else:
            await off.ask("Say hello.", model="broken/fake-model", fallbacks=False)

    async def worker(off: Offloader) -> None:
        nonlocal done, next_call
        while next_call < calls:
            i, next_call = next_call, next_call + 1
            try:
                await one(off, i)
                outcomes["ok"] += 1
            except OffloadError as exc:
                outcomes[f"error:{exc.kind}"] += 1
            done += 1
            if done >= warmup and (done - warmup) % every == 0:
                samples.append((done, rss_mib(), open_fds()))

    started = time.perf_counter()
    async with Offloader(config(url), state_dir=home, observers=[count]) as off:
        # Failing candidates cool down for 0.2 s instead of 30 s and more, so they are really
        # called (and fail, and fail over) all through the run, not only once.
        off.router.cooldowns = Cooldowns(schedule=(COOLDOWN,))
        await asyncio.gather(*(worker(off) for _ in range(16)))
        assert off.ledger is not None
        off.ledger.flush()
        samples.append((done, rss_mib(), open_fds()))
    return {
        "seconds": time.perf_counter() - started,
        "outcomes": outcomes,
        "samples": samples,
        "events": events,
        "kinds": kinds,
        "rows": ledger_rows(home),
    }


def ledger_rows(home: Path) -> int:
    total = 0
    for path in home.rglob("usage.sqlite3"):
        with contextlib.closing(sqlite3.connect(path)) as conn:
            total += int(conn.execute("select count(*) from calls").fetchone()[0])
    return total


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fake", type=Path, default=FAKE, help="path of fake_openai.py")
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--warmup", type=int, default=5_000)
    parser.add_argument("--every", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fake_openai(args.fake) as url:
        home = Path(tmp)
        os.environ["OFFLOAD_HOME"] = str(home)
        found = asyncio.run(soak(url, home, args.calls, args.warmup, args.every))
    samples = found["samples"]
    print(f"{args.calls} calls in {found['seconds']:.1f} s ({args.calls / found['seconds']:.0f} calls/s)")
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(found["outcomes"].items())))
    print("call events by outcome: " + ", ".join(f"{k} {v}" for k, v in sorted(found["kinds"].items())))
    print(f"{'after calls':>12}{'RSS MiB':>10}{'open fds':>10}")
    for calls, rss, fds in samples:
        print(f"{calls:>12}{rss:>10.1f}{fds:>10}")
    first, last = samples[0], samples[-1]
    growth = 100 * (last[1] / first[1] - 1)
    fds = [s[2] for s in samples]
    print(f"RSS growth after warm-up: {growth:+.1f}% (target <= 10%)")
    print(f"open fds after warm-up: {min(fds)}..{max(fds)} (target: flat)")
    rows, events = found["rows"], found["events"]
    print(f"ledger rows {rows} for {events} call events (exact: {rows == events})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
