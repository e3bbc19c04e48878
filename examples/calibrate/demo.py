"""Calibrate the embedded engine on the shipped samples, against a stand-in for a hosted model.

    .venv/bin/python examples/calibrate/demo.py [--out DIR]

Starts a local fake of a hosted, priced model (``cloud/big``, $3 / $15 per million tokens) that
knows the expected ticket labels and writes one-sentence summaries, then runs

    offload calibrate classify tickets.jsonl --local embedded/auto --reference cloud/big
    offload calibrate summarize notes.jsonl  --local embedded/auto --reference cloud/big

and writes both HTML reports. The fake's judging is a plain heuristic (the answer sharing more
words with the source, at no more than half its length, wins), so read the summarize figures as
a demonstration of the mechanics, not as a verdict on the model.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from offload.testing import FakeTurn, LMStudioFake

HERE = Path(__file__).parent
TICKETS = {json.loads(line)["text"]: json.loads(line)["expected"] for line in (HERE / "tickets.jsonl").open()}
NOTES = [json.loads(line)["text"] for line in (HERE / "notes.jsonl").open()]
WORD = re.compile(r"[a-z]{4,}")


def _words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def _fenced(text: str, label: str) -> str:
    start = text.index(f"{label}:\n<<<\n") + len(label) + 6
    return text[start : text.index("\n>>>", start)]


def reference(turn: FakeTurn) -> str:
    """Labels from the answer key, first-sentence summaries, and a heuristic judge."""
    text = turn.user_text
    if "Answer A:" in text:
        task, a, b = _fenced(text, "Task"), _fenced(text, "Answer A"), _fenced(text, "Answer B")
        source = _words(task)

        def score(answer: str) -> float:
            if not answer.strip() or len(answer) > len(task) / 2:
                return 0.0
            return len(_words(answer) & source) / max(1, len(_words(answer)))

        sa, sb = score(a), score(b)
        better = "tie" if abs(sa - sb) < 0.1 else ("A" if sa > sb else "B")
        return json.dumps({"better": better, "reason": f"overlap {sa:.2f} vs {sb:.2f}"})
    for ticket, label in TICKETS.items():
        if ticket in text:
            return json.dumps({"label": label})
    for note in NOTES:
        if note in text:
            return note.split(". ")[0] + "."
    return "ok"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="offload-calibrate-")))
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    fake = LMStudioFake(responder=reference)
    with fake.serve() as server:
        config = out / "config.json5"
        provider = {
            "baseUrl": f"{server.url}/v1",
            "api": "openai-completions",
            "local": False,
            "apiKey": "demo-key",
            "models": [{"id": "big", "contextWindow": 32768, "cost": {"input": 3, "output": 15}}],
        }
        config.write_text(
            json.dumps({"models": {"mode": "merge", "providers": {"cloud": provider}}}, indent=2)
        )
        for task, samples in (("classify", "tickets.jsonl"), ("summarize", "notes.jsonl")):
            data = out / samples
            data.write_text((HERE / samples).read_text())
            command = [
                sys.executable, "-m", "offload", "--config", str(config), "calibrate", task, str(data),
                "--local", "embedded/auto", "--reference", "cloud/big", "-o", str(out / f"{task}.html"),
            ]  # fmt: skip
            print(
                f"$ offload calibrate {task} {samples} --local embedded/auto --reference cloud/big",
                flush=True,
            )
            code = subprocess.call(command)
            if code:
                return code
            print(flush=True)
    print(f"reports: {out / 'classify.html'}, {out / 'summarize.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
