"""Helpers for end-to-end tests: run the real ``offload`` console entry point in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OFFLOAD = [sys.executable, "-m", "offload"]


@dataclass
class Run:
    """A finished ``offload`` process."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as JSON."""
        return json.loads(self.out)


def offload(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 300
) -> Run:
    """Run ``offload ARGS`` with the test's environment (isolated OFFLOAD_HOME) plus ``env``."""
    full = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [*OFFLOAD, *args], capture_output=True, text=True, env=full, input=input, timeout=timeout, check=False
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def write_config(home: Path, text: str) -> Path:
    """Write ``text`` as the config file under ``home`` and return its path."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.json5"
    path.write_text(text)
    return path
