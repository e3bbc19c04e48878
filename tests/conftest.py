"""Shared test fixtures and the suite's rules.

* Every test gets an isolated OFFLOAD_HOME and no LM Studio settings from the environment.
* Real inference uses one llama.cpp thread (``OFFLOAD_THREADS=1``): on a shared machine, a
  thread per core fights every other process for the CPU and slows the whole suite.
* No silent skips in CI: under ``CI=true`` a skipped test fails, saying what to install.
  A local run lists what was skipped in its summary (``-rs`` in pytest's options).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED = FIXTURES / "lmstudio-recorded"


@pytest.fixture(autouse=True)
def offload_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config/data dir and no LM Studio settings from the environment."""
    home = tmp_path / "offload-home"
    monkeypatch.setenv("OFFLOAD_HOME", str(home))
    monkeypatch.setenv("OFFLOAD_THREADS", "1")
    for var in (
        "OFFLOAD_CONFIG",
        "LM_STUDIO_API_URL",
        "LM_API_TOKEN",
        "LMSTUDIO_API_TOKEN",
        "OFFLOAD_MODELS_DIR",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


def recorded(name: str) -> Any:
    """A recorded LM Studio body by file name (without ``.json``)."""
    return json.loads((RECORDED / f"{name}.json").read_text())


@pytest.fixture
def recorded_body() -> Any:
    """Access to the recorded bodies: ``recorded_body("api-v1-models")``."""
    return recorded


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where every test must run."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Under CI, turn a skip into a failure that says what is missing."""
    report = yield
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which must run every test: {reason}"
    return report
