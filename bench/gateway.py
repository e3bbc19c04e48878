"""`offload serve` beside the bare fake, a bare aiohttp pass-through and LiteLLM's proxy, one run.

Drives the shared gateway bench tools (``/work/shared/bench/gateway``, or ``--tools DIR``) by path:
``launch.py`` starts each server in its own process group and times start → first 200,
``bench.py`` measures all targets in interleaved rounds (wrk max RPS, open-loop latency at
fixed rates, CPU ms per request), ``summarize.py`` prints the tables with ``direct`` (the fake
itself) as the baseline. The fake and the load generators run on CPU 0, the gateways on
CPU 1 (they take turns on it: each has the core alone while it is measured).

Then, for the same servers: time to first byte of streamed requests (added over direct),
``offload serve``'s RSS after 10,000 requests and after a further 50,000, and the exact ledger
row count. The route under test sends the client's model ``fake-model`` to an
``openai-completions`` provider at the fake (``offload.gateway.models``), so every request
walks the router, the provider and the ledger, and is translated both ways.

    .venv/bin/python bench/gateway.py [--litellm /tmp/litellm-venv/bin/litellm] [--rounds 2]

Every server it starts is stopped at the end (by process group id). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOOLS = Path("/work/shared/bench/gateway")
LITELLM = Path("/tmp/litellm-venv/bin/litellm")
SRC = Path(__file__).resolve().parent.parent / "src"
CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Servers:
    """Servers started through ``launch.py``; ``stop`` ends each process group it started."""

    def __init__(self, tools: Path, logs: Path) -> None:
        self.tools = tools
        self.logs = logs
        self.started: dict[str, dict[str, Any]] = {}

    def launch(
        self, name: str, cpu: str | None, ready: str, cmd: list[str], env: dict[str, str]
    ) -> dict[str, Any]:
        pin = ["taskset", "-c", cpu] if cpu is not None else []
        launcher = [sys.executable, str(self.tools / "launch.py"), "--ready-url", ready, "--timeout", "300"]
        launcher += ["--settle", "1", "--log", str(self.logs / f"{name}.log"), "--"]
        out = subprocess.run(
            [*pin, *launcher, *cmd], env={**os.environ, **env}, capture_output=True, text=True, timeout=400
        )
        info: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        if "error" in info:
            raise RuntimeError(f"{name} did not start: {info['error']} (see {self.logs / name}.log)")
        self.started[name] = info
        return info

    def stop(self) -> None:
        for info in self.started.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(info["pid"]), 15)
        for info in self.started.values():
            for _ in range(100):
                try:
                    os.kill(int(info["pid"]), 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(info["pid"]), 9)


def offload_config(home: Path, fake: str) -> None:
    (home / "config.json5").write_text(
        "{\n"
        '  agents: { defaults: { model: { primary: "fake/fake-model" } } },\n'
        '  models: { mode: "replace", providers: { fake: { baseUrl: "' + fake + '/v1", '
        'api: "openai-completions", apiKey: "sk-fake", models: [{ id: "fake-model" }] } } },\n'
        '  offload: { gateway: { models: { "fake-model": { primary: "fake/fake-model" } } } },\n'
        "}\n"
    )


async def ttfb(urls: dict[str, str], keys: dict[str, str], count: int, rounds: int) -> dict[str, list[float]]:
    """Milliseconds to the first body byte of a streamed chat, one request at a time."""
    import aiohttp

    body = {**CHAT, "stream": True}
    found: dict[str, list[float]] = {name: [] for name in urls}
    async with aiohttp.ClientSession() as session:
        for r in range(rounds):
            order = list(urls.items()) if r % 2 == 0 else list(reversed(urls.items()))
            for name, url in order:
                headers = {"Authorization": f"Bearer {keys.get(name, 'sk-bench')}"}
                for i in range(count + 5):
                    started = time.perf_counter()
                    async with session.post(url + "/v1/chat/completions", json=body, headers=headers) as resp:
                        await resp.content.readany()
                        first = time.perf_counter() - started
                        await resp.read()
                    if i >= 5:  # the first few warm the connection
                        found[name].append(first * 1000)
    return found


async def load(url: str, requests: int, in_flight: int = 32) -> int:
    """Send ``requests`` chats with ``in_flight`` at once; the number answered 200."""
    import aiohttp

    left, ok = requests, 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal left, ok
        while left > 0:
            left -= 1
            async with session.post(url + "/v1/chat/completions", json=CHAT) as resp:
                await resp.read()
                ok += resp.status == 200

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:
        await asyncio.gather(*(worker(session) for _ in range(in_flight)))
    return ok


def rss_mib(tools: Path, pid: int) -> float:
    sys.path.insert(0, str(tools))
    from rss import tree_memory

    return float(tree_memory(pid)["rss_mib"])


def ledger_rows(home: Path) -> int:
    total = 0
    for path in home.rglob("usage.sqlite3"):
        with contextlib.closing(sqlite3.connect(path)) as conn:
            total += int(conn.execute("select count(*) from calls").fetchone()[0])
    return total


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tools", type=Path, default=TOOLS, help="the shared gateway bench folder")
    parser.add_argument("--litellm", type=Path, default=LITELLM, help="litellm CLI (skipped when missing)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rates", default="10,50,100,200,500")
    parser.add_argument("--rate-duration", type=float, default=8)
    parser.add_argument("--wrk-duration", type=int, default=8)
    parser.add_argument("--memory", default="10000,50000", help="requests before the first RSS, then more")
    parser.add_argument("--out", type=Path, help="keep logs and results here (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        home = Path(tmp) / "offload-home"
        home.mkdir()
        servers = Servers(args.tools, out)
        try:
            return run(args, servers, out, home)
        finally:
            servers.stop()


def run(args: argparse.Namespace, servers: Servers, out: Path, home: Path) -> int:
    py = sys.executable
    ports = {name: free_port() for name in ("direct", "passthrough", "offload", "litellm")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    master = "sk-" + secrets.token_hex(16)
    keys = {"litellm": master}
    servers.launch(
        "direct",
        "0",
        urls["direct"] + "/health",
        [py, str(args.tools / "fake_openai.py"), "--port", str(ports["direct"])],
        {},
    )
    servers.launch(
        "passthrough",
        "1",
        urls["passthrough"] + "/health",
        [
            py,
            str(args.tools / "passthrough_aiohttp.py"),
            "--port",
            str(ports["passthrough"]),
            "--upstream",
            urls["direct"],
        ],
        {},
    )
    offload_config(home, urls["direct"])
    serve_env = {"OFFLOAD_HOME": str(home), "PYTHONPATH": str(SRC)}
    servers.launch(
        "offload",
        "1",
        urls["offload"] + "/health",
        [py, "-m", "offload", "serve", "--port", str(ports["offload"])],
        serve_env,
    )
    if args.litellm.exists():
        servers.launch(
            "litellm",
            "1",
            urls["litellm"] + "/health/liveliness",
            [
                str(args.litellm),
                "--config",
                str(args.tools / "litellm_config.yaml"),
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["litellm"]),
            ],
            {
                "LITELLM_MASTER_KEY": master,
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "FAKE_API_BASE": urls["direct"] + "/v1",
            },
        )
    else:
        del urls["litellm"]
        print(f"LiteLLM skipped: {args.litellm} not found")
    print("start → first 200 (launch.py):")
    for name, info in servers.started.items():
        print(f"  {name:<12} {info['startup_s']:>7.3f} s   RSS {info.get('rss_mib', '-')} MiB")

    results = out / "results.jsonl"
    bench = [py, str(args.tools / "bench.py"), "--tag", "seam", "--out", str(results), "--gen-cpus", "0"]
    for name, url in urls.items():
        bench += ["--target", f"{name}={url}", "--pid", f"{name}={servers.started[name]['pid']}"]
    bench += ["--key", "sk-bench", *(x for name, key in keys.items() for x in ("--key", f"{name}={key}"))]
    bench += ["--rounds", str(args.rounds), "--rates", args.rates]
    bench += ["--rate-duration", str(args.rate_duration), "--wrk-duration", str(args.wrk_duration)]
    subprocess.run(bench, check=True, stdout=subprocess.DEVNULL, timeout=7200)
    print(
        subprocess.run(
            [py, str(args.tools / "summarize.py"), str(results), "--baseline", "direct"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    rows_before = ledger_rows(home)
    print(f"ledger rows after bench.py: {rows_before}")

    first = asyncio.run(ttfb(urls, keys, 100, 2))
    base = statistics.median(first["direct"])
    print("streamed chat, time to first body byte (ms, one at a time, 200 per target):")
    for name, values in first.items():
        p50, p99 = statistics.median(values), pct(values, 0.99)
        print(f"  {name:<12} p50 {p50:7.2f}  p99 {p99:7.2f}  added p50 {p50 - base:+7.2f}")

    warm, more = (int(x) for x in args.memory.split(","))
    pid = int(servers.started["offload"]["pid"])
    rows_start = ledger_rows(home)
    ok1 = asyncio.run(load(urls["offload"], warm))
    rss1 = rss_mib(args.tools, pid)
    ok2 = asyncio.run(load(urls["offload"], more))
    rss2 = rss_mib(args.tools, pid)
    print(f"offload serve RSS after {warm} requests: {rss1:.1f} MiB (target <= 80)")
    growth = 100 * (rss2 / rss1 - 1)
    print(f"offload serve RSS after a further {more}: {rss2:.1f} MiB, growth {growth:+.1f}% (target <= 10%)")
    added, deadline = -1, time.monotonic() + 30
    while time.monotonic() < deadline:  # the ledger writer takes rows in batches: wait for the last
        added = ledger_rows(home) - rows_start
        if added >= ok1 + ok2:
            break
        time.sleep(0.5)
    print(f"ledger rows for those {ok1 + ok2} answered requests: {added} (exact: {added == ok1 + ok2})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
