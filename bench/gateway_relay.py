"""``offload serve`` relaying (passthrough) vs the fake directly and a bare aiohttp pass-through.

Uses the gateway-bench tools (``--tools``, default ``/work/shared/bench/gateway``): starts
``fake_openai.py`` (CPU 0), ``passthrough_aiohttp.py`` and ``offload serve`` (CPU 1, taking turns),
each timed from start to first 200 by ``launch.py``; runs ``bench.py`` over the three targets
(wrk max RPS, fixed-rate latency, CPU per request, memory), then ``summarize.py`` against
``direct``; then sends ``--soak`` more requests to the gateway and prints its memory before/after.
Everything binds 127.0.0.1 and is stopped at the end (by the process groups this script started).

    .venv/bin/python bench/gateway_relay.py [--rounds 3] [--rates 100,200] [--soak 50000]
Needs ``wrk`` and ``taskset``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEY = "bench-gateway-key"
CONFIG = """{
  models: { providers: { fake: { baseUrl: "http://127.0.0.1:%d/v1", api: "openai-completions", local: false,
    models: [{ id: "fake-model", cost: { input: 1, output: 2 } }] } } },
  offload: { embedded: { enabled: false } },
}
"""


def launch(
    tools: Path, work: Path, name: str, cpu: str, ready: str, cmd: list[str], env: dict[str, str]
) -> dict:
    """Start ``cmd`` pinned to ``cpu`` through launch.py; its JSON line (pid, startup_s, rss)."""
    line = (
        subprocess.run(
            [
                "taskset",
                "-c",
                cpu,
                sys.executable,
                str(tools / "launch.py"),
                "--ready-url",
                ready,
                "--header",
                f"Authorization: Bearer {KEY}",
                "--settle",
                "1",
                "--log",
                str(work / f"{name}.log"),
                "--",
                *cmd,
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    info = json.loads(line)
    if "error" in info:
        raise SystemExit(f"{name}: {info['error']} (see {work / (name + '.log')})")
    print(f"{name:12s} started in {info['startup_s']:.3f}s, RSS {info.get('rss_mib')} MiB", flush=True)
    return info


def rss_mib(tools: Path, pid: int) -> float:
    """RSS of a process tree (the tools' ``rss.tree_memory``)."""
    sys.path.insert(0, str(tools))
    from rss import tree_memory

    return float(tree_memory(pid)["rss_mib"])


def soak(port: int, count: int) -> None:
    """``count`` requests with 16 in flight (wrk with a request cap is not available; aiohttp is)."""
    import asyncio

    import aiohttp

    body = json.dumps({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]})

    async def run() -> None:
        left = count
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as http:

            async def worker() -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    async with http.post(f"http://127.0.0.1:{port}/v1/chat/completions", data=body) as r:
                        await r.read()

            await asyncio.gather(*(worker() for _ in range(16)))

    asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tools", type=Path, default=Path("/work/shared/bench/gateway"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rates", default="100,200")
    ap.add_argument("--wrk-duration", type=int, default=10)
    ap.add_argument("--rate-duration", type=float, default=10)
    ap.add_argument("--soak", type=int, default=50_000)
    ap.add_argument("--ports", default="9301,9302,9303", help="fake,passthrough,gateway")
    a = ap.parse_args()
    fake, passthrough, gateway = (int(p) for p in a.ports.split(","))
    work = Path(tempfile.mkdtemp(prefix="offload-gw-bench-"))
    (work / "config.json5").write_text(CONFIG % fake, encoding="utf-8")
    env = {**os.environ, "OFFLOAD_HOME": str(work / "home")}
    offload = str(Path(sys.executable).parent / "offload")
    started: list[int] = []
    try:
        info = launch(
            a.tools,
            work,
            "fake",
            "0",
            f"http://127.0.0.1:{fake}/v1/models",
            [sys.executable, str(a.tools / "fake_openai.py"), "--port", str(fake)],
            env,
        )
        started.append(info["pid"])
        info = launch(
            a.tools,
            work,
            "passthrough",
            "1",
            f"http://127.0.0.1:{passthrough}/health",
            [
                sys.executable,
                str(a.tools / "passthrough_aiohttp.py"),
                "--port",
                str(passthrough),
                "--upstream",
                f"http://127.0.0.1:{fake}",
            ],
            env,
        )
        started.append(pt_pid := info["pid"])
        info = launch(
            a.tools,
            work,
            "offload",
            "1",
            f"http://127.0.0.1:{gateway}/v1/models",
            [offload, "--config", str(work / "config.json5"), "serve", "--port", str(gateway), "--key", KEY],
            env,
        )
        started.append(gw_pid := info["pid"])
        results = work / "results.jsonl"
        subprocess.run(
            [
                sys.executable,
                str(a.tools / "bench.py"),
                "--tag",
                "offload",
                "--out",
                str(results),
                "--gen-cpus",
                "0",
                "--rounds",
                str(a.rounds),
                "--rates",
                a.rates,
                "--wrk-duration",
                str(a.wrk_duration),
                "--rate-duration",
                str(a.rate_duration),
                "--target",
                f"direct=http://127.0.0.1:{fake}",
                "--target",
                f"passthrough=http://127.0.0.1:{passthrough}",
                "--target",
                f"offload=http://127.0.0.1:{gateway}",
                "--key",
                KEY,
                "--pid",
                f"passthrough={pt_pid}",
                "--pid",
                f"offload={gw_pid}",
            ],
            check=True,
        )
        subprocess.run(
            [sys.executable, str(a.tools / "summarize.py"), str(results), "--baseline", "direct"], check=True
        )
        before = rss_mib(a.tools, gw_pid)
        soak(gateway, a.soak)
        after = rss_mib(a.tools, gw_pid)
        print(
            f"\noffload serve RSS after the bench: {before:.1f} MiB; "
            f"after {a.soak} more requests: {after:.1f} MiB ({(after / before - 1) * 100:+.1f}%)"
        )
    finally:
        for pid in reversed(started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        time.sleep(0.5)
        print(f"(work files in {work})")


if __name__ == "__main__":
    main()
