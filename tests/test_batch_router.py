"""A batch runs on top of the caller's router, never inside it: the caller's pool, cooldowns and
providers are the same during and after a run, and calls through the same ``Offloader`` while
the batch runs are routed as if no batch existed (real loopback LM Studio fakes)."""

from __future__ import annotations

from pathlib import Path

import offload
from offload.config import Config, parse_config
from offload.offloader import Offloader
from offload.testing import LMStudioFake, ScriptedProvider

TEXT = "The committee met on Tuesday and approved the new budget for the library renovation. " * 3


def config(*urls: str) -> Config:
    return parse_config(
        {
            "agents": {"defaults": {"model": {"primary": "lmstudio/auto", "fallbacks": ["cloud/big"]}}},
            "models": {
                "mode": "replace",
                "providers": {
                    "lmstudio": {"baseUrls": list(urls), "api": "lmstudio"},
                    "cloud": {"baseUrl": "http://127.0.0.1:10/v1", "local": False, "models": [{"id": "big"}]},
                },
            },
        },
        env={},
    )


async def test_the_callers_router_is_untouched_and_concurrent_calls_are_unaffected(tmp_path: Path) -> None:
    a, b = LMStudioFake(parallel=2, service_time=0.02), LMStudioFake(parallel=2, service_time=0.02)
    with a.serve() as server_a, b.serve() as server_b:
        off = Offloader(config(server_a.url, server_b.url), state_dir=tmp_path)
        cloud = ScriptedProvider("cloud", local=False, default="from the cloud")
        off.router.pool.put("cloud", cloud)
        router, pool, cooldowns = off.router, off.router.pool, off.router.cooldowns
        original = pool.get("lmstudio")
        during: list[offload.Routed] = []
        async with off:
            data = [{"id": f"i{k}", "text": TEXT} for k in range(24)]
            run = offload.batch("summarize", data, offloader=off)
            seen = 0
            async for result in run:
                assert result.ok, result.row
                seen += 1
                if seen == 4:  # mid-run
                    assert off.router is router
                    assert off.router.pool is pool
                    assert pool.get("lmstudio") is original  # no endpoint set swapped in
                    assert off.router.cooldowns is cooldowns
                    # the caller's cooldowns are live, not exempted for the batch's providers…
                    assert cooldowns.failed("lmstudio/auto") == 30.0
                    assert cooldowns.remaining("lmstudio/auto") > 0
                    # …so a concurrent call through the same Offloader skips lmstudio as it should
                    during.append(await off.ask("Say hi."))
            assert run.tally.done == 24
            # the batch kept to its own cooldowns: every item on lmstudio, none on the cloud
            assert run.fleet is not None
            assert sum(ep.served for _, ep in run.fleet.endpoints()) == 24
            assert during[0].candidate.name == "cloud/big"
            assert (during[0].attempts[0].error or "").startswith("cooling down")
            assert len(cloud.calls) == 1  # the concurrent call only
            # after the run: the same pool and provider, still open and usable
            assert pool.get("lmstudio") is original
            assert set(cooldowns.snapshot()) == {"lmstudio/auto"}
            cooldowns.succeeded("lmstudio/auto")
            after = await off.ask("Say hi again.")
            assert after.candidate.name == "lmstudio/auto"
            assert after.attempts[-1].address is None  # answered by the caller's provider, not the batch's
