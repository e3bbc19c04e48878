"""Shared test fixtures: an isolated OFFLOAD_HOME per test and the recorded LM Studio bodies."""

from __future__ import annotations

import json
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
    for var in (
        "OFFLOAD_CONFIG",
        "LM_STUDIO_API_URL",
        "LM_API_TOKEN",
        "LMSTUDIO_API_TOKEN",
        "OFFLOAD_MODELS_DIR",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(autouse=True)
def forget_secrets() -> None:
    """Secrets registered for masking by one test do not mask text in the next."""
    from offload import redact

    redact.forget()


def recorded(name: str) -> Any:
    """A recorded LM Studio body by file name (without ``.json``)."""
    return json.loads((RECORDED / f"{name}.json").read_text())


@pytest.fixture
def recorded_body() -> Any:
    """Access to the recorded bodies: ``recorded_body("api-v1-models")``."""
    return recorded
