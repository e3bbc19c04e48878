"""``GET /metrics``: the gateway's counters in Prometheus text format (written by hand, no dependency).

Counters are plain dict increments on the event loop (one thread, no locks): requests by
route (local/hosted), protocol, scenario and outcome; fallbacks; tokens by route and
direction; dollars avoided; and a latency histogram per route.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from offload.gateway.usage import Outcome

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """In-process counters for one gateway."""

    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, str, str], int] = defaultdict(int)
        self.fallbacks = 0
        self.tokens: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.avoided_nusd = 0
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: defaultdict[str, float] = defaultdict(float)
        self.latency_count: defaultdict[str, int] = defaultdict(int)

    def observe(self, out: Outcome, seconds: float, local: bool, avoided_nusd: int) -> None:
        """Count one finished request."""
        route = "local" if local else "hosted"
        self.requests[(route, out.protocol, out.scenario, "ok" if out.error is None else out.kind)] += 1
        self.fallbacks += int(out.fallback)
        self.tokens[(route, "input")] += out.input_tokens
        self.tokens[(route, "output")] += out.output_tokens
        self.avoided_nusd += avoided_nusd
        counts = self.latency.setdefault(route, [0] * (len(BUCKETS) + 1))
        counts[bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum[route] += seconds
        self.latency_count[route] += 1

    def render(self) -> str:
        """The exposition text."""
        lines = [
            "# HELP offload_gateway_requests_total Requests by route, protocol, scenario and outcome.",
            "# TYPE offload_gateway_requests_total counter",
        ]
        for (route, protocol, scenario, outcome), n in sorted(self.requests.items()):
            labels = f'route="{route}",protocol="{protocol}",scenario="{scenario}",outcome="{outcome}"'
            lines.append(f"offload_gateway_requests_total{{{labels}}} {n}")
        lines += [
            "# HELP offload_gateway_fallbacks_total Requests served after an earlier step failed.",
            "# TYPE offload_gateway_fallbacks_total counter",
            f"offload_gateway_fallbacks_total {self.fallbacks}",
            "# HELP offload_gateway_tokens_total Tokens by route and direction.",
            "# TYPE offload_gateway_tokens_total counter",
        ]
        for (route, direction), n in sorted(self.tokens.items()):
            lines.append(f'offload_gateway_tokens_total{{route="{route}",direction="{direction}"}} {n}')
        lines += [
            "# HELP offload_gateway_avoided_usd_total What local answers would have cost (model asked for).",
            "# TYPE offload_gateway_avoided_usd_total counter",
            f"offload_gateway_avoided_usd_total {self.avoided_nusd / 1e9:.9f}",
            "# HELP offload_gateway_request_seconds Request latency by route.",
            "# TYPE offload_gateway_request_seconds histogram",
        ]
        for route, counts in sorted(self.latency.items()):
            running = 0
            for bound, n in zip(BUCKETS, counts, strict=False):
                running += n
                lines.append(
                    f'offload_gateway_request_seconds_bucket{{route="{route}",le="{bound:g}"}} {running}'
                )
            total = self.latency_count[route]
            lines.append(f'offload_gateway_request_seconds_bucket{{route="{route}",le="+Inf"}} {total}')
            lines.append(
                f'offload_gateway_request_seconds_sum{{route="{route}"}} {self.latency_sum[route]:.6f}'
            )
            lines.append(f'offload_gateway_request_seconds_count{{route="{route}"}} {total}')
        return "\n".join(lines) + "\n"
