"""offload's own cost per routed call, as ratios to raw aiohttp measured in the same run.

Starts the zero-latency OpenAI-compatible fake (``fake_openai.py`` from the shared gateway bench,
or ``--fake PATH``) in its own process on a free loopback port, then measures in interleaved
rounds, at 1 and at 16 calls in flight:

* ``raw aiohttp``: one ``ClientSession`` posting the same chat body and parsing the JSON answer;
* ``offload ask``: ``Offloader.ask`` routed to an ``openai-completions`` provider at the fake,
  with the usage ledger on (a temporary ``OFFLOAD_HOME``).

CPU ms per call is this process's CPU time (all threads, the ledger writer included) divided by
the calls. Targets: offload >= 0.5 of raw aiohttp's calls/s at 16 in flight, and no drop from 1
to 16 in flight. Nothing is asserted; figures from different runs do not compare.

    .venv/bin/python bench/overhead.py [--calls 3000] [--rounds 3] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

FAKE = Path("/work/shared/bench/gateway/fake_openai.py")
TARGETS = {
    "raw aiohttp": "one aiohttp session, same body",
    "offload ask": "Offloader.ask, ledger on",
    "no ledger": "Offloader.ask, ledger off",
}
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "Say hello."}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fake_openai(script: Path) -> Iterator[str]:
    """The fake in its own process; yields its ``/v1`` base URL once it accepts connections."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{script} did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


async def drive(call: Callable[[], Awaitable[Any]], calls: int, in_flight: int) -> tuple[float, float]:
    """(calls/s, CPU ms per call) for ``calls`` calls with ``in_flight`` running at once."""
    remaining = calls

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return calls / wall, cpu * 1000 / calls


def offload_config(url: str) -> Any:
    from offload.config import parse_config

    return parse_config(
        {
            "agents": {"defaults": {"model": {"primary": "fake/fake-model"}}},
            "models": {
                "mode": "replace",
                "providers": {
                    "fake": {
                        "baseUrl": url,
                        "apiKey": "sk-fake",
                        "api": "openai-completions",
                        "models": [{"id": "fake-model"}],
                    }
                },
            },
        },
        env={},
    )


Figures = dict[tuple[str, int], list[tuple[float, float]]]


async def measure(url: str, calls: int, rounds: int, home: Path) -> Figures:
    import aiohttp

    from offload.offloader import Offloader

    figures: Figures = {}
    async with (
        aiohttp.ClientSession() as session,
        Offloader(offload_config(url), state_dir=home) as off,
        Offloader(offload_config(url), state_dir=home, ledger=False) as bare,
    ):

        async def raw() -> None:
            async with session.post(url + "/chat/completions", json=BODY) as response:
                await response.json()

        async def routed() -> None:
            await off.ask("Say hello.")

        async def unrecorded() -> None:
            await bare.ask("Say hello.")

        targets = {"raw aiohttp": raw, "offload ask": routed, "no ledger": unrecorded}
        for call in targets.values():  # warm-up: connections, imports, the ledger file
            await drive(call, 200, 16)
        for r in range(rounds):
            order = list(targets.items()) if r % 2 == 0 else list(reversed(targets.items()))
            for in_flight in (1, 16):
                for name, call in order:
                    figures.setdefault((name, in_flight), []).append(await drive(call, calls, in_flight))
        assert off.ledger is not None
        off.ledger.flush()
    return figures


def ledger_rows(home: Path) -> int:
    paths = list(home.rglob("usage.sqlite3"))
    if not paths:
        return 0
    with contextlib.closing(sqlite3.connect(paths[0])) as conn:
        return int(conn.execute("select count(*) from calls").fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fake", type=Path, default=FAKE, help="path of fake_openai.py")
    parser.add_argument("--calls", type=int, default=3000, help="calls per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are shown)")
    parser.add_argument("--profile", type=Path, help="write a cProfile of offload ask at 16 in flight here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fake_openai(args.fake) as url:
        home = Path(tmp)
        os.environ["OFFLOAD_HOME"] = str(home)
        if args.profile:
            return profile(url, args.calls, home, args.profile)
        figures = asyncio.run(measure(url, args.calls, args.rounds, home))
        rows = ledger_rows(home)

    def med(name: str, in_flight: int, i: int) -> float:
        return statistics.median(f[i] for f in figures[(name, in_flight)])

    print(f"{args.rounds} rounds x {args.calls} calls, medians; fake at {url}")
    print(f"{'target':<14}{'in flight':>10}{'calls/s':>10}{'CPU ms':>9}")
    for name, in_flight in sorted(figures, key=lambda k: (k[1], k[0] != "raw aiohttp")):
        print(f"{name:<14}{in_flight:>10}{med(name, in_flight, 0):>10.0f}{med(name, in_flight, 1):>9.3f}")
    for in_flight in (1, 16):
        ratio = med("offload ask", in_flight, 0) / med("raw aiohttp", in_flight, 0)
        extra = med("offload ask", in_flight, 1) - med("raw aiohttp", in_flight, 1)
        print(f"offload/raw calls/s at {in_flight:>2} in flight: {ratio:.2f}; extra CPU {extra:.3f} ms/call")
    scaling = med("offload ask", 16, 0) / med("offload ask", 1, 0)
    print(f"offload ask, 16 in flight / 1 in flight: {scaling:.2f} (target >= 1.0)")
    ratio16 = med("offload ask", 16, 0) / med("raw aiohttp", 16, 0)
    print(f"offload/raw at 16 in flight: {ratio16:.2f} (target >= 0.5)")
    expected = 200 + 2 * args.rounds * args.calls  # warm-up, then each round at 1 and 16 in flight
    print(f"ledger rows: {rows} (expected {expected})")
    return 0


def profile(url: str, calls: int, home: Path, out: Path) -> int:
    import cProfile
    import pstats

    from offload.offloader import Offloader

    async def run() -> None:
        async with Offloader(offload_config(url), state_dir=home) as off:
            await drive(lambda: off.ask("Say hello."), 200, 16)
            with cProfile.Profile() as prof:
                await drive(lambda: off.ask("Say hello."), calls, 16)
            prof.dump_stats(out)

    asyncio.run(run())
    pstats.Stats(str(out)).sort_stats("cumulative").print_stats(40)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
