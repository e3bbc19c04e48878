"""The ``offload`` command. Importing this package registers every subcommand on ``cli``."""

from __future__ import annotations

from offload.cli import (  # noqa: F401  (registers commands)
    ask,
    batch,
    calibrate,
    config_cmd,
    conversations,
    doctor,
    mcp_cmd,
    models,
    serve,
    skill,
    stats,
    tasks,
)
from offload.cli._app import cli


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="offload")


__all__ = ["cli", "main"]
