"""Soak: many routed calls against the fakes, mixing tasks, streams, failures and fallbacks.

    .venv/bin/python bench/soak.py [--calls 50000] [--concurrency 16]

The fakes (LM Studio as the local primary, the OpenAI fake as the hosted fallback) run in a child
process that injects faults on its own every few milliseconds (503s, dropped connections, model
crashes mid-stream on LM Studio; 529-style overloads on the hosted fake), so this process holds
only offload's client side. The calls mix ``ask``, streamed ``ask``, and the ``summarize``,
``classify`` and ``extract`` tasks, all through one ``Offloader`` with the ledger on.

Printed: calls/s, how calls ended (answered locally, after a fallback, failed), RSS and open file
descriptors after warm-up and at the end, and the ledger's row count against the attempts the
router reported. Pass: RSS grows at most 10% after warm-up, descriptors stay flat (±8), rows
match exactly. Exit code 1 when a check fails. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import Any

CHILD = textwrap.dedent(
    """
    import json, random, sys, threading, time
    from offload.testing import LMStudioFake, OpenAIFake
    lms = LMStudioFake(parallel=8)
    oai = OpenAIFake(models=["gpt-4o-mini"], api_key="soak-key")
    rng = random.Random(7)
    with lms.serve() as ls, oai as os_:
        print(json.dumps({"lmstudio": ls.url, "openai": os_.base_url}), flush=True)
        def faults():
            while True:
                time.sleep(0.005)
                roll = rng.random()
                if roll < 0.05:
                    lms.fail_next("status:503")
                elif roll < 0.07:
                    lms.fail_next("drop")
                elif roll < 0.08:
                    lms.fail_next("crash")
                elif roll < 0.09:
                    oai.fail_next(529)
                if roll < 0.02:
                    oai.reset()   # the fake records requests; keep its memory bounded
        threading.Thread(target=faults, daemon=True).start()
        sys.stdin.read()
    """
)

TEXT = (
    "The city council approved the new cycling lanes on Monday after a long debate. Work starts in "
    "March and should end in August; the budget is 4.2 million euros, mostly from a regional grant."
)


def rss_kib() -> int:
    """Resident set size of this process, KiB (from /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def open_fds() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


async def one(off: Any, kind: str, outcomes: Counter[str]) -> None:
    from offload import tasks
    from offload.errors import OffloadError

    try:
        if kind == "ask":
            routed = await off.ask(
                f"Say something short about item {random.random():.6f}", max_output_tokens=32
            )
            outcomes["fallback" if not routed.candidate.local else "local"] += 1
        elif kind == "stream":
            stream = off.stream("Stream a short sentence.", max_output_tokens=32)
            async for _ in stream:
                pass
            outcomes["stream"] += 1
        elif kind == "summarize":
            await tasks.summarize(TEXT, "sentence", offloader=off)
            outcomes["task"] += 1
        elif kind == "classify":
            await tasks.classify(TEXT, ["politics", "sports", "weather"], offloader=off)
            outcomes["task"] += 1
        else:
            await tasks.extract(TEXT, fields="budget, start", offloader=off)
            outcomes["task"] += 1
    except OffloadError as exc:
        outcomes[f"failed:{exc.kind}"] += 1


async def soak(calls: int, concurrency: int, urls: dict[str, str], home: Path) -> int:
    from offload.config import parse_config
    from offload.ledger import Ledger
    from offload.offloader import Offloader

    config = parse_config(
        {
            "agents": {
                "defaults": {"model": {"primary": "lmstudio/auto", "fallbacks": ["cloud/gpt-4o-mini"]}}
            },
            "models": {
                "mode": "replace",
                "providers": {
                    "lmstudio": {"baseUrl": urls["lmstudio"], "api": "lmstudio"},
                    "cloud": {
                        "baseUrl": urls["openai"],
                        "api": "openai-completions",
                        "apiKey": "soak-key",
                        "local": False,
                        "models": [{"id": "gpt-4o-mini", "cost": {"input": 0.15, "output": 0.6}}],
                    },
                },
            },
            "offload": {"savings": {"baseline": "cloud/gpt-4o-mini"}},
        },
        env={},
    )
    events = 0

    def count(_event: Any) -> None:
        nonlocal events
        events += 1

    rng = random.Random(11)
    kinds = ["ask"] * 40 + ["stream"] * 20 + ["summarize"] * 15 + ["classify"] * 15 + ["extract"] * 10
    outcomes: Counter[str] = Counter()
    off = Offloader(config, state_dir=home, notify=lambda _m: None, observers=[count])
    assert off.ledger is not None
    ledger_path = off.ledger.path
    warm = max(1, calls // 10)
    marks: dict[str, tuple[int, int, float]] = {}
    started = time.perf_counter()
    async with off:
        gate = asyncio.Semaphore(concurrency)

        async def run(i: int) -> None:
            async with gate:
                await one(off, rng.choice(kinds), outcomes)
            if i + 1 == warm:
                marks["warm"] = (rss_kib(), open_fds(), time.perf_counter())

        pending: set[asyncio.Task[None]] = set()
        for i in range(calls):
            pending.add(asyncio.create_task(run(i)))
            if len(pending) >= concurrency * 4:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.gather(*pending)
        marks["end"] = (rss_kib(), open_fds(), time.perf_counter())
        assert off.ledger is not None
        off.ledger.flush()
    elapsed = time.perf_counter() - started
    with Ledger.open_readonly(ledger_path) as reader:
        rows = reader.count()
    (rss0, fd0, t0), (rss1, fd1, t1) = marks["warm"], marks["end"]
    growth = (rss1 - rss0) / rss0
    print(
        f"calls            {calls:,} in {elapsed:.1f} s ({calls / elapsed:,.0f}/s; after warm-up "
        f"{(calls - warm) / (t1 - t0):,.0f}/s) at {concurrency} in flight"
    )
    print("outcomes         " + ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items())))
    print(
        f"RSS              {rss0 / 1024:.1f} MiB after warm-up → {rss1 / 1024:.1f} MiB at the end "
        f"({growth * 100:+.1f}%, limit +10%)"
    )
    print(f"open fds         {fd0} after warm-up → {fd1} at the end (limit ±8)")
    print(f"ledger rows      {rows:,}; router attempts reported {events:,}")
    ok = growth <= 0.10 and abs(fd1 - fd0) <= 8 and rows == events
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        urls = json.loads(child.stdout.readline())
        with tempfile.TemporaryDirectory(prefix="offload-soak-") as home:
            os.environ["OFFLOAD_HOME"] = home
            return asyncio.run(soak(args.calls, args.concurrency, urls, Path(home)))
    finally:
        with contextlib.suppress(Exception):
            assert child.stdin is not None
            child.stdin.close()
        child.terminate()
        child.wait(timeout=30)


if __name__ == "__main__":
    raise SystemExit(main())
