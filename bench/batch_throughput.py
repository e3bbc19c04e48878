"""Batch throughput against the LM Studio fake, as ratios to the servers' limit (measured in one run).

The fake runs in its own process (``python -m offload.testing.lmstudio_fake``) with S parallel
slots and a fixed service time T per request, so its limit is S / T items per second. Each
case runs ``offload.batch`` (summaries of synthetic items, cache off, output file on) and
reports items/s over the run — from the first item dispatched to the last line written, warm-up
excluded — divided by that limit. Targets: >= 0.95 for S = 1, 4, 8; >= 0.9 of the sum over two
servers. The last lines report client overhead: items/s against an in-process scripted provider
(no HTTP at all), then — the last line, target >= 2,000 items/s — against the zero-latency
OpenAI-compatible fake (``fake_openai.py`` of the shared gateway bench, ``--fake PATH``; the
LM Studio fake itself tops out near 600 requests/s, so it cannot measure this) through an
``openai-completions`` provider, 16 in flight, with raw aiohttp's requests/s against the same
fake in the same run as the ratio's baseline.

    .venv/bin/python bench/batch_throughput.py [--service-time 0.2] [--items-per-slot 30]

Numbers drift on shared machines; the ratios are measured within one run and never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import offload
from offload.config import parse_config

sys.path.insert(0, str(Path(__file__).parent))
from overhead import FAKE, fake_openai

TEXT = "The quarterly report shows steady growth in every region, led by new customers in the north. " * 3


@contextlib.contextmanager
def fake(parallel: int, service_time: float) -> Iterator[str]:
    """An LM Studio fake in a subprocess; yields its URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "offload.testing.lmstudio_fake",
            "--port",
            "0",
            "--parallel",
            str(parallel),
            "--service-time",
            str(service_time),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        if not match:
            raise RuntimeError(f"the fake did not start: {line!r}")
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(10)


def items(n: int, tag: str) -> list[dict[str, Any]]:
    return [{"id": f"{tag}-{i}", "text": f"Item {i}. {TEXT}"} for i in range(n)]


def config(urls: list[str]) -> Any:
    return parse_config(
        {
            "agents": {"defaults": {"model": {"primary": "lmstudio/google/gemma-3-1b"}}},
            "models": {"mode": "replace", "providers": {"lmstudio": {"baseUrls": urls, "api": "lmstudio"}}},
        },
        env={},
    )


async def run_batch(urls: list[str], n: int, tag: str, out: Path) -> tuple[float, int]:
    """(items/s from first dispatch to last result, items)."""
    run = offload.batch(
        "summarize",
        items(n, tag),
        output=out / f"{tag}.jsonl",
        config=config(urls),
        cache=False,
        length="sentence",
        gate="off",
    )
    done = 0
    async for result in run:
        assert result.ok, result.row
        done += 1
    return done / run.tally.elapsed(), done


async def zero_latency(url: str, n: int, out: Path) -> tuple[float, float, float]:
    """(batch items/s, batch CPU ms per item, raw aiohttp requests/s) against the same fake,
    16 in flight, after a warm-up of each."""
    import aiohttp
    from overhead import BODY, drive, offload_config

    async def batch(tag: str, count: int) -> tuple[float, float]:
        cpu = time.process_time()
        run = offload.batch(
            "summarize",
            items(count, tag),
            output=out / f"{tag}.jsonl",
            config=offload_config(url),
            cache=False,
            length="sentence",
            gate="off",
            concurrency=16,
        )
        await run.run()
        return run.tally.done / run.tally.elapsed(), (time.process_time() - cpu) * 1000 / count

    async with aiohttp.ClientSession() as session:

        async def raw() -> None:
            async with session.post(url + "/chat/completions", json=BODY) as response:
                await response.json()

        await drive(raw, 200, 16)
        await batch("zero-warm", 200)
        raw_rate = (await drive(raw, n, 16))[0]
        rate, cpu = await batch("zero", n)
    return rate, cpu, raw_rate


async def scripted_overhead(n: int, out: Path) -> float:
    """Items/s with an in-process provider that answers at once (client cost only)."""
    from offload.offloader import Offloader
    from offload.testing.scripted import ScriptedProvider

    cfg = parse_config(
        {
            "agents": {"defaults": {"model": {"primary": "local/m"}}},
            "models": {"mode": "replace", "providers": {"local": {"baseUrl": "http://127.0.0.1:9"}}},
        },
        env={},
    )
    off = Offloader(cfg, state_dir=out)
    off.router.pool.put("local", ScriptedProvider("local", default="A short summary."))
    async with off:
        run = offload.batch(
            "summarize",
            items(n, "scripted"),
            output=out / "scripted.jsonl",
            offloader=off,
            cache=False,
            concurrency=16,
            gate="off",
        )
        await run.run()
        return run.tally.done / run.tally.elapsed()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--service-time", type=float, default=0.2, help="seconds per request in a slot")
    parser.add_argument("--items-per-slot", type=int, default=30, help="items per slot per case")
    parser.add_argument("--fake", type=Path, default=FAKE, help="path of fake_openai.py (zero-latency case)")
    args = parser.parse_args()
    t = args.service_time
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["OFFLOAD_HOME"] = tmp
        out = Path(tmp)
        print(f"service time {t:.3f}s per request; items per slot {args.items_per_slot}")
        print(f"{'case':<28}{'items':>7}{'items/s':>10}{'limit':>9}{'ratio':>8}")
        for slots in (1, 4, 8):
            with fake(slots, t) as url:
                n = slots * args.items_per_slot
                rate, done = asyncio.run(run_batch([url], n, f"s{slots}", out))
                limit = slots / t
                print(f"{f'1 server, S={slots}':<28}{done:>7}{rate:>10.1f}{limit:>9.1f}{rate / limit:>8.3f}")
        with fake(4, t) as a, fake(4, t) as b:
            n = 8 * args.items_per_slot
            rate, done = asyncio.run(run_batch([a, b], n, "two", out))
            limit = 8 / t
            print(f"{'2 servers, S=4 each':<28}{done:>7}{rate:>10.1f}{limit:>9.1f}{rate / limit:>8.3f}")
        rate = asyncio.run(scripted_overhead(3000, out))
        print(f"{'in-process provider':<28}{3000:>7}{rate:>10.1f}{'-':>9}{'-':>8}")
        if not args.fake.exists():
            print(f"zero-latency fake, HTTP: skipped ({args.fake} not found; pass --fake)")
            return 0
        with fake_openai(args.fake) as url:
            n = 3000
            rate, cpu, raw = asyncio.run(zero_latency(url, n, out))
        print(
            f"{'zero-latency fake, HTTP':<28}{n:>7}{rate:>10.1f}{raw:>9.0f}{rate / raw:>8.3f}"
            f"  (limit = raw aiohttp req/s, same fake; batch CPU {cpu:.3f} ms/item)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
