"""Start-up cost of ``import offload`` and ``offload --help`` against bare ``python -c pass``.

All three run as fresh processes in interleaved rounds (these machines drift by tens of
percent within minutes, so only same-run comparisons mean anything). Prints medians, the
ratio to bare Python and the extra milliseconds, and checks the budget: ``offload --help``
within 150 ms of bare Python start.

    .venv/bin/python bench/startup.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BUDGET_MS = 150.0


def commands() -> dict[str, list[str]]:
    """The commands to compare, keyed by label."""
    script = shutil.which("offload", path=str(Path(sys.executable).parent)) or "offload"
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import offload": [sys.executable, "-c", "import offload"],
        "offload --help": [script, "--help"],
    }


def once(cmd: list[str]) -> float:
    """Wall seconds of one run."""
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    cmds = commands()
    samples: dict[str, list[float]] = {k: [] for k in cmds}
    for cmd in cmds.values():  # warm the page cache once
        once(cmd)
    for _ in range(args.rounds):
        for label, cmd in cmds.items():
            samples[label].append(once(cmd))
    base = statistics.median(samples["python -c pass"])
    print(f"{'command':<18}{'median ms':>10}{'ratio':>8}{'extra ms':>10}")
    for label, values in samples.items():
        med = statistics.median(values)
        print(f"{label:<18}{med * 1000:>10.1f}{med / base:>8.2f}{(med - base) * 1000:>10.1f}")
    extra = (statistics.median(samples["offload --help"]) - base) * 1000
    verdict = "within" if extra <= BUDGET_MS else "OVER"
    print(f"offload --help: {extra:.0f} ms over bare Python ({verdict} the {BUDGET_MS:.0f} ms budget)")
    return 0 if extra <= BUDGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
